"""A city hub over district hubs over community nodes, all real servers, for the hierarchy tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.app import MIGRATIONS as HUB_MIGRATIONS
from hub.app import create_app as create_hub
from hub.auth.service import create_client
from node.app import MIGRATIONS as NODE_MIGRATIONS
from node.app import create_app as create_node
from node.settings import NodeSettings
from schema.enums import OrgKind
from schema.runtime.db import Database
from tests.conftest import GraphQLClient, ServerThread, _empty_database, free_port, migrate
from tests.hub.federation.conftest import ALL_READ, RunningHub, hub_settings, wait_sources_ok

__all__ = [
    "CITY",
    "DISTRICT_A",
    "DISTRICT_B",
    "NODES",
    "PROVINCE",
    "SUPERIOR_EXACT",
    "SUPERIOR_RECORDS",
    "Hierarchy",
    "hierarchy",
    "hub_id",
]

PROVINCE, CITY, DISTRICT_A, DISTRICT_B = "110000", "110100", "110105", "110106"
A1, A2, B1, B2 = "110105001001", "110105001002", "110106001001", "110106001002"
NODES = {DISTRICT_A: [A1, A2], DISTRICT_B: [B1, B2]}
STAFF_SCOPES = "records:write resources:read shelters:read incidents:read risk:flag"

# A community that shows its city and province its resources (bands by the baseline).
SUPERIOR_RECORDS = """
@id("owner.superior.resources")
permit (principal, action == Linli::Action::"read_exact", resource is Linli::Resource)
when {
  context.relation == "superior" &&
  principal has district &&
  resource.owner has superiors &&
  resource.owner.superiors.contains(principal.district) &&
  ["identity", "status", "description"].contains(resource.group)
};
"""
# ... and one that shows them exact quantities too.
SUPERIOR_EXACT = (
    SUPERIOR_RECORDS
    + """
@id("owner.superior.quantities")
permit (principal, action == Linli::Action::"read_exact", resource is Linli::Resource)
when {
  context.relation == "superior" &&
  principal has district &&
  resource.owner has superiors &&
  resource.owner.superiors.contains(principal.district) &&
  resource.group == "quantity.exact"
};
"""
)
# B2 shows its superiors no records (the baseline) and keeps its resources out of their
# totals too, while its district counts them.
NO_SUPERIOR_TOTALS = """
@id("owner.superior.no-resource-totals")
forbid (principal, action == Linli::Action::"read_aggregate", resource is Linli::Resource)
when { context.relation == "superior" };
"""
POLICIES = {A1: SUPERIOR_EXACT, A2: SUPERIOR_RECORDS, B1: SUPERIOR_RECORDS, B2: NO_SUPERIOR_TOTALS}


def hub_id(division: str) -> str:
    return f"hub-{division}"


@dataclass
class Hierarchy:
    """Hubs by division code (the city, its districts, the province if asked) and nodes."""

    hubs: dict[str, RunningHub]
    nodes: dict[str, ServerThread]
    backend: str
    clients: list[GraphQLClient] = field(default_factory=list)

    async def department(
        self, division: str, *, org: str | None = None, scopes: str = ALL_READ
    ) -> GraphQLClient:
        """A department of ``division`` with a token of its own hub."""
        hub = self.hubs[division]
        token = await hub.client_token(
            org=org or f"{division}400001", kind=OrgKind.DEPARTMENT, scopes=scopes,
            district=division,
        )  # fmt: skip
        client = GraphQLClient(hub.url, token)
        self.clients.append(client)
        return client

    async def seed(self) -> None:
        """Two resources at each node, entered by its own staff."""
        for district, codes in NODES.items():
            for code in codes:
                token = await self.hubs[district].client_token(
                    org=code, kind=OrgKind.COMMUNITY, scopes=STAFF_SCOPES, district=district,
                    resource=code,
                )  # fmt: skip
                async with _staff(self.nodes[code].url, token) as staff:
                    for n in (1, 2):
                        await staff.data(
                            "mutation($i: ResourceCreateInput!) { createResource(input: $i) { id } }",
                            {
                                "i": {
                                    "kind": "portable_generator",
                                    "name": f"发电机 {code} #{n}",
                                    "quantity": 37,
                                    "available": 37,
                                    "unit": "台",
                                    "location": {"coordinates": [116.44123, 39.90871]},
                                }
                            },
                        )

    async def stop_hub(self, division: str) -> None:
        await self.hubs[division].stop()


async def _client(database_url: str, code: str, district: str) -> tuple[str, str]:
    """A node's flag-delivery client at its district hub: (client id, secret)."""
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            client, secret = await create_client(
                session, org=code, org_kind=OrgKind.COMMUNITY, district=district,
                scopes="risk:flag",
            )  # fmt: skip
            return client.client_id, secret
    finally:
        await db.dispose()


@contextlib.asynccontextmanager
async def _staff(url: str, token: str) -> AsyncIterator[GraphQLClient]:
    client = GraphQLClient(url, token)
    try:
        yield client
    finally:
        await client.aclose()


