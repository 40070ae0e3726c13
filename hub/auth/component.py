"""The authorization server as one part of the hub app: built once in ``create_app``."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from fastapi import APIRouter

from hub.auth.endpoints import auth_router
from hub.auth.keys import KeyRing
from hub.auth.revocations import HubRevocations
from hub.auth.server import HubAuthorizationServer
from hub.auth.tokens import (
    HubAuthenticator,
    TokenIssuer,
    file_jwks_transport,
    hub_authenticator,
    jwks_transport,
    own_jwks,
    trusted_verifiers,
)
from hub.auth.trusted import TrustedRevocations, trusted_revocations
from hub.settings import HubSettings
from policies.tokens import JwksCache
from schema.runtime.db import Database
from schema.runtime.outbound import OutboundTransport

__all__ = ["HubAuth", "create_auth"]

log = logging.getLogger("linli.hub.auth")


@dataclass(frozen=True)
class HubAuth:
    """What the rest of the hub uses of the authorization server."""

    keys: KeyRing
    issuer: TokenIssuer
    jwks: JwksCache
    authenticator: HubAuthenticator
    revocations: HubRevocations
    server: HubAuthorizationServer
    router: APIRouter
    jwks_http: httpx.AsyncClient
    trusted_http: tuple[httpx.AsyncClient, ...] = ()
    trusted_revocations: TrustedRevocations | None = None

    @asynccontextmanager
    async def lifecycle(self) -> AsyncIterator[None]:
        """Load the signing keys (creating the first one) and keep revocations fresh."""
        try:
            await self.keys.load()
        except Exception:
            # Not fatal: readiness reports the database, and keys load on first use.
            log.exception("could not load the hub's signing keys at start-up")
        try:
            async with contextlib.AsyncExitStack() as stack:
                await stack.enter_async_context(self.revocations.lifecycle())
                if self.trusted_revocations is not None:
                    await stack.enter_async_context(self.trusted_revocations.lifecycle())
                yield
        finally:
            await self.jwks_http.aclose()
            for http in self.trusted_http:
                await http.aclose()


def _no_source(audience: str) -> bool:
    return False


def create_auth(
    settings: HubSettings, db: Database, *, known_source: Callable[[str], bool] = _no_source
) -> HubAuth:
    """The authorization server's objects; tokens are for the hub or a ``known_source``."""
    keys = KeyRing(db, settings)
    issuer = TokenIssuer(settings, keys)
    jwks_http = httpx.AsyncClient(transport=jwks_transport(keys))
    jwks = own_jwks(settings, jwks_http)
    server = HubAuthorizationServer(settings, issuer, known_source)
    revocations = HubRevocations(settings, db, keys)
    # Higher hubs' keys: over the outbound checks, or from a file; never the token's headers.
    trusted_http = httpx.AsyncClient(
        transport=OutboundTransport(settings.outbound_policy()), follow_redirects=False
    )
    trusted_files = httpx.AsyncClient(
        transport=file_jwks_transport(
            t.jwks_file for t in settings.trusted_issuers if t.jwks_file is not None
        )
    )
    trusted = trusted_verifiers(settings, trusted_http, trusted_files)
    # Their revocation lists: a change wakes open subscriptions as a local one does.
    followed = trusted_revocations(
        settings, trusted, trusted_http, on_change=revocations.list.notify
    )
    return HubAuth(
        keys=keys,
        issuer=issuer,
        jwks=jwks,
        authenticator=hub_authenticator(settings, jwks, revocations, trusted, followed),
        revocations=revocations,
        server=server,
        router=auth_router(settings, db, keys, jwks, server, revocations),
        jwks_http=jwks_http,
        trusted_http=(trusted_http, trusted_files),
        trusted_revocations=followed,
    )
