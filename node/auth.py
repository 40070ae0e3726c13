"""Who is calling the node: the hub's OAuth access tokens, or (development only) static tokens."""

from __future__ import annotations

import logging
import re

import httpx

from node.settings import NodeSettings
from policies.caller import Authenticator, Caller
from policies.revocations import RevocationPoller, revocation_poller
from policies.static import StaticTokenAuthenticator, bearer_token
from policies.tokens import BearerAuthenticator, JwksCache, TokenError, TokenVerifier

__all__ = [
    "NodeAuthenticator",
    "StaticTokenAuthenticator",
    "node_authenticator",
    "node_revocation_poller",
]

log = logging.getLogger("linli.node.auth")

# Three base64url segments: what a compact JWS looks like before it is checked.
_JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


class NodeAuthenticator:
    """Access tokens first for anything shaped like a JWT; static tokens, if any, otherwise."""

    def __init__(
        self, bearer: BearerAuthenticator, static: StaticTokenAuthenticator | None = None
    ) -> None:
        self.bearer = bearer
        self.static = static

    async def authenticate(self, authorization: str | None) -> Caller:
        """The caller named by the presented token, or raise ``Unauthenticated``."""
        token = bearer_token(authorization)
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


def node_revocation_poller(
    settings: NodeSettings, http: httpx.AsyncClient
) -> RevocationPoller | None:
    """The poller of the hub's revocation list, if the node checks the hub's tokens."""
    return revocation_poller(
        issuer=settings.token_issuer,
        jwks_url=settings.jwks_url,
        url=settings.revocations_url,
        interval_s=settings.revocation_poll_s,
        http=http,
    )


def node_authenticator(
    settings: NodeSettings, http: httpx.AsyncClient, poller: RevocationPoller | None = None
) -> Authenticator:
    """The authenticator the settings call for; ``poller``'s list refuses revoked tokens."""
    static = StaticTokenAuthenticator(settings.trusted_callers, district=settings.district)
    if settings.trusted_callers:
        log.warning(
            "node %s accepts %d statically trusted caller(s) by bearer token: development and"
            " tests only, never production",
            settings.source_id,
            len(static),
        )
    elif not settings.verifies_tokens:
        log.warning(
            "node %s neither verifies tokens (set LINLI_TOKEN_ISSUER and LINLI_JWKS_URL) nor"
            " trusts static callers (LINLI_TRUSTED_CALLERS): it will refuse every caller",
            settings.source_id,
        )
    if settings.token_issuer is None or settings.jwks_url is None:
        return static
    verifier = TokenVerifier(
        settings.token_issuer,
        audience=settings.source_id,
        jwks=poller.jwks if poller is not None else JwksCache(settings.jwks_url, http),
    )
    bearer = BearerAuthenticator(verifier, poller.revocations if poller is not None else None)
    return NodeAuthenticator(bearer, static if len(static) else None)
