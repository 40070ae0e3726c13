"""A flag's steps name the people who made them, at the hub and in the node's copy.

A real hub and a real community node (both on the backend under test): a community
staff member signs in at the hub as the web app does and raises a flag there (the
hub relays it to their node), a duty officer signs in and acknowledges and verifies
it, and a department's machine client confirms it. The node's history names the
person on each step a person made, and none on the steps machines made.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from schema.enums import OrgKind
from schema.runtime.db import Database
from tests.conftest import BACKENDS, GraphQLClient
from tests.e2e.test_flag_journey import oauth_token
from tests.hub.auth.web import add_person, from_address, signed_in
from tests.hub.flags.conftest import eventually
from tests.node.flags.conftest import COMMUNITY, DEPT_GAS, FlagRig, flag_input, flag_rig

RAISE = """mutation ($i: RiskFlagCreateInput!) { raiseRiskFlag(input: $i) { id status } }"""
FLAG = "query ($id: ID!) { flag(id: $id) { version status transitions { status person } } }"
MOVE = """mutation ($id: ID!, $to: RiskFlagStatus!, $v: Int!) {
  transitionFlag(id: $id, to: $to, expectedVersion: $v) { version } }"""
AT_NODE = """query ($id: ID!) { node(id: $id) { ... on RiskFlag {
  status transitions { status by person } } } }"""


@pytest.fixture(params=BACKENDS)
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FlagRig]:
    async with flag_rig(request.param, tmp_path) as built:
        yield built


async def test_each_step_names_its_person_at_the_hub_and_at_the_node(rig: FlagRig) -> None:
    hub = await rig.start_hub()
    rig.start_node()
    hub_db = Database(rig.hub_db_url)
    try:
        staff_name = await add_person(
            hub_db, "li.ming", org=COMMUNITY, org_kind=OrgKind.COMMUNITY, roles="community-staff"
        )
        officer_name = await add_person(hub_db, "wang.fang", org=DEPT_GAS, roles="duty-officer")
    finally:
        await hub_db.dispose()
    http = from_address("127.0.5.2")
    try:
        staff_tokens = await signed_in(http, hub.url, staff_name)
        officer_tokens = await signed_in(http, hub.url, officer_name)
    finally:
        await http.aclose()
    assert (staff_tokens.claims["sub"], officer_tokens.claims["sub"]) == (staff_name, officer_name)

    def at_hub(token: str) -> GraphQLClient:
        client = GraphQLClient(hub.url, token)
        rig.clients.append(client)
        return client

    staff, officer = at_hub(staff_tokens.access), at_hub(officer_tokens.access)
    machine = at_hub(
        await oauth_token(
            hub.url, rig, org=DEPT_GAS, kind=OrgKind.DEPARTMENT, scopes="risk:verify",
            resource=None,
        )
    )  # fmt: skip

    async def described() -> bool:
        body = await staff.post("{ sources { id status } }")
        return body["data"]["sources"] == [{"id": COMMUNITY, "status": "ok"}]

    await eventually(described, timeout_s=30)

    # The staff member raises the flag at the hub, which relays it to their node.
    flag_id = (await staff.data(RAISE, {"i": flag_input(3)}))["raiseRiskFlag"]["id"]
    at_node = rig.staff()
    raised = (await at_node.data(AT_NODE, {"id": flag_id}))["node"]
    assert raised["transitions"] == [{"status": "RAISED", "by": staff_name, "person": staff_name}]

    async def at_hub_once_routed(flag_id: str) -> dict[str, Any] | None:
        # NOT_FOUND until the node's outbox has delivered it.
        found: dict[str, Any] | None = (await officer.post(FLAG, {"id": flag_id}))["data"]["flag"]
        return found if found is not None and found["status"] == "ROUTED" else None

    # The hub keeps the node's RAISED person; its routing is the hub's own (no person).
    flag = await eventually(lambda: at_hub_once_routed(flag_id), timeout_s=30)
    assert flag["transitions"] == [
        {"status": "RAISED", "person": staff_name},
        {"status": "ROUTED", "person": None},
    ]

    # The duty officer acknowledges and verifies it; the department's machine confirms it.
    version = flag["version"]
    for client, to in [(officer, "ACKNOWLEDGED"), (officer, "VERIFYING"), (machine, "CONFIRMED")]:
        version = (await client.data(MOVE, {"id": flag_id, "to": to, "v": version}))[
            "transitionFlag"
        ]["version"]

    expected = [
        ("RAISED", staff_name),
        ("ROUTED", None),
        ("ACKNOWLEDGED", officer_name),
        ("VERIFYING", officer_name),
        ("CONFIRMED", None),
    ]
    at_hub_now = (await officer.data(FLAG, {"id": flag_id}))["flag"]["transitions"]
    assert [(t["status"], t["person"]) for t in at_hub_now] == expected

    # The node's copy of the history, fed by the hub's updates, names the same people.
    async def confirmed_at_node() -> dict[str, Any] | None:
        state: dict[str, Any] = (await at_node.data(AT_NODE, {"id": flag_id}))["node"]
        return state if state["status"] == "CONFIRMED" else None

    state = await eventually(confirmed_at_node, timeout_s=15)
    assert [(t["status"], t["person"]) for t in state["transitions"]] == expected
    assert [t["by"] for t in state["transitions"][2:]] == [DEPT_GAS] * 3

    # A flag a machine client raises at the node names no person, there or at the hub.
    machine_flag = (await at_node.data(RAISE, {"i": flag_input(4)}))["raiseRiskFlag"]["id"]
    machine_raised = (await at_node.data(AT_NODE, {"id": machine_flag}))["node"]
    assert machine_raised["transitions"] == [
        {"status": "RAISED", "by": "flag-staff", "person": None}
    ]

    routed_machine = await eventually(lambda: at_hub_once_routed(machine_flag), timeout_s=30)
    assert [t["person"] for t in routed_machine["transitions"]] == [None, None]

    # Every record written at the node is in its audit log with the client and the person.
    node_db = Database(rig.node_db_url)
    try:
        async with node_db.sessions() as session:
            found = await session.execute(
                sa.text(
                    "SELECT action, record_type, client_id, subject, decision FROM audit_log"
                    " WHERE action LIKE 'record.%' ORDER BY seq"
                )
            )
            written = [(*row[:4], json.loads(row.decision)["id"]) for row in found]
    finally:
        await node_db.dispose()
    local = {gid: gid.rsplit(":", 1)[-1] for gid in (flag_id, machine_flag)}
    web = hub.settings.web_client_id
    assert written == [
        ("record.create", "RiskFlag", web, staff_name, local[flag_id]),
        ("record.create", "RiskFlag", "flag-staff", "flag-staff", local[machine_flag]),
    ]
