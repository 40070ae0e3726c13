"""Access tokens the hub signs (RFC 9068), tokens it mints for sources, and its own caller check."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError

from hub.auth.keys import KeyRing
from hub.auth.revocations import HubRevocations
from hub.auth.scopes import format_scopes
from hub.auth.trusted import TrustedRevocations
from hub.settings import HubSettings
from policies.caller import Caller
from policies.tokens import (
    ActorChainTooLong,
    BearerAuthenticator,
    FederationLoop,
    JwksCache,
    TokenError,
    TokenExpired,
    TokenIssuerInvalid,
    TokenVerifier,
    actor_claim,
)
from schema.enums import OrgKind

__all__ = [
    "HubAuthenticator",
    "IssuedToken",
    "TokenIssuer",
    "VerifiedToken",
    "file_jwks_transport",
    "hub_authenticator",
    "jwks_transport",
    "mint_for_source",
    "own_jwks",
    "trusted_verifiers",
    "verify_own_token",
]

JWKS_PATH = "/.well-known/jwks.json"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A signed access token and what the token response says about it."""

    access_token: str
    jti: str
    scope: str
    expires_in: int
    claims: Mapping[str, Any]


class TokenIssuer:
    """Signs access tokens with the hub's current key, held in memory (no database per token)."""

    def __init__(self, settings: HubSettings, keys: KeyRing) -> None:
        self.settings = settings
        self.keys = keys

    def issue(
        self,
        *,
        client_id: str,
        org: str,
        org_kind: OrgKind,
        district: str | None,
        scopes: Iterable[str],
        audience: str | None = None,
        subject: str | None = None,
        actor: Mapping[str, Any] | None = None,
        ttl_s: int | None = None,
        session_id: str | None = None,
        name: str | None = None,
    ) -> IssuedToken:
        """An RFC 9068 JWT for ``audience`` (the hub itself by default), signed ES256."""
        key = self.keys.signing_key
        now = int(time.time())
        ttl = self.settings.access_token_ttl_s if ttl_s is None else ttl_s
        jti = secrets.token_urlsafe(18)
        scope = format_scopes(scopes)
        claims: dict[str, Any] = {
            "iss": self.settings.issuer,
            "sub": subject or client_id,
            "aud": audience or self.settings.hub_id,
            "exp": now + ttl,
            "iat": now,
            "nbf": now,
            "jti": jti,
            "client_id": client_id,
            "scope": scope,
            "org": org,
            "org_kind": org_kind.value,
        }
        if district is not None:
            claims["district"] = district
        if actor is not None:
            claims["act"] = dict(actor)
        if session_id is not None:
            claims["sid"] = session_id  # a person's sign-in session (sign-out ends it)
        if name is not None:
            claims["name"] = name  # the person's display name (OpenID Connect's claim)
        header = {"typ": "at+jwt", "alg": "ES256", "kid": key.kid}
        token = jwt.encode(header, claims, key, algorithms=["ES256"])
        return IssuedToken(token, jti, scope, ttl, claims)

    async def mint_for_source(
        self,
        caller: Caller,
        audience: str,
        *,
        ttl_s: int = 60,
        scopes: Iterable[str] | None = None,
    ) -> str:
        """A short-lived token for one source, naming ``caller`` and the hub as actor (RFC 8693).

        ``scopes`` may narrow the caller's scopes, never widen them.
        """
        if not audience or audience == self.settings.hub_id:
            raise ValueError("a source token needs the source's own audience")
        if ttl_s <= 0:
            raise ValueError("ttl_s must be positive")
        granted = caller.scopes if scopes is None else frozenset(scopes)
        if not granted <= caller.scopes:
            raise ValueError(f"scopes beyond the caller's: {sorted(granted - caller.scopes)}")
        # RFC 8693 §4.1: the prior actors nest inside this hub, the whole chain of them.
        prior = caller.actors or ((caller.actor,) if caller.actor else ())
        chain = (self.settings.hub_id, *prior)
        if len(chain) > self.settings.max_actor_chain:
            raise ActorChainTooLong(
                f"acting for this caller would make a chain of {len(chain)} actors; this hub"
                f" mints at most {self.settings.max_actor_chain}"
            )
        await self.keys.refresh_if_stale()
        actor = actor_claim(chain)
        return self.issue(
            client_id=caller.client_id,
            org=caller.org,
            org_kind=caller.org_kind,
            district=caller.district,
            scopes=granted,
            audience=audience,
            subject=caller.subject,
            actor=actor,
            ttl_s=min(ttl_s, self.settings.access_token_ttl_s),
        ).access_token


