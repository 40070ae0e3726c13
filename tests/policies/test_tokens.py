"""Access-token verification against a real JWKS served over HTTP; tokens minted with pyjwt."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from policies import tokens
from policies.caller import Caller
from policies.tokens import (
    REQUIRED_CLAIMS,
    BearerAuthenticator,
    JwksCache,
    TokenError,
    TokenVerifier,
)
from schema.enums import OrgKind
from schema.errors import Unauthenticated
from tests.conftest import ServerThread

ISSUER = "https://hub.linli.test"
AUDIENCE = "urn:linli:node:110105001001"
KID = "hub-2026-11"
REFRESH_S = 60.0


def _public_jwk(private_key: ec.EllipticCurvePrivateKey, kid: str) -> dict[str, Any]:
    jwk: dict[str, Any] = ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "use": "sig", "alg": "ES256"}


@dataclass
class JwksServerState:
    """What a JWKS server serves, and how often it was asked."""

    keys: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    failing: int = 0  # the next this many requests answer 503


@dataclass
class FakeClock:
    """A monotonic clock the tests move by hand."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def _jwks_app(state: JwksServerState) -> Starlette:
    async def jwks(request: Request) -> JSONResponse:
        state.requests += 1
        if state.failing > 0:
            state.failing -= 1
            return JSONResponse({"error": "starting"}, status_code=503)
        return JSONResponse({"keys": state.keys})

    return Starlette(routes=[Route("/jwks.json", jwks)])


HUB_KEY = ec.generate_private_key(ec.SECP256R1())
ATTACKER_KEY = ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def issuer_state() -> JwksServerState:
    return JwksServerState()


@pytest.fixture(scope="module")
def elsewhere_state() -> JwksServerState:
    return JwksServerState()


@pytest.fixture(scope="module")
def issuer_url(issuer_state: JwksServerState) -> Iterator[str]:
    server = ServerThread(_jwks_app(issuer_state)).start()
    yield f"{server.url}/jwks.json"
    server.stop()


@pytest.fixture(scope="module")
def elsewhere_url(elsewhere_state: JwksServerState) -> Iterator[str]:
    """An attacker's JWKS server, holding the attacker's key under the hub's kid and its own."""
    server = ServerThread(_jwks_app(elsewhere_state)).start()
    yield f"{server.url}/jwks.json"
    server.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def verifier(
    issuer_url: str,
    issuer_state: JwksServerState,
    elsewhere_state: JwksServerState,
    clock: FakeClock,
) -> AsyncIterator[TokenVerifier]:
    issuer_state.keys = [_public_jwk(HUB_KEY, KID)]
    issuer_state.requests = 0
    issuer_state.failing = 0
    elsewhere_state.keys = [
        _public_jwk(ATTACKER_KEY, KID),
        _public_jwk(ATTACKER_KEY, "attacker"),
    ]
    elsewhere_state.requests = 0
    async with httpx.AsyncClient(timeout=30.0) as http:
        cache = JwksCache(issuer_url, http, min_refresh_interval_s=REFRESH_S, clock=clock)
        yield TokenVerifier(ISSUER, AUDIENCE, cache)


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "user-42",
        "aud": AUDIENCE,
        "exp": now + 300,
        "iat": now,
        "jti": "tok-1",
        "client_id": "community-app",
        "scope": "resources:read shelters:read",
        "org": "110105001001",
        "org_kind": "community",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _mint(
    claims: dict[str, Any] | None = None,
    *,
    key: Any = HUB_KEY,
    headers: dict[str, Any] | None = None,
) -> str:
    header = {"kid": KID, "typ": "at+jwt", **(headers or {})}
    return jwt.encode(claims or _claims(), key, algorithm="ES256", headers=header)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


