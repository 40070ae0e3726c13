"""Requests open to the district, over real servers: the hub matches, the owners are asked.

A asks for a generator without naming a provider. The hub matches the request against the
district's shareable resources (as A may see them), and passes it on to the owners of the
matching ones only: B (a generator) is notified through ``aidEvents`` and gets the request
at its node, C (a water pump) gets nothing. B's offer makes B the provider everywhere, and
the journey goes on as for an addressed request. With two matching owners, the first offer
wins: the other owner's copy is cancelled with the reason ``AID_TAKEN``, and a late offer
from it is ignored by the hub; a community that was never asked is refused.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from schema.enums import OrgKind
from tests.conftest import BACKENDS, GraphQLClient
from tests.e2e.aid_rig import CONTACT, A, AidRig, B, C, aid_rig
from tests.e2e.test_aid_journey import (
    ADDRESS,
    CREATE_REQUEST,
    CREATE_RESOURCE,
    STEP,
    AidSubscriber,
    available,
    generator,
    status_at,
)
from tests.hub.flags.conftest import eventually

OPEN_REQUEST = {
    "requester": A,
    "resourceKind": "portable_generator",
    "quantity": 1,
    "unit": "台",
    "purpose": "社区卫生站停电 Power for the clinic",
}
REQUEST_RECORD = """query ($id: ID!) { node(id: $id) { ... on AidRequest { provider status } } }"""


@pytest.fixture(params=BACKENDS)
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AidRig]:
    async with aid_rig(request.param, tmp_path, with_c=True) as built:
        yield built


def pump() -> dict[str, Any]:
    return {**generator(), "kind": "water_pump", "name": "抽水泵", "address": "C 社区仓库"}


async def start(rig: AidRig) -> None:
    await rig.start_hub()
    for org in (A, B, C):
        rig.start_node(org)


async def create(rig: AidRig, org: str, resource: dict[str, Any]) -> str:
    made = await rig.staff(org).data(CREATE_RESOURCE, {"i": resource})
    return str(made["createResource"]["id"])


async def federated(rig: AidRig, kind: str, count: int) -> None:
    """Wait until the hub's federation shows ``count`` shareable resources of ``kind`` to A."""
    assert rig.hub is not None
    a_at_hub = await rig.hub.graphql(org=A, kind=OrgKind.COMMUNITY, scopes="resources:read")

    async def shown() -> bool:
        body = await a_at_hub.post(
            "query ($k: [String!]) { resources(where: {kinds: $k}) { edges { node { id } } } }",
            {"k": [kind]},
        )
        edges = ((body.get("data") or {}).get("resources") or {}).get("edges") or []
        return len(edges) == count

    await eventually(shown, timeout_s=30)


async def hub_providers(rig: AidRig, request_id: str) -> list[str]:
    rows = await rig.hub_sql(
        "SELECT provider FROM aid_events WHERE request_id = :r AND type = 'aid.request' "
        "ORDER BY seq",
        r=request_id,
    )
    return [r[0] for r in rows]


