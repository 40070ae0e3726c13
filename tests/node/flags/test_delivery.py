"""The node delivers its flags to a real hub: in order, through outages, refusals and repeats."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
import sqlalchemy as sa

from node.tables import FLAGS
from schema.runtime.db import Database
from tests.node.flags.conftest import FlagRig, eventually, metric

OUTBOX = """{ flagOutbox(first: 10) { delivering pending delivered failed
  entries { id flagId status attempts lastError deliveredAt } } }"""


async def all_delivered(rig: FlagRig, count: int) -> bool:
    rows = await rig.outbox()
    return len(rows) == count and all(r.status == "delivered" for r in rows)


async def test_flags_reach_the_hub_in_the_order_raised(rig: FlagRig) -> None:
    await rig.start_hub()
    rig.start_node(flag_poll_s=30.0)  # only the wake-up after each raise can be this quick
    ids = await rig.raise_flags(5)
    await eventually(lambda: all_delivered(rig, 5), timeout_s=30)
    assert await rig.hub_raised_order() == ids
    rows = await rig.outbox()
    assert [r.attempts for r in rows] == [1] * 5
    assert all(r.last_error is None and r.delivered_at is not None for r in rows)
    hub_flags = await rig.hub_sql("SELECT id, community, category FROM flags ORDER BY id")
    assert sorted(ids) == [r[0] for r in hub_flags]
    assert {(r[1], r[2]) for r in hub_flags} == {("110105001001", "gas_leak")}

    text = await rig.metrics()
    assert metric(text, "linli_node_flag_delivery_attempts_total") == 5
    assert metric(text, "linli_node_flag_raise_to_delivered_seconds_count") == 5
    assert metric(text, 'linli_node_flag_outbox_rows{status="pending"}') == 0
    assert metric(text, 'linli_node_flag_outbox_rows{status="delivered"}') == 5
    # One token for all five: cached, not fetched per delivery.
    assert rig.hub is not None
    hub_metrics = (await rig.hub.graphql()).http  # any client of the hub will do
    scraped = (await hub_metrics.get("/metrics")).text
    token_calls = [
        line for line in scraped.splitlines() if 'path="/oauth/token"' in line and "_total" in line
    ]
    # The test's own admin client took one token too, and the node's audit-anchor reporter
    # takes its own if its first round meets the flags' audit rows; per delivery would be 5.
    assert sum(float(line.split()[-1]) for line in token_calls) in (2, 3)


async def test_flags_raised_while_the_hub_is_down_arrive_in_order_once_it_is_up(
    rig: FlagRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rig.start_node(flag_poll_s=30.0)  # the hub's port: nobody listens there yet
    ids = await rig.raise_flags(3)

    async def head_retried() -> bool:
        rows = await rig.outbox()
        return bool(rows[0].attempts >= 4)

    await eventually(head_retried, timeout_s=30)
    rows = await rig.outbox()
    head = rows[0]
    assert head.status == "pending"
    assert "token endpoint unreachable" in head.last_error
    assert [r.attempts for r in rows[1:]] == [0, 0]  # nothing overtakes the head
    # Backoff: the wait after attempt n is between half and all of min(max, base * 2**(n-1)).
    assert head.last_attempt_at is not None
    wait_s = (head.next_attempt_at - head.last_attempt_at).total_seconds()
    ceiling = min(0.8, 0.1 * 2 ** (head.attempts - 1))
    assert ceiling / 2 <= wait_s <= ceiling + 0.01
    assert wait_s >= 0.1  # more than the first retry: it grew

    assert "delivering flag" in caplog.text  # said, without the client's secret
    assert rig.client_secret not in caplog.text

    text = await rig.metrics()
    assert metric(text, 'linli_node_flag_outbox_rows{status="pending"}') == 3
    assert metric(text, 'linli_node_flag_delivery_failures_total{kind="retry"}') >= 4

    await rig.start_hub()
    await eventually(lambda: all_delivered(rig, 3), timeout_s=30)
    assert await rig.hub_raised_order() == ids
    assert (await rig.hub_sql("SELECT count(*) FROM flag_inbox_messages"))[0][0] == 3

    # Back to normal: a new flag is woken out at once (the poll is 30 s).
    started = time.monotonic()
    [late] = await rig.raise_flags(1, start=4)
    await eventually(lambda: all_delivered(rig, 4), timeout_s=30)
    assert time.monotonic() - started < 5
    assert await rig.hub_raised_order() == [*ids, late]


async def test_a_flag_the_hub_refuses_is_marked_failed_and_the_rest_go_on(rig: FlagRig) -> None:
    rig.start_node()
    ids = await rig.raise_flags(3)
    # The second message's content is one the hub refuses for good (as from an older node).
    db = Database(rig.node_db_url)
    try:
        async with db.transaction() as session:
            outbox = FLAGS.outbox
            row = (await session.execute(sa.select(outbox).where(outbox.c.flag_id == ids[1]))).one()
            payload = {**row.payload, "flag": {**row.payload["flag"], "category": "alien_invasion"}}
            await session.execute(
                sa.update(outbox).where(outbox.c.id == row.id).values(payload=payload)
            )
    finally:
        await db.dispose()

    await rig.start_hub()

    async def settled() -> bool:
        return all(r.status != "pending" for r in await rig.outbox())

    await eventually(settled, timeout_s=30)
    rows = await rig.outbox()
    assert [r.status for r in rows] == ["delivered", "failed", "delivered"]
    assert rows[1].last_error.startswith("HTTP 400 UNKNOWN_RISK_CATEGORY flag.category")
    assert rows[1].delivered_at is None
    assert await rig.hub_raised_order() == [ids[0], ids[2]]

    staff = rig.staff()
    seen = (await staff.data(OUTBOX))["flagOutbox"]
    assert (seen["delivering"], seen["pending"], seen["delivered"], seen["failed"]) == (
        True,
        0,
        2,
        1,
    )
    failed = [e for e in seen["entries"] if e["status"] == "FAILED"]
    assert [e["flagId"] for e in failed] == [ids[1]]
    assert "UNKNOWN_RISK_CATEGORY" in failed[0]["lastError"]
    only_failed = await staff.data("{ flagOutbox(status: FAILED) { entries { flagId } } }")
    assert only_failed["flagOutbox"]["entries"] == [{"flagId": ids[1]}]

    text = await rig.metrics()
    assert metric(text, 'linli_node_flag_delivery_failures_total{kind="refused"}') == 1
    assert metric(text, 'linli_node_flag_outbox_rows{status="failed"}') == 1


async def test_a_duplicate_answer_counts_as_delivered(rig: FlagRig) -> None:
    await rig.start_hub()
    rig.start_node(flag_poll_s=30.0)
    [first] = await rig.raise_flags(1)
    await eventually(lambda: all_delivered(rig, 1), timeout_s=30)
    # As if the hub's answer had been lost: the row is owed again, and a new flag wakes the worker.
    await rig.node_sql(
        "UPDATE flag_outbox SET status = 'pending', delivered_at = NULL WHERE flag_id = :id",
        id=first,
    )
    [second] = await rig.raise_flags(1, start=2)
    await eventually(lambda: all_delivered(rig, 2), timeout_s=30)
    rows = await rig.outbox()
    assert [r.attempts for r in rows] == [2, 1]
    assert await rig.hub_raised_order() == [first, second]  # the hub stored the first once
    assert (await rig.hub_sql("SELECT count(*) FROM flag_inbox_messages"))[0][0] == 2
    await asyncio.sleep(0.3)
    assert [r.status for r in await rig.outbox()] == ["delivered", "delivered"]
