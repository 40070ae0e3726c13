"""Access-token verification shared by node and hub (RFC 9068 JWT access tokens, RFC 8725).

Every failure is an ``Unauthenticated`` (code ``UNAUTHENTICATED``) whose
details carry a stable ``reason``:

    Unauthenticated                 UNAUTHENTICATED
    └── TokenError                  (base; reason in ``extensions["reason"]``)
        ├── TokenMissing            TOKEN_MISSING
        ├── TokenMalformed          TOKEN_MALFORMED
        ├── TokenAlgNotAllowed      TOKEN_ALG_NOT_ALLOWED
        ├── TokenTypInvalid         TOKEN_TYP_INVALID
        ├── TokenKidUnknown         TOKEN_KID_UNKNOWN
        ├── TokenSignatureInvalid   TOKEN_SIGNATURE_INVALID
        ├── TokenIssuerInvalid      TOKEN_ISSUER_INVALID
        ├── TokenAudienceInvalid    TOKEN_AUDIENCE_INVALID
        ├── TokenExpired            TOKEN_EXPIRED
        ├── TokenNotYetValid        TOKEN_NOT_YET_VALID
        ├── TokenClaimsInvalid      TOKEN_CLAIMS_INVALID
        ├── TokenRevoked            TOKEN_REVOKED
        ├── TokenClientDisabled     TOKEN_CLIENT_DISABLED
        ├── JwksUnavailable         JWKS_UNAVAILABLE
        ├── ActorChainTooLong       ACTOR_CHAIN_TOO_LONG
        └── FederationLoop          FEDERATION_LOOP

``ActorChainTooLong`` and ``FederationLoop`` come from a hub that checks the
chain of actors (``act``, ``act.act``, ...) of a token from a higher level.

``TokenRevoked`` and ``TokenClientDisabled`` come from the hub's revocation
list (``policies.revocations``), which a ``BearerAuthenticator`` may be given.

Keys come only from the configured JWKS URL: the token's ``jku``, ``x5u``,
``jwk`` and ``x5c`` headers are never followed or trusted.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any, ClassVar, Protocol

import httpx
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, OKPKey, RSAKey, import_key

from policies.caller import Caller
from schema.enums import OrgKind
from schema.errors import Unauthenticated

__all__ = [
    "ACCESS_TOKEN_TYPES",
    "MAX_ACT_DEPTH",
    "REQUIRED_CLAIMS",
    "ActorChainTooLong",
    "BearerAuthenticator",
    "FederationLoop",
    "JwksCache",
    "JwksUnavailable",
    "Refusals",
    "TokenAlgNotAllowed",
    "TokenAudienceInvalid",
    "TokenClaimsInvalid",
    "TokenClientDisabled",
    "TokenError",
    "TokenExpired",
    "TokenIssuerInvalid",
    "TokenKidUnknown",
    "TokenMalformed",
    "TokenMissing",
    "TokenNotYetValid",
    "TokenRevoked",
    "TokenSignatureInvalid",
    "TokenTypInvalid",
    "TokenVerifier",
    "actor_claim",
]

#: ``typ`` values accepted for an access token (RFC 9068 §2.1), compared case-insensitively.
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
#: Claims every Linli access token carries: RFC 9068's, then its caller's org and org kind.
REQUIRED_CLAIMS = (
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
)
#: The deepest ``act`` nesting any token may carry; a hub's own limit is a setting below it.
MAX_ACT_DEPTH = 16
_FORBIDDEN_ALGORITHMS = frozenset({"none", "HS256", "HS384", "HS512"})
_KEY_TYPES: Mapping[str, type[Key]] = {"EC": ECKey, "RSA": RSAKey, "OKP": OKPKey}
_MAX_JWKS_KEYS = 64
#: Tokens whose signature a ``TokenVerifier`` remembers having checked (oldest forgotten first).
VERIFIED_SIGNATURES_KEPT = 4096


class TokenError(Unauthenticated):
    """An access token that does not check out; ``reason`` says why."""

    reason: ClassVar[str] = "TOKEN_INVALID"

    def __init__(self, message: str) -> None:
        super().__init__(message, reason=self.reason)


class TokenMissing(TokenError):
    """No ``Authorization: Bearer`` credentials."""

    reason = "TOKEN_MISSING"


class TokenMalformed(TokenError):
    """Not a compact JWS with a JSON header and payload."""

    reason = "TOKEN_MALFORMED"


class TokenAlgNotAllowed(TokenError):
    """The ``alg`` header is not on the allow-list."""

    reason = "TOKEN_ALG_NOT_ALLOWED"


class TokenTypInvalid(TokenError):
    """The ``typ`` header does not say ``at+jwt``."""

    reason = "TOKEN_TYP_INVALID"


class TokenKidUnknown(TokenError):
    """No key with the token's ``kid`` in the issuer's JWKS."""

    reason = "TOKEN_KID_UNKNOWN"


class TokenSignatureInvalid(TokenError):
    """The signature does not verify with the issuer's key."""

    reason = "TOKEN_SIGNATURE_INVALID"