async def test_open_request_asks_the_matching_owner_only_and_the_offer_binds(
    rig: AidRig,
) -> None:
    await start(rig)
    assert rig.hub is not None
    resource_id = await create(rig, B, generator())
    await create(rig, C, pump())
    await federated(rig, "portable_generator", 1)
    b_token = await rig.hub.client_token(org=B, kind=OrgKind.COMMUNITY, scopes="aid:respond")
    c_token = await rig.hub.client_token(org=C, kind=OrgKind.COMMUNITY, scopes="aid:respond")
    b_events = await AidSubscriber.open(rig.hub.url, b_token)
    c_events = await AidSubscriber.open(rig.hub.url, c_token)
    a, b, c = rig.staff(A), rig.staff(B), rig.staff(C)
    try:
        await asyncio.sleep(0.3)  # the subscriptions are live before the request
        created = (await a.data(CREATE_REQUEST, {"i": OPEN_REQUEST}))["createAidRequest"]
        request_id = created["id"]
        notified = await b_events.event()
        assert (notified["type"], notified["requestId"], notified["provider"]) == (
            "aid.request",
            request_id,
            B,
        )
        case_b = await status_at(b, request_id, "REQUESTED")  # B's node has it as its own
        assert case_b["steps"][0]["provider"] == B
        # C owns no generator: no event, no message owed to its node, no case there.
        assert await hub_providers(rig, request_id) == [B]
        with pytest.raises(TimeoutError):
            await c_events.event(timeout_s=1.0)
        owed_c = await rig.hub_sql(
            "SELECT count(*) FROM flag_outbox WHERE node = :c AND path = '/aid/steps'", c=C
        )
        assert owed_c[0][0] == 0
        assert (await c.data("query ($r: ID!) { aidCase(requestId: $r) { status } }",
                             {"r": request_id}))["aidCase"] is None  # fmt: skip
        # Until an offer, the request has no provider, at A and at the hub.
        assert (await status_at(a, request_id, "REQUESTED")) is not None
        hub_case = await rig.hub_sql(
            "SELECT provider, status FROM aid_cases WHERE request_id = :r", r=request_id
        )
        assert [tuple(r) for r in hub_case] == [("", "requested")]

        await b.data(STEP, {"r": request_id, "k": "OFFER", "q": 1, "res": resource_id})
        assert (await b_events.event())["type"] == "aid.offer"
    finally:
        await b_events.close()
        await c_events.close()
    await status_at(a, request_id, "OFFERED")
    hub_case = await rig.hub_sql(
        "SELECT provider FROM aid_cases WHERE request_id = :r", r=request_id
    )
    assert hub_case[0][0] == B
    record = (await a.data(REQUEST_RECORD, {"id": request_id}))["node"]
    assert record["provider"] == B  # the AidRequest record names its provider now

    # The rest of the flow is the addressed one's.
    await a.data(STEP, {"r": request_id, "k": "ACCEPT"})
    committed = await status_at(a, request_id, "COMMITTED")
    assert committed["disclosure"] == {"resourceId": resource_id, "address": ADDRESS,
                                       "contact": CONTACT}  # fmt: skip
    assert await available(b, resource_id) == 2
    await b.data(STEP, {"r": request_id, "k": "DISPATCH"})
    await status_at(a, request_id, "DISPATCHED")
    await a.data(STEP, {"r": request_id, "k": "RECEIVE", "q": 1})
    await status_at(b, request_id, "RECEIVED")
    await a.data(STEP, {"r": request_id, "k": "RETURN"})
    at_a = await status_at(a, request_id, "RETURNED")
    at_b = await status_at(b, request_id, "RETURNED")
    history = [(s["kind"], s["message_id"]) for s in at_a["steps"]]
    assert [kind for kind, _ in history] == [
        "request", "offer", "accept", "commit", "dispatch", "receive", "return",
    ]  # fmt: skip
    # B's copy of the request has its own message id (the hub addressed it to B); after it,
    # the same steps in the same order.
    assert [(s["kind"], s["message_id"]) for s in at_b["steps"]][1:] == history[1:]

    async def hub_returned() -> list[Any] | None:
        rows = await rig.hub_sql(
            "SELECT status, steps FROM aid_cases WHERE request_id = :r", r=request_id
        )
        return rows if rows and rows[0][0] == "returned" else None

    await eventually(hub_returned, timeout_s=30)
    assert await available(b, resource_id) == 3


