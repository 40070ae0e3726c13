"""A district whose registry holds the throwaway ``WaterPump``: migrate, serve, federate, export.

Run by ``tests/schema/test_registry.py`` in its own process, with the package that
declares the type on the path and registered in the ``linli.records`` group, so every
part derives its tables, API, policy schema and exports from a registry that has it.
Prints what it saw as one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from alembic import command

import node.app
from hub.app import MIGRATIONS as HUB_MIGRATIONS
from node.settings import NodeSettings
from policies.records import cedar_schema
from schema.enums import OrgKind
from schema.export import ROOT, artifacts
from schema.records import REGISTRY
from schema.runtime.db import alembic_config, upgrade
from tests.conftest import GraphQLClient, ServerThread, free_port, migrate
from tests.hub.federation.conftest import hub_over

OWNER, NEIGHBOUR = "110105001001", "110105001002"
CREATE = """mutation($i: WaterPumpCreateInput!) { createWaterPump(input: $i) { id flowM3h } }"""
PUMPS = """query($where: WaterPumpFilter) {
  waterPumps(where: $where) { edges { node { id owner name flowM3h location { coordinates } } } }
}"""


def new_migration(folder: Path, url: str) -> str:
    """Autogenerate the one migration the new type needs; return its text."""
    before = set((folder / "versions").glob("*.py"))
    command.revision(alembic_config(folder, url), message="water pumps", autogenerate=True)
    (created,) = set((folder / "versions").glob("*.py")) - before
    return created.read_text("utf-8")


async def district(tmp: Path, node_db: str, policy: Path) -> dict[str, Any]:
    hub_db = f"sqlite+aiosqlite:///{tmp / 'hub.db'}"
    await migrate(HUB_MIGRATIONS, hub_db)
    port = free_port()
    hub = await hub_over(hub_db, tmp, {OWNER: f"http://127.0.0.1:{port}"})
    settings = NodeSettings(
        database_url=node_db, org_code=OWNER, org_name="永安里社区", district="110105",
        neighbours=[NEIGHBOUR], token_issuer=hub.settings.issuer,
        jwks_url=f"{hub.url}/.well-known/jwks.json", policy_file=policy,
    )  # fmt: skip
    server = ServerThread(node.app.create_app(settings), port).start()
    seen: dict[str, Any] = {}
    try:
        staff_token = await hub.client_token(
            org=OWNER, kind=OrgKind.COMMUNITY, scopes="records:write resources:read",
            resource=OWNER,
        )  # fmt: skip
        staff = GraphQLClient(server.url, staff_token)
        hub.clients.append(staff)
        for name, flow in (("排水泵一号", 50), ("排水泵二号", 5)):
            await staff.data(
                CREATE,
                {"i": {"name": name, "flowM3h": flow, "location": {"coordinates": [116.4, 39.9]}}},
            )
        at_node = await staff.data(PUMPS, {"where": {"minFlow": 10}})
        seen["node_min_flow_10"] = [e["node"] for e in at_node["waterPumps"]["edges"]]
        well_known = await staff.http.get("/.well-known/linli-node")
        seen["capabilities"] = well_known.json()["capabilities"]

        neighbour = await hub.graphql(
            org=NEIGHBOUR, kind=OrgKind.COMMUNITY, scopes="resources:read"
        )
        department = await hub.graphql(scopes="resources:read")
        deadline = time.monotonic() + 20
        while True:  # until the hub has read the node's capabilities
            body = await neighbour.post(PUMPS)
            edges = ((body.get("data") or {}).get("waterPumps") or {}).get("edges") or []
            if edges or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        seen["hub_neighbour"] = [e["node"] for e in edges]
        seen["hub_neighbour_sources"] = body.get("extensions", {}).get("sources")
        unscoped = await hub.graphql(org=NEIGHBOUR, kind=OrgKind.COMMUNITY, scopes="shelters:read")
        seen["hub_unscoped"] = await unscoped.post(PUMPS)
        body = await department.post(PUMPS)
        seen["hub_department"] = [e["node"] for e in body["data"]["waterPumps"]["edges"]]
    finally:
        await asyncio.to_thread(server.stop)
        await hub.stop()
    return seen


def main() -> None:
    tmp, policy = Path(sys.argv[1]), Path(sys.argv[2])
    seen: dict[str, Any] = {"registered": "WaterPump" in REGISTRY}
    # The node's history plus the one migration the new type needs.
    migrations = tmp / "migrations"
    shutil.copytree(node.app.MIGRATIONS, migrations, ignore=shutil.ignore_patterns("__pycache__"))
    node_db = f"sqlite+aiosqlite:///{tmp / 'node.db'}"
    asyncio.run(upgrade(migrations, node_db))
    seen["migration"] = new_migration(migrations, node_db)
    asyncio.run(upgrade(migrations, node_db))
    node.app.MIGRATIONS = migrations  # the node checks its database is at this history's head
    seen.update(asyncio.run(district(tmp, node_db, policy)))
    exported = artifacts()
    seen["sdl"] = exported[ROOT / "sdl" / "common.graphql"]
    seen["json_schema"] = json.loads(exported[ROOT / "jsonschema" / "WaterPump.json"])
    seen["cedar"] = cedar_schema()
    print(json.dumps(seen, ensure_ascii=False))


if __name__ == "__main__":
    main()
