"""The hub over real community nodes: policy per caller, exact for departments, bands for neighbours."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hub.app import MIGRATIONS as HUB_MIGRATIONS
from node.app import MIGRATIONS as NODE_MIGRATIONS
from node.app import create_app as create_node
from node.settings import NodeSettings
from policies.audit import verify_chain
from schema.enums import OrgKind
from tests.conftest import GraphQLClient, ServerThread, _empty_database, free_port, migrate
from tests.hub.federation.conftest import DISTRICT, RunningHub, hub_over, wait_sources_ok

A, B, C, D = "110105001001", "110105001002", "110105001003", "110105001004"
NEIGHBOURS = {A: [B, C], B: [A], C: [A], D: []}
STAFF_SCOPES = "records:write resources:read shelters:read incidents:read"
QUERY = "{ resources(first: 100) { edges { node { id owner name quantity available availableBand { label } address location { coordinates } } } } }"


@dataclass
class District:
    hub: RunningHub
    nodes: dict[str, ServerThread]
    backends: dict[str, str]


@pytest.fixture
async def district(tmp_path: Path) -> AsyncIterator[District]:
    """A hub on PostgreSQL (or SQLite without it), A, B, C on PostgreSQL, D on SQLite."""
    pg = "postgresql" in os.environ.get("LINLI_TEST_BACKENDS", "sqlite,postgresql")
    backends = {
        "hub": "postgresql" if pg else "sqlite",
        A: "postgresql" if pg else "sqlite",
        B: "postgresql" if pg else "sqlite",
        C: "postgresql" if pg else "sqlite",
        D: "sqlite",
    }
    async with _empty_database(backends["hub"], tmp_path / "hub") as hub_db, \
            _empty_database(backends[A], tmp_path / A) as a_db, \
            _empty_database(backends[B], tmp_path / B) as b_db, \
            _empty_database(backends[C], tmp_path / C) as c_db, \
            _empty_database(backends[D], tmp_path / D) as d_db:  # fmt: skip
        urls = {
            code: db.url for code, db in zip((A, B, C, D), (a_db, b_db, c_db, d_db), strict=True)
        }
        await migrate(HUB_MIGRATIONS, hub_db.url)
        for url in urls.values():
            await migrate(NODE_MIGRATIONS, url)
        ports = {code: free_port() for code in urls}
        hub = await hub_over(
            hub_db.url, tmp_path, {c: f"http://127.0.0.1:{p}" for c, p in ports.items()}
        )
        nodes = {}
        for code, url in urls.items():
            settings = NodeSettings(
                database_url=url, org_code=code, org_name=f"社区{code[-1]}", district=DISTRICT,
                neighbours=NEIGHBOURS[code], token_issuer=hub.settings.issuer,
                jwks_url=f"{hub.url}/.well-known/jwks.json",
            )  # fmt: skip
            nodes[code] = ServerThread(create_node(settings), ports[code]).start()
        try:
            yield District(hub, nodes, backends)
        finally:
            for server in nodes.values():
                await asyncio.to_thread(server.stop)
            await hub.stop()


async def staff_client(district: District, code: str, *, audience: str) -> GraphQLClient:
    token = await district.hub.client_token(
        org=code, kind=OrgKind.COMMUNITY, scopes=STAFF_SCOPES, resource=audience
    )
    client = GraphQLClient(
        district.nodes[code].url if audience == code else district.hub.url, token
    )
    district.hub.clients.append(client)
    return client


async def seed(district: District) -> None:
    for code in (A, B, C, D):
        staff = await staff_client(district, code, audience=code)
        await staff.data(
            """mutation($i: ResourceCreateInput!) { createResource(input: $i) { id } }""",
            {
                "i": {
                    "kind": "portable_generator",
                    "name": f"发电机 {code}",
                    "quantity": 37,
                    "available": 37,
                    "unit": "台",
                    "address": "某街1号",
                    "location": {"coordinates": [116.44123, 39.90871]},
                }
            },
        )


def by_owner(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {edge["node"]["owner"]: edge["node"] for edge in data["resources"]["edges"]}


async def test_each_caller_sees_what_each_owner_allows(district: District) -> None:
    await seed(district)
    department = await district.hub.graphql(org="110105400001", kind=OrgKind.DEPARTMENT)
    await wait_sources_ok(department, 4)
    everything = by_owner(await department.data(QUERY))
    assert set(everything) == {A, B, C, D}
    for node in everything.values():
        assert (node["quantity"], node["available"]) == (37, 37)
        assert node["location"]["coordinates"] == [116.44123, 39.90871]

    community_a = await staff_client(district, A, audience=district.hub.settings.hub_id)
    seen = by_owner(await community_a.data(QUERY))
    assert set(seen) == {A, B, C}  # D is no neighbour: the public sees no resources
    assert (seen[A]["quantity"], seen[A]["address"]) == (37, "某街1号")  # its own, exactly
    for neighbour in (B, C):
        assert seen[neighbour]["quantity"] is None
        assert seen[neighbour]["available"] is None
        assert seen[neighbour]["availableBand"] == {"label": "10-49"}
        assert seen[neighbour]["address"] is None
        assert seen[neighbour]["location"]["coordinates"] != [116.44123, 39.90871]  # ~500 m grid


async def test_two_root_fields_report_each_node_once_under_their_own_path(
    district: District,
) -> None:
    await seed(district)
    department = await district.hub.graphql(org="110105400001", kind=OrgKind.DEPARTMENT)
    await wait_sources_ok(department, 4)
    body = await department.post(
        "{ resources { edges { node { owner } } } stock: resources(first: 2) "
        "{ edges { node { owner } } } shelters { edges { node { owner } } } }"
    )
    assert "errors" not in body, body["errors"]
    entries = body["extensions"]["sources"]
    for path in ("resources", "stock", "shelters"):
        counts = {e["source"]: e["count"] for e in entries if e["path"] == [path]}
        owners = [edge["node"]["owner"] for edge in body["data"][path]["edges"]]
        assert counts == {code: owners.count(code) for code in (A, B, C, D)}, path
    assert len(entries) == 12
    assert sum(e["count"] for e in entries if e["path"] == ["stock"]) == 2


async def test_a_node_that_dies_is_served_stale_and_named(district: District) -> None:
    await seed(district)
    department = await district.hub.graphql(org="110105400001", kind=OrgKind.DEPARTMENT)
    await wait_sources_ok(department, 4)
    before = await department.data(QUERY)
    await asyncio.to_thread(district.nodes[B].stop)
    body = await department.post(QUERY)
    reports = {r["source"]: r for r in body["extensions"]["sources"]}
    assert reports[B]["status"] == "stale"
    assert reports[B]["asOf"] is not None
    assert {r["status"] for s, r in reports.items() if s != B} == {"ok"}
    assert by_owner(body["data"]) == by_owner(before)
    assert [e["extensions"]["source"] for e in body["errors"]] == [B]
    incidents = await department.post("{ incidents { edges { node { id } } } }")
    reports = {r["source"]: r for r in incidents["extensions"]["sources"]}
    assert reports[B]["status"] in ("unavailable", "error")  # incidents are never served stale


async def test_an_emergency_declared_at_the_hub_widens_sharing_at_every_node(
    district: District,
) -> None:
    await seed(district)
    office = await district.hub.graphql(
        org="110105400001", kind=OrgKind.DEPARTMENT, scopes="resources:read emergency:declare"
    )
    await wait_sources_ok(office, 4)
    community_a = await staff_client(district, A, audience=district.hub.settings.hub_id)
    assert by_owner(await community_a.data(QUERY))[B]["quantity"] is None
    expires = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    declared = await office.data(
        """mutation($e: DateTime!) { declareEmergency(area: ["110105001"], level: II,
             reason: "暴雨红色预警", expiresAt: $e) { source status emergencyId active message } }""",
        {"e": expires},
    )
    answers = {a["source"]: a for a in declared["declareEmergency"]}
    assert set(answers) == {A, B, C, D}
    assert all(
        a["status"] == "ok" and a["active"] and a["emergencyId"] for a in answers.values()
    ), [a["message"] for a in answers.values()]
    seen = by_owner(await community_a.data(QUERY))
    assert seen[B]["quantity"] == 37  # neighbours see exact stock while the emergency lasts
    ended = await office.data(
        "mutation($s: String!, $id: ID!) { endEmergency(source: $s, id: $id) { status active } }",
        {"s": B, "id": answers[B]["emergencyId"]},
    )
    assert ended["endEmergency"] == {"status": "ok", "active": False}
    assert by_owner(await community_a.data(QUERY))[B]["quantity"] is None
    community = await staff_client(district, C, audience=district.hub.settings.hub_id)
    assert (
        await community.error_code(
            'mutation { declareEmergency(area: ["110105"], level: IV, reason: "x", '
            'expiresAt: "2099-01-01T00:00:00+00:00") { source } }'
        )
        == "FORBIDDEN"
    )


async def test_the_hub_audits_what_it_relays_and_owners_can_read_it(district: District) -> None:
    await seed(district)
    department = await district.hub.graphql(org="110105400001", kind=OrgKind.DEPARTMENT)
    await wait_sources_ok(department, 4)
    await department.post(QUERY)
    owner_b = GraphQLClient(
        district.hub.url,
        await district.hub.client_token(org=B, kind=OrgKind.COMMUNITY, scopes="audit:read"),
    )
    district.hub.clients.append(owner_b)
    rows = (
        await owner_b.data(
            "{ hubDisclosures { edges { node { action owner recordType count org purpose } } } }"
        )
    )["hubDisclosures"]["edges"]
    assert [r["node"] for r in rows] == [
        {
            "action": "relay",
            "owner": B,
            "recordType": "Resource",
            "count": 1,
            "org": "110105400001",
            "purpose": "",
        }
    ]
    no_scope = await staff_client(district, C, audience=district.hub.settings.hub_id)
    assert await no_scope.error_code("{ hubDisclosures { edges { cursor } } }") == "FORBIDDEN"
    report = await verify_chain(district.hub.db_url)
    assert report.first_bad is None
    assert report.rows >= 4
