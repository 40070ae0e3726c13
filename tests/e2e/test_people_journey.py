"""A duty officer signs in at the hub and acts: the flag's step and the audit rows name them;
a wall screen (a viewer) follows the flag live and its subscription ends when it signs out.

A real hub and a real community node (both on the backend under test), the officer
signing in over HTTP with PKCE as the web app does, then using the hub's GraphQL API.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from websockets.exceptions import ConnectionClosed

from hub.app import MIGRATIONS as HUB_MIGRATIONS
from hub.graphql import TOKEN_ENDED_CLOSE_CODE
from node.app import MIGRATIONS as NODE_MIGRATIONS
from node.app import create_app as create_node
from node.settings import NodeSettings
from schema.enums import OrgKind
from schema.runtime.db import Database
from tests.conftest import (
    DatabaseUnderTest,
    GraphQLClient,
    ServerThread,
    _empty_database,
    free_port,
    migrate,
)
from tests.hub.auth.web import (
    WEB,
    Tokens,
    add_person,
    from_address,
    signed_in,
)
from tests.hub.federation.conftest import DISTRICT, RunningHub, hub_over, wait_sources_ok
from tests.hub.flags.conftest import (
    COMMUNITY,
    DEPT_GAS,
    FAST,
    ROUTING,
    Subscriber,
    flag_message,
)

RESOURCES = "{ resources(first: 10) { edges { node { id owner name quantity } } } }"
FLAG = "query($id: ID!) { flag(id: $id) { version status } }"
MOVE = """mutation($id: ID!, $v: Int!, $note: String) {
  transitionFlag(id: $id, to: ACKNOWLEDGED, expectedVersion: $v, note: $note) {
    status transitions { status org clientId person note }
  }
}"""


@dataclass
class Rig:
    hub: RunningHub
    node: ServerThread
    node_db: str
    http: httpx.AsyncClient


@pytest.fixture
async def rig(fresh_database: DatabaseUnderTest, tmp_path: Path) -> AsyncIterator[Rig]:
    async with _empty_database(fresh_database.backend, tmp_path / "node") as node_db:
        await migrate(HUB_MIGRATIONS, fresh_database.url)
        await migrate(NODE_MIGRATIONS, node_db.url)
        routing = tmp_path / "routing.toml"
        routing.write_text(ROUTING, "utf-8")
        port = free_port()
        hub = await hub_over(
            fresh_database.url,
            tmp_path,
            {COMMUNITY: f"http://127.0.0.1:{port}"},
            routing_file=routing,
            **FAST,
        )
        settings = NodeSettings(
            database_url=node_db.url,
            org_code=COMMUNITY,
            org_name="建外某社区",
            district=DISTRICT,
            token_issuer=hub.settings.issuer,
            jwks_url=f"{hub.url}/.well-known/jwks.json",
        )
        node = ServerThread(create_node(settings), port).start()
        http = from_address("127.0.5.1")
        try:
            yield Rig(hub, node, node_db.url, http)
        finally:
            await http.aclose()
            await asyncio.to_thread(node.stop)
            await hub.stop()


async def person_client(rig: Rig, username: str) -> tuple[GraphQLClient, Tokens]:
    """``username`` signs in at the hub as the web app does; a GraphQL client with their token."""
    tokens = await signed_in(rig.http, rig.hub.url, username)
    assert tokens.claims["sub"] == username
    client = GraphQLClient(rig.hub.url, tokens.access)
    rig.hub.clients.append(client)
    return client, tokens


async def test_the_person_who_moves_a_flag_and_reads_a_neighbours_data_is_recorded(
    rig: Rig,
) -> None:
    hub_db = Database(rig.hub.db_url)
    try:
        officer = await add_person(hub_db, "wang.fang", org=DEPT_GAS, roles="duty-officer")
        viewer = await add_person(hub_db, "wall-screen", org=DEPT_GAS, roles="viewer")
    finally:
        await hub_db.dispose()
    staff = GraphQLClient(
        rig.node.url,
        await rig.hub.client_token(
            org=COMMUNITY, kind=OrgKind.COMMUNITY, scopes="records:write", resource=COMMUNITY
        ),
    )
    rig.hub.clients.append(staff)
    await staff.data(
        """mutation($i: ResourceCreateInput!) { createResource(input: $i) { id } }""",
        {
            "i": {
                "kind": "portable_generator",
                "name": "发电机",
                "quantity": 3,
                "available": 3,
                "unit": "台",
                "address": "某街1号",
                "location": {"coordinates": [116.44123, 39.90871]},
            }
        },
    )
    community = await rig.hub.client_token(
        org=COMMUNITY, kind=OrgKind.COMMUNITY, scopes="risk:flag"
    )
    raised = await rig.http.post(
        f"{rig.hub.url}/flags/inbox",
        json=flag_message(),
        headers={"Authorization": f"Bearer {community}"},
    )
    assert raised.status_code == 200, raised.text
    flag_id = raised.json()["flag_id"]

    # A viewer (the wall screen) sees the flag live, and may not move it.
    screen, screen_tokens = await person_client(rig, viewer)
    seen = (await screen.data(FLAG, {"id": flag_id}))["flag"]
    assert seen["status"] == "ROUTED"
    refused = await screen.error_code(MOVE, {"id": flag_id, "v": seen["version"], "note": "x"})
    assert refused == "FORBIDDEN"
    live = await Subscriber.open(rig.hub.url.replace("http://", "ws://") + "/graphql",
                                 screen_tokens.access)  # fmt: skip
    try:
        assert (await live.ack())["type"] == "connection_ack"
        await live.subscribe(after=0)
        # flag.raised is assigned to nobody yet: a department's first event is flag.routed.
        routed = await live.event()
        assert (routed["status"], routed["flagId"]) == ("ROUTED", flag_id)
        await _the_officer_acts_and_is_recorded(rig, officer, flag_id)
        assert (await live.event())["status"] == "ACKNOWLEDGED"
        # The wall screen signs out: its open subscription ends.
        await rig.http.post(
            f"{rig.hub.url}/oauth/revoke", data={"token": screen_tokens.refresh, "client_id": WEB}
        )
        with pytest.raises(ConnectionClosed) as closed:
            await live.message(timeout_s=30)
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (
            TOKEN_ENDED_CLOSE_CODE,
            "TOKEN_REVOKED",
        )
    finally:
        await live.close()


async def _the_officer_acts_and_is_recorded(rig: Rig, officer: str, flag_id: str) -> None:
    """The officer acknowledges the flag, registers a webhook and reads the community's data."""
    # The step names the person and the client.
    desk, _ = await person_client(rig, officer)
    version = (await desk.data(FLAG, {"id": flag_id}))["flag"]["version"]
    moved = (await desk.data(MOVE, {"id": flag_id, "v": version, "note": "已派人核查"}))[
        "transitionFlag"
    ]
    assert moved["status"] == "ACKNOWLEDGED"
    assert moved["transitions"][-1] == {
        "status": "ACKNOWLEDGED",
        "org": DEPT_GAS,
        "clientId": WEB,
        "person": "wang.fang",
        "note": "已派人核查",
    }
    # The steps machines made name no person.
    assert [t["person"] for t in moved["transitions"][:-1]] == [None, None]
    hook = await desk.data(
        'mutation { registerWebhook(url: "http://127.0.0.1:9/flags") '
        "{ webhook { department createdBy createdByPerson } } }"
    )
    assert hook["registerWebhook"]["webhook"] == {
        "department": DEPT_GAS,
        "createdBy": WEB,
        "createdByPerson": "wang.fang",
    }

    # The officer reads the community's resources: the hub and the node audit the person.
    await wait_sources_ok(desk, 1)
    listed = (await desk.data(RESOURCES))["resources"]["edges"]
    assert [edge["node"]["owner"] for edge in listed] == [COMMUNITY]
    owner = GraphQLClient(
        rig.hub.url,
        await rig.hub.client_token(org=COMMUNITY, kind=OrgKind.COMMUNITY, scopes="audit:read"),
    )
    rig.hub.clients.append(owner)
    rows = (
        await owner.data(
            "{ hubDisclosures { edges { node { action org clientId subject person } } } }"
        )
    )["hubDisclosures"]["edges"]
    assert {
        "action": "relay",
        "org": DEPT_GAS,
        "clientId": WEB,
        "subject": "wang.fang",
        "person": "wang.fang",
    } in [row["node"] for row in rows]
    node_db = Database(rig.node_db)
    try:
        async with node_db.sessions() as session:
            found = await session.execute(
                sa.text("SELECT client_id, subject, org FROM audit_log WHERE org = :org"),
                {"org": DEPT_GAS},
            )
            audited = {tuple(row) for row in found}
    finally:
        await node_db.dispose()
    assert (WEB, "wang.fang", DEPT_GAS) in audited
