"""A node over real HTTP: create, filter, page, update, retire, Chinese text."""

from __future__ import annotations

import json
from typing import Any

import httpx
import sqlalchemy as sa

from schema.runtime.db import Database
from schema.runtime.wellknown import SourceKind, WellKnown
from tests.node.conftest import ORG, RunningNode

CREATE_RESOURCE = """
mutation($input: ResourceCreateInput!) {
  createResource(input: $input) { id owner version name kind quantity available unit status
    location { type coordinates } address createdAt updatedAt }
}"""
RESOURCES = """
query($where: ResourceFilter, $first: Int, $after: String, $order: RecordOrder! = CREATED_DESC) {
  resources(where: $where, first: $first, after: $after, orderBy: $order) {
    edges { cursor node { id name available } } pageInfo { hasNextPage endCursor }
  }
}"""


def resource(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "kind": "portable_generator",
        "name": "发电机",
        "quantity": 5,
        "available": 3,
        "unit": "台",
        "location": {"type": "Point", "coordinates": [116.4446, 39.9087]},
    }
    return {**base, **overrides}


async def create(node: RunningNode, **overrides: Any) -> dict[str, Any]:
    data = await node.staff.data(CREATE_RESOURCE, {"input": resource(**overrides)})
    created: dict[str, Any] = data["createResource"]
    return created


async def names(node: RunningNode, where: dict[str, Any]) -> set[str]:
    data = await node.staff.data(RESOURCES, {"where": where, "first": 500})
    return {edge["node"]["name"] for edge in data["resources"]["edges"]}


async def test_create_returns_the_record_with_envelope(node: RunningNode) -> None:
    created = await create(node, name="永安里 5千瓦发电机", address="永安里东街3号院")
    assert created["id"].startswith(f"Resource:{ORG}:")
    assert created["owner"] == ORG
    assert created["version"] == 1
    assert created["name"] == "永安里 5千瓦发电机"
    assert created["address"] == "永安里东街3号院"
    assert created["location"] == {"type": "Point", "coordinates": [116.4446, 39.9087]}
    assert created["status"] == "AVAILABLE"
    assert created["createdAt"].endswith("+00:00")
    fetched = await node.staff.data(
        "query($id: ID!) { node(id: $id) { ... on Resource { id name quantity } } }",
        {"id": created["id"]},
    )
    assert fetched["node"] == {"id": created["id"], "name": "永安里 5千瓦发电机", "quantity": 5}


async def test_each_filter_selects_exactly_the_matching_records(node: RunningNode) -> None:
    await create(
        node,
        name="filter-water-near",
        kind="drinking_water",
        quantity=10,
        available=10,
        unit="箱",
        location={"type": "Point", "coordinates": [116.4450, 39.9090]},
    )
    await create(
        node,
        name="filter-water-far",
        kind="drinking_water",
        quantity=10,
        available=10,
        unit="箱",
        location={"type": "Point", "coordinates": [116.60, 39.99]},
    )
    await create(
        node,
        name="filter-pump-private",
        kind="water_pump",
        shareable=False,
        status="MAINTENANCE",
        location={"type": "Point", "coordinates": [116.4447, 39.9088]},
    )
    ours = {"filter-water-near", "filter-water-far", "filter-pump-private"}

    assert await names(node, {"kinds": ["drinking_water"], "text": "filter-"}) == {
        "filter-water-near",
        "filter-water-far",
    }
    assert await names(node, {"statuses": ["MAINTENANCE"], "text": "filter-"}) == {
        "filter-pump-private"
    }
    assert await names(node, {"shareable": False, "text": "filter-"}) == {"filter-pump-private"}
    near = await names(
        node, {"near": {"lat": 39.9087, "lon": 116.4446, "radiusKm": 1}, "text": "filter-"}
    )
    assert near == {"filter-water-near", "filter-pump-private"}
    box = await names(node, {"bbox": {"west": 116.5, "south": 39.9, "east": 116.7, "north": 40.0}})
    assert box & ours == {"filter-water-far"}
    assert await names(node, {"text": "FILTER-WATER-FAR"}) == {"filter-water-far"}

    data = await node.staff.data(RESOURCES, {"where": {"text": "filter-"}, "first": 1})
    newest = data["resources"]["edges"][0]["node"]["name"]
    assert newest == "filter-pump-private"  # default order: newest first
    future = "2999-01-01T00:00:00+00:00"
    assert await names(node, {"updatedSince": future}) == set()


async def test_chinese_round_trips_and_is_found_by_substring(node: RunningNode) -> None:
    name = "防汛沙袋（永安里东街）🚧"
    created = await create(
        node,
        name=name,
        kind="sandbags",
        quantity=100,
        available=100,
        unit="条",
        description="暴雨红色预警期间优先调配给低洼院落",
    )
    assert created["name"] == name
    assert await names(node, {"text": "沙袋"}) >= {name}
    assert name in await names(node, {"text": "低洼院落"})
    assert name not in await names(node, {"text": "帐篷"})