async def mint_for_source(
    issuer: TokenIssuer, caller: Caller, audience: str, *, ttl_s: int = 60
) -> str:
    """A token for the source ``audience`` on ``caller``'s behalf (see ``TokenIssuer``)."""
    return await issuer.mint_for_source(caller, audience, ttl_s=ttl_s)


def jwks_transport(keys: KeyRing) -> httpx.MockTransport:
    """An HTTP transport that answers every request with the hub's JWKS, from memory."""

    async def serve(request: httpx.Request) -> httpx.Response:
        await keys.refresh_if_stale()
        return httpx.Response(200, json=keys.jwks())

    return httpx.MockTransport(serve)


def own_jwks(settings: HubSettings, http: httpx.AsyncClient) -> JwksCache:
    """A ``JwksCache`` over the hub's own keys (``http`` uses ``jwks_transport``): no network."""
    # Keys change only by rotation, so an unknown kid may always look again (in memory).
    return JwksCache(settings.issuer + JWKS_PATH, http, min_refresh_interval_s=0.0)


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    """A token this hub signed, verified for its own audience, with its claims."""

    caller: Caller
    claims: Mapping[str, Any]


async def verify_own_token(
    token: str, *, settings: HubSettings, jwks: JwksCache
) -> VerifiedToken | None:
    """The token if this hub signed it and it has not expired, whatever its audience."""
    try:
        claims = json.loads(jws.extract_compact(token.encode("ascii")).payload or b"")
    except (JoseError, ValueError, TypeError, UnicodeError):
        return None
    if not isinstance(claims, dict):
        return None
    audience = claims.get("aud")
    if isinstance(audience, list):
        audience = next((a for a in audience if isinstance(a, str)), None)
    if not isinstance(audience, str):
        return None
    # The claimed audience only picks what to check against; every other check is the node's.
    verifier = TokenVerifier(settings.issuer, audience, jwks, leeway_s=0, algorithms=("ES256",))
    try:
        caller = await verifier.verify(token)
    except TokenError:
        return None
    return VerifiedToken(caller, claims)


