"""Purposes come from the node's code list: only a listed one unlocks personal data."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from node.app import MIGRATIONS, create_app
from node.settings import NodeSettings
from tests.conftest import DatabaseUnderTest, GraphQLClient, ServerThread, migrate
from tests.node.issuer import ALL_READ_SCOPES, DISTRICT, TestIssuer

ORG = "110105001001"
DEPARTMENT = "110105000100"
# Not the default list: "flood-pumping" is only here, "rescue" only there.
PURPOSES = {"flood-pumping": "排涝 Flood pumping", "medical": "医疗救护 Medical care"}
VOLUNTEERS = "{ volunteers(first: 10) { edges { node { id name phone skills } } } }"
DISCLOSURES = "{ disclosures(first: 50) { edges { node { action recordType org purpose } } } }"


@dataclass
class PurposeNode:
    url: str
    staff: GraphQLClient
    department: GraphQLClient  # volunteers:read pii:read, during a declared emergency


@pytest.fixture(scope="module")
async def purpose_node(
    database: DatabaseUnderTest, issuer: TestIssuer
) -> AsyncIterator[PurposeNode]:
    await migrate(MIGRATIONS, database.url)
    settings = NodeSettings(
        database_url=database.url,
        org_code=ORG,
        district=DISTRICT,
        token_issuer=issuer.issuer,
        jwks_url=issuer.jwks_url,
        purposes=PURPOSES,
    )
    server = ServerThread(create_app(settings)).start()
    staff = GraphQLClient(
        server.url,
        issuer.mint(org=ORG, aud=ORG, scope=f"records:write audit:read {ALL_READ_SCOPES}"),
    )
    department = GraphQLClient(
        server.url,
        issuer.mint(
            org=DEPARTMENT,
            aud=ORG,
            org_kind="department",
            scope=f"emergency:declare {ALL_READ_SCOPES}",
        ),
    )
    try:
        await staff.data(
            """mutation { createVolunteer(input: {name: "王秀兰", phone: "13800000001",
            skills: ["急救"], team: "一队"}) { id } }"""
        )
        await department.data(
            """mutation($at: DateTime!) { declareEmergency(level: II, reason: "特大暴雨",
            expiresAt: $at) { id } }""",
            {"at": (datetime.now(UTC) + timedelta(hours=1)).isoformat()},
        )
        yield PurposeNode(server.url, staff, department)
    finally:
        await staff.aclose()
        await department.aclose()
        server.stop()


async def _read(client: GraphQLClient, purpose: str | None) -> tuple[int, dict[str, Any]]:
    headers = {} if purpose is None else {"X-Linli-Purpose": purpose}
    response = await client.http.post("/graphql", json={"query": VOLUNTEERS}, headers=headers)
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def _audit_rows(node: PurposeNode) -> list[dict[str, Any]]:
    data = await node.staff.data(DISCLOSURES)
    return [edge["node"] for edge in data["disclosures"]["edges"]]


async def test_a_listed_purpose_unlocks_personal_data(purpose_node: PurposeNode) -> None:
    status, body = await _read(purpose_node.department, "flood-pumping")
    assert status == 200
    (volunteer,) = [edge["node"] for edge in body["data"]["volunteers"]["edges"]]
    assert (volunteer["name"], volunteer["phone"]) == ("王秀兰", "13800000001")
    assert (await _audit_rows(purpose_node))[0]["purpose"] == "flood-pumping"


async def test_no_purpose_shows_no_personal_data(purpose_node: PurposeNode) -> None:
    status, body = await _read(purpose_node.department, None)
    assert status == 200
    (volunteer,) = [edge["node"] for edge in body["data"]["volunteers"]["edges"]]
    assert (volunteer["name"], volunteer["phone"], volunteer["skills"]) == (None, None, ["急救"])


@pytest.mark.parametrize(
    "stated",
    [
        ".",  # any non-empty text used to unlock personal data
        "rescue",  # in the default list, not in this node's
        "Flood-Pumping",  # codes are exact
        "flood pumping for building 6",
    ],
)
async def test_an_unknown_purpose_is_refused_naming_the_allowed_codes(
    purpose_node: PurposeNode, stated: str
) -> None:
    before = await _audit_rows(purpose_node)
    status, body = await _read(purpose_node.department, stated)
    assert status == 400
    assert "data" not in body  # refused before execution
    (error,) = body["errors"]
    assert error["extensions"] == {
        "code": "PURPOSE_UNKNOWN",
        "field": "X-Linli-Purpose",
        "allowed": ["flood-pumping", "medical"],
    }
    assert error["message"] == (
        f"X-Linli-Purpose {stated!r} is not a known purpose; use one of: flood-pumping, medical"
    )
    assert await _audit_rows(purpose_node) == before  # nothing was read, nothing written
