"""Paging visits every record exactly once, in order, even while records are inserted."""

from __future__ import annotations

import asyncio
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.node.conftest import RunningNode
from tests.node.test_records import RESOURCES, create


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sizes=st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=8),
    existing=st.integers(min_value=0, max_value=25),
    order=st.sampled_from(["CREATED_DESC", "CREATED_ASC"]),
    inserts=st.integers(min_value=0, max_value=6),
)
async def test_every_record_exactly_once_under_concurrent_inserts(
    node: RunningNode, sizes: list[int], existing: int, order: str, inserts: int
) -> None:
    tag = f"page-{uuid.uuid4().hex[:10]}"
    before = [(await create(node, name=f"{tag}-{i}"))["id"] for i in range(existing)]

    async def insert_more() -> None:
        for i in range(inserts):
            await create(node, name=f"{tag}-late-{i}")

    seen: list[str] = []

    async def page_through() -> None:
        after = None
        turn = 0
        while True:
            data = await node.staff.data(
                RESOURCES,
                {
                    "where": {"text": tag},
                    "first": sizes[turn % len(sizes)],
                    "after": after,
                    "order": order,
                },
            )
            connection = data["resources"]
            seen.extend(edge["node"]["id"] for edge in connection["edges"])
            turn += 1
            if not connection["pageInfo"]["hasNextPage"]:
                break
            after = connection["pageInfo"]["endCursor"]

    await asyncio.gather(insert_more(), page_through())
    assert len(seen) == len(set(seen)), "a record was returned twice"
    assert set(before) <= set(seen), "a record present before paging was skipped"
    expected_order = before if order == "CREATED_ASC" else before[::-1]
    assert [i for i in seen if i in set(before)] == expected_order
