"""Flags escalated to the city are worked at the city hub, over real servers (issue 16).

A city hub over two district hubs over two nodes each: a district's routing rule sends
a severe flag (or one not acknowledged in time) to a city department; that department,
signed in at its CITY hub, lists the flag there and moves it there; the district hub
applies the move through its own workflow; the node shows the city's steps.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook

from schema.enums import OrgKind
from tests.conftest import BACKENDS, GraphQLClient, ServerThread
from tests.hub.federation.hierarchy import (
    CITY,
    DISTRICT_A,
    DISTRICT_B,
    NODES,
    PROVINCE,
    Hierarchy,
    dumps,
    entries,
    hierarchy,
    hub_id,
)
from tests.hub.flags.conftest import Receiver, Subscriber

A1, A2 = NODES[DISTRICT_A]
B1, B2 = NODES[DISTRICT_B]
CITY_GAS = f"{CITY}400001"  # the city's gas department
CITY_FLOOD = f"{CITY}400002"  # the city's flood office
CITY_OTHER = f"{CITY}400009"  # a city department the flags are not assigned to
# Severe gas leaks (II or worse) go to the city's gas department; floods to the district's
# desk, then to the city's flood office when not acknowledged within a second.
ROUTING = f"""
[[routes]]
category = "gas_leak"
area = ""
severity = "II"
department = "{CITY_GAS}"
ack_deadline_s = 600
escalate_to = "{CITY_GAS}"

[[routes]]
category = "flooding"
area = ""
department = "district-desk-placeholder"
ack_deadline_s = 1
escalate_to = "{CITY_FLOOD}"
"""

RAISE = """mutation ($i: RiskFlagCreateInput!) { raiseRiskFlag(input: $i) { id } }"""
LIST = """query ($first: Int, $after: String) { flags(first: $first, after: $after) {
  edges { cursor node { id status version assignedTo escalationLevel community } }
  pageInfo { hasNextPage endCursor } } }"""
ONE = """query ($id: ID!) { flag(id: $id) { id status version assignedTo
  transitions { status org note } } }"""
MOVE = """mutation ($id: ID!, $to: RiskFlagStatus!, $v: Int!, $note: String) {
  transitionFlag(id: $id, to: $to, expectedVersion: $v, note: $note) {
    id status version transitions { status org note } } }"""
REGISTER = """mutation ($url: String!) { registerWebhook(url: $url) { webhook { id } secret } }"""
AT_NODE = """query ($id: ID!) { node(id: $id) { ... on RiskFlag {
  status assignedTo transitions { status by note } } } }"""


@pytest.fixture(params=BACKENDS)
async def city(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Hierarchy]:
    routing = tmp_path / "routing.toml"
    routing.write_text(ROUTING.replace("district-desk-placeholder", f"{DISTRICT_A}400003"), "utf-8")
    async with hierarchy(
        tmp_path, request.param, district_settings={"routing_file": routing}, deliver_flags=True
    ) as built:
        yield built


async def staff_of(built: Hierarchy, code: str, district: str) -> GraphQLClient:
    token = await built.hubs[district].client_token(
        org=code, kind=OrgKind.COMMUNITY, scopes="risk:flag incidents:read", district=district,
        resource=code,
    )  # fmt: skip
    client = GraphQLClient(built.nodes[code].url, token)
    built.clients.append(client)
    return client


async def raise_flag(staff: GraphQLClient, category: str, severity: str, text: str) -> str:
    raised = await staff.data(
        RAISE,
        {
            "i": {
                "category": category,
                "description": text,
                "location": {"coordinates": [116.4435, 39.9087]},
                "estimatedSeverity": severity,
            }
        },
    )
    flag_id: str = raised["raiseRiskFlag"]["id"]
    return flag_id


async def listed(
    client: GraphQLClient, wanted: set[str], *, timeout_s: float = 30.0
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """Poll a hub's ``flags`` until every flag of ``wanted`` is listed; (by id, body)."""
    deadline = time.monotonic() + timeout_s
    while True:
        body = await client.post(LIST, {"first": 100})
        edges = ((body.get("data") or {}).get("flags") or {}).get("edges") or []
        found = {e["node"]["id"]: e["node"] for e in edges}
        if wanted <= found.keys():
            return found, body
        assert time.monotonic() < deadline, dumps(body)
        await asyncio.sleep(0.1)


