"""Who is calling the node: the hub's OAuth access tokens, or (development only) static tokens."""

from __future__ import annotations

import hmac
import logging
import re

import httpx

from node.settings import NodeSettings
from policies.caller import Authenticator, Caller
from policies.tokens import BearerAuthenticator, JwksCache, TokenError, TokenVerifier
from schema.errors import Unauthenticated

__all__ = ["NodeAuthenticator", "StaticTokenAuthenticator", "node_authenticator"]

log = logging.getLogger("linli.node.auth")

# Three base64url segments: what a compact JWS looks like before it is checked.
_JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


class StaticTokenAuthenticator:
    """Accepts only the bearer tokens listed in ``trusted_callers`` (development and tests)."""

    def __init__(self, settings: NodeSettings) -> None:
        self._callers = [
            (
                caller.token.encode(),
                Caller(
                    org=caller.org,
                    org_kind=caller.org_kind,
                    scopes=frozenset(caller.scopes),
                    client_id=caller.client_id,
                    subject=caller.client_id,
                    district=settings.district,
                ),
            )
            for caller in settings.trusted_callers
        ]
        log.warning(
            "node %s accepts %d statically trusted caller(s) by bearer token: development and"
            " tests only, never production",
            settings.source_id,
            len(self._callers),
        )

    def find(self, token: str) -> Caller | None:
        """The trusted caller whose token this is, if any."""
        presented = token.strip().encode()
        found: Caller | None = None
        for known, caller in self._callers:
            # Compare against every token, so timing says nothing about which matched.
            if hmac.compare_digest(known, presented):
                found = caller
        return found

    async def authenticate(self, authorization: str | None) -> Caller:
        """The trusted caller whose token is presented."""
        token = _bearer(authorization)
        caller = self.find(token)
        if caller is None:
            raise Unauthenticated("unknown bearer token", reason="TOKEN_UNKNOWN")
        return caller


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise Unauthenticated("missing Authorization header", reason="TOKEN_MISSING")
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("expected 'Authorization: Bearer <token>'", reason="TOKEN_MISSING")
    return token


class NodeAuthenticator:
    """Access tokens first for anything shaped like a JWT; static tokens, if any, otherwise."""

    def __init__(
        self, bearer: BearerAuthenticator, static: StaticTokenAuthenticator | None = None
    ) -> None:
        self.bearer = bearer
        self.static = static

    async def authenticate(self, authorization: str | None) -> Caller:
        """The caller named by the presented token, or raise ``Unauthenticated``."""
        token = _bearer(authorization)
        if self.static is None:
            return await self.bearer.authenticate(authorization)
        if _JWT_SHAPE.match(token):
            try:
                return await self.bearer.authenticate(authorization)
            except TokenError:
                caller = self.static.find(token)
                if caller is None:
                    raise
                return caller
        return await self.static.authenticate(authorization)


def node_authenticator(settings: NodeSettings, http: httpx.AsyncClient) -> Authenticator:
    """The authenticator the settings call for."""
    static = StaticTokenAuthenticator(settings) if settings.trusted_callers else None
    if settings.token_issuer is None or settings.jwks_url is None:
        return static or StaticTokenAuthenticator(settings)
    verifier = TokenVerifier(
        settings.token_issuer,
        audience=settings.source_id,
        jwks=JwksCache(settings.jwks_url, http),
    )
    return NodeAuthenticator(BearerAuthenticator(verifier), static)