async def test_update_with_current_version_then_stale_version_is_refused(node: RunningNode) -> None:
    created = await create(node, name="update-target")
    update = """mutation($id: ID!, $input: ResourceUpdateInput!) {
      updateResource(id: $id, input: $input) { version available quantity name } }"""
    data = await node.staff.data(
        update, {"id": created["id"], "input": {"expectedVersion": 1, "available": 1}}
    )
    assert data["updateResource"] == {
        "version": 2,
        "available": 1,
        "quantity": 5,
        "name": "update-target",
    }
    body = await node.staff.post(
        update, {"id": created["id"], "input": {"expectedVersion": 1, "available": 4}}
    )
    assert body["errors"][0]["extensions"]["code"] == "STALE_VERSION"
    assert body["errors"][0]["extensions"]["currentVersion"] == 2
    fetched = await node.staff.data(
        "query($id: ID!) { node(id: $id) { ... on Resource { available version } } }",
        {"id": created["id"]},
    )
    assert fetched["node"] == {"available": 1, "version": 2}


async def test_retire_removes_from_lists_and_node(node: RunningNode) -> None:
    created = await create(node, name="retire-target")
    retire = "mutation($id: ID!) { retireResource(id: $id, expectedVersion: 1) { version } }"
    assert (await node.staff.data(retire, {"id": created["id"]}))["retireResource"]["version"] == 2
    assert "retire-target" not in await names(node, {"text": "retire-target"})
    code = await node.staff.error_code(
        "query($id: ID!) { node(id: $id) { ... on Resource { id } } }", {"id": created["id"]}
    )
    assert code == "NOT_FOUND"


async def test_every_write_is_in_the_audit_log_with_who_made_it(node: RunningNode) -> None:
    created = await create(node, name="audited-target")
    update = """mutation($id: ID!, $input: ResourceUpdateInput!) {
      updateResource(id: $id, input: $input) { version } }"""
    await node.staff.data(
        update, {"id": created["id"], "input": {"expectedVersion": 1, "available": 2}}
    )
    refused = await node.staff.post(
        update, {"id": created["id"], "input": {"expectedVersion": 1, "available": 4}}
    )
    assert refused["errors"][0]["extensions"]["code"] == "STALE_VERSION"
    retire = "mutation($id: ID!) { retireResource(id: $id, expectedVersion: 2) { version } }"
    await node.staff.data(retire, {"id": created["id"]})
    local = created["id"].rsplit(":", 1)[-1]
    db = Database(node.database.url)
    try:
        async with db.sessions() as session:
            rows = (
                await session.execute(
                    sa.text(
                        "SELECT action, owner, record_type, client_id, subject, org, decision"
                        " FROM audit_log WHERE action LIKE 'record.%' ORDER BY seq"
                    )
                )
            ).all()
    finally:
        await db.dispose()
    mine = [r for r in rows if json.loads(r.decision)["id"] == local]
    # The refused update wrote nothing, in the log as in the record.
    assert [(r.action, json.loads(r.decision)["version"]) for r in mine] == [
        ("record.create", 1),
        ("record.update", 2),
        ("record.retire", 3),
    ]
    assert {(r.owner, r.record_type, r.client_id, r.subject, r.org) for r in mine} == {
        (ORG, "Resource", "staff", "staff", ORG)
    }


async def test_other_record_types_are_created_and_listed(node: RunningNode) -> None:
    await node.staff.data(
        """mutation { createShelter(input: {name: "永安里小学体育馆", capacity: 300, occupancy: 40,
        accessible: true, location: {coordinates: [116.4431, 39.9095]}}) { id } }"""
    )
    await node.staff.data(
        """mutation { createIncident(input: {title: "地下车库积水", category: NATURAL_DISASTER,
        severityLevel: IV, affectedPeople: 12}) { id } }"""
    )
    await node.staff.data(
        """mutation { createVolunteer(input: {name: "王秀兰", phone: "13800000001",
        skills: ["急救", "first aid"]}) { id } }"""
    )
    flag = await node.staff.data(
        """mutation { raiseRiskFlag(input: {category: "slope_instability", description: "边坡裂缝",
        location: {coordinates: [116.45, 39.91]}}) { status transitions { status by } } }"""
    )
    assert flag["raiseRiskFlag"] == {
        "status": "RAISED",
        "transitions": [{"status": "RAISED", "by": "staff"}],
    }
    data = await node.staff.data(
        """{ shelters(where: {accessible: true}) { edges { node { name capacity } } }
            incidents(where: {categories: [NATURAL_DISASTER], text: "积水"}) { edges { node { title } } }
            volunteers(where: {skills: ["急救"]}) { edges { node { name skills } } }
            riskFlags(where: {categories: ["slope_instability"]}) { edges { node { description } } } }"""
    )
    assert {"name": "永安里小学体育馆", "capacity": 300} in [
        e["node"] for e in data["shelters"]["edges"]
    ]
    assert [e["node"]["title"] for e in data["incidents"]["edges"]] == ["地下车库积水"]
    assert {"name": "王秀兰", "skills": ["急救", "first aid"]} in [
        e["node"] for e in data["volunteers"]["edges"]
    ]
    assert [e["node"]["description"] for e in data["riskFlags"]["edges"]] == ["边坡裂缝"]


async def test_protocol_endpoints(node: RunningNode) -> None:
    async with httpx.AsyncClient(base_url=node.url, timeout=30.0) as http:
        well_known = WellKnown.model_validate((await http.get("/.well-known/linli-node")).json())
        assert well_known.id == ORG
        assert well_known.kind is SourceKind.COMMUNITY
        assert well_known.division_code == ORG
        assert well_known.district == "110105"
        assert "resources" in well_known.capabilities
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {
            "database": True,
            "migrations": True,
            "database_writable": True,
        }
        metrics = (await http.get("/metrics")).text
        assert 'linli_http_requests_total{path="/healthz"' in metrics.replace('service="node",', "")