async def _reason(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(TokenError) as caught:
        await verifier.verify(token)
    error = caught.value
    assert isinstance(error, Unauthenticated)
    assert error.code == "UNAUTHENTICATED"
    assert error.extensions["code"] == "UNAUTHENTICATED"
    assert token not in error.message
    assert token not in json.dumps(error.extensions)
    reason: str = error.extensions["reason"]
    return reason


# valid tokens


async def test_valid_token_gives_the_exact_caller(
    verifier: TokenVerifier, issuer_state: JwksServerState
) -> None:
    caller = await verifier.verify(_mint())

    assert caller == Caller(
        org="110105001001",
        org_kind=OrgKind.COMMUNITY,
        scopes=frozenset({"resources:read", "shelters:read"}),
        client_id="community-app",
        subject="user-42",
    )
    assert caller.token_id == "tok-1"
    assert caller.actor is None
    assert caller.district is None
    assert issuer_state.requests == 1


async def test_actor_district_and_audience_list(verifier: TokenVerifier) -> None:
    claims = _claims(
        aud=["urn:linli:node:other", AUDIENCE],
        act={"sub": "urn:linli:hub"},
        district="110105",
        org_kind="department",
    )
    token = _mint(claims, headers={"typ": "application/AT+JWT"})

    caller = await verifier.verify(token)

    assert caller.actor == "urn:linli:hub"
    assert caller.district == "110105"
    assert caller.org_kind is OrgKind.DEPARTMENT


async def test_keys_are_cached(verifier: TokenVerifier, issuer_state: JwksServerState) -> None:
    for _ in range(5):
        await verifier.verify(_mint())

    assert issuer_state.requests == 1


async def test_leeway_accepts_slightly_expired_token(verifier: TokenVerifier) -> None:
    now = int(time.time())
    caller = await verifier.verify(_mint(_claims(exp=now - 10, iat=now - 300)))

    assert caller.subject == "user-42"


# bearer header


@pytest.mark.parametrize("authorization", [None, "", "Basic dXNlcjpwYXNz", "Bearer ", "Bearer"])
async def test_missing_bearer_token(verifier: TokenVerifier, authorization: str | None) -> None:
    with pytest.raises(TokenError) as caught:
        await BearerAuthenticator(verifier).authenticate(authorization)

    assert caught.value.extensions == {"code": "UNAUTHENTICATED", "reason": "TOKEN_MISSING"}


async def test_bearer_scheme_is_case_insensitive(verifier: TokenVerifier) -> None:
    caller = await BearerAuthenticator(verifier).authenticate(f"bearer {_mint()}")

    assert caller.subject == "user-42"


async def test_bearer_passes_verification_failures_on(verifier: TokenVerifier) -> None:
    token = _mint(_claims(iss="https://evil.test"))
    with pytest.raises(TokenError) as caught:
        await BearerAuthenticator(verifier).authenticate(f"Bearer {token}")

    assert caught.value.extensions["reason"] == "TOKEN_ISSUER_INVALID"
    # naming both issuers tells the operator which hub settings minted the token
    assert "'https://evil.test'" in caught.value.message
    assert f"expected issuer {verifier.issuer!r}" in caught.value.message


# malformed, algorithms, typ


@pytest.mark.parametrize(
    "token",
    [
        "not-a-jwt",
        "a.b",
        "a.b.c.d",
        "!!!.###.$$$",
        _b64(b"not json") + "." + _b64(b"{}") + ".sig",
        "ünïcode.ünïcode.ünïcode",
    ],
)
async def test_malformed_token(verifier: TokenVerifier, token: str) -> None:
    assert await _reason(verifier, token) == "TOKEN_MALFORMED"


async def test_payload_not_an_object_after_valid_signature(verifier: TokenVerifier) -> None:
    header = {"alg": "ES256", "typ": "at+jwt", "kid": KID}
    token = jwt.api_jws.encode(b"[1, 2]", HUB_KEY, algorithm="ES256", headers=header)

    assert await _reason(verifier, token) == "TOKEN_MALFORMED"


async def test_alg_none_is_rejected(verifier: TokenVerifier, issuer_state: JwksServerState) -> None:
    token = jwt.encode(_claims(), "", algorithm="none", headers={"kid": KID, "typ": "at+jwt"})
    assert token.endswith(".")

    assert await _reason(verifier, token) == "TOKEN_ALG_NOT_ALLOWED"
    assert issuer_state.requests == 0


async def test_hs256_signed_with_the_public_key_is_rejected(
    verifier: TokenVerifier, issuer_state: JwksServerState
) -> None:
    public_pem = HUB_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # pyjwt refuses to HMAC with a PEM public key, so this forgery is made by hand.
    signing_input = _unsigned({"alg": "HS256", "typ": "at+jwt", "kid": KID}, _claims())
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{_b64(mac)}"

    assert await _reason(verifier, token) == "TOKEN_ALG_NOT_ALLOWED"
    assert issuer_state.requests == 0


async def test_rs256_token_with_an_ec_kid_is_rejected(verifier: TokenVerifier) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(_claims(), rsa_key, algorithm="RS256", headers={"kid": KID, "typ": "at+jwt"})

    assert await _reason(verifier, token) == "TOKEN_SIGNATURE_INVALID"


@pytest.mark.parametrize("algorithms", [("HS256",), ("ES256", "none"), ("hs512",)])
async def test_verifier_refuses_unsafe_algorithms(algorithms: tuple[str, ...]) -> None:
    async with httpx.AsyncClient(timeout=30.0) as http:
        cache = JwksCache("http://127.0.0.1:1/jwks.json", http)
        with pytest.raises(ValueError, match="not allowed"):
            TokenVerifier(ISSUER, AUDIENCE, cache, algorithms=algorithms)


@pytest.mark.parametrize("typ", ["JWT", "jwt", "at+jwt+x", None])
async def test_typ_must_be_at_jwt(verifier: TokenVerifier, typ: str | None) -> None:
    header: dict[str, Any] = {"kid": KID, "typ": typ}
    token = jwt.encode(_claims(), HUB_KEY, algorithm="ES256", headers=header)
    if typ is None:
        # pyjwt drops a None typ; check that the header really has none.
        assert "typ" not in jwt.get_unverified_header(token)

    assert await _reason(verifier, token) == "TOKEN_TYP_INVALID"


async def test_crit_header_is_rejected(verifier: TokenVerifier) -> None:
    token = _mint(headers={"crit": ["exp"], "exp": 1})

    assert await _reason(verifier, token) == "TOKEN_MALFORMED"


# signature and keys


async def test_tampered_payload_fails_signature(verifier: TokenVerifier) -> None:
    header, _, signature = _mint().split(".")
    forged = _b64(json.dumps(_claims(scope="admin")).encode())
    token = f"{header}.{forged}.{signature}"

    assert await _reason(verifier, token) == "TOKEN_SIGNATURE_INVALID"


async def test_token_signed_by_another_key_fails_signature(verifier: TokenVerifier) -> None:
    assert await _reason(verifier, _mint(key=ATTACKER_KEY)) == "TOKEN_SIGNATURE_INVALID"


async def test_unknown_kid(verifier: TokenVerifier, issuer_state: JwksServerState) -> None:
    token = _mint(headers={"kid": "no-such-key"})

    assert await _reason(verifier, token) == "TOKEN_KID_UNKNOWN"
    assert issuer_state.requests == 1


async def test_missing_kid(verifier: TokenVerifier) -> None:
    token = jwt.encode(_claims(), HUB_KEY, algorithm="ES256", headers={"typ": "at+jwt"})

    assert await _reason(verifier, token) == "TOKEN_KID_UNKNOWN"


async def test_sprayed_unknown_kids_refetch_at_most_once_per_interval(
    verifier: TokenVerifier, issuer_state: JwksServerState, clock: FakeClock
) -> None:
    await verifier.verify(_mint())
    assert issuer_state.requests == 1

    sprayed = [_mint(headers={"kid": uuid.uuid4().hex}) for _ in range(25)]
    reasons = [await _reason(verifier, token) for token in sprayed]
    reasons += await asyncio.gather(*(_reason(verifier, token) for token in sprayed))

    assert set(reasons) == {"TOKEN_KID_UNKNOWN"}
    assert issuer_state.requests == 1

    clock.now += REFRESH_S
    assert await _reason(verifier, sprayed[0]) == "TOKEN_KID_UNKNOWN"
    assert await _reason(verifier, sprayed[1]) == "TOKEN_KID_UNKNOWN"
    assert issuer_state.requests == 2


async def test_an_issuer_that_failed_is_asked_again_soon(
    verifier: TokenVerifier, issuer_state: JwksServerState, clock: FakeClock
) -> None:
    # The issuer is starting: its JWKS answers 503 twice, then the keys.
    issuer_state.failing = 2
    token = _mint()
    assert await _reason(verifier, token) == "JWKS_UNAVAILABLE"
    assert await _reason(verifier, token) == "TOKEN_KID_UNKNOWN"  # not again at once
    assert issuer_state.requests == 1
    clock.now += 0.5  # after a failure, half a second, not the 60 s interval
    assert await _reason(verifier, token) == "JWKS_UNAVAILABLE"
    clock.now += 0.5
    caller = await verifier.verify(token)
    assert caller.subject == "user-42"
    assert issuer_state.requests == 3
    # Once keys were read, an unknown kid waits the whole interval again.
    assert await _reason(verifier, _mint(headers={"kid": "other"})) == "TOKEN_KID_UNKNOWN"
    clock.now += 5.0
    assert await _reason(verifier, _mint(headers={"kid": "other"})) == "TOKEN_KID_UNKNOWN"
    assert issuer_state.requests == 3


async def test_concurrent_first_requests_fetch_once(
    verifier: TokenVerifier, issuer_state: JwksServerState
) -> None:
    callers = await asyncio.gather(*(verifier.verify(_mint()) for _ in range(10)))

    assert {c.subject for c in callers} == {"user-42"}
    assert issuer_state.requests == 1


async def test_rotated_key_is_picked_up_after_the_interval(
    verifier: TokenVerifier, issuer_state: JwksServerState, clock: FakeClock
) -> None:
    await verifier.verify(_mint())
    new_key = ec.generate_private_key(ec.SECP256R1())
    issuer_state.keys.append(_public_jwk(new_key, "hub-2026-12"))
    token = _mint(key=new_key, headers={"kid": "hub-2026-12"})

    assert await _reason(verifier, token) == "TOKEN_KID_UNKNOWN"
    clock.now += REFRESH_S
    caller = await verifier.verify(token)

    assert caller.subject == "user-42"
    assert issuer_state.requests == 2


async def test_a_token_signature_is_checked_once_per_token(
    verifier: TokenVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    checked: list[Any] = []
    validate = tokens.jws.validate_compact

    def counting(signed: Any, *args: Any, **kwargs: Any) -> bool:
        checked.append(signed)
        return validate(signed, *args, **kwargs)

    monkeypatch.setattr(tokens.jws, "validate_compact", counting)
    first, second = _mint(), _mint(_claims(jti="tok-2"))

    for _ in range(3):
        assert (await verifier.verify(first)).token_id == "tok-1"
    assert (await verifier.verify(second)).token_id == "tok-2"

    assert len(checked) == 2
    assert await _reason(verifier, first[:-4] + "AAAA") == "TOKEN_SIGNATURE_INVALID"
    assert len(checked) == 3


async def test_a_checked_token_still_expires(
    verifier: TokenVerifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = time.time()
    token = _mint(_claims(exp=int(now) + 60))
    await verifier.verify(token)

    monkeypatch.setattr(tokens.time, "time", lambda: now + 60 + verifier.leeway_s + 1)

    assert await _reason(verifier, token) == "TOKEN_EXPIRED"


async def test_a_checked_token_is_checked_again_with_a_replaced_key(
    verifier: TokenVerifier, issuer_state: JwksServerState, clock: FakeClock
) -> None:
    token = _mint()
    await verifier.verify(token)
    # The issuer's key under KID is replaced (compromised, say): the token no longer holds.
    other = ec.generate_private_key(ec.SECP256R1())
    issuer_state.keys = [_public_jwk(other, KID), _public_jwk(other, "hub-2026-12")]
    clock.now += REFRESH_S
    await verifier.verify(_mint(key=other, headers={"kid": "hub-2026-12"}))  # refetches

    assert await _reason(verifier, token) == "TOKEN_SIGNATURE_INVALID"


@pytest.mark.parametrize("kid", ["attacker", KID])
async def test_jku_header_is_not_followed(
    verifier: TokenVerifier,
    elsewhere_url: str,
    elsewhere_state: JwksServerState,
    issuer_state: JwksServerState,
    kid: str,
) -> None:
    token = _mint(key=ATTACKER_KEY, headers={"kid": kid, "jku": elsewhere_url})

    reason = await _reason(verifier, token)

    assert reason == ("TOKEN_KID_UNKNOWN" if kid == "attacker" else "TOKEN_SIGNATURE_INVALID")
    assert elsewhere_state.requests == 0
    assert issuer_state.requests == 1


async def test_embedded_jwk_header_is_not_trusted(verifier: TokenVerifier) -> None:
    embedded = _public_jwk(ATTACKER_KEY, KID)
    token = _mint(key=ATTACKER_KEY, headers={"jwk": embedded})

    assert await _reason(verifier, token) == "TOKEN_SIGNATURE_INVALID"


# claims


async def test_wrong_issuer(verifier: TokenVerifier) -> None:
    token = _mint(_claims(iss="https://hub.linli.test/"))

    assert await _reason(verifier, token) == "TOKEN_ISSUER_INVALID"


@pytest.mark.parametrize(
    "aud", ["urn:linli:node:110105001002", ["urn:linli:node:110105001002"], [], 7]
)
async def test_token_for_another_node(verifier: TokenVerifier, aud: Any) -> None:
    token = _mint(_claims(aud=aud))

    assert await _reason(verifier, token) == "TOKEN_AUDIENCE_INVALID"


async def test_expired(verifier: TokenVerifier) -> None:
    now = int(time.time())
    token = _mint(_claims(exp=now - 60, iat=now - 600))

    assert await _reason(verifier, token) == "TOKEN_EXPIRED"


async def test_not_yet_valid(verifier: TokenVerifier) -> None:
    now = int(time.time())
    token = _mint(_claims(nbf=now + 300))

    assert await _reason(verifier, token) == "TOKEN_NOT_YET_VALID"


async def test_issued_in_the_future(verifier: TokenVerifier) -> None:
    now = int(time.time())
    token = _mint(_claims(iat=now + 300, exp=now + 900))

    assert await _reason(verifier, token) == "TOKEN_NOT_YET_VALID"


@pytest.mark.parametrize("claim", REQUIRED_CLAIMS)
async def test_missing_required_claim(verifier: TokenVerifier, claim: str) -> None:
    claims = _claims()
    del claims[claim]

    assert await _reason(verifier, _mint(claims)) == "TOKEN_CLAIMS_INVALID"


@pytest.mark.parametrize(
    "overrides",
    [
        {"org_kind": "galaxy"},
        {"exp": "tomorrow"},
        {"exp": True},
        {"scope": ["resources:read"]},
        {"act": "urn:linli:hub"},
        {"act": {"iss": "urn:linli:hub"}},
        {"district": 110105},
        {"sub": ""},
    ],
)
async def test_claim_of_wrong_type(verifier: TokenVerifier, overrides: dict[str, Any]) -> None:
    token = _mint(_claims(**overrides))

    assert await _reason(verifier, token) == "TOKEN_CLAIMS_INVALID"


def test_required_claims_are_the_designed_ones() -> None:
    assert set(REQUIRED_CLAIMS) == {
        "iss",
        "sub",
        "aud",
        "exp",
        "iat",
        "jti",
        "client_id",
        "scope",
        "org",
        "org_kind",
    }


async def test_key_declaring_another_alg_is_not_used(
    verifier: TokenVerifier, issuer_state: JwksServerState
) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_jwk: dict[str, Any] = RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True)
    issuer_state.keys.append({**rsa_jwk, "kid": "hub-rsa", "use": "sig", "alg": "RS256"})
    lenient = TokenVerifier(ISSUER, AUDIENCE, verifier.jwks, algorithms=("ES256", "RS256", "RS384"))
    headers = {"kid": "hub-rsa", "typ": "at+jwt"}
    good = jwt.encode(_claims(), rsa_key, algorithm="RS256", headers=headers)
    wrong_alg = jwt.encode(_claims(), rsa_key, algorithm="RS384", headers=headers)

    assert (await lenient.verify(good)).subject == "user-42"
    assert await _reason(lenient, wrong_alg) == "TOKEN_SIGNATURE_INVALID"
