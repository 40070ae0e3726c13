"""A source whose database is locked answers DATABASE_BUSY; the hub names it SOURCE_BUSY."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from node.app import MIGRATIONS as NODE_MIGRATIONS
from node.app import create_app as create_node
from node.settings import NodeSettings
from schema.enums import OrgKind
from tests.conftest import GraphQLClient, ServerThread, free_port, migrate
from tests.hub.federation.conftest import DISTRICT, wait_sources_ok
from tests.node.test_storage_faults import sqlite_write_lock

NODE = "110105001001"
RESOURCES = "{ resources { edges { node { id } } } }"
INCIDENTS = "{ incidents { edges { node { id } } } }"


async def test_a_locked_source_is_source_busy_then_ok_again(
    start_hub: Callable[..., Any], tmp_path: Path
) -> None:
    path = tmp_path / "node.db"
    url = f"sqlite+aiosqlite:///{path}"
    await migrate(NODE_MIGRATIONS, url)
    port = free_port()
    # the hub waits longer than the node's busy timeout, so the node's own answer arrives
    hub = await start_hub({NODE: f"http://127.0.0.1:{port}"}, source_timeout_s=8.0)
    node = ServerThread(
        create_node(
            NodeSettings(
                database_url=url,
                org_code=NODE,
                district=DISTRICT,
                token_issuer=hub.settings.issuer,
                jwks_url=f"{hub.url}/.well-known/jwks.json",
            )
        ),
        port,
    ).start()
    try:
        token = await hub.client_token(
            org=NODE, kind=OrgKind.COMMUNITY, scopes="records:write", resource=NODE
        )
        staff = GraphQLClient(node.url, token)
        hub.clients.append(staff)
        await staff.data(
            """mutation { createIncident(input: {title: "地下车库积水",
               category: NATURAL_DISASTER, severityLevel: IV}) { id } }"""
        )
        department = await hub.graphql(org="110105400001", kind=OrgKind.DEPARTMENT)
        await wait_sources_ok(department, 1)  # the node started after the hub
        assert (await department.data(INCIDENTS))["incidents"]["edges"]
        with sqlite_write_lock(str(path)):
            body = await department.post(INCIDENTS)
            assert [e["extensions"]["code"] for e in body["errors"]] == ["SOURCE_BUSY"], body
            assert "DATABASE_BUSY" in body["errors"][0]["message"]
            (report,) = body["extensions"]["sources"]
            assert report["status"] == "busy"
        assert (await department.data(INCIDENTS))["incidents"]["edges"]
    finally:
        await asyncio.to_thread(node.stop)
