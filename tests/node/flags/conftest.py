"""A real hub (its own database, OAuth clients, routing) and a real node that delivers to it.

``FlagRig`` builds both databases with their migrations (hub and node on the
same backend), registers the node's OAuth client at the hub, and starts the
node with the hub's URL fixed in advance, so a test can start the hub late (or
never) on that port: the node then finds nobody listening there.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from hub.app import MIGRATIONS as HUB_MIGRATIONS
from hub.auth.service import create_client
from node.app import MIGRATIONS as NODE_MIGRATIONS
from node.app import create_app as create_node
from node.settings import NodeSettings, TrustedCaller
from node.tables import FLAGS
from schema.enums import OrgKind
from schema.runtime.db import Database
from tests.conftest import (
    BACKENDS,
    GraphQLClient,
    ServerThread,
    _empty_database,
    free_port,
    migrate,
)
from tests.hub.federation.conftest import RunningHub, hub_settings
from tests.hub.flags.conftest import COMMUNITY, DEPT_GAS, FAST, ROUTING, eventually

DISTRICT = "110105"
STAFF_TOKEN = "flag-staff-token-0123456789abcdef"  # static: usable while the hub is down
READER_TOKEN = "flag-reader-token-0123456789abcdef"
FAST_NODE = {
    "flag_timeout_s": 2.0,
    "flag_retry_base_s": 0.1,
    "flag_retry_max_s": 0.8,
    "flag_poll_s": 0.5,
}
RAISE = """mutation ($i: RiskFlagCreateInput!) { raiseRiskFlag(input: $i) { id version status } }"""


def flag_input(n: int = 1, *, category: str = "gas_leak") -> dict[str, Any]:
    return {
        "category": category,
        "description": f"燃气味 #{n} Gas smell in building {n}",
        "location": {"coordinates": [116.4435, 39.9087]},
        "address": f"建外街道某社区{n}号楼",
        "estimatedSeverity": "III",
    }


@dataclass
class FlagRig:
    """Hub and node databases, the node's hub client, and the servers once started."""

    backend: str
    folder: Path
    hub_db_url: str
    node_db_url: str
    hub_port: int = field(default_factory=free_port)
    node_port: int = field(default_factory=free_port)
    client_id: str = ""
    client_secret: str = ""
    hub: RunningHub | None = None
    node: ServerThread | None = None
    node_settings: NodeSettings | None = None
    clients: list[GraphQLClient] = field(default_factory=list)

    @property
    def hub_url(self) -> str:
        return f"http://127.0.0.1:{self.hub_port}"

    @property
    def node_url(self) -> str:
        return f"http://127.0.0.1:{self.node_port}"

    async def register_node_client(self, scopes: str = "risk:flag") -> None:
        """The community's OAuth client at the hub, which the node delivers with."""
        db = Database(self.hub_db_url)
        try:
            async with db.transaction() as session:
                client, secret = await create_client(
                    session, org=COMMUNITY, org_kind=OrgKind.COMMUNITY, district=DISTRICT,
                    scopes=scopes,
                )  # fmt: skip
        finally:
            await db.dispose()
        self.client_id, self.client_secret = client.client_id, secret

    async def start_hub(self, **overrides: Any) -> RunningHub:
        """The real hub on ``hub_port``, federating the node (its updates go there)."""
        sources = self.folder / f"sources-{uuid.uuid4().hex[:6]}.toml"
        sources.write_text(f'[[sources]]\nid = "{COMMUNITY}"\nurl = "{self.node_url}"\n', "utf-8")
        routing = self.folder / "routing.toml"
        routing.write_text(ROUTING, "utf-8")
        settings = hub_settings(
            self.hub_db_url, self.hub_port, sources, **{**FAST, "routing_file": routing,
                                                        **overrides},
        )  # fmt: skip
        from hub.app import create_app as create_hub

        server = await asyncio.to_thread(ServerThread(create_hub(settings), self.hub_port).start)
        self.hub = RunningHub(server.url, settings, server, self.hub_db_url)
        return self.hub

    async def stop_hub(self) -> None:
        if self.hub is not None:
            await self.hub.stop()
            self.hub = None

    def start_node(
        self, *, deliver: bool = True, callers: Sequence[TrustedCaller] = (), **overrides: Any
    ) -> ServerThread:
        """The node, trusting the hub's tokens and (development) static staff tokens.

        ``callers``: more static tokens besides the two staff ones.
        """
        hub = (
            {
                "hub_url": self.hub_url,
                "hub_client_id": self.client_id,
                "hub_client_secret": self.client_secret,
            }
            if deliver
            else {}
        )
        settings = NodeSettings(
            database_url=self.node_db_url,
            org_code=COMMUNITY,
            org_name="建外某社区",
            district=DISTRICT,
            token_issuer=self.hub_url,
            jwks_url=f"{self.hub_url}/.well-known/jwks.json",
            trusted_callers=[
                TrustedCaller(
                    token=STAFF_TOKEN, org=COMMUNITY, scopes=["risk:flag", "incidents:read"],
                    client_id="flag-staff",
                ),
                TrustedCaller(
                    token=READER_TOKEN, org=COMMUNITY, scopes=["incidents:read"],
                    client_id="flag-reader",
                ),
                *callers,
            ],
            **{**FAST_NODE, **hub, **overrides},
        )  # fmt: skip
        self.node_settings = settings
        self.node = ServerThread(create_node(settings), self.node_port).start()
        return self.node

    async def stop_node(self) -> None:
        if self.node is not None:
            await asyncio.to_thread(self.node.stop)
            self.node = None

    def client(self, token: str | None) -> GraphQLClient:
        client = GraphQLClient(self.node_url, token)
        self.clients.append(client)
        return client

    def staff(self) -> GraphQLClient:
        return self.client(STAFF_TOKEN)

    async def raise_flags(self, count: int, start: int = 1) -> list[str]:
        staff = self.staff()
        ids = []
        for n in range(start, start + count):
            data = await staff.data(RAISE, {"i": flag_input(n)})
            ids.append(data["raiseRiskFlag"]["id"])
        return ids

    async def node_sql(self, statement: str, **params: Any) -> list[Any]:
        return await _sql(self.node_db_url, statement, **params)

    async def hub_sql(self, statement: str, **params: Any) -> list[Any]:
        return await _sql(self.hub_db_url, statement, **params)

    async def outbox(self) -> list[Any]:
        """The node's outbox rows in id order."""
        db = Database(self.node_db_url)
        try:
            async with db.sessions() as session:
                rows = await session.execute(sa.select(FLAGS.outbox).order_by(FLAGS.outbox.c.id))
                return list(rows.all())
        finally:
            await db.dispose()

    async def hub_raised_order(self) -> list[str]:
        """Flag ids in the order the hub received them (its event sequence)."""
        rows = await self.hub_sql(
            "SELECT flag_id FROM flag_events WHERE type = 'flag.raised' ORDER BY seq"
        )
        return [r[0] for r in rows]

    async def metrics(self) -> str:
        async with httpx.AsyncClient(timeout=30.0) as http:
            return (await http.get(f"{self.node_url}/metrics")).text

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()
        await self.stop_node()
        await self.stop_hub()


