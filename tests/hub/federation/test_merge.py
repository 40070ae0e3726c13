"""Federated paging: every visible record exactly once, in order; stale answers; node(id)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.app import MIGRATIONS
from schema.api.pagination import MAX_PAGE_SIZE
from tests.conftest import ServerThread, migrate
from tests.hub.federation.conftest import hub_over
from tests.hub.federation.fake_source import EPOCH, FakeSource
from tests.hub.federation.test_faults import by_source

PAGE = """query($first: Int, $after: String, $order: RecordOrder!) {
  resources(first: $first, after: $after, orderBy: $order) {
    edges { cursor node { id createdAt } } pageInfo { hasNextPage endCursor } } }"""


# Small pages over few records, or pages up to the cap (500) over many.
_SMALL = st.tuples(
    st.lists(st.integers(min_value=0, max_value=12), min_size=1, max_size=4),
    st.lists(st.integers(min_value=1, max_value=7), min_size=1, max_size=5),
)
_LARGE = st.tuples(
    st.lists(st.integers(min_value=0, max_value=700), min_size=1, max_size=4),
    st.lists(st.integers(min_value=40, max_value=MAX_PAGE_SIZE), min_size=1, max_size=5),
)


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    world=st.one_of(_SMALL, _LARGE),
    order=st.sampled_from(["CREATED_DESC", "CREATED_ASC"]),
    collide=st.booleans(),
)
async def test_paging_visits_every_record_once_in_order(
    world: tuple[list[int], list[int]], order: str, collide: bool
) -> None:
    counts, sizes = world
    fakes = []
    for n, count in enumerate(counts):
        fake = FakeSource(f"11010500{n + 1:04d}", count=count)
        if collide:  # equal times across sources: ties are broken by id
            fake.records = [fake.record(i, EPOCH + timedelta(minutes=i)) for i in range(count)]
        fakes.append(fake)
    servers = [ServerThread(f.app()).start() for f in fakes]
    folder = Path(tempfile.mkdtemp())
    url = f"sqlite+aiosqlite:///{folder / 'hub.db'}"
    await migrate(MIGRATIONS, url)
    hub = await hub_over(
        url, folder, {f.source_id: s.url for f, s in zip(fakes, servers, strict=True)}
    )
    try:
        client = await hub.graphql()
        seen: list[tuple[str, str]] = []
        after, turn = None, 0
        while True:
            data = await client.data(
                PAGE, {"first": sizes[turn % len(sizes)], "after": after, "order": order}
            )
            page = data["resources"]
            seen += [(e["node"]["createdAt"], e["node"]["id"]) for e in page["edges"]]
            turn += 1
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
            assert turn <= sum(counts) // min(sizes) + len(counts) + 1
        expected = sorted(
            ((r["createdAt"], r["id"]) for f in fakes for r in f.records),
            reverse=order == "CREATED_DESC",
        )
        assert seen == expected
    finally:
        await hub.stop()
        for server in servers:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


async def test_a_source_out_of_order_fails_and_the_page_stays_in_order(
    start_hub: Callable[..., Any], sources: Any
) -> None:
    good = FakeSource("110105001001", count=6)
    unordered = FakeSource("110105001002", count=6, behaviour="unordered")
    hub = await start_hub(sources(good, unordered))
    body = await (await hub.graphql()).post(
        "{ resources(first: 50) { edges { node { id createdAt } } } }"
    )
    assert by_source(body)["110105001002"]["status"] == "error"
    (error,) = body["errors"]
    assert error["extensions"] == {
        "code": "SOURCE_ERROR",
        "source": "110105001002",
        "status": "error",
    }
    assert "out of the requested order" in error["message"]
    seen = [(e["node"]["createdAt"], e["node"]["id"]) for e in body["data"]["resources"]["edges"]]
    assert seen == sorted(seen, reverse=True)
    assert {r["id"] for r in good.records} <= {record_id for _, record_id in seen}


async def test_records_past_the_returned_page_are_not_decoded(
    start_hub: Callable[..., Any], sources: Any
) -> None:
    fake = FakeSource("110105001001", count=5)
    # The oldest record does not fit (a shelter in a resource list): newest first, a page
    # of two never reaches it; a page of all does, and the source is an error.
    fake.records[0]["id"] = "Shelter:110105001001:s00000"
    hub = await start_hub(sources(fake))
    client = await hub.graphql()
    query = "query($first: Int) { resources(first: $first) { edges { node { id } } } }"
    body = await client.post(query, {"first": 2})
    assert by_source(body)["110105001001"]["status"] == "ok"
    assert [e["node"]["id"] for e in body["data"]["resources"]["edges"]] == [
        r["id"] for r in reversed(fake.records[3:])
    ]
    body = await client.post(query, {"first": 50})
    assert by_source(body)["110105001001"]["status"] == "error"
    assert len(body["data"]["resources"]["edges"]) == 4  # the records before it stand


async def test_an_unreachable_source_is_served_stale_even_after_a_hub_restart(
    start_hub: Callable[..., Any],
    sources: Any,
) -> None:
    up, going = FakeSource("110105001001"), FakeSource("110105001002", count=3)
    going_server = ServerThread(going.app()).start()
    urls = {**sources(up), going.source_id: going_server.url}
    hub = await start_hub(urls)
    client = await hub.graphql()
    query = "{ resources { edges { node { id name } } } }"
    fresh = await client.data(query)
    assert len(fresh["resources"]["edges"]) == 8
    going_server.stop()
    body = await client.post(query)
    report = by_source(body)["110105001002"]
    assert report["status"] == "stale"
    assert report["asOf"] is not None
    assert body["data"]["resources"] == fresh["resources"]
    assert {e["extensions"]["code"] for e in body["errors"]} == {"SOURCE_STALE"}
    # A shelter query is not served stale? It is: shelters are slow-changing too; incidents are not.
    await asyncio.to_thread(hub.server.stop)  # flushes the stale store
    again = await start_hub(urls)
    client = await again.graphql()
    body = await client.post(query)
    assert by_source(body)["110105001002"]["status"] == "stale"
    assert {e["node"]["id"] for e in body["data"]["resources"]["edges"]} >= {
        r["id"] for r in going.records
    }


async def test_node_id_is_routed_to_its_owner_only(
    start_hub: Callable[..., Any], sources: Any
) -> None:
    a, b = FakeSource("110105001001"), FakeSource("110105001002")
    hub = await start_hub(sources(a, b))
    client = await hub.graphql()
    calls = (a.calls, b.calls)
    data = await client.data(
        '{ node(id: "Resource:110105001002:r00003") { ... on Resource { id name quantity } } }'
    )
    assert data["node"] == {
        "id": "Resource:110105001002:r00003",
        "name": "110105001002 饮用水 3",
        "quantity": 13,
    }
    assert (a.calls, b.calls) == (calls[0], calls[1] + 1)
    assert (
        await client.error_code('{ node(id: "Resource:110105009999:x") { __typename } }')
        == "NOT_FOUND"
    )
    assert (
        await client.error_code('{ node(id: "Resource:110105001002:nope") { __typename } }')
        == "NOT_FOUND"
    )
    assert await client.error_code('{ node(id: "garbage") { __typename } }') == "INVALID_ID"


async def test_owner_organisations_are_resolved_in_one_batch(
    start_hub: Callable[..., Any], sources: Any
) -> None:
    a, b = FakeSource("110105001001", count=3), FakeSource("110105001002", count=2)
    hub = await start_hub(sources(a, b))
    client = await hub.graphql()
    data = await client.data(
        "{ resources { edges { node { owner ownerOrganisation { code name kind } } } } }"
    )
    owners = {
        e["node"]["owner"]: e["node"]["ownerOrganisation"] for e in data["resources"]["edges"]
    }
    assert owners == {
        "110105001001": {"code": "110105001001", "name": "社区 110105001001", "kind": "COMMUNITY"},
        "110105001002": {"code": "110105001002", "name": "社区 110105001002", "kind": "COMMUNITY"},
    }
