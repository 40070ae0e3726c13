"""A real hub federating real adapter services: hub tokens, free ports, real HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.service import Adapter, create_adapter_app
from adapters.settings import AdapterServiceSettings
from adapters.store import MIGRATIONS as ADAPTER_MIGRATIONS
from hub.app import MIGRATIONS as HUB_MIGRATIONS
from schema.enums import OrgKind
from tests.adapters.conftest import DocumentServerState, document_app
from tests.conftest import DatabaseUnderTest, GraphQLClient, ServerThread, free_port, migrate
from tests.hub.federation.conftest import DISTRICT, RunningHub, hub_over

WAREHOUSE_OWNER = "110105000200"  # the department whose warehouse the inventory adapter reads
ALERT_OWNER = "110105000100"  # the department that runs the CAP adapter
DEPARTMENT = "110105400001"  # a district department reading through the hub
COMMUNITY = "110105001001"  # a community that is no neighbour of either owner


@dataclass
class AdapterService:
    """One adapter service on its own port, checking the hub's tokens."""

    id: str
    url: str
    server: ServerThread
    settings: AdapterServiceSettings

    async def described(self) -> dict[str, Any]:
        """Its ``/.well-known/linli-node`` document."""
        async with httpx.AsyncClient(timeout=30.0) as http:
            response = await http.get(f"{self.url}/.well-known/linli-node")
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body


@dataclass
class Federated:
    """A hub and the adapter services it federates."""

    hub: RunningHub
    folder: Path
    ports: dict[str, int]
    services: dict[str, AdapterService] = field(default_factory=dict)

    async def start_adapter(
        self, adapter_id: str, adapter: Adapter, *, org_code: str, **overrides: Any
    ) -> AdapterService:
        """Serve ``adapter`` (polling on its own interval) over a migrated SQLite database."""
        folder = self.folder / adapter_id
        folder.mkdir(parents=True, exist_ok=True)
        database_url = f"sqlite+aiosqlite:///{folder / 'adapter.db'}"
        await migrate(ADAPTER_MIGRATIONS, database_url)
        settings = AdapterServiceSettings(
            database_url=database_url,
            adapter_id=adapter_id,
            adapter_name=f"接入 {adapter_id}",
            org_code=org_code,
            org_kind=OrgKind.DEPARTMENT,
            district=DISTRICT,
            public_url=f"http://127.0.0.1:{self.ports[adapter_id]}",
            token_issuer=self.hub.settings.issuer,
            jwks_url=f"{self.hub.url}/.well-known/jwks.json",
            **overrides,
        )
        app = create_adapter_app(settings, adapter, httpx.AsyncClient(timeout=30.0), poll=True)
        server = ServerThread(app, self.ports[adapter_id]).start()
        service = AdapterService(adapter_id, server.url, server, settings)
        self.services[adapter_id] = service
        return service

    async def reader(self, *, org: str, kind: OrgKind, scopes: str) -> GraphQLClient:
        """A GraphQL client of the hub holding a token the hub issued to ``org``."""
        return await self.hub.graphql(org=org, kind=kind, scopes=scopes)

    async def public(self) -> httpx.AsyncClient:
        """A client of the hub without any token."""
        return httpx.AsyncClient(base_url=self.hub.url, timeout=30.0)


@pytest.fixture
async def federated(
    fresh_database: DatabaseUnderTest, tmp_path: Path
) -> AsyncIterator[Callable[..., Any]]:
    """Start a hub (SQLite or PostgreSQL) that federates adapter services not started yet."""
    await migrate(HUB_MIGRATIONS, fresh_database.url)
    started: list[Federated] = []

    async def start(*adapter_ids: str) -> Federated:
        ports = {adapter_id: free_port() for adapter_id in adapter_ids}
        hub = await hub_over(
            fresh_database.url,
            tmp_path,
            {adapter_id: f"http://127.0.0.1:{port}" for adapter_id, port in ports.items()},
            health_interval_s=0.2,
            # The hub, the adapters and the test share one interpreter here, and a source's
            # first answer fetches the hub's keys and revocations: on a loaded machine that
            # can take seconds. Timeouts have their own tests (tests/hub/federation).
            source_timeout_s=15.0,
            deadline_s=20.0,
        )
        district = Federated(hub, tmp_path, ports)
        started.append(district)
        return district

    yield start
    for district in started:
        for service in district.services.values():
            await asyncio.to_thread(service.server.stop)
        await district.hub.stop()


@pytest.fixture
def upstream(serve: Callable[..., ServerThread]) -> tuple[DocumentServerState, str]:
    """A plain document server on a free port: (its state, its base URL)."""
    state = DocumentServerState()
    server = serve(document_app(state))
    return state, server.url


async def wait_sources_ok(client: GraphQLClient, *source_ids: str) -> None:
    """Until the hub has described and health-checked every one of ``source_ids``."""
    listed: list[dict[str, Any]] = []
    for _ in range(150):
        listed = (await client.data("{ sources { id status capabilities } }"))["sources"]
        ok = {s["id"] for s in listed if s["status"] == "ok" and s["capabilities"]}
        if ok >= set(source_ids):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"sources not ok: {listed}")


async def polls_after_change(state: DocumentServerState, path: str, *, polls: int = 3) -> None:
    """Until ``polls`` more fetches of ``path``: the poll that first read a change has stored it.

    Polls run one after another, so a fetch begun after the one that saw the change means
    that poll finished; the third (not the second) rules out a fetch racing the change.
    """
    before = len(state.statuses(path))
    deadline = time.monotonic() + 20
    while len(state.statuses(path)) < before + polls:
        if time.monotonic() > deadline:
            raise AssertionError(f"the adapter did not poll {path} again: {state.requests[-5:]}")
        await asyncio.sleep(0.05)
