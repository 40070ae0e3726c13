"""A real hub (OAuth server, federation) over a database built by its migrations."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.app import MIGRATIONS, create_app
from hub.auth.service import create_client
from hub.sealed import new_key
from hub.settings import HubSettings
from schema.enums import OrgKind
from schema.runtime.db import Database
from tests.conftest import DatabaseUnderTest, GraphQLClient, ServerThread, free_port, migrate
from tests.hub.federation.fake_source import FakeSource

DISTRICT = "110105"
ALL_READ = (
    "incidents:read resources:read shelters:read volunteers:read alerts:read risk:verify admin"
)


@dataclass
class RunningHub:
    url: str
    settings: HubSettings
    server: ServerThread
    db_url: str
    clients: list[GraphQLClient] = field(default_factory=list)

    async def client_token(
        self,
        *,
        org: str,
        kind: OrgKind,
        scopes: str,
        district: str | None = DISTRICT,
        resource: str | None = None,
    ) -> str:
        db = Database(self.db_url)
        try:
            async with db.transaction() as session:
                client, secret = await create_client(
                    session, org=org, org_kind=kind, district=district, scopes=scopes
                )
        finally:
            await db.dispose()
        async with httpx.AsyncClient(timeout=30.0) as http:
            response = await http.post(
                f"{self.url}/oauth/token",
                data={
                    "grant_type": "client_credentials",
                    "scope": scopes,
                    **({"resource": resource} if resource else {}),
                },
                auth=(client.client_id, secret),
            )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    async def stop(self) -> None:
        for client in self.clients:
            await client.aclose()
        self.clients.clear()
        await asyncio.to_thread(self.server.stop)

    async def graphql(
        self,
        *,
        org: str = "110105900001",
        kind: OrgKind = OrgKind.DEPARTMENT,
        scopes: str = ALL_READ,
    ) -> GraphQLClient:
        client = GraphQLClient(self.url, await self.client_token(org=org, kind=kind, scopes=scopes))
        self.clients.append(client)
        return client


def hub_settings(
    db_url: str, port: int, sources_file: Path | None, **overrides: Any
) -> HubSettings:
    return HubSettings(
        database_url=db_url,
        port=port,
        issuer=overrides.pop("issuer", f"http://127.0.0.1:{port}"),
        sources_file=sources_file,
        # Generous: the suite shares two cores with browsers and many servers; the tests
        # of timeouts set their own.
        source_timeout_s=overrides.pop("source_timeout_s", 20.0),
        deadline_s=overrides.pop("deadline_s", 30.0),
        # Property tests page as fast as the hub answers; throttling has its own tests.
        graphql_rate_per_client=overrides.pop("graphql_rate_per_client", 10_000),
        health_interval_s=overrides.pop("health_interval_s", 0.5),
        # production keeps signing keys and webhook secrets encrypted, so it needs a key
        secrets_key=overrides.pop(
            "secrets_key", new_key() if overrides.get("environment") == "production" else None
        ),
        **overrides,
    )


async def hub_over(
    db_url: str, folder: Path, sources: dict[str, str], **overrides: Any
) -> RunningHub:
    """Start a hub over a migrated database, federating ``sources`` ({id: url})."""
    sources_file = folder / f"sources-{uuid.uuid4().hex[:8]}.toml"
    sources_file.write_text(
        "".join(f'[[sources]]\nid = "{sid}"\nurl = "{url}"\n\n' for sid, url in sources.items()),
        "utf-8",
    )
    port = free_port()
    settings = hub_settings(db_url, port, sources_file, **overrides)
    server = ServerThread(create_app(settings), port).start()
    return RunningHub(server.url, settings, server, db_url)


async def wait_sources_ok(client: GraphQLClient, count: int) -> None:
    """Wait (up to 30 s) until ``count`` of the hub's sources answer its health check."""
    deadline = time.monotonic() + 30.0
    while True:
        listed = (await client.data("{ sources { id status } }"))["sources"]
        if sum(s["status"] == "ok" for s in listed) >= count:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"sources not ok: {listed}")
        await asyncio.sleep(0.1)


@pytest.fixture
async def start_hub(
    fresh_database: DatabaseUnderTest, tmp_path: Path
) -> AsyncIterator[Callable[..., Any]]:
    """Start a hub federating the given sources ({id: url}); stopped after the test."""
    database = fresh_database
    await migrate(MIGRATIONS, database.url)
    hubs: list[RunningHub] = []

    async def start(sources: dict[str, str], **overrides: Any) -> RunningHub:
        hub = await hub_over(database.url, tmp_path, sources, **overrides)
        hubs.append(hub)
        return hub

    yield start
    for hub in hubs:
        await hub.stop()


@pytest.fixture
def sources() -> Iterator[Callable[..., dict[str, str]]]:
    started: list[ServerThread] = []

    def start(*fakes: FakeSource) -> dict[str, str]:
        urls = {}
        for fake in fakes:
            server = ServerThread(fake.app()).start()
            started.append(server)
            urls[fake.source_id] = server.url
        return urls

    yield start
    for server in started:
        server.stop()