async def test_first_offer_wins_the_other_owner_is_cancelled(rig: AidRig) -> None:
    await start(rig)
    assert rig.hub is not None
    from_b = await create(rig, B, generator())
    far_east = {"coordinates": [116.5200, 39.9090]}
    from_c = await create(rig, C, {**generator(), "address": "C 社区仓库", "location": far_east})
    await federated(rig, "portable_generator", 2)
    a, b, c = rig.staff(A), rig.staff(B), rig.staff(C)
    named = await a.error_code(CREATE_REQUEST, {"i": {**OPEN_REQUEST, "resourceId": from_b}})
    assert named == "AID_NOT_OWNER"  # an open request names no resource: the offer does
    # Needed in the east, next to C's generator: C is asked first (nearest first).
    east = {"coordinates": [116.5190, 39.9090]}
    request = {**OPEN_REQUEST, "location": east}
    request_id = (await a.data(CREATE_REQUEST, {"i": request}))["createAidRequest"]["id"]
    await status_at(b, request_id, "REQUESTED")
    await status_at(c, request_id, "REQUESTED")
    assert await hub_providers(rig, request_id) == [C, B]

    await c.data(STEP, {"r": request_id, "k": "OFFER", "q": 1, "res": from_c})
    taken = await status_at(b, request_id, "CANCELLED")  # B's copy, closed by the hub
    assert taken["steps"][-1]["reason"] == "AID_TAKEN"
    # B is no party any more: nothing of its copy names the community that answered.
    assert C not in json.dumps(taken)
    assert await b.error_code(
        STEP, {"r": request_id, "k": "OFFER", "q": 1, "res": from_b}
    ) == "AID_STEP_OUT_OF_ORDER"  # fmt: skip
    await status_at(a, request_id, "OFFERED")
    record = (await a.data(REQUEST_RECORD, {"id": request_id}))["node"]
    assert record["provider"] == C

    # An offer from B that crossed the cancel reaches the hub: ignored, nothing moves.
    b_token = await rig.hub.client_token(org=B, kind=OrgKind.COMMUNITY, scopes="aid:respond")
    b_at_hub = GraphQLClient(rig.hub.url, b_token)
    rig.clients.append(b_at_hub)
    crossed = {
        "message_id": str(uuid.uuid4()),
        "kind": "offer",
        "request_id": request_id,
        "requester": A,
        "provider": B,
        "sender": B,
        "resource_id": from_b,
        "resource_kind": "portable_generator",
        "quantity": 1,
        "unit": "台",
        "at": datetime.now(UTC).isoformat(),
    }
    answer = await b_at_hub.http.post("/aid/inbox", json=crossed)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "ignored"
    # A community that was never asked is refused with a code.
    stranger = "110105009001"
    s_token = await rig.hub.client_token(org=stranger, kind=OrgKind.COMMUNITY,
                                         scopes="aid:respond")  # fmt: skip
    s_at_hub = GraphQLClient(rig.hub.url, s_token)
    rig.clients.append(s_at_hub)
    refused = await s_at_hub.http.post(
        "/aid/inbox",
        json={**crossed, "message_id": str(uuid.uuid4()), "provider": stranger,
              "sender": stranger},
    )  # fmt: skip
    assert refused.status_code == 400, refused.text
    # ... exactly as if the request did not exist: a stranger learns nothing of it.
    unknown_id = request_id.rsplit(":", 1)[0] + ":" + uuid.uuid4().hex
    unknown = await s_at_hub.http.post(
        "/aid/inbox",
        json={**crossed, "message_id": str(uuid.uuid4()), "provider": stranger,
              "sender": stranger, "request_id": unknown_id},
    )  # fmt: skip
    assert unknown.status_code == 400, unknown.text
    assert refused.json() == json.loads(unknown.text.replace(unknown_id, request_id))
    assert refused.json()["errors"][0]["extensions"]["code"] == "AID_UNKNOWN_REQUEST"
    hub_case = await rig.hub_sql(
        "SELECT provider, status FROM aid_cases WHERE request_id = :r", r=request_id
    )
    assert [tuple(r) for r in hub_case] == [(C, "offered")]

    await a.data(STEP, {"r": request_id, "k": "ACCEPT"})
    committed = await status_at(a, request_id, "COMMITTED")
    assert committed["disclosure"]["address"] == "C 社区仓库"
    assert await available(c, from_c) == 2
    assert await available(b, from_b) == 3  # nothing taken from B


async def test_cancelling_an_open_request_closes_every_owners_copy(rig: AidRig) -> None:
    await start(rig)
    await create(rig, B, generator())
    await create(rig, C, {**generator(), "location": {"coordinates": [116.5200, 39.9090]}})
    await federated(rig, "portable_generator", 2)
    a, b, c = rig.staff(A), rig.staff(B), rig.staff(C)
    west = {"coordinates": [116.4460, 39.9090]}  # next to B's generator: B is asked first
    request = {**OPEN_REQUEST, "location": west}
    request_id = (await a.data(CREATE_REQUEST, {"i": request}))["createAidRequest"]["id"]
    await status_at(b, request_id, "REQUESTED")
    await status_at(c, request_id, "REQUESTED")
    assert await hub_providers(rig, request_id) == [B, C]
    await a.data(STEP, {"r": request_id, "k": "CANCEL"})
    await status_at(b, request_id, "CANCELLED")
    await status_at(c, request_id, "CANCELLED")
    await status_at(a, request_id, "CANCELLED")
