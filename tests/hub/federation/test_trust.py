"""One caller cannot spend everyone's sources: a cost budget, a rate limit, slots per source."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tests.hub.federation.conftest import wait_sources_ok
from tests.hub.federation.fake_source import FakeSource

SOURCES = ("110105001001", "110105001002", "110105001003")
PAGE = "{ edges { node { id } } }"
ALIASES = 30  # the measured amplification: 30 aliases of resources(first: 500)
AMPLIFIED = "{ " + " ".join(f"a{i}: resources(first: 500) {PAGE}" for i in range(ALIASES)) + " }"
CHEAP = "{ __typename }"


async def test_alias_amplification_is_refused_before_any_source_is_called(
    start_hub: Callable[..., Any], sources: Any
) -> None:
    fakes = [FakeSource(s) for s in SOURCES]
    hub = await start_hub(sources(*fakes))
    client = await hub.graphql()
    body = await client.post(AMPLIFIED)
    assert body["data"] is None
    [error] = body["errors"]
    cost, limit = len(SOURCES) * 500 * ALIASES, hub.settings.max_query_cost
    assert error["extensions"] == {"code": "QUERY_TOO_COSTLY", "cost": cost, "limit": limit}
    assert str(cost) in error["message"]
    assert str(limit) in error["message"]
    assert [f.calls for f in fakes] == [0, 0, 0]
    # Within the budget the same field is fanned out as before.
    data = await client.data("{ resources(first: 500) { edges { node { id } } } }")
    assert len(data["resources"]["edges"]) == 15
    assert [f.calls for f in fakes] == [1, 1, 1]


async def test_cost_counts_fragments_variables_and_default_page_size(
    start_hub: Callable[..., Any], sources: Any
) -> None:
    fakes = [FakeSource(s) for s in SOURCES]
    # One field costs 3 sources × 500 = 1500; two fit in 4000, three do not.
    hub = await start_hub(sources(*fakes), max_query_cost=4000)
    client = await hub.graphql()
    spread = (
        "query($n: Int) { a: resources(first: $n) " + PAGE + " ...More"
        " ... on Query { c: resources(first: 500) " + PAGE + " } }"
        " fragment More on Query { b: resources(first: 500) " + PAGE + " }"
    )
    body = await client.post(spread, {"n": 500})
    assert body["errors"][0]["extensions"] == {
        "code": "QUERY_TOO_COSTLY",
        "cost": 4500,
        "limit": 4000,
    }
    assert [f.calls for f in fakes] == [0, 0, 0]
    # Without ``first`` each field costs the default page size (50): 3 × 3 × 50 = 450.
    unpaged = spread.replace("(first: 500)", "").replace("(first: $n)", "")
    data = await client.data(unpaged.replace("query($n: Int) ", ""))
    assert len(data["a"]["edges"]) == len(data["b"]["edges"]) == 15
    assert [f.calls for f in fakes] == [3, 3, 3]


async def test_a_client_over_its_rate_gets_429_and_another_client_does_not(
    start_hub: Callable[..., Any], sources: Any
) -> None:
    hub = await start_hub(sources(FakeSource(SOURCES[0])), graphql_rate_per_client=3)
    greedy = await hub.graphql(org="110105900001")
    other = await hub.graphql(org="110105900002")
    answers = await asyncio.gather(
        *(greedy.http.post("/graphql", json={"query": CHEAP}) for _ in range(10))
    )
    refused = [a for a in answers if a.status_code == 429]
    assert len(refused) >= 10 - 2 * 3, [a.status_code for a in answers]  # a window may roll over
    for answer in refused:
        assert int(answer.headers["Retry-After"]) >= 1
        assert answer.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert {a.status_code for a in answers} <= {200, 429}
    response = await other.http.post("/graphql", json={"query": CHEAP})
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"__typename": "Query"}}
    # The greedy client is still over its rate; the window frees up after a second.
    assert (await greedy.http.post("/graphql", json={"query": CHEAP})).status_code == 429
    await asyncio.sleep(1.1)
    assert (await greedy.http.post("/graphql", json={"query": CHEAP})).status_code == 200


async def test_a_burst_against_a_slow_source_does_not_open_its_circuit_for_others(
    start_hub: Callable[..., Any], sources: Any
) -> None:
    # A source with one worker: each call takes 0.5 s, queued behind the calls before it.
    # 16 calls through 2 slots need 4 s, past every caller's 2.5 s deadline; the first
    # round fits a deadline even on a machine five times slower than it should be.
    slow = FakeSource(SOURCES[0], behaviour="queue", delay_s=0.5)
    hub = await start_hub(
        sources(slow),
        source_timeout_s=3.0,
        deadline_s=2.5,
        max_inflight_per_source=2,
        breaker_threshold=3,
        breaker_cooldown_s=30.0,
    )
    greedy = await hub.graphql(org="110105900001")
    other = await hub.graphql(org="110105900002")
    await wait_sources_ok(other, 1)
    query = "{ resources(first: 5) " + PAGE + " }"
    burst = await asyncio.gather(*(greedy.post(query) for _ in range(16)))
    reports = [b["extensions"]["sources"][0] for b in burst]
    statuses = [r["status"] for r in reports]
    # Over capacity: some waited out their deadline (served stale: resources are slow-changing).
    assert "ok" in statuses, statuses
    assert set(statuses) <= {"ok", "stale", "timeout"}, statuses
    late = [e["message"] for b in burst for e in b.get("errors", [])]
    assert late, statuses
    assert all("deadline" in m for m in late), late  # the callers' timeouts
    # 2 slots; a call cut short by its deadline frees its slot while the source still works
    # on it, so the source may hold a few more; never the whole burst of 16 at once.
    assert slow.most_in_flight < 16
    circuit = await other.data("{ sources { id circuit } }")
    assert circuit["sources"] == [{"id": SOURCES[0], "circuit": "closed"}]
    # Once the source has worked off the calls the burst abandoned, another caller is served.
    for _ in range(100):
        if slow.in_flight == 0:
            break
        await asyncio.sleep(0.1)
    body = await other.post(query)
    assert body["extensions"]["sources"][0]["status"] == "ok", body
    assert len(body["data"]["resources"]["edges"]) == 5