def _sources_file(folder: Path, name: str, sources: dict[str, str]) -> Path:
    path = folder / f"sources-{name}.toml"
    path.write_text(
        "".join(f'[[sources]]\nid = "{sid}"\nurl = "{url}"\n\n' for sid, url in sources.items()),
        "utf-8",
    )
    return path


def _trusting(superior_port: int) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{superior_port}"
    return [{"issuer": url, "jwks_url": f"{url}/.well-known/jwks.json"}]


@contextlib.asynccontextmanager
async def hierarchy(
    folder: Path,
    backend: str,
    *,
    province: bool = False,
    district_settings: dict[str, Any] | None = None,
    deliver_flags: bool = False,
) -> AsyncIterator[Hierarchy]:
    """A city over districts A and B over two nodes each (and a province over the city).

    Hubs' databases are on ``backend``; nodes' on SQLite (on PostgreSQL the hubs keep
    federation state, events and the audit log there). Each hub trusts the issuer of
    the hub directly above it, and only that one.
    """
    levels = [CITY, DISTRICT_A, DISTRICT_B] + ([PROVINCE] if province else [])
    ports = {division: free_port() for division in levels}
    node_ports = {code: free_port() for codes in NODES.values() for code in codes}
    async with contextlib.AsyncExitStack() as stack:
        hub_dbs = {
            division: await stack.enter_async_context(
                _empty_database(backend, folder / f"hub-{division}")
            )
            for division in levels
        }
        node_dbs = {
            code: await stack.enter_async_context(_empty_database("sqlite", folder / code))
            for code in node_ports
        }
        for db in hub_dbs.values():  # one at a time: Alembic's context is global
            await migrate(HUB_MIGRATIONS, db.url)
        for db in node_dbs.values():
            await migrate(NODE_MIGRATIONS, db.url)
        below = {
            PROVINCE: {hub_id(CITY): ports[CITY]},
            CITY: {hub_id(DISTRICT_A): ports[DISTRICT_A], hub_id(DISTRICT_B): ports[DISTRICT_B]},
            DISTRICT_A: {code: node_ports[code] for code in NODES[DISTRICT_A]},
            DISTRICT_B: {code: node_ports[code] for code in NODES[DISTRICT_B]},
        }
        above = {CITY: PROVINCE if province else None, DISTRICT_A: CITY, DISTRICT_B: CITY}
        hubs: dict[str, RunningHub] = {}
        for division in levels:
            sources = {sid: f"http://127.0.0.1:{port}" for sid, port in below[division].items()}
            superior = above.get(division)
            overrides = dict(district_settings or {}) if division in NODES else {}
            settings = hub_settings(
                hub_dbs[division].url,
                ports[division],
                _sources_file(folder, division, sources),
                hub_id=hub_id(division),
                hub_name=f"hub {division}",
                district=division,
                duty_desk=f"{division}400000",
                trusted_issuers=_trusting(ports[superior]) if superior else [],
                **overrides,
            )
            server = ServerThread(create_hub(settings), ports[division]).start()
            hubs[division] = RunningHub(server.url, settings, server, hub_dbs[division].url)
            stack.push_async_callback(hubs[division].stop)
        nodes: dict[str, ServerThread] = {}
        for district, codes in NODES.items():
            for code in codes:
                delivery: dict[str, Any] = {}
                if deliver_flags:  # the node's own client at its district hub
                    client_id, secret = await _client(hub_dbs[district].url, code, district)
                    delivery = {
                        "hub_url": hubs[district].url,
                        "hub_client_id": client_id,
                        "hub_client_secret": secret,
                    }
                policy_file = None
                if code in POLICIES:
                    policy_file = folder / f"policy-{code}.cedar"
                    policy_file.write_text(POLICIES[code], "utf-8")
                node_settings = NodeSettings(
                    database_url=node_dbs[code].url, org_code=code, org_name=f"社区{code[-1]}",
                    district=district, token_issuer=hubs[district].settings.issuer,
                    jwks_url=f"{hubs[district].url}/.well-known/jwks.json",
                    policy_file=policy_file, **delivery,
                )  # fmt: skip
                nodes[code] = ServerThread(create_node(node_settings), node_ports[code]).start()
                stack.push_async_callback(asyncio.to_thread, nodes[code].stop)
        built = Hierarchy(hubs, nodes, backend)
        # Every hub has read the description of each source below it before the test asks.
        for division in levels:
            watcher = await built.department(division, org=f"{division}400099", scopes="admin")
            await wait_sources_ok(watcher, len(below[division]))
        try:
            yield built
        finally:
            for client in built.clients:
                await client.aclose()


def entries(body: dict[str, Any], path: str) -> dict[str, dict[str, Any]]:
    """``extensions.sources`` of the root field at ``path``, by source id."""
    return {e["source"]: e for e in body["extensions"]["sources"] if e["path"] == [path]}


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1)