class TokenIssuerInvalid(TokenError):
    """``iss`` is not the expected issuer."""

    reason = "TOKEN_ISSUER_INVALID"


class TokenAudienceInvalid(TokenError):
    """``aud`` does not name this service."""

    reason = "TOKEN_AUDIENCE_INVALID"


class TokenExpired(TokenError):
    """``exp`` has passed."""

    reason = "TOKEN_EXPIRED"


class TokenNotYetValid(TokenError):
    """``nbf`` or ``iat`` lies in the future."""

    reason = "TOKEN_NOT_YET_VALID"


class TokenClaimsInvalid(TokenError):
    """A required claim is missing or has the wrong type or value."""

    reason = "TOKEN_CLAIMS_INVALID"


class TokenRevoked(TokenError):
    """The token's ``jti`` was revoked at the hub (RFC 7009)."""

    reason = "TOKEN_REVOKED"


class TokenClientDisabled(TokenError):
    """The token's client has been disabled at the hub since the token was issued."""

    reason = "TOKEN_CLIENT_DISABLED"


class JwksUnavailable(TokenError):
    """The issuer's JWKS could not be fetched or read."""

    reason = "JWKS_UNAVAILABLE"


class ActorChainTooLong(TokenError):
    """The token's chain of actors is longer than this hub accepts (or would extend)."""

    reason = "ACTOR_CHAIN_TOO_LONG"


class FederationLoop(TokenError):
    """This hub is already an actor of the token: the call went round in a loop."""

    reason = "FEDERATION_LOOP"