async def test_a_severe_flag_is_worked_by_the_city_department_at_the_city_hub(
    city: Hierarchy,
) -> None:
    staff_a1 = await staff_of(city, A1, DISTRICT_A)
    staff_b1 = await staff_of(city, B1, DISTRICT_B)
    severe = await raise_flag(staff_a1, "gas_leak", "I", "燃气泄漏 3号楼 Gas leak, building 3")
    second = await raise_flag(staff_a1, "gas_leak", "II", "燃气味 Gas smell at the market")
    other = await raise_flag(staff_b1, "gas_leak", "I", "燃气泄漏 B1")
    minor = await raise_flag(staff_a1, "gas_leak", "IV", "轻微燃气味 A faint smell")
    gas = await city.department(CITY, org=CITY_GAS, scopes="risk:verify")
    # The city department follows its flags' events at the city hub (copied from below).
    gas_token = gas.http.headers["Authorization"].removeprefix("Bearer ")
    events = await Subscriber.open(
        city.hubs[CITY].url.replace("http", "ws") + "/graphql", gas_token
    )
    assert (await events.ack())["type"] == "connection_ack"
    await events.subscribe(after=0)

    # The city department lists, at its own hub, the flags both districts assigned to it,
    # with each district hub's status (and, nested, its own sources').
    found, body = await listed(gas, {severe, second, other})
    assert minor not in found  # routed to the district's desk, not the city
    assert {found[f]["assignedTo"] for f in (severe, second, other)} == {CITY_GAS}
    assert found[severe]["status"] == "ROUTED"
    assert found[other]["community"] == B1
    reports = entries(body, "flags")
    assert {reports[hub_id(d)]["status"] for d in (DISTRICT_A, DISTRICT_B)} == {"ok"}
    assert reports[hub_id(DISTRICT_A)]["count"] == 2
    assert reports[hub_id(DISTRICT_B)]["count"] == 1

    # Paging one at a time gives every flag exactly once, across the districts.
    paged: list[str] = []
    after = None
    for _ in range(10):
        page = (await gas.data(LIST, {"first": 1, "after": after}))["flags"]
        paged += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert sorted(paged) == sorted(found)
    assert len(paged) == 3

    # One flag by id, from the district hub that holds it.
    one = (await gas.data(ONE, {"id": severe}))["flag"]
    assert one["assignedTo"] == CITY_GAS
    version = one["version"]

    # A stale version is refused with the district's code, and nothing moves.
    stale = await gas.post(MOVE, {"id": severe, "to": "ACKNOWLEDGED", "v": version - 1})
    assert len(stale["errors"]) == 1, dumps(stale)  # the refusal only, no source error
    error = stale["errors"][0]
    assert error["extensions"]["code"] == "STALE_VERSION", dumps(stale)
    assert error["extensions"]["currentVersion"] == version
    assert error["extensions"]["source"] == hub_id(DISTRICT_A)
    # A city department the flag is not assigned to may neither see nor move it.
    bystander = await city.department(CITY, org=CITY_OTHER, scopes="risk:verify")
    refused = await bystander.post(MOVE, {"id": severe, "to": "ACKNOWLEDGED", "v": version})
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["FORBIDDEN"], dumps(refused)
    assert (await bystander.data(LIST, {"first": 100}))["flags"]["edges"] == []
    hidden = await bystander.post(ONE, {"id": severe})
    assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND", dumps(hidden)
    assert (await gas.data(ONE, {"id": severe}))["flag"]["version"] == version

    # The city department acknowledges and verifies it at the city hub.
    for step, to in enumerate(("ACKNOWLEDGED", "VERIFYING", "CONFIRMED")):
        moved = await gas.data(
            MOVE, {"id": severe, "to": to, "v": version + step, "note": f"市燃气 {to}"}
        )
        assert moved["transitionFlag"]["status"] == to
        assert moved["transitionFlag"]["version"] == version + step + 1
        assert moved["transitionFlag"]["transitions"][-1]["org"] == CITY_GAS

    # The node shows the city department's steps.
    deadline = time.monotonic() + 30.0
    while True:
        state = (await staff_a1.data(AT_NODE, {"id": severe}))["node"]
        if state["status"] == "CONFIRMED" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert state["assignedTo"] == CITY_GAS
    steps = [(t["status"], t["by"], t["note"]) for t in state["transitions"]]
    assert [s[0] for s in steps] == ["RAISED", "ROUTED", "ACKNOWLEDGED", "VERIFYING", "CONFIRMED"]
    assert steps[2:] == [
        ("ACKNOWLEDGED", CITY_GAS, "市燃气 ACKNOWLEDGED"),
        ("VERIFYING", CITY_GAS, "市燃气 VERIFYING"),
        ("CONFIRMED", CITY_GAS, "市燃气 CONFIRMED"),
    ]

    # Its subscription at the city hub got the routing of its three flags and the moves.
    got = await events.events(6, timeout_s=30.0)
    await events.close()
    routed = sorted(e["flagId"] for e in got if e["type"] == "flag.routed")
    assert routed == sorted([severe, second, other]), dumps(got)
    moves = [e["status"] for e in got if e["type"] == "flag.status_changed"]
    assert moves == ["ACKNOWLEDGED", "VERIFYING", "CONFIRMED"], dumps(got)
    assert {e["assignedTo"] for e in got} == {CITY_GAS}
    seqs = [e["seq"] for e in got]
    assert seqs == sorted(seqs)
    assert len(set(seqs)) == 6

    # District A's hub down: the city lists B's flag and marks A; a move of A's flag is
    # refused as unavailable, and nothing is written at the city.
    current = (await gas.data(ONE, {"id": second}))["flag"]["version"]
    await city.stop_hub(DISTRICT_A)
    body = await gas.post(LIST, {"first": 100})
    assert [e["node"]["id"] for e in body["data"]["flags"]["edges"]] == [other]
    reports = entries(body, "flags")
    assert reports[hub_id(DISTRICT_A)]["status"] == "unavailable", dumps(body)
    assert reports[hub_id(DISTRICT_B)]["status"] == "ok"
    assert any(e["extensions"]["code"] == "SOURCE_UNAVAILABLE" for e in body["errors"])
    down = await gas.post(MOVE, {"id": second, "to": "ACKNOWLEDGED", "v": current})
    assert down["data"] is None
    assert down["errors"][0]["extensions"]["code"] == "SOURCE_UNAVAILABLE", dumps(down)
    at_node = (await staff_a1.data(AT_NODE, {"id": second}))["node"]
    assert at_node["status"] == "ROUTED"


