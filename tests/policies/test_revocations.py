"""A source's copy of the hub's revocation list: signed, merged, kept when the hub is away."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from policies.caller import Caller
from policies.revocations import (
    EXPIRY_MARGIN_S,
    REVOCATIONS_TYPE,
    Revocation,
    RevocationList,
    RevocationPoller,
)
from policies.tokens import JwksCache, TokenClientDisabled, TokenRevoked
from schema.enums import OrgKind

ISSUER = "https://hub.test"
KEY = ECKey.generate_key("P-256", private=True)
KID = "hub-key"


def caller(*, jti: str, client_id: str = "some-client") -> Caller:
    return Caller(
        org="110105001001",
        org_kind=OrgKind.COMMUNITY,
        scopes=frozenset({"resources:read"}),
        client_id=client_id,
        subject=client_id,
        token_id=jti,
    )


def signed(claims: dict[str, Any], *, key: ECKey = KEY, typ: str = REVOCATIONS_TYPE) -> str:
    return jwt.encode({"typ": typ, "alg": "ES256", "kid": KID}, claims, key, algorithms=["ES256"])


def document(
    revoked: tuple[tuple[str, float], ...] = (),
    disabled: tuple[str, ...] = (),
    *,
    iat: float | None = None,
) -> dict[str, Any]:
    now = time.time()
    return {
        "iss": ISSUER,
        "iat": now if iat is None else iat,
        "cursor": now,
        "revoked": [{"jti": jti, "exp": exp, "at": now} for jti, exp in revoked],
        "disabled_clients": list(disabled),
    }


class FakeHub:
    """Serves the JWKS and whatever revocation document (or failure) the test sets."""

    def __init__(self) -> None:
        self.body: str | None = None
        self.requests: list[httpx.Request] = []

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/jwks":
            public = {**KEY.as_dict(private=False), "kid": KID, "use": "sig", "alg": "ES256"}
            return httpx.Response(200, json={"keys": [public]})
        if self.body is None:
            raise httpx.ConnectError("hub unreachable", request=request)
        return httpx.Response(200, text=self.body, headers={"content-type": "application/jwt"})


@pytest.fixture
async def hub() -> Any:
    fake = FakeHub()
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake.handle))
    poller = RevocationPoller(
        f"{ISSUER}/oauth/revocations",
        issuer=ISSUER,
        jwks=JwksCache(f"{ISSUER}/jwks", http),
        http=http,
    )
    yield fake, poller
    await http.aclose()


async def test_a_signed_list_refuses_its_tokens_and_clients(hub: Any) -> None:
    fake, poller = hub
    exp = time.time() + 300
    fake.body = signed(document((("revoked-jti", exp),), ("gone-client",)))
    await poller.poll()
    assert poller.failures == 0
    assert poller.age_s() >= 0
    with pytest.raises(TokenRevoked) as revoked:
        poller.revocations.check(caller(jti="revoked-jti"))
    assert revoked.value.extensions["reason"] == "TOKEN_REVOKED"
    with pytest.raises(TokenClientDisabled) as disabled:
        poller.revocations.check(caller(jti="other", client_id="gone-client"))
    assert disabled.value.extensions["reason"] == "TOKEN_CLIENT_DISABLED"
    poller.revocations.check(caller(jti="other"))  # anyone else passes

    # The next poll asks only for what came after the cursor.
    await poller.poll()
    assert "since=" in str(fake.requests[-1].url)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(lambda: signed(document(), key=ECKey.generate_key("P-256")), id="forged"),
        pytest.param(lambda: signed(document(), typ="at+jwt"), id="access-token-type"),
        pytest.param(lambda: signed({**document(), "iss": "https://other.test"}), id="issuer"),
        pytest.param(lambda: "not a jws", id="garbage"),
        pytest.param(lambda: None, id="unreachable"),
    ],
)
async def test_a_bad_or_missing_list_keeps_the_one_held(hub: Any, body: Any) -> None:
    fake, poller = hub
    fake.body = signed(document((("revoked-jti", time.time() + 300),), ("gone-client",)))
    await poller.poll()
    fetched_at = poller.fetched_at
    # A list that would forget everything, or none at all.
    fake.body = body()
    await poller.poll()
    await poller.poll()
    assert poller.failures == 2
    assert poller.fetched_at == fetched_at
    with pytest.raises(TokenRevoked):
        poller.revocations.check(caller(jti="revoked-jti"))
    with pytest.raises(TokenClientDisabled):
        poller.revocations.check(caller(jti="x", client_id="gone-client"))


async def test_an_older_list_than_the_one_held_is_refused(hub: Any) -> None:
    fake, poller = hub
    fake.body = signed(document(disabled=("gone-client",)))
    await poller.poll()
    fake.body = signed(document(iat=time.time() - 3600))  # a replay from an hour ago
    await poller.poll()
    assert poller.failures == 1
    assert poller.revocations.disabled == {"gone-client"}


def test_revoked_ids_drop_once_their_token_has_expired() -> None:
    now = [1_000_000.0]
    revocations = RevocationList(clock=lambda: now[0])
    revocations.revoke(
        [Revocation("a", now[0] + 10, now[0]), Revocation("b", now[0] + 500, now[0])]
    )
    assert len(revocations) == 2
    now[0] += 10 + EXPIRY_MARGIN_S - 1  # still within the verifiers' leeway
    revocations.prune()
    assert len(revocations) == 2
    now[0] += 2
    revocations.prune()
    assert len(revocations) == 1
    assert revocations.refusal(caller(jti="a")) is None
    assert isinstance(revocations.refusal(caller(jti="b")), TokenRevoked)
