"""``flagEvents`` over graphql-transport-ws: live, resumable without gaps or repeats, authenticated."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from tests.hub.flags.conftest import (
    COMMUNITY,
    DEPT_GAS,
    OTHER_COMMUNITY,
    FlagsHub,
    Subscriber,
    eventually,
)

StartHub = Callable[..., Awaitable[FlagsHub]]
SUBPROTOCOL = Subprotocol("graphql-transport-ws")
ACK = "mutation ($id: ID!, $v: Int!) { transitionFlag(id: $id, to: ACKNOWLEDGED, expectedVersion: $v) { version } }"


async def test_department_gets_raised_routed_and_status_events_live(
    start_flags_hub: StartHub,
) -> None:
    hub = await start_flags_hub()
    community_token = await hub.community_token()
    department_token = await hub.department_token()
    subscriber = await Subscriber.open(hub.ws_url, department_token)
    try:
        assert (await subscriber.ack())["type"] == "connection_ack"
        await subscriber.subscribe(after=0)  # replay covers a slow start; normally live
        await asyncio.sleep(0.3)  # the subscription is running before the flag is raised
        started = time.perf_counter()
        flag_id = await hub.raise_flag(community_token)
        # flag.raised is assigned to nobody yet: the department's first event is flag.routed.
        routed = await subscriber.event(timeout_s=30)
        elapsed = time.perf_counter() - started
        assert routed["type"] == "flag.routed"
        assert routed["seq"] == 2
        print(f"flag reached the subscribed department in {elapsed * 1000:.0f} ms")
        assert routed["flagId"] == flag_id
        assert routed["assignedTo"] == DEPT_GAS
        assert routed["status"] == "ROUTED"
        assert routed["community"] == COMMUNITY
        assert {h["hop"] for h in routed["timeline"]} == {
            "raised_at_node",
            "received_at_hub",
            "routed",
        }
        department = await hub.graphql(department_token)
        await department.data(ACK, {"id": flag_id, "v": 1})
        status = await subscriber.event(timeout_s=30)
        assert status["type"] == "flag.status_changed"
        assert status["status"] == "ACKNOWLEDGED"
        assert status["seq"] > routed["seq"]
        assert "acknowledged" in {h["hop"] for h in status["timeline"]}
    finally:
        await subscriber.close()

    async def delivered() -> bool:
        timeline = await department.data(
            "query ($id: ID!) { flagTimeline(id: $id) { hop } }", {"id": flag_id}
        )
        return "delivered" in {h["hop"] for h in timeline["flagTimeline"]}

    assert await eventually(delivered)


async def test_community_sees_its_own_flags_from_raised_on(start_flags_hub: StartHub) -> None:
    hub = await start_flags_hub()
    mine = await hub.community_token()
    subscriber = await Subscriber.open(hub.ws_url, mine)
    try:
        assert (await subscriber.ack())["type"] == "connection_ack"
        await subscriber.subscribe(after=0)  # replay covers a slow start; normally live
        await asyncio.sleep(0.3)
        await hub.raise_flag(await hub.community_token(OTHER_COMMUNITY), community=OTHER_COMMUNITY)
        flag_id = await hub.raise_flag(mine)
        raised, routed = await subscriber.events(2, timeout_s=30)
        assert [raised["type"], routed["type"]] == ["flag.raised", "flag.routed"]
        assert raised["flagId"] == routed["flagId"] == flag_id
        assert raised["status"] == "RAISED"
        assert raised["assignedTo"] is None
        assert routed["seq"] == raised["seq"] + 1
        await subscriber.nothing_more(1.0)
    finally:
        await subscriber.close()


async def test_resume_after_last_seen_misses_nothing_and_repeats_nothing(
    start_flags_hub: StartHub,
) -> None:
    hub = await start_flags_hub()
    community_token = await hub.community_token()
    subscriber = await Subscriber.open(hub.ws_url, community_token)
    await subscriber.ack()
    await subscriber.subscribe(after=0)
    await hub.raise_flag(community_token)
    await hub.raise_flag(community_token)
    seen = await subscriber.events(4)
    assert [e["seq"] for e in seen] == [1, 2, 3, 4]
    await subscriber.close()

    # While disconnected: more flags, and a burst larger than one read batch would be fine too.
    raised_meanwhile = [await hub.raise_flag(community_token) for _ in range(3)]
    resumed = await Subscriber.open(hub.ws_url, community_token)
    try:
        await resumed.ack()
        await resumed.subscribe(after=seen[-1]["seq"])
        replayed = await resumed.events(6)
        assert [e["seq"] for e in replayed] == [5, 6, 7, 8, 9, 10]
        assert [e["flagId"] for e in replayed[::2]] == raised_meanwhile
        live = await hub.raise_flag(community_token)
        after_live = await resumed.events(2)
        assert [e["seq"] for e in after_live] == [11, 12]
        assert after_live[0]["flagId"] == live
        await resumed.nothing_more(1.0)
    finally:
        await resumed.close()


async def test_future_and_expired_positions_are_refused(start_flags_hub: StartHub) -> None:
    hub = await start_flags_hub(event_retention_s=3.0)
    community_token = await hub.community_token()
    await hub.raise_flag(community_token)  # events 1 and 2
    subscriber = await Subscriber.open(hub.ws_url, community_token)
    try:
        await subscriber.ack()
        await subscriber.subscribe(after=3)
        error = await subscriber.message()
        assert error["type"] == "error"
        assert error["payload"][0]["extensions"] == {
            "code": "INVALID_SEQUENCE",
            "after": 3,
            "lastSeq": 2,
        }
    finally:
        await subscriber.close()

    async def pruned() -> bool:
        return await hub.count("flag_events") == 0

    assert await eventually(pruned, timeout_s=20)
    await hub.raise_flag(community_token)  # events 3 and 4, inside the window
    subscriber = await Subscriber.open(hub.ws_url, community_token)
    try:
        await subscriber.ack()
        await subscriber.subscribe(after=1, op_id="a")
        error = await subscriber.message()
        assert error["type"] == "error"
        assert error["id"] == "a"
        assert error["payload"][0]["extensions"] == {
            "code": "EVENTS_EXPIRED",
            "after": 1,
            "oldestSeq": 3,
        }
        await subscriber.subscribe(after=2, op_id="b")  # right after the pruned ones: fine
        event = await subscriber.event()
        assert event["seq"] == 3
    finally:
        await subscriber.close()


async def test_connection_init_without_token_or_scope_is_refused(start_flags_hub: StartHub) -> None:
    hub = await start_flags_hub()
    for token in [None, "not-a-token", await hub.department_token(scopes="resources:read")]:
        subscriber = await Subscriber.open(hub.ws_url, token)
        try:
            with pytest.raises(ConnectionClosed) as refused:
                await subscriber.ack()
        finally:
            await subscriber.close()
        assert refused.value.rcvd is not None
        assert refused.value.rcvd.code == 4403
    # Subscribing without connection_init is refused too.
    async with connect(hub.ws_url, subprotocols=[SUBPROTOCOL]) as ws:
        await ws.send(
            '{"id": "1", "type": "subscribe", "payload": {"query": "subscription { flagEvents { seq } }"}}'
        )
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401