class JwksCache:
    """The issuer's signing keys by ``kid``, fetched from one fixed JWKS URL."""

    def __init__(
        self,
        url: str,
        http: httpx.AsyncClient,
        *,
        timeout_s: float = 5.0,
        min_refresh_interval_s: float = 60.0,
        retry_after_failure_s: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._http = http
        self._timeout = httpx.Timeout(timeout_s)
        self._min_refresh_interval_s = min_refresh_interval_s
        self._retry_after_failure_s = retry_after_failure_s
        self._clock = clock
        self._keys: dict[str, Key] = {}
        self._last_fetch: float | None = None
        # After a failed fetch (the issuer starting, restarting, unreachable) the next one
        # may come after retry_after_failure_s, not the whole interval.
        self._failed = False
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> Key:
        """The key with ``kid``; refetch at most once per interval, whatever kids are asked for."""
        key = self._keys.get(kid)
        if key is not None:
            return key
        async with self._lock:
            # Another request may have refreshed while this one waited.
            key = self._keys.get(kid)
            if key is None and self._may_refresh():
                await self._refresh()
                key = self._keys.get(kid)
        if key is None:
            raise TokenKidUnknown("no key with that kid in the issuer's JWKS")
        return key

    def _may_refresh(self) -> bool:
        if self._last_fetch is None:
            return True
        interval = self._min_refresh_interval_s
        if self._failed:
            interval = min(interval, self._retry_after_failure_s)
        return self._clock() - self._last_fetch >= interval

    async def _refresh(self) -> None:
        # Count the attempt even if it fails, so a failing issuer is not hammered.
        self._last_fetch = self._clock()
        try:
            response = await self._http.get(self.url, timeout=self._timeout, follow_redirects=False)
            response.raise_for_status()
            document = response.json()
            keys = _signing_keys(document)
        except (httpx.HTTPError, ValueError, JwksUnavailable) as error:
            self._failed = True
            if isinstance(error, JwksUnavailable):
                raise
            raise JwksUnavailable("the issuer's JWKS could not be fetched") from error
        self._failed = False
        self._keys = keys


def _signing_keys(document: object) -> dict[str, Key]:
    """The public signing keys of a JWKS document, by ``kid``; others are skipped."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksUnavailable("the issuer's JWKS is not a key set")
    keys: dict[str, Key] = {}
    for entry in document["keys"][:_MAX_JWKS_KEYS]:
        if not isinstance(entry, dict):
            continue
        kid, kty = entry.get("kid"), entry.get("kty")
        if not isinstance(kid, str) or not isinstance(kty, str) or kty not in _KEY_TYPES:
            continue
        if entry.get("use", "sig") != "sig" or "d" in entry:
            continue
        try:
            keys[kid] = import_key(entry, kty)  # type: ignore[call-overload]
        except (JoseError, ValueError, TypeError):
            continue
    return keys


class TokenVerifier:
    """Verifies RFC 9068 access tokens from one issuer for one audience.

    A caller sends the same token many times (a hub reuses the token it minted for a
    source for up to ``TOKEN_REUSE_S``): the signature of a token, byte for byte, is
    checked once per key, and the verifier remembers which key object it checked out
    with. Everything else (header, key lookup, claims, expiry) is checked on every
    call, and a key the JWKS no longer holds, or holds anew, means checking again.
    """

    def __init__(
        self,
        issuer: str,
        audience: str,
        jwks: JwksCache,
        *,
        leeway_s: int = 30,
        algorithms: Collection[str] = ("ES256", "RS256", "EdDSA"),
    ) -> None:
        unsafe = _FORBIDDEN_ALGORITHMS.intersection(algorithms) | {
            a for a in algorithms if a.upper().startswith("HS")
        }
        if unsafe:
            raise ValueError(f"algorithms not allowed for access tokens: {sorted(unsafe)}")
        self.issuer = issuer
        self.audience = audience
        self.jwks = jwks
        self.leeway_s = leeway_s
        self.algorithms = frozenset(algorithms)
        # token -> the key its signature verified with (dicts keep insertion order)
        self._verified: dict[str, Key] = {}

    async def verify(self, token: str) -> Caller:
        """The caller the token speaks for, or raise a ``TokenError``."""
        signed = _extract(token)
        header = signed.headers()
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise TokenAlgNotAllowed("token algorithm is not allowed")
        typ = header.get("typ")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            raise TokenTypInvalid("token type must be at+jwt")
        if "crit" in header or "b64" in header:
            raise TokenMalformed("token uses JWS extensions this service does not support")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenKidUnknown("token header names no kid")
        key = await self.jwks.key(kid)
        if self._verified.get(token) is not key:
            self._check_signature(signed, key, alg)
            if len(self._verified) >= VERIFIED_SIGNATURES_KEPT:
                del self._verified[next(iter(self._verified))]
            self._verified[token] = key
        claims = _claims(signed.payload)
        self._check_claims(claims)
        return _caller(claims)

    def _check_signature(self, signed: jws.CompactSignature, key: Key, alg: str) -> None:
        key_alg = key.get("alg")
        if key_alg is not None and key_alg != alg:
            raise TokenSignatureInvalid("the key is not for the token's algorithm")
        # Only the header's own (allow-listed) algorithm, so the key type decides nothing.
        registry = jws.JWSRegistry(algorithms=[alg], strict_check_header=False)
        try:
            valid = jws.validate_compact(signed, key, registry=registry)
        except JoseError as error:
            raise TokenSignatureInvalid("the token's signature does not verify") from error
        if not valid:
            raise TokenSignatureInvalid("the token's signature does not verify")

    def _check_claims(self, claims: dict[str, Any]) -> None:
        missing = [name for name in REQUIRED_CLAIMS if claims.get(name) is None]
        if missing:
            raise TokenClaimsInvalid(f"token lacks required claims: {', '.join(missing)}")
        if claims["iss"] != self.issuer:
            # The expected issuer is public (it is in the hub's metadata) and naming it tells
            # an operator which hub settings to mint tokens with.
            raise TokenIssuerInvalid(
                f"token was issued by {str(claims['iss'])[:200]!r}, not by the expected"
                f" issuer {self.issuer!r}"
            )
        audience = claims["aud"]
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
            raise TokenAudienceInvalid("token audience is not a string or list of strings")
        if self.audience not in audiences:
            raise TokenAudienceInvalid("token is not meant for this service")
        now = time.time()
        exp = _numeric_date(claims, "exp")
        if exp <= now - self.leeway_s:
            raise TokenExpired("token has expired")
        if "nbf" in claims and _numeric_date(claims, "nbf") > now + self.leeway_s:
            raise TokenNotYetValid("token is not valid yet")
        if _numeric_date(claims, "iat") > now + self.leeway_s:
            raise TokenNotYetValid("token was issued in the future")


def _extract(token: str) -> jws.CompactSignature:
    """The compact JWS parts of ``token``, unverified."""
    try:
        signed = jws.extract_compact(token.encode("ascii"))
    except (JoseError, ValueError, TypeError, UnicodeError) as error:
        raise TokenMalformed("token is not a compact JWS") from error
    if not isinstance(signed.headers(), dict):
        raise TokenMalformed("token header is not a JSON object")
    return signed


def _claims(payload: bytes | None) -> dict[str, Any]:
    """The token's payload as a JSON object."""
    try:
        claims = json.loads(payload or b"")
    except ValueError as error:
        raise TokenMalformed("token payload is not JSON") from error
    if not isinstance(claims, dict):
        raise TokenMalformed("token payload is not a JSON object")
    return claims


def _numeric_date(claims: Mapping[str, Any], name: str) -> float:
    """A NumericDate claim (seconds since the epoch)."""
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TokenClaimsInvalid(f"claim {name} is not a NumericDate")
    return float(value)


def _string(claims: Mapping[str, Any], name: str) -> str:
    """A non-empty string claim."""
    value = claims[name]
    if not isinstance(value, str) or not value:
        raise TokenClaimsInvalid(f"claim {name} is not a non-empty string")
    return value


def _caller(claims: Mapping[str, Any]) -> Caller:
    """The ``Caller`` named by verified claims."""
    try:
        org_kind = OrgKind(_string(claims, "org_kind"))
    except ValueError as error:
        raise TokenClaimsInvalid("claim org_kind is not a known organisation kind") from error
    actors = _actors(claims)
    actor = actors[0] if actors else None
    district: str | None = None
    if claims.get("district") is not None:
        district = _string(claims, "district")
    return Caller(
        org=_string(claims, "org"),
        org_kind=org_kind,
        scopes=frozenset(_string(claims, "scope").split()),
        client_id=_string(claims, "client_id"),
        subject=_string(claims, "sub"),
        actor=actor,
        district=district,
        token_id=_string(claims, "jti"),
        expires_at=_numeric_date(claims, "exp"),
        actors=actors,
        issuer=claims["iss"] if isinstance(claims.get("iss"), str) else None,
    )


def _actors(claims: Mapping[str, Any]) -> tuple[str, ...]:
    """The chain of actors of nested ``act`` claims, the latest first (RFC 8693 §4.1)."""
    actors: list[str] = []
    act = claims.get("act")
    while act is not None:
        if not isinstance(act, dict) or not isinstance(act.get("sub"), str) or not act["sub"]:
            raise TokenClaimsInvalid("claim act is not an object with a sub")
        if len(actors) == MAX_ACT_DEPTH:
            raise ActorChainTooLong(f"the chain of actors is longer than {MAX_ACT_DEPTH}")
        actors.append(act["sub"])
        act = act.get("act")
    return tuple(actors)


def actor_claim(actors: Collection[str]) -> dict[str, Any] | None:
    """The nested ``act`` claim naming ``actors``, the latest first; ``None`` for none."""
    claim: dict[str, Any] | None = None
    for actor in reversed(list(actors)):
        claim = {"sub": actor} if claim is None else {"sub": actor, "act": claim}
    return claim


class Refusals(Protocol):
    """What a token check asks of a revocation list (``policies.revocations.RevocationList``)."""

    def check(self, caller: Caller) -> None:
        """Raise ``TokenRevoked`` or ``TokenClientDisabled`` if the caller's token is refused."""
        ...


class BearerAuthenticator:
    """The ``Authenticator`` for ``Authorization: Bearer <access token>``."""

    def __init__(self, verifier: TokenVerifier, revocations: Refusals | None = None) -> None:
        self.verifier = verifier
        self.revocations = revocations

    async def authenticate(self, authorization: str | None) -> Caller:
        """The caller named by the bearer token, or raise a ``TokenError``."""
        if not authorization:
            raise TokenMissing("no Authorization header")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise TokenMissing("Authorization is not a Bearer token")
        caller = await self.verifier.verify(token)
        if self.revocations is not None:
            self.revocations.check(caller)
        return caller