async def _sql(url: str, statement: str, **params: Any) -> list[Any]:
    db = Database(url)
    try:
        async with db.transaction() as session:
            result = await session.execute(sa.text(statement), params)
            return list(result.all()) if statement.lstrip().upper().startswith("SELECT") else []
    finally:
        await db.dispose()


def metric(text: str, name: str) -> float:
    """The value of one sample line of the Prometheus text ``text`` (0 when absent)."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


@asynccontextmanager
async def flag_rig(backend: str, folder: Path) -> AsyncIterator[FlagRig]:
    """Migrated hub and node databases on one backend, and the node's client at the hub."""
    (folder / "hub").mkdir()
    (folder / "node").mkdir()
    async with (
        _empty_database(backend, folder / "hub") as hub_db,
        _empty_database(backend, folder / "node") as node_db,
    ):
        await migrate(HUB_MIGRATIONS, hub_db.url)
        await migrate(NODE_MIGRATIONS, node_db.url)
        built = FlagRig(backend, folder, hub_db.url, node_db.url)
        await built.register_node_client()
        try:
            yield built
        finally:
            await built.close()


@pytest.fixture(params=BACKENDS)
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FlagRig]:
    """A ``flag_rig`` on each backend."""
    async with flag_rig(request.param, tmp_path) as built:
        yield built


__all__ = [
    "COMMUNITY",
    "DEPT_GAS",
    "DISTRICT",
    "RAISE",
    "READER_TOKEN",
    "STAFF_TOKEN",
    "FlagRig",
    "eventually",
    "flag_input",
    "flag_rig",
    "metric",
]
