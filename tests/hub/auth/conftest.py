"""A real hub on a free port, over a database its migrations built, with registered clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from hub.app import MIGRATIONS, create_app
from hub.auth import HubAuth, create_auth, service
from hub.settings import HubSettings
from policies.tokens import JwksCache, TokenError, TokenVerifier
from schema.enums import OrgKind
from schema.runtime.db import Database
from tests.conftest import DatabaseUnderTest, ServerThread, free_port, migrate

HUB_ID = "hub-110105"
DISTRICT = "110105"
COMMUNITY = "110105001001"
NODE_A = "urn:linli:node:110105001001"
NODE_B = "urn:linli:node:110105001002"
TTL_S = 120


@dataclass(frozen=True)
class Credentials:
    client_id: str
    secret: str


@dataclass
class RunningHub:
    """A hub serving over HTTP, and a handle on its database from the tests' own loop."""

    url: str
    settings: HubSettings
    db: Database  # the tests' own engine on the hub database
    auth: HubAuth  # the same objects the app builds, on the tests' loop
    staff: Credentials  # a community client: resources:read records:write alerts:read
    department: Credentials  # a department client with admin
    http: httpx.AsyncClient
    database: DatabaseUnderTest

    @property
    def jwks_url(self) -> str:
        return f"{self.url}/.well-known/jwks.json"

    def verifier(self, audience: str) -> TokenVerifier:
        """The node's token check, configured for ``audience``, fetching the hub's JWKS over HTTP."""
        return TokenVerifier(self.settings.issuer, audience, JwksCache(self.jwks_url, self.http))

    async def add_client(
        self,
        *,
        org: str = COMMUNITY,
        org_kind: OrgKind = OrgKind.COMMUNITY,
        scopes: str = "resources:read",
        client_id: str | None = None,
    ) -> Credentials:
        async with self.db.transaction() as session:
            client, secret = await service.create_client(
                session,
                org=org,
                org_kind=org_kind,
                district=DISTRICT,
                scopes=scopes,
                client_id=client_id,
            )
            return Credentials(client.client_id, secret)

    async def token(
        self, who: Credentials, *, scope: str | None = None, **extra: str
    ) -> httpx.Response:
        form = {"grant_type": "client_credentials", **extra}
        if scope is not None:
            form["scope"] = scope
        return await self.http.post(
            f"{self.url}/oauth/token", data=form, auth=(who.client_id, who.secret)
        )

    async def access_token(self, who: Credentials, **kwargs: str) -> str:
        response = await self.token(who, **kwargs)
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token


async def refused_within(auth: HubAuth, token: str, bound_s: float) -> TokenError:
    """The refusal of ``token`` by another replica's check, which must come within ``bound_s``."""
    started = time.monotonic()
    while True:
        try:
            await auth.authenticator.authenticate(f"Bearer {token}")
        except TokenError as refused:
            return refused
        assert time.monotonic() - started < bound_s, f"still accepted after {bound_s} s"
        await asyncio.sleep(0.02)


# The targets the token endpoint issues tokens for, besides the hub: its registered sources.
# Nothing listens there; a source that is down is still a source.
SOURCE_IDS = (COMMUNITY, NODE_A, NODE_B, "adapter-cap-1")


def sources_file(folder: Path) -> Path:
    path = folder / "sources.toml"
    path.write_text(
        "".join(f'[[sources]]\nid = "{s}"\nurl = "http://127.0.0.1:9"\n' for s in SOURCE_IDS),
        "utf-8",
    )
    return path


def hub_settings(database_url: str, port: int, sources: Path | None = None) -> HubSettings:
    return HubSettings(
        database_url=database_url,
        sources_file=sources,
        hub_id=HUB_ID,
        district=DISTRICT,
        issuer=f"http://127.0.0.1:{port}",
        access_token_ttl_s=TTL_S,
        key_refresh_s=0.2,  # so a rotation made elsewhere reaches the server at once
        revocation_refresh_s=0.2,  # replicas (the tests' HubAuth is one) agree within 0.4 s
        log_json=False,
    )


@pytest.fixture(scope="module")
async def hub(
    database: DatabaseUnderTest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[RunningHub]:
    await migrate(MIGRATIONS, database.url)
    port = free_port()
    settings = hub_settings(database.url, port, sources_file(tmp_path_factory.mktemp("hub")))
    server = ServerThread(create_app(settings), port).start()
    db = Database(database.url)
    auth = create_auth(settings, db)
    await auth.keys.load()
    http = httpx.AsyncClient(timeout=30.0)
    running = RunningHub(
        server.url,
        settings,
        db,
        auth,
        Credentials("", ""),
        Credentials("", ""),
        http,
        database,
    )
    running.staff = await running.add_client(
        scopes="resources:read records:write alerts:read", client_id="yonganli-staff"
    )
    running.department = await running.add_client(
        org="110105-yjj",
        org_kind=OrgKind.DEPARTMENT,
        scopes="admin audit:read resources:read",
        client_id="district-emergency",
    )
    try:
        yield running
    finally:
        await http.aclose()
        await auth.jwks_http.aclose()
        await db.dispose()
        await asyncio.to_thread(server.stop)
