"""Every bad input gets a stable error code, and nothing is written."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.node.conftest import ORG, RunningNode
from tests.node.test_records import CREATE_RESOURCE, RESOURCES, create, names, resource


async def count_resources(node: RunningNode) -> int:
    total, after = 0, None
    while True:
        data = await node.staff.data(RESOURCES, {"first": 500, "after": after})
        total += len(data["resources"]["edges"])
        if not data["resources"]["pageInfo"]["hasNextPage"]:
            return total
        after = data["resources"]["pageInfo"]["endCursor"]


BAD_RESOURCES: list[tuple[str, dict[str, Any], str]] = [
    ("unknown kind", {"kind": "unicorn_horn"}, "UNKNOWN_RESOURCE_KIND"),
    ("negative quantity", {"quantity": -1, "available": 0}, "OUT_OF_RANGE"),
    ("negative available", {"available": -3}, "OUT_OF_RANGE"),
    ("available over total", {"quantity": 2, "available": 3}, "AVAILABLE_EXCEEDS_QUANTITY"),
    (
        "latitude out of range",
        {"location": {"type": "Point", "coordinates": [116.4, 91.0]}},
        "INVALID_GEOMETRY",
    ),
    (
        "longitude out of range",
        {"location": {"type": "Point", "coordinates": [181.0, 39.9]}},
        "INVALID_GEOMETRY",
    ),
    (
        "not a point",
        {"location": {"type": "Polygon", "coordinates": [116.4, 39.9]}},
        "INVALID_GEOMETRY",
    ),
    ("one coordinate", {"location": {"type": "Point", "coordinates": [116.4]}}, "INVALID_GEOMETRY"),
    ("name too long", {"name": "长" * 201}, "STRING_TOO_LONG"),
    ("empty name", {"name": "   "}, "STRING_TOO_SHORT"),
    ("description too long", {"description": "x" * 4001}, "STRING_TOO_LONG"),
]


@pytest.mark.parametrize(
    ("case", "overrides", "code"), BAD_RESOURCES, ids=[c[0] for c in BAD_RESOURCES]
)
async def test_bad_resource_is_refused_with_code_and_nothing_written(
    node: RunningNode, case: str, overrides: dict[str, Any], code: str
) -> None:
    before = await count_resources(node)
    body = await node.staff.post(CREATE_RESOURCE, {"input": resource(**overrides)})
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == code, body["errors"]
    assert body["errors"][0]["extensions"]["field"].startswith("input.")
    assert await count_resources(node) == before


GRAPHQL_LEVEL: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "unknown enum",
        "mutation($i: ResourceCreateInput!) { createResource(input: $i) { id } }",
        {"i": resource(status="BROKEN")},
        "GRAPHQL_VALIDATION_FAILED",
    ),
    (
        "non-numeric quantity",
        "mutation($i: ResourceCreateInput!) { createResource(input: $i) { id } }",
        {"i": resource(quantity="lots")},
        "GRAPHQL_VALIDATION_FAILED",
    ),
    ("malformed document", "mutation { createResource(input: {", {}, "GRAPHQL_PARSE_FAILED"),
    (
        "unknown field",
        "{ resources { edges { node { colour } } } }",
        {},
        "GRAPHQL_VALIDATION_FAILED",
    ),
    (
        "page size over cap",
        "{ resources(first: 501) { edges { cursor } } }",
        {},
        "PAGE_SIZE_TOO_LARGE",
    ),
    (
        "forged cursor",
        '{ resources(after: "bm90LWEtY3Vyc29y") { edges { cursor } } }',
        {},
        "INVALID_CURSOR",
    ),
    ("malformed id", '{ node(id: "not an id") { __typename } }', {}, "INVALID_ID"),
    (
        "unknown id",
        '{ node(id: "Resource:110105001001:doesnotexist") { __typename } }',
        {},
        "NOT_FOUND",
    ),
    ("foreign id", '{ node(id: "Resource:110105001002:abc") { __typename } }', {}, "NOT_FOUND"),
    (
        "radius out of range",
        "{ resources(where: {near: {lat: 39.9, lon: 116.4, radiusKm: -1}}) { edges { cursor } } }",
        {},
        "OUT_OF_RANGE",
    ),
    (
        "bbox upside down",
        "{ resources(where: {bbox: {west: 117, south: 39, east: 116, north: 40}}) { edges { cursor } } }",
        {},
        "INVALID_GEOMETRY",
    ),
    (
        "NUL in a string literal",  # PostgreSQL's text cannot store it: this answered INTERNAL
        'mutation { createResource(input: {kind: "portable_generator", name: "a\\u0000b",'
        ' quantity: 1, available: 1, unit: "台"}) { id } }',
        {},
        "NUL_CHARACTER",
    ),
    (
        "NUL in a filter",
        '{ resources(where: {text: "\\u0000"}) { edges { cursor } } }',
        {},
        "NUL_CHARACTER",
    ),
    (
        "1e400 in a literal",
        "{ resources(where: {near: {lat: 39.9, lon: 1e400, radiusKm: 1}}) { edges { cursor } } }",
        {},
        "NON_FINITE_NUMBER",
    ),
    (
        "a time without zone",  # it reached the UTC column and answered INTERNAL
        'mutation { createIncident(input: {category: NATURAL_DISASTER, title: "积水",'
        ' reportedAt: "2026-05-08T16:09:16"}) { id } }',
        {},
        "INVALID_DATETIME",
    ),
    (
        "too deep",
        "{ alerts { edges { node { infos { areas { geometry { coordinates } } } } } } }",
        {},
        None,
    ),  # depth 7: allowed; checks that legitimate deep reads pass
]


@pytest.mark.parametrize(
    ("case", "query", "variables", "code"), GRAPHQL_LEVEL, ids=[c[0] for c in GRAPHQL_LEVEL]
)
async def test_graphql_level_errors_have_codes(
    node: RunningNode, case: str, query: str, variables: dict[str, Any], code: str | None
) -> None:
    before = await count_resources(node)
    body = await node.staff.post(query, variables)
    if code is None:
        assert "errors" not in body
    else:
        assert body["errors"][0]["extensions"]["code"] == code, body
    assert await count_resources(node) == before


async def test_stale_version_changes_nothing(node: RunningNode) -> None:
    created = await create(node, name="stale-check", quantity=5, available=5)
    update = "mutation($id: ID!, $i: ResourceUpdateInput!) { updateResource(id: $id, input: $i) { version } }"
    await node.staff.data(
        update, {"id": created["id"], "i": {"expectedVersion": 1, "available": 4}}
    )
    code = await node.staff.error_code(
        update, {"id": created["id"], "i": {"expectedVersion": 1, "available": 0}}
    )
    assert code == "STALE_VERSION"
    invalid = await node.staff.error_code(
        update, {"id": created["id"], "i": {"expectedVersion": 2, "available": 6}}
    )
    assert invalid == "AVAILABLE_EXCEEDS_QUANTITY"
    data = await node.staff.data(
        "query($id: ID!) { node(id: $id) { ... on Resource { available version } } }",
        {"id": created["id"]},
    )
    assert data["node"] == {"available": 4, "version": 2}


async def test_concurrent_updates_one_wins_the_others_learn_the_stored_version(
    node: RunningNode,
) -> None:
    created = await create(node, name="race-check", quantity=50, available=50)
    update = "mutation($id: ID!, $i: ResourceUpdateInput!) { updateResource(id: $id, input: $i) { version } }"
    bodies = await asyncio.gather(
        *(
            node.staff.post(
                update, {"id": created["id"], "i": {"expectedVersion": 1, "available": n}}
            )
            for n in range(8)
        )
    )
    won = [b for b in bodies if b.get("data")]
    lost = [b["errors"][0]["extensions"] for b in bodies if b.get("errors")]
    assert len(won) == 1
    assert won[0]["data"]["updateResource"]["version"] == 2
    # A client retrying with currentVersion must get through: it is the stored one, never 1.
    assert lost
    assert {(e["code"], e["currentVersion"]) for e in lost} == {("STALE_VERSION", 2)}


async def test_update_of_unknown_id_is_not_found(node: RunningNode) -> None:
    update = "mutation($id: ID!, $i: ResourceUpdateInput!) { updateResource(id: $id, input: $i) { version } }"
    code = await node.staff.error_code(
        update, {"id": f"Resource:{ORG}:nosuchrecord", "i": {"expectedVersion": 1}}
    )
    assert code == "NOT_FOUND"


async def test_oversized_body_is_refused_before_parsing(node: RunningNode) -> None:
    before = await count_resources(node)
    huge = resource(description="x" * 70_000)
    async with httpx.AsyncClient(base_url=node.url, timeout=30.0) as http:
        response = await http.post(
            "/graphql",
            json={"query": CREATE_RESOURCE, "variables": {"input": huge}},
            headers={"Authorization": "Bearer staff-token-0123456789abcdef"},
        )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "BODY_TOO_LARGE"
    assert await count_resources(node) == before


async def test_missing_or_unknown_token_is_unauthenticated(node: RunningNode) -> None:
    async with httpx.AsyncClient(base_url=node.url, timeout=30.0) as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
            response = await http.post(
                "/graphql", json={"query": "{ resourceKinds { code } }"}, headers=headers
            )
            assert response.status_code == 401
            assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
            assert response.headers["www-authenticate"] == "Bearer"


async def test_writes_need_own_org_and_scope(node: RunningNode) -> None:
    before = await count_resources(node)
    assert await node.neighbour.error_code(CREATE_RESOURCE, {"input": resource()}) == "FORBIDDEN"
    assert await node.reader.error_code(CREATE_RESOURCE, {"input": resource()}) == "FORBIDDEN"
    assert await count_resources(node) == before


async def test_batch_requests_are_refused(node: RunningNode) -> None:
    async with httpx.AsyncClient(base_url=node.url, timeout=30.0) as http:
        response = await http.post(
            "/graphql",
            json=[{"query": "{ resourceKinds { code } }"}, {"query": "{ resourceKinds { code } }"}],
            headers={"Authorization": "Bearer staff-token-0123456789abcdef"},
        )
    assert response.status_code == 400


STAFF = {"Authorization": "Bearer staff-token-0123456789abcdef"}
CREATE_BODY = json.dumps(
    {"query": CREATE_RESOURCE, "variables": {"input": resource(name="未写入")}}, ensure_ascii=False
)
MALFORMED_BODIES: list[tuple[str, bytes, int, str]] = [
    ("nested 20,000 deep", b'{"query": "{ resourceKinds { code } }", "variables": ' + b"[" * 20_000 + b"]" * 20_000 + b"}", 400, "JSON_TOO_DEEP"),
    ("invalid UTF-8", CREATE_BODY.encode()[:-40] + b"\xff\xfe" + CREATE_BODY.encode()[-40:], 400, "INVALID_UTF8"),
    ("lone surrogate", CREATE_BODY.replace("未写入", "\\ud800").encode(), 400, "INVALID_UNICODE"),
    ("NUL in a variable", CREATE_BODY.replace("未写入", "a\\u0000b").encode(), 400, "NUL_CHARACTER"),
    ("1e400", CREATE_BODY.replace('"quantity": 5', '"quantity": 1e400').encode(), 400, "NON_FINITE_NUMBER"),
    ("NaN", CREATE_BODY.replace('"quantity": 5', '"quantity": NaN').encode(), 400, "NON_FINITE_NUMBER"),
    ("not JSON", CREATE_BODY.encode()[:-1], 400, "INVALID_JSON"),
    ("a JSON number", b"42", 400, "INVALID_REQUEST"),
    # Strawberry's own refusals answered plain text without a code.
    ("query not a string", b'{"query": 5}', 400, "INVALID_REQUEST"),
    ("variables not an object", b'{"query": "{ resourceKinds { code } }", "variables": "x"}', 400, "INVALID_REQUEST"),
    ("no query", b"{}", 400, "INVALID_REQUEST"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "body", "status", "code"), MALFORMED_BODIES, ids=[c[0] for c in MALFORMED_BODIES]
)
async def test_malformed_bodies_get_a_4xx_code_and_write_nothing(
    node: RunningNode, case: str, body: bytes, status: int, code: str
) -> None:
    before = await count_resources(node)
    headers = {**STAFF, "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=node.url, timeout=30) as http:
        response = await http.post("/graphql", content=body, headers=headers)
        assert response.status_code == status, response.text
        assert response.json()["errors"][0]["extensions"]["code"] == code
        # The node is unharmed: the next request is answered.
        assert (await http.get("/healthz")).status_code == 200
    assert await count_resources(node) == before


async def test_an_escaped_backslash_before_u0000_is_text_not_nul(node: RunningNode) -> None:
    name = "C:\\u0000 备用"  # a backslash, then "u0000": no NUL character
    assert (await create(node, name=name))["name"] == name
    assert name in await names(node, {"text": "u0000"})


async def test_an_oversized_chunked_body_is_413_not_500(node: RunningNode) -> None:
    before = await count_resources(node)
    huge = json.dumps(
        {"query": CREATE_RESOURCE, "variables": {"input": resource(description="x" * 70_000)}}
    ).encode()

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: sent chunked
        for start in range(0, len(huge), 8192):
            yield huge[start : start + 8192]

    async with httpx.AsyncClient(base_url=node.url, timeout=30) as http:
        response = await http.post(
            "/graphql", content=chunks(), headers={**STAFF, "Content-Type": "application/json"}
        )
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "BODY_TOO_LARGE"
    assert await count_resources(node) == before


async def test_a_small_chunked_body_is_answered(node: RunningNode) -> None:
    body = json.dumps({"query": "{ resourceKinds { code } }"}).encode()

    async def chunks() -> AsyncIterator[bytes]:
        yield body[:10]
        yield body[10:]

    async with httpx.AsyncClient(base_url=node.url, timeout=30) as http:
        response = await http.post(
            "/graphql", content=chunks(), headers={**STAFF, "Content-Type": "application/json"}
        )
    assert response.status_code == 200
    assert response.json()["data"]["resourceKinds"]


VOLUNTEERS = """query($skills: [String!]) {
  volunteers(where: {skills: $skills}) { edges { node { name skills } } } }"""


async def test_skill_patterns_are_literal_and_bounded(node: RunningNode) -> None:
    await node.staff.data(
        """mutation($i: VolunteerCreateInput!) { createVolunteer(input: $i) { id } }""",
        {"i": {"name": "王芳", "skills": ["急救", "first aid"]}},
    )
    # A LIKE wildcard is a character to look for, not a pattern.
    assert (await node.staff.data(VOLUNTEERS, {"skills": ["%"]}))["volunteers"]["edges"] == []
    assert (await node.staff.data(VOLUNTEERS, {"skills": ["_"]}))["volunteers"]["edges"] == []
    found = await node.staff.data(VOLUNTEERS, {"skills": ["急救"]})
    assert [e["node"]["name"] for e in found["volunteers"]["edges"]] == ["王芳"]
    assert await node.staff.error_code(VOLUNTEERS, {"skills": ["%" * 60_000]}) in {
        "STRING_TOO_LONG",
        "BODY_TOO_LARGE",
    }
    assert await node.staff.error_code(VOLUNTEERS, {"skills": ["%" * 201]}) == "STRING_TOO_LONG"
    assert await node.staff.error_code(VOLUNTEERS, {"skills": ["x"] * 21}) == "LIST_TOO_LONG"
