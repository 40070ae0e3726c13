"""A real hub and two real community nodes (A requests, B provides), each on its own database.

The databases are built by the migrations on one backend; both nodes hold OAuth clients
at the hub (``risk:flag aid:request aid:respond``) and deliver their outboxes there; the
hub federates both and relays aid steps through its node outbox. Ports are fixed in
advance, so a node can be stopped and started again where the hub expects it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from hub.app import MIGRATIONS as HUB_MIGRATIONS
from hub.app import create_app as create_hub
from hub.auth.service import create_client
from node.app import MIGRATIONS as NODE_MIGRATIONS
from node.app import create_app as create_node
from node.settings import NodeSettings, TrustedCaller
from schema.enums import OrgKind
from schema.runtime.db import Database
from tests.conftest import GraphQLClient, ServerThread, _empty_database, free_port, migrate
from tests.hub.federation.conftest import RunningHub, hub_settings
from tests.hub.flags.conftest import FAST, ROUTING

__all__ = [
    "CONTACT",
    "DISTRICT",
    "NO_AID_TOKEN",
    "REQUEST_ONLY_TOKEN",
    "RESPOND_ONLY_TOKEN",
    "STAFF_TOKEN",
    "A",
    "AidRig",
    "B",
    "C",
    "aid_rig",
]

DISTRICT = "110105"
A = "110105001001"  # the requester
B = "110105002001"  # the provider
C = "110105003001"  # a third community (only with ``aid_rig(..., with_c=True)``)
STAFF_TOKEN = "aid-staff-token-0123456789abcdef"
NO_AID_TOKEN = "aid-no-scope-token-0123456789abcdef"  # reads only
REQUEST_ONLY_TOKEN = "aid-request-only-0123456789abcdef"
RESPOND_ONLY_TOKEN = "aid-respond-only-0123456789abcdef"
CONTACT = "王站长 138-0000-0000"
NODE_SCOPES = "risk:flag aid:request aid:respond"
FAST_NODE = {
    "flag_timeout_s": 2.0,
    "flag_retry_base_s": 0.1,
    "flag_retry_max_s": 0.8,
    "flag_poll_s": 0.3,
}


@dataclass
class Node:
    """One community node: its database, port, hub client, and server once started."""

    org: str
    name: str
    db_url: str
    port: int = field(default_factory=free_port)
    client_id: str = ""
    client_secret: str = ""
    server: ServerThread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class AidRig:
    """The hub and nodes A and B; start, stop and talk to them."""

    backend: str
    folder: Path
    hub_db_url: str
    nodes: dict[str, Node]
    hub_port: int = field(default_factory=free_port)
    hub: RunningHub | None = None
    clients: list[GraphQLClient] = field(default_factory=list)

    @property
    def hub_url(self) -> str:
        return f"http://127.0.0.1:{self.hub_port}"

    async def register_clients(self) -> None:
        db = Database(self.hub_db_url)
        try:
            async with db.transaction() as session:
                for node in self.nodes.values():
                    client, secret = await create_client(
                        session, org=node.org, org_kind=OrgKind.COMMUNITY, district=DISTRICT,
                        scopes=NODE_SCOPES,
                    )  # fmt: skip
                    node.client_id, node.client_secret = client.client_id, secret
        finally:
            await db.dispose()

    async def start_hub(self, **overrides: Any) -> RunningHub:
        sources = self.folder / f"sources-{uuid.uuid4().hex[:6]}.toml"
        sources.write_text(
            "".join(
                f'[[sources]]\nid = "{n.org}"\nurl = "{n.url}"\n\n' for n in self.nodes.values()
            ),
            "utf-8",
        )
        routing = self.folder / "routing.toml"
        routing.write_text(ROUTING, "utf-8")
        settings = hub_settings(
            self.hub_db_url,
            self.hub_port,
            sources,
            **{
                **FAST,
                "routing_file": routing,
                "allowed_outbound_hosts": ["127.0.0.1"],
                **overrides,
            },
        )
        server = await asyncio.to_thread(ServerThread(create_hub(settings), self.hub_port).start)
        self.hub = RunningHub(server.url, settings, server, self.hub_db_url)
        return self.hub

    def start_node(self, org: str) -> ServerThread:
        node = self.nodes[org]
        staff_scopes = ["aid:request", "aid:respond", "records:write", "resources:read",
                        "audit:read"]  # fmt: skip
        settings = NodeSettings(
            database_url=node.db_url,
            org_code=node.org,
            org_name=node.name,
            district=DISTRICT,
            neighbours=[o for o in self.nodes if o != org],
            token_issuer=self.hub_url,
            jwks_url=f"{self.hub_url}/.well-known/jwks.json",
            trusted_callers=[
                TrustedCaller(
                    token=STAFF_TOKEN,
                    org=node.org,
                    scopes=staff_scopes,
                    client_id=f"aid-staff-{org}",
                ),
                TrustedCaller(
                    token=NO_AID_TOKEN,
                    org=node.org,
                    scopes=["resources:read"],
                    client_id=f"no-aid-{org}",
                ),
                TrustedCaller(
                    token=REQUEST_ONLY_TOKEN,
                    org=node.org,
                    scopes=["aid:request"],
                    client_id=f"request-only-{org}",
                ),
                TrustedCaller(
                    token=RESPOND_ONLY_TOKEN,
                    org=node.org,
                    scopes=["aid:respond"],
                    client_id=f"respond-only-{org}",
                ),
            ],
            hub_url=self.hub_url,
            hub_client_id=node.client_id,
            hub_client_secret=node.client_secret,
            aid_contact=CONTACT,
            **FAST_NODE,
        )
        node.server = ServerThread(create_node(settings), node.port).start()
        return node.server

    async def stop_node(self, org: str) -> None:
        node = self.nodes[org]
        if node.server is not None:
            await asyncio.to_thread(node.server.stop)
            node.server = None

    def staff(self, org: str, token: str = STAFF_TOKEN) -> GraphQLClient:
        client = GraphQLClient(self.nodes[org].url, token)
        self.clients.append(client)
        return client

    async def node_sql(self, org: str, statement: str, **params: Any) -> list[Any]:
        return await _sql(self.nodes[org].db_url, statement, **params)

    async def hub_sql(self, statement: str, **params: Any) -> list[Any]:
        return await _sql(self.hub_db_url, statement, **params)

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()
        for org in self.nodes:
            await self.stop_node(org)
        if self.hub is not None:
            await self.hub.stop()
            self.hub = None


async def _sql(url: str, statement: str, **params: Any) -> list[Any]:
    db = Database(url)
    try:
        async with db.transaction() as session:
            result = await session.execute(sa.text(statement), params)
            return list(result.all()) if statement.lstrip().upper().startswith("SELECT") else []
    finally:
        await db.dispose()


@asynccontextmanager
async def aid_rig(backend: str, folder: Path, *, with_c: bool = False) -> AsyncIterator[AidRig]:
    """Migrated databases for the hub and nodes A and B (and C), and the nodes' hub clients."""
    names = ("hub", "a", "b", "c") if with_c else ("hub", "a", "b")
    async with AsyncExitStack() as stack:
        urls = {}
        for name in names:
            (folder / name).mkdir()
            urls[name] = (await stack.enter_async_context(
                _empty_database(backend, folder / name))).url  # fmt: skip
        await migrate(HUB_MIGRATIONS, urls["hub"])
        for name in names[1:]:
            await migrate(NODE_MIGRATIONS, urls[name])
        nodes = {A: Node(A, "建外某社区 A", urls["a"]), B: Node(B, "建外另一社区 B", urls["b"])}
        if with_c:
            nodes[C] = Node(C, "建外第三社区 C", urls["c"])
        rig = AidRig(backend, folder, urls["hub"], nodes)
        await rig.register_clients()
        try:
            yield rig
        finally:
            await rig.close()
