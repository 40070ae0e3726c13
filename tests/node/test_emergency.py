"""Emergency mode at the node: who may declare, expiry by itself, and the audit of both."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import GraphQLClient
from tests.node.conftest import NEIGHBOUR, ORG, RunningNode
from tests.node.issuer import TestIssuer
from tests.node.test_records import create

DECLARE = """mutation($level: SeverityLevel!, $reason: String!, $at: DateTime!) {
  declareEmergency(level: $level, reason: $reason, expiresAt: $at) {
    id level reason active expiresAt declaredByOrg endedAt } }"""
END = "mutation($id: ID!) { endEmergency(id: $id) { id active endedAt endedBy } }"
EMERGENCIES = "{ emergencies { id level active } active: emergencies(activeOnly: true) { id } }"
AUDIT = "{ disclosures(first: 500) { edges { node { action org decision } } } }"
DEPARTMENT = "110105000100"


def _in(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


@pytest.fixture
async def clients(node: RunningNode, issuer: TestIssuer) -> AsyncIterator[dict[str, GraphQLClient]]:
    def client(org: str, kind: str, scope: str, district: str | None = "110105") -> GraphQLClient:
        return GraphQLClient(
            node.url,
            issuer.mint(org=org, aud=ORG, org_kind=kind, scope=scope, district=district),
        )

    made = {
        "department": client(DEPARTMENT, "department", "emergency:declare"),
        "department-no-scope": client(DEPARTMENT, "department", "resources:read"),
        "other-district": client("110106000100", "department", "emergency:declare", "110106"),
        "community": client(ORG, "community", "emergency:declare records:write"),
        "neighbour": client(NEIGHBOUR, "community", "resources:read"),
    }
    yield made
    for one in made.values():
        await one.aclose()


async def test_only_a_department_of_the_district_with_the_scope_may_declare(
    node: RunningNode, clients: dict[str, GraphQLClient]
) -> None:
    before = await node.staff.data(EMERGENCIES)
    variables = {"level": "III", "reason": "暴雨", "at": _in(3600)}
    for who in ("department-no-scope", "other-district", "community", "neighbour"):
        assert await clients[who].error_code(DECLARE, variables) == "FORBIDDEN", who
    body = await clients["department"].post(DECLARE, {**variables, "at": _in(-60)})
    assert body["errors"][0]["extensions"] == {"code": "OUT_OF_RANGE", "field": "expiresAt"}
    body = await clients["department"].post(DECLARE, {**variables, "reason": "  "})
    assert body["errors"][0]["extensions"]["code"] == "STRING_TOO_SHORT"
    assert await node.staff.data(EMERGENCIES) == before  # nothing was declared


async def test_emergency_widens_sharing_and_ends_by_itself_at_its_expiry(
    node: RunningNode, clients: dict[str, GraphQLClient]
) -> None:
    await create(node, name="expiry-generator", quantity=12, available=7)
    query = """{ resources(where: {text: "expiry-generator"}) {
      edges { node { available availableBand { label } } } } }"""

    async def neighbour_sees() -> dict[str, object]:
        edges = (await clients["neighbour"].data(query))["resources"]["edges"]
        assert len(edges) == 1
        node_: dict[str, object] = edges[0]["node"]
        return node_

    assert await neighbour_sees() == {"available": None, "availableBand": {"label": "1-9"}}
    declared = (
        await clients["department"].data(DECLARE, {"level": "IV", "reason": "积水", "at": _in(3)})
    )["declareEmergency"]
    assert declared["active"] is True
    assert declared["declaredByOrg"] == DEPARTMENT
    assert await neighbour_sees() == {"available": 7, "availableBand": {"label": "1-9"}}
    listed = await clients["neighbour"].data(EMERGENCIES)
    assert {"id": declared["id"], "level": "IV", "active": True} in listed["emergencies"]
    assert {"id": declared["id"]} in listed["active"]

    expires = datetime.fromisoformat(declared["expiresAt"])
    await asyncio.sleep(max((expires - datetime.now(UTC)).total_seconds(), 0) + 0.3)

    # No job ran: the emergency is over because its time is.
    assert await neighbour_sees() == {"available": None, "availableBand": {"label": "1-9"}}
    listed = await clients["neighbour"].data(EMERGENCIES)
    assert {"id": declared["id"], "level": "IV", "active": False} in listed["emergencies"]
    assert {"id": declared["id"]} not in listed["active"]


async def test_declaring_and_ending_are_audited(
    node: RunningNode, clients: dict[str, GraphQLClient]
) -> None:
    before = (await node.staff.data(AUDIT))["disclosures"]["edges"]
    declared = (
        await clients["department"].data(
            DECLARE, {"level": "II", "reason": "台风", "at": _in(3600)}
        )
    )["declareEmergency"]
    assert await clients["other-district"].error_code(END, {"id": declared["id"]}) == "FORBIDDEN"
    ended = (await clients["department"].data(END, {"id": declared["id"]}))["endEmergency"]
    assert ended["active"] is False
    assert ended["endedBy"] == f"user@{DEPARTMENT}"
    # Ending again changes nothing and logs nothing.
    again = (await clients["department"].data(END, {"id": declared["id"]}))["endEmergency"]
    assert again["endedAt"] == ended["endedAt"]
    after = (await node.staff.data(AUDIT))["disclosures"]["edges"]
    new = [edge["node"] for edge in after[: len(after) - len(before)]]
    # The refused attempt of another district's department is audited too.
    assert [(e["action"], e["org"]) for e in new] == [
        ("end_emergency", DEPARTMENT),
        ("refuse", "110106000100"),
        ("declare_emergency", DEPARTMENT),
    ]
    assert new[1]["decision"] == {"codes": ["FORBIDDEN"], "paths": ["endEmergency"]}
    assert new[2]["decision"]["level"] == "II"
    assert new[2]["decision"]["emergency"] == declared["id"]
    code = await clients["department"].error_code(END, {"id": "no-such-emergency"})
    assert code == "NOT_FOUND"
