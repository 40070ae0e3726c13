"""Requests open to the district are matched again while they stay open, over real servers.

A asks for a generator when no community has one: nobody is told. When C creates a
shareable generator, a later pass of the hub's re-match (``LINLI_AID_REMATCH_S``, short
here) finds it and tells C exactly as the first match would have (one ``aid.request``
event, the request at C's node), and never again however many passes follow; an owner
already asked is not asked again. A request taken (committed), cancelled or past its
needed-by time is not matched again. A decline makes the request's pass due at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schema.enums import OrgKind
from tests.conftest import BACKENDS
from tests.e2e.aid_rig import A, AidRig, B, C, aid_rig
from tests.e2e.test_aid_journey import CREATE_REQUEST, STEP, AidSubscriber, generator, status_at
from tests.e2e.test_aid_open import OPEN_REQUEST, create, federated, hub_providers
from tests.hub.flags.conftest import eventually

REMATCH_S = 0.3


@pytest.fixture(params=BACKENDS)
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AidRig]:
    async with aid_rig(request.param, tmp_path, with_c=True) as built:
        yield built


async def start(rig: AidRig, rematch_s: float = REMATCH_S) -> None:
    await rig.start_hub(aid_rematch_s=rematch_s)
    for org in (A, B, C):
        rig.start_node(org)


async def passes(rig: AidRig, request_id: str) -> int:
    rows = await rig.hub_sql("SELECT passes FROM aid_matching WHERE request_id = :r", r=request_id)
    return int(rows[0][0]) if rows else -1


async def more_passes(rig: AidRig, request_id: str, count: int) -> None:
    """Wait until the hub has matched ``request_id`` again ``count`` more times."""
    start = await passes(rig, request_id)
    assert start >= 0, "the request is not being matched"

    async def done() -> bool:
        return await passes(rig, request_id) >= start + count

    await eventually(done, timeout_s=30)


async def owed(rig: AidRig, node: str, request_id: str) -> int:
    rows = await rig.hub_sql(
        "SELECT count(*) FROM flag_outbox WHERE node = :n AND flag_id = :r AND path = '/aid/steps'",
        n=node,
        r=request_id,
    )
    return int(rows[0][0])


async def raise_open(rig: AidRig, **extra: object) -> str:
    created = await rig.staff(A).data(CREATE_REQUEST, {"i": {**OPEN_REQUEST, **extra}})
    return str(created["createAidRequest"]["id"])


async def test_an_owner_that_appears_later_is_notified_once(rig: AidRig) -> None:
    await start(rig)
    assert rig.hub is not None
    b_token = await rig.hub.client_token(org=B, kind=OrgKind.COMMUNITY, scopes="aid:respond")
    c_token = await rig.hub.client_token(org=C, kind=OrgKind.COMMUNITY, scopes="aid:respond")
    b_events = await AidSubscriber.open(rig.hub.url, b_token)
    c_events = await AidSubscriber.open(rig.hub.url, c_token)
    b, c = rig.staff(B), rig.staff(C)
    try:
        await asyncio.sleep(0.3)  # the subscriptions are live before the request
        request_id = await raise_open(rig)
        await status_at(rig.staff(A), request_id, "REQUESTED")
        await eventually(lambda: _matching(rig, request_id), timeout_s=30)  # at the hub
        await more_passes(rig, request_id, 2)  # nobody has a generator: nobody is told
        assert await hub_providers(rig, request_id) == []
        with pytest.raises(TimeoutError):
            await c_events.event(timeout_s=0.5)

        from_c = await create(rig, C, generator())
        notified = await c_events.event(timeout_s=30)  # a later pass finds it
        assert (notified["type"], notified["requestId"], notified["provider"],
                notified["status"], notified["quantity"]) == (
            "aid.request", request_id, C, "REQUESTED", 1
        )  # fmt: skip
        case_c = await status_at(c, request_id, "REQUESTED")  # C's node has it as its own
        assert case_c["steps"][0]["provider"] == C
        await more_passes(rig, request_id, 3)  # C still matches: it is not told again
        assert await hub_providers(rig, request_id) == [C]
        assert await owed(rig, C, request_id) == 1
        with pytest.raises(TimeoutError):
            await c_events.event(timeout_s=0.5)
        with pytest.raises(TimeoutError):
            await b_events.event(timeout_s=0.1)

        # B's generator appears too: B is told once; C, already asked, is not again.
        await create(rig, B, generator())
        notified_b = await b_events.event(timeout_s=30)
        assert (notified_b["type"], notified_b["requestId"], notified_b["provider"]) == (
            "aid.request", request_id, B
        )  # fmt: skip
        await more_passes(rig, request_id, 3)
        assert await hub_providers(rig, request_id) == [C, B]
        assert (await owed(rig, C, request_id), await owed(rig, B, request_id)) == (1, 1)
        with pytest.raises(TimeoutError):
            await c_events.event(timeout_s=0.3)
        with pytest.raises(TimeoutError):
            await b_events.event(timeout_s=0.3)

        # The owner found later answers as any other: its offer binds it.
        await c.data(STEP, {"r": request_id, "k": "OFFER", "q": 1, "res": from_c})
        await status_at(rig.staff(A), request_id, "OFFERED")
        await status_at(b, request_id, "CANCELLED")  # B's copy: AID_TAKEN
    finally:
        await b_events.close()
        await c_events.close()


async def test_taken_cancelled_or_late_requests_are_not_matched_again(rig: AidRig) -> None:
    await start(rig)
    a, b = rig.staff(A), rig.staff(B)
    from_b = await create(rig, B, generator())
    await federated(rig, "portable_generator", 1)
    committed = await raise_open(rig)
    await status_at(b, committed, "REQUESTED")
    await b.data(STEP, {"r": committed, "k": "OFFER", "q": 1, "res": from_b})
    await status_at(a, committed, "OFFERED")
    await a.data(STEP, {"r": committed, "k": "ACCEPT"})
    await status_at(a, committed, "COMMITTED")
    cancelled = await raise_open(rig)
    await status_at(b, cancelled, "REQUESTED")
    await a.data(STEP, {"r": cancelled, "k": "CANCEL"})
    await status_at(b, cancelled, "CANCELLED")
    soon = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
    late = await raise_open(rig, neededBy=soon)
    await status_at(b, late, "REQUESTED")
    still_open = await raise_open(rig)
    await status_at(b, still_open, "REQUESTED")
    await asyncio.sleep(2.5)  # past ``late``'s needed-by time

    await create(rig, C, generator())
    await eventually(lambda: _asked(rig, still_open, C), timeout_s=30)  # the witness
    await more_passes(rig, still_open, 3)
    assert await hub_providers(rig, still_open) == [B, C]
    for request_id in (committed, cancelled, late):
        assert await hub_providers(rig, request_id) == [B], request_id
        assert await owed(rig, C, request_id) == 0
        assert await passes(rig, request_id) == -1  # no longer matched at all


async def _matching(rig: AidRig, request_id: str) -> bool:
    return await passes(rig, request_id) >= 0


async def _asked(rig: AidRig, request_id: str, owner: str) -> bool:
    return owner in await hub_providers(rig, request_id)


async def test_a_decline_matches_again_at_once(rig: AidRig) -> None:
    await start(rig, rematch_s=3600.0)  # no timed pass within the test
    a, b = rig.staff(A), rig.staff(B)
    await create(rig, B, generator())
    await federated(rig, "portable_generator", 1)
    request_id = await raise_open(rig)
    await status_at(b, request_id, "REQUESTED")
    await create(rig, C, generator())
    await federated(rig, "portable_generator", 2)
    await asyncio.sleep(1.0)
    assert await hub_providers(rig, request_id) == [B]  # the next timed pass is an hour away
    await b.data(STEP, {"r": request_id, "k": "DECLINE"})
    await eventually(lambda: _asked(rig, request_id, C), timeout_s=30)
    await status_at(rig.staff(C), request_id, "REQUESTED")
    assert await hub_providers(rig, request_id) == [B, C]
    await status_at(a, request_id, "REQUESTED")  # still open to the district
