"""Hierarchical federation over real servers: a city hub over two district hubs over two nodes each."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from schema.enums import OrgKind
from tests.conftest import BACKENDS, GraphQLClient
from tests.hub.federation.conftest import wait_sources_ok
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

A1, A2 = NODES[DISTRICT_A]
B1, B2 = NODES[DISTRICT_B]
RESOURCES = (
    "query($first: Int, $after: String) { resources(first: $first, after: $after) {"
    " edges { cursor node { id owner name quantity available availableBand { label } } }"
    " pageInfo { hasNextPage endCursor } } }"
)


@pytest.fixture(params=BACKENDS)
async def city(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Hierarchy]:
    async with hierarchy(tmp_path, request.param) as built:
        yield built


async def wait_nested_ok(client: GraphQLClient, count: int) -> None:
    """Wait (up to 30 s) until the hubs below and ``count`` nodes under them answer."""
    deadline = time.monotonic() + 30.0
    while True:
        body = await client.post(RESOURCES, {"first": 1})
        nodes = [
            nested
            for entry in body.get("extensions", {}).get("sources", [])
            for nested in entry.get("sources") or []
            if nested["status"] == "ok"
        ]
        if len(nodes) >= count:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"nodes not ok below: {dumps(body)}")
        await asyncio.sleep(0.2)


async def all_pages(client: GraphQLClient, first: int) -> list[dict[str, Any]]:
    """Every record of ``resources``, following ``endCursor`` ``first`` at a time."""
    records: list[dict[str, Any]] = []
    after = None
    for _ in range(50):
        page = (await client.data(RESOURCES, {"first": first, "after": after}))["resources"]
        records += [edge["node"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            return records
        after = page["pageInfo"]["endCursor"]
    raise AssertionError("paging did not end")


async def test_a_city_department_sees_what_each_community_shows_its_superiors(
    city: Hierarchy,
) -> None:
    await city.seed()
    department = await city.department(CITY)
    await wait_sources_ok(department, 2)
    await wait_nested_ok(department, 4)

    body = await department.post(RESOURCES, {"first": 100})
    assert "errors" not in body, dumps(body)
    by_owner: dict[str, list[dict[str, Any]]] = {}
    for edge in body["data"]["resources"]["edges"]:
        by_owner.setdefault(edge["node"]["owner"], []).append(edge["node"])
    # B2 shows its superiors no records (the baseline); the others chose to.
    assert {owner: len(nodes) for owner, nodes in by_owner.items()} == {A1: 2, A2: 2, B1: 2}
    for node in by_owner[A1]:  # A1 shows exact quantities
        assert (node["quantity"], node["available"]) == (37, 37)
    for owner in (A2, B1):  # the baseline's bands for the rest
        for node in by_owner[owner]:
            assert (node["quantity"], node["available"]) == (None, None)
            assert node["availableBand"] == {"label": "10-49"}

    # Per district, per node: nested status, counting what the page holds.
    top = entries(body, "resources")
    assert set(top) == {hub_id(DISTRICT_A), hub_id(DISTRICT_B)}
    assert top[hub_id(DISTRICT_A)]["status"] == "ok"
    assert top[hub_id(DISTRICT_A)]["count"] == 4
    assert top[hub_id(DISTRICT_B)]["count"] == 2
    nested = {
        district: {e["source"]: e for e in top[hub_id(district)]["sources"]}
        for district in (DISTRICT_A, DISTRICT_B)
    }
    assert set(nested[DISTRICT_A]) == {A1, A2}
    assert set(nested[DISTRICT_B]) == {B1, B2}
    assert {e["status"] for n in nested.values() for e in n.values()} == {"ok"}
    assert nested[DISTRICT_B][B1]["count"] == 2
    assert nested[DISTRICT_B][B2]["count"] == 0

    # The district's own department sees every record of its district exactly.
    district = await city.department(DISTRICT_B)
    own = await district.data(RESOURCES, {"first": 100})
    assert sorted(e["node"]["owner"] for e in own["resources"]["edges"]) == [B1, B1, B2, B2]
    assert {e["node"]["quantity"] for e in own["resources"]["edges"]} == {37}

    # Cursors page through every record exactly once, the district's cursor nested in the city's.
    everything = sorted(n["id"] for nodes in by_owner.values() for n in nodes)
    for first in (1, 2, 4):
        paged = [n["id"] for n in await all_pages(department, first)]
        assert sorted(paged) == everything, first


async def test_a_district_hub_down_leaves_the_other_and_marks_it(city: Hierarchy) -> None:
    await city.seed()
    department = await city.department(CITY)
    await wait_nested_ok(department, 4)
    await department.data(RESOURCES, {"first": 100})  # the last good answer, kept
    await city.stop_hub(DISTRICT_B)

    body = await department.post(RESOURCES, {"first": 100})
    owners = sorted(e["node"]["owner"] for e in body["data"]["resources"]["edges"])
    assert owners == [A1, A1, A2, A2, B1, B1], dumps(body)  # B1's from the stale answer
    top = entries(body, "resources")
    assert top[hub_id(DISTRICT_A)]["status"] == "ok"
    assert top[hub_id(DISTRICT_B)]["status"] == "stale"
    assert top[hub_id(DISTRICT_B)]["asOf"]
    named = [e for e in body["errors"] if e["extensions"].get("source") == hub_id(DISTRICT_B)]
    assert [e["extensions"]["code"] for e in named] == ["SOURCE_STALE"]

    # Incidents are not served stale: the down district is marked, the other answers.
    incidents = await department.post("{ incidents { edges { node { id } } } }")
    marked = entries(incidents, "incidents")
    assert marked[hub_id(DISTRICT_A)]["status"] == "ok"
    assert marked[hub_id(DISTRICT_B)]["status"] in ("unavailable", "timeout")
    assert incidents["data"]["incidents"] == {"edges": []}


async def test_district_hubs_accept_the_city_issuer_only_for_their_own_audience(
    city: Hierarchy,
) -> None:
    district_a = city.hubs[DISTRICT_A]
    # A token of the city's issuer, meant for district B.
    for_b = await city.hubs[CITY].client_token(
        org="110100400009", kind=OrgKind.DEPARTMENT, scopes="resources:read", district=CITY,
        resource=hub_id(DISTRICT_B),
    )  # fmt: skip
    # A token of district B's issuer: district A does not trust its sibling.
    sibling = await city.hubs[DISTRICT_B].client_token(
        org="110106400009", kind=OrgKind.DEPARTMENT, scopes="resources:read", district=DISTRICT_B
    )
    async with httpx.AsyncClient(timeout=30.0) as http:

        async def reason(url: str, token: str) -> tuple[int, str]:
            response = await http.post(
                f"{url}/graphql",
                json={"query": "{ resources { edges { node { id } } } }"},
                headers={"Authorization": f"Bearer {token}"},
            )
            return response.status_code, response.json()["errors"][0]["extensions"]["reason"]

        assert await reason(district_a.url, for_b) == (401, "TOKEN_AUDIENCE_INVALID")
        assert await reason(district_a.url, sibling) == (401, "TOKEN_ISSUER_INVALID")
        # The same city token is good at district B, whose audience it names.
        response = await http.post(
            f"{city.hubs[DISTRICT_B].url}/graphql",
            json={"query": "{ resources { edges { node { id } } } }"},
            headers={"Authorization": f"Bearer {for_b}"},
        )
        assert response.status_code == 200
        assert "data" in response.json()


async def test_registration_loops_are_refused(city: Hierarchy) -> None:
    department = await city.department(CITY)
    await wait_sources_ok(department, 2)
    city_hub = city.hubs[CITY]
    add = "mutation($id: String!, $url: String!) { addSource(id: $id, url: $url) { id status } }"
    # The city registering itself.
    assert (
        await department.error_code(add, {"id": hub_id(CITY), "url": city_hub.url})
        == "FEDERATION_LOOP"
    )
    # District A registering the city, which federates it: a loop through another hub.
    below = await city.department(DISTRICT_A)
    body = await below.post(add, {"id": hub_id(CITY), "url": city_hub.url})
    assert body["errors"][0]["extensions"]["code"] == "FEDERATION_LOOP", dumps(body)
    sources = (await below.data("{ sources { id } }"))["sources"]
    assert hub_id(CITY) not in {s["id"] for s in sources}  # nothing half-registered


@pytest.mark.parametrize("backend", BACKENDS)
async def test_three_levels_and_the_chain_of_actors(tmp_path: Path, backend: str) -> None:
    async with hierarchy(tmp_path, backend, province=True) as built:
        await built.seed()
        department = await built.department(PROVINCE)
        await wait_sources_ok(department, 1)
        deadline = time.monotonic() + 30.0
        while True:
            body = await department.post(RESOURCES, {"first": 100})
            city_entry = entries(body, "resources").get(hub_id(CITY), {})
            leaves = [
                leaf["status"]
                for district in city_entry.get("sources") or []
                for leaf in district.get("sources") or []
            ]
            if leaves.count("ok") == 4 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert leaves == ["ok"] * 4, dumps(body)
        owners = sorted(e["node"]["owner"] for e in body["data"]["resources"]["edges"])
        assert owners == [A1, A1, A2, A2, B1, B1]  # a province is a superior as a city is
        assert {d["source"] for d in city_entry["sources"]} == {
            hub_id(DISTRICT_A),
            hub_id(DISTRICT_B),
        }
        paged = sorted(n["id"] for n in await all_pages(department, 2))
        assert paged == sorted(e["node"]["id"] for e in body["data"]["resources"]["edges"])


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_chain_of_actors_longer_than_a_district_accepts(
    tmp_path: Path, backend: str
) -> None:
    # Province > city > district: the district gets a token naming two actors (city, province).
    async with hierarchy(
        tmp_path, backend, province=True, district_settings={"max_actor_chain": 1}
    ) as built:
        department = await built.department(PROVINCE)
        await wait_sources_ok(department, 1)
        deadline = time.monotonic() + 30.0
        while True:
            body = await department.post(RESOURCES, {"first": 100})
            city_entry = entries(body, "resources").get(hub_id(CITY), {})
            districts = {d["source"]: d for d in city_entry.get("sources") or []}
            if len(districts) == 2 and all(d["status"] == "denied" for d in districts.values()):
                break
            assert time.monotonic() < deadline, dumps(body)
            await asyncio.sleep(0.2)
        for district in districts.values():
            assert "ACTOR_CHAIN_TOO_LONG" in district["error"], dumps(body)
        assert body["data"]["resources"]["edges"] == []
        # A city department's token names one actor (the city): the districts accept it.
        city_department = await built.department(CITY)
        await wait_nested_ok(city_department, 0)
        answer = await city_department.post(RESOURCES, {"first": 1})
        assert {e["status"] for e in entries(answer, "resources").values()} == {"ok"}


AGGREGATES = "{ aggregates { totals { recordType area kind status count quantity available } } }"


def resource_totals(data: dict[str, Any]) -> dict[str, tuple[int, int, int]]:
    return {
        t["area"]: (t["count"], t["quantity"], t["available"])
        for t in data["aggregates"]["totals"]
        if t["recordType"] == "Resource"
    }


@pytest.mark.parametrize("backend", BACKENDS)
async def test_totals_travel_up_summed_at_each_level_as_each_owner_allows(
    tmp_path: Path, backend: str
) -> None:
    async with hierarchy(tmp_path, backend, province=True) as built:
        await built.seed()
        province = await built.department(PROVINCE)
        city = await built.department(CITY)
        district_b = await built.department(DISTRICT_B)
        await wait_nested_ok(city, 4)
        # B2 keeps its resources out of its superiors' totals; its district counts them.
        expected_up = {DISTRICT_A: (4, 148, 148), DISTRICT_B: (2, 74, 74)}
        assert resource_totals(await city.data(AGGREGATES)) == expected_up
        assert resource_totals(await district_b.data(AGGREGATES)) == {DISTRICT_B: (4, 148, 148)}
        deadline = time.monotonic() + 30.0
        while True:
            body = await province.post(AGGREGATES)
            if "errors" not in body or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert resource_totals(body["data"]) == expected_up, dumps(body)
        city_entry = entries(body, "aggregates")[hub_id(CITY)]
        assert {d["source"] for d in city_entry["sources"]} == {
            hub_id(DISTRICT_A),
            hub_id(DISTRICT_B),
        }
        # B2's records stay hidden from the city while B1's show (in bands).
        shown = await city.data(RESOURCES, {"first": 100})
        assert B2 not in {e["node"]["owner"] for e in shown["resources"]["edges"]}


RAISE = """mutation ($i: RiskFlagCreateInput!) { raiseRiskFlag(input: $i) { id } }"""
MOVE = """mutation ($id: ID!, $to: RiskFlagStatus!, $v: Int!, $note: String) {
  transitionFlag(id: $id, to: $to, expectedVersion: $v, note: $note) { status version } }"""
AT_NODE = """query ($id: ID!) { node(id: $id) { ... on RiskFlag {
  status assignedTo transitions { status by note } } } }"""
CITY_DESK = f"{CITY}400001"
# Gas leaks go to the city's gas department; the district keeps everything else.
ROUTING = f"""
[[routes]]
category = "gas_leak"
area = ""
department = "{CITY_DESK}"
ack_deadline_s = 600
escalate_to = "{CITY_DESK}"
"""


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_flag_routed_to_a_city_department_and_the_node_sees_the_city_steps(
    tmp_path: Path, backend: str
) -> None:
    routing = tmp_path / "routing.toml"
    routing.write_text(ROUTING, "utf-8")
    async with hierarchy(
        tmp_path, backend, district_settings={"routing_file": routing}, deliver_flags=True
    ) as built:
        token = await built.hubs[DISTRICT_A].client_token(
            org=A1, kind=OrgKind.COMMUNITY, scopes="risk:flag incidents:read", district=DISTRICT_A,
            resource=A1,
        )  # fmt: skip
        staff = GraphQLClient(built.nodes[A1].url, token)
        built.clients.append(staff)
        raised = await staff.data(
            RAISE,
            {
                "i": {
                    "category": "gas_leak",
                    "description": "燃气味 Gas smell in building 3",
                    "location": {"coordinates": [116.4435, 39.9087]},
                    "estimatedSeverity": "II",
                }
            },
        )
        flag_id = raised["raiseRiskFlag"]["id"]
        # The city department works the flag at district A's hub with a token of the city's
        # issuer for that hub's audience: the same inbox, workflow and way back to the node.
        city_token = await built.hubs[CITY].client_token(
            org=CITY_DESK, kind=OrgKind.DEPARTMENT, scopes="risk:verify", district=CITY,
            resource=hub_id(DISTRICT_A),
        )  # fmt: skip
        city_desk = GraphQLClient(built.hubs[DISTRICT_A].url, city_token)
        built.clients.append(city_desk)
        deadline = time.monotonic() + 30.0
        while True:
            body = await city_desk.post(
                "query($id: ID!) { flag(id: $id) { status version assignedTo } }", {"id": flag_id}
            )
            flag = (body.get("data") or {}).get("flag")
            if flag is not None and flag["status"] == "ROUTED":
                break
            assert time.monotonic() < deadline, dumps(body)
            await asyncio.sleep(0.2)
        assert flag["assignedTo"] == CITY_DESK
        version = flag["version"]
        for step, to in enumerate(("ACKNOWLEDGED", "VERIFYING", "CONFIRMED", "RESOLVED")):
            moved = await city_desk.data(
                MOVE, {"id": flag_id, "to": to, "v": version + step, "note": f"市燃气 {to}"}
            )
            assert moved["transitionFlag"]["status"] == to
        # A district department is not the assigned one: it cannot move the city's flag.
        district_desk = await built.department(DISTRICT_A)
        refused = await district_desk.post(
            MOVE, {"id": flag_id, "to": "RESOLVED", "v": version + 4, "note": None}
        )
        assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"

        deadline = time.monotonic() + 30.0
        while True:
            state = (await staff.data(AT_NODE, {"id": flag_id}))["node"]
            if state["status"] == "RESOLVED" or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        assert state["assignedTo"] == CITY_DESK
        steps = [(t["status"], t["note"]) for t in state["transitions"]]
        assert [s for s, _ in steps] == [
            "RAISED", "ROUTED", "ACKNOWLEDGED", "VERIFYING", "CONFIRMED", "RESOLVED",
        ]  # fmt: skip
        assert steps[-1][1] == "市燃气 RESOLVED"