async def test_a_flag_not_acknowledged_in_time_reaches_the_city_department(
    city: Hierarchy,
) -> None:
    staff = await staff_of(city, A2, DISTRICT_A)
    flood = await city.department(CITY, org=CITY_FLOOD, scopes="risk:verify")
    # The city office's webhook, registered at the city hub.
    receiver = Receiver()
    server = ServerThread(receiver.app(), None).start()
    try:
        registered = (await flood.data(REGISTER, {"url": server.url + "/hook"}))["registerWebhook"]
        flag_id = await raise_flag(staff, "flooding", "III", "积水 地下车库 Water in the garage")
        # Past the deadline the district's rule escalates it: the city office finds it at its hub.
        found, _ = await listed(flood, {flag_id})
        assert found[flag_id]["assignedTo"] == CITY_FLOOD
        assert found[flag_id]["escalationLevel"] == 1
        assert found[flag_id]["community"] == A2
        # ... and its webhook gets the escalation, signed by the city hub.
        deadline = time.monotonic() + 30.0
        while not receiver.received:
            assert time.monotonic() < deadline, "no webhook delivery"
            await asyncio.sleep(0.2)
    finally:
        await asyncio.to_thread(server.stop)
    entry = receiver.received[0]
    payload = Webhook(registered["secret"]).verify(entry.body, entry.headers)
    assert payload["type"] == "flag.escalated"
    assert payload["data"]["flagId"] == flag_id
    assert payload["data"]["assignedTo"] == CITY_FLOOD
    assert payload["data"]["previousAssignee"] == f"{DISTRICT_A}400003"


PROVINCE_DESK = f"{PROVINCE}400001"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_three_levels_a_province_department_works_a_flag_from_the_province_hub(
    tmp_path: Path, backend: str
) -> None:
    routing = tmp_path / "routing.toml"
    routing.write_text(
        f'[[routes]]\ncategory = "gas_leak"\narea = ""\nseverity = "I"\n'
        f'department = "{PROVINCE_DESK}"\nack_deadline_s = 600\n',
        "utf-8",
    )
    async with hierarchy(
        tmp_path, backend, province=True, district_settings={"routing_file": routing},
        deliver_flags=True,
    ) as built:  # fmt: skip
        staff = await staff_of(built, B2, DISTRICT_B)
        flag_id = await raise_flag(staff, "gas_leak", "I", "燃气爆炸风险 Risk of explosion")
        desk = await built.department(PROVINCE, org=PROVINCE_DESK, scopes="risk:verify")
        # Province > city > district: the city's entry nests each district's status.
        found, body = await listed(desk, {flag_id})
        assert found[flag_id]["assignedTo"] == PROVINCE_DESK
        city_entry = entries(body, "flags")[hub_id(CITY)]
        assert city_entry["status"] == "ok"
        assert city_entry["count"] == 1
        nested = {d["source"]: d["status"] for d in city_entry["sources"]}
        assert nested == {hub_id(DISTRICT_A): "ok", hub_id(DISTRICT_B): "ok"}, dumps(body)
        version = found[flag_id]["version"]
        moved = await desk.data(
            MOVE, {"id": flag_id, "to": "ACKNOWLEDGED", "v": version, "note": "省应急 收到"}
        )
        assert moved["transitionFlag"]["transitions"][-1]["org"] == PROVINCE_DESK
        deadline = time.monotonic() + 30.0
        while True:
            state = (await staff.data(AT_NODE, {"id": flag_id}))["node"]
            if state["status"] == "ACKNOWLEDGED" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert state["transitions"][-1] == {
            "status": "ACKNOWLEDGED", "by": PROVINCE_DESK, "note": "省应急 收到",
        }  # fmt: skip
