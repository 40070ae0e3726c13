"""Input the hub cannot serve is refused at the hub with a stable code, before any source call.

Each case was found by fuzzing the hub's GraphQL (tests/e2e/test_graphql_fuzz.py and by hand).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.hub.federation.fake_source import FakeSource

BAD_LITERALS = [
    # The filter reached the source call, whose JSON encoding refused it: INTERNAL.
    (
        "1e400 in a bbox",
        "{ resources(where: {bbox: {west: 1e400, south: 39, east: 117, north: 40}})"
        " { edges { cursor } } }",
        "NON_FINITE_NUMBER",
    ),
    (
        "an integer beyond the float range",
        "{ resources(where: {near: {lat: 39.9, lon: 1" + "0" * 400 + ", radiusKm: 1}})"
        " { edges { cursor } } }",
        "NON_FINITE_NUMBER",
    ),
    (
        "NUL in a text filter",
        '{ resources(where: {text: "a\\u0000b"}) { edges { cursor } } }',
        "NUL_CHARACTER",
    ),
]


@pytest.mark.parametrize(("case", "query", "code"), BAD_LITERALS, ids=[c[0] for c in BAD_LITERALS])
async def test_a_literal_no_source_could_take_is_refused_at_the_hub(
    start_hub: Callable[..., Any], sources: Any, case: str, query: str, code: str
) -> None:
    fake = FakeSource("110105001001")
    hub = await start_hub(sources(fake))
    client = await hub.graphql()
    assert await client.error_code(query) == code
    assert fake.calls == 0
    # The hub still answers the same field with a good filter.
    body = await client.post('{ resources(where: {text: "饮用水"}) { edges { cursor } } }')
    assert "errors" not in body, body
    assert fake.calls == 1


async def test_a_subscription_over_http_is_a_bad_request(
    start_hub: Callable[..., Any], sources: Any
) -> None:
    hub = await start_hub(sources(FakeSource("110105001001")))
    client = await hub.graphql()
    # Executed as a query, its resolver's stream answered INTERNAL; it runs over WebSockets.
    response = await client.http.post(
        "/graphql", json={"query": "subscription { flagEvents { type flagId } }"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_REQUEST"
    assert (await client.data("{ sources { id } }"))["sources"] == [{"id": "110105001001"}]


async def test_a_source_refusing_bad_input_keeps_its_circuit_closed(
    start_hub: Callable[..., Any], sources: Any
) -> None:
    fake = FakeSource("110105001001", behaviour="refuse")
    hub = await start_hub(sources(fake), breaker_threshold=3)
    client = await hub.graphql()
    query = "{ resources { edges { cursor } } }"
    # Found fuzzing: three bad filters from one caller opened the circuit, and every
    # caller got SOURCE_UNAVAILABLE for the cool-down.
    for _ in range(5):
        body = await client.post(query)
        assert [e["extensions"]["code"] for e in body["errors"]] == ["SOURCE_ERROR"], body
        assert "(OUT_OF_RANGE)" in body["errors"][0]["message"]
    assert fake.calls == 5
    circuits = (await client.data("{ sources { id circuit } }"))["sources"]
    assert circuits == [{"id": "110105001001", "circuit": "closed"}]