class HubAuthenticator:
    """The hub's ``Authenticator``: its own tokens, for itself, not revoked, of a live client.

    Tokens of a trusted higher hub (``trusted``, by issuer) are accepted too, only for
    this hub's own audience, with their keys from that issuer's JWKS. Whoever signed it,
    a token whose chain of actors is longer than ``max_actor_chain`` is refused
    (``ACTOR_CHAIN_TOO_LONG``), and so is one that names this hub as an actor already
    (``FEDERATION_LOOP``): the call went round.

    Revocations and disabled clients are checked in memory (``HubRevocations``):
    no database read per request. A trusted issuer's tokens are checked against that
    issuer's own list (``trusted_revocations``, polled from it: ``hub.auth.trusted``).
    """

    def __init__(
        self,
        verifier: TokenVerifier,
        revocations: HubRevocations,
        *,
        hub_id: str = "",
        max_actor_chain: int = 3,
        trusted: Mapping[str, TokenVerifier] | None = None,
        trusted_revocations: TrustedRevocations | None = None,
    ) -> None:
        self.verifier = verifier
        self.revocations = revocations
        self.trusted_revocations = trusted_revocations or TrustedRevocations({})
        self.hub_id = hub_id
        self.max_actor_chain = max_actor_chain
        self._bearer = BearerAuthenticator(verifier)
        self._trusted = {
            issuer: BearerAuthenticator(trusted_verifier)
            for issuer, trusted_verifier in (trusted or {}).items()
        }

    async def authenticate(self, authorization: str | None) -> Caller:
        """The caller, or raise a ``policies.tokens.TokenError``."""
        claimed = _claimed_issuer(authorization)
        foreign = self._trusted.get(claimed or "")
        if foreign is not None and claimed != self.verifier.issuer:
            caller = await foreign.authenticate(authorization)
            self.trusted_revocations.check(caller)
        elif claimed is not None and claimed != self.verifier.issuer:
            # Checked before any key: an unknown issuer's kid means nothing here.
            raise TokenIssuerInvalid(
                f"token was issued by {claimed[:200]!r}, which is neither this hub"
                f" ({self.verifier.issuer!r}) nor an issuer it trusts"
            )
        else:
            caller = await self._bearer.authenticate(authorization)
            await self.revocations.check(caller)
        if self.hub_id and self.hub_id in caller.actors:
            raise FederationLoop(
                f"this hub ({self.hub_id}) already acted on this token: a loop through"
                f" {' < '.join(caller.actors)}"
            )
        if len(caller.actors) > self.max_actor_chain:
            raise ActorChainTooLong(
                f"the token names {len(caller.actors)} actors; this hub accepts at most"
                f" {self.max_actor_chain}"
            )
        return caller

    def still_valid(self, caller: Caller) -> None:
        """Raise a ``TokenError`` if the caller's token has since expired or been refused."""
        if caller.issuer is not None and caller.issuer != self.verifier.issuer:
            if caller.expires_at is not None and caller.expires_at <= time.time():
                raise TokenExpired("token has expired")
            self.trusted_revocations.check(caller)
            return
        self.revocations.still_valid(caller)


def _claimed_issuer(authorization: str | None) -> str | None:
    """The ``iss`` a bearer token claims, unverified: it only picks whose keys to check."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    try:
        claims = json.loads(jws.extract_compact(token.strip().encode("ascii")).payload or b"")
    except (JoseError, ValueError, TypeError, UnicodeError):
        return None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    return issuer if isinstance(issuer, str) else None


def file_jwks_transport(paths: Iterable[Path]) -> httpx.MockTransport:
    """An HTTP transport that answers ``file://<path>`` with the JWKS file, for listed paths."""
    listed = {str(path.resolve()): path for path in paths}

    async def serve(request: httpx.Request) -> httpx.Response:
        path = listed.get(request.url.path)
        if path is None:
            return httpx.Response(404)
        try:
            return httpx.Response(200, content=path.read_bytes())
        except OSError:
            return httpx.Response(404)

    return httpx.MockTransport(serve)


def trusted_verifiers(
    settings: HubSettings, http: httpx.AsyncClient, files: httpx.AsyncClient
) -> dict[str, TokenVerifier]:
    """A verifier per trusted issuer, for this hub's audience: JWKS over ``http`` or a file."""
    verifiers = {}
    for trusted in settings.trusted_issuers:
        if trusted.jwks_file is not None:
            jwks = JwksCache(f"file://{trusted.jwks_file.resolve()}", files)
        else:
            assert trusted.jwks_url is not None  # TrustedIssuer checks one of them is set
            jwks = JwksCache(trusted.jwks_url, http)
        verifiers[trusted.issuer] = TokenVerifier(
            trusted.issuer, settings.hub_id, jwks, algorithms=("ES256", "RS256", "EdDSA")
        )
    return verifiers


def hub_authenticator(
    settings: HubSettings,
    jwks: JwksCache,
    revocations: HubRevocations,
    trusted: Mapping[str, TokenVerifier] | None = None,
    trusted_revocations: TrustedRevocations | None = None,
) -> HubAuthenticator:
    """The check of callers of the hub itself: ``aud`` = the hub's id, keys from memory."""
    verifier = TokenVerifier(settings.issuer, settings.hub_id, jwks, algorithms=("ES256",))
    return HubAuthenticator(
        verifier,
        revocations,
        hub_id=settings.hub_id,
        max_actor_chain=settings.max_actor_chain,
        trusted=trusted,
        trusted_revocations=trusted_revocations,
    )
