"""Volunteers from community B to community A, over real servers: the resource journey's steps.

A asks the district for two first aiders for an evening. The hub matches the request with
the available volunteers with that skill that A may see (B's two first aiders; not C's,
who is on duty, nor C's driver) and notifies B, their community, never the volunteers.
B's staff offer two named volunteers; when A accepts, B's node books them in the accept's
transaction and discloses their names and phones to A, which B's audit log records with the
request as purpose. B dispatches them, A reports them arrived, A releases them (return);
both nodes and the hub hold the same history, and the volunteers are free again.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schema.enums import OrgKind
from tests.conftest import BACKENDS, GraphQLClient
from tests.e2e.aid_rig import CONTACT, A, AidRig, B, C, aid_rig
from tests.e2e.test_aid_journey import CREATE_REQUEST, AidSubscriber, message_ids, status_at
from tests.hub.flags.conftest import eventually

CREATE_VOLUNTEER = """mutation ($i: VolunteerCreateInput!) { createVolunteer(input: $i) { id } }"""
OFFER = """mutation ($r: ID!, $v: [ID!], $q: Int) {
  aidStep(requestId: $r, kind: OFFER, volunteerIds: $v, quantity: $q) {
    status offered volunteerIds } }"""
STEP = """mutation ($r: ID!, $k: AidStepKind!, $q: Int) {
  aidStep(requestId: $r, kind: $k, quantity: $q) { status committed received } }"""
CASE = """query ($r: ID!) { aidCase(requestId: $r) { status skill windowFrom windowTo
  volunteerIds committed disclosure { resourceId address contact
  people { volunteerId name phone } } } }"""
STEPS = """query ($r: ID!) { aidCase(requestId: $r) { status steps } }"""
MATCHES = """query ($s: String!) { aidVolunteerMatches(skill: $s) {
  volunteerId owner skills availability } }"""
FROM = datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
WINDOW = {"windowFrom": FROM.isoformat(), "windowTo": (FROM + timedelta(hours=4)).isoformat()}
REQUEST = {
    "requester": A,
    "resourceKind": "volunteers",
    "skill": "first_aid",
    "quantity": 2,
    "unit": "人",
    "purpose": "安置点夜间医疗值守 First aid at the shelter tonight",
    **WINDOW,
}


@pytest.fixture(params=BACKENDS)
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AidRig]:
    async with aid_rig(request.param, tmp_path, with_c=True) as built:
        yield built


async def volunteer(rig: AidRig, org: str, name: str, phone: str, **fields: Any) -> str:
    made = await rig.staff(org).data(
        CREATE_VOLUNTEER, {"i": {"name": name, "phone": phone, "skills": ["急救"], **fields}}
    )
    return str(made["createVolunteer"]["id"])


async def booked(rig: AidRig, volunteer_id: str) -> list[tuple[Any, ...]]:
    rows = await rig.node_sql(
        B,
        "SELECT request_id, released_at IS NULL FROM aid_volunteer_bookings "
        "WHERE volunteer_id = :v",
        v=volunteer_id,
    )
    return [(r[0], bool(r[1])) for r in rows]


async def test_two_first_aiders_go_from_b_to_a_and_are_released(rig: AidRig) -> None:
    hub = await rig.start_hub()
    for org in (A, B, C):
        rig.start_node(org)
    wang = await volunteer(rig, B, "王芳", "13800000001", team="一队")
    li = await volunteer(rig, B, "李明", "13800000002", skills=["first aid", "driver"])
    await volunteer(rig, B, "张伟", "13800000003", skills=["电工"])  # another skill
    await volunteer(rig, C, "赵强", "13800000004", availability="ON_DUTY")
    await volunteer(rig, C, "周敏", "13800000005", skills=["司机"])
    a_at_hub = await hub.graphql(org=A, kind=OrgKind.COMMUNITY,
                                 scopes="volunteers:read aid:request")  # fmt: skip

    async def two() -> list[dict[str, Any]] | None:
        body = await a_at_hub.post(MATCHES, {"s": "first_aid"})
        found = (body.get("data") or {}).get("aidVolunteerMatches") or []
        return found if len(found) == 2 else None

    matches = await eventually(two, timeout_s=30)
    assert sorted(m["volunteerId"] for m in matches) == sorted([wang, li])
    assert {(m["owner"], m["availability"]) for m in matches} == {(B, "AVAILABLE")}
    assert "王芳" not in str(matches)  # who could help, never who they are
    refused = await a_at_hub.post(MATCHES, {"s": "juggling"})
    assert refused["errors"][0]["extensions"]["code"] == "AID_SKILL_UNKNOWN"

    b_token = await hub.client_token(org=B, kind=OrgKind.COMMUNITY, scopes="aid:respond")
    c_token = await hub.client_token(org=C, kind=OrgKind.COMMUNITY, scopes="aid:respond")
    b_events = await AidSubscriber.open(hub.url, b_token)
    c_events = await AidSubscriber.open(hub.url, c_token)
    a, b, c = rig.staff(A), rig.staff(B), rig.staff(C)
    try:
        await asyncio.sleep(0.3)  # the subscriptions are live before the request
        request_id = (await a.data(CREATE_REQUEST, {"i": REQUEST}))["createAidRequest"]["id"]
        notified = await b_events.event()
        assert (notified["type"], notified["requestId"], notified["provider"]) == (
            "aid.request",
            request_id,
            B,
        )
        assert (notified["resourceKind"], notified["quantity"]) == ("volunteers", 2)
        with pytest.raises(TimeoutError):
            await c_events.event(timeout_s=1.0)  # C has no available first aider
    finally:
        await b_events.close()
        await c_events.close()
    at_b = await status_at(b, request_id, "REQUESTED", query=CASE)
    assert at_b["skill"] == "first_aid"
    assert at_b["windowFrom"].startswith("2026-12-01T18:00")
    assert (await c.data(CASE, {"r": request_id}))["aidCase"] is None

    # Three named for two: refused; then two.
    code = await b.error_code(OFFER, {"r": request_id, "v": [wang, li, wang]})
    assert code == "AID_QUANTITY_INVALID"
    offered = (await b.data(OFFER, {"r": request_id, "v": [wang, li]}))["aidStep"]
    assert (offered["status"], offered["offered"]) == ("OFFERED", 2)
    at_a = await status_at(a, request_id, "OFFERED", query=CASE)
    assert at_a["disclosure"] is None
    assert at_a["volunteerIds"] == [wang, li]
    assert await booked(rig, wang) == []  # an offer books nobody

    await a.data(STEP, {"r": request_id, "k": "ACCEPT"})
    at_a = await status_at(a, request_id, "COMMITTED", query=CASE)
    assert at_a["committed"] == 2
    assert at_a["disclosure"] == {
        "resourceId": None,
        "address": "",
        "contact": CONTACT,
        "people": [
            {"volunteerId": wang, "name": "王芳", "phone": "13800000001"},
            {"volunteerId": li, "name": "李明", "phone": "13800000002"},
        ],
    }
    assert (await status_at(b, request_id, "COMMITTED", query=CASE))["disclosure"] is None
    assert await booked(rig, wang) == [(request_id, True)]
    hub_rows = await rig.hub_sql("SELECT steps FROM aid_cases")
    assert "王芳" not in str(hub_rows)
    assert "13800000001" not in str(hub_rows)

    code = await b.error_code(STEP, {"r": request_id, "k": "IN_TRANSIT"})
    assert code == "AID_STEP_OUT_OF_ORDER"  # volunteers are dispatched, then arrive
    await b.data(STEP, {"r": request_id, "k": "DISPATCH"})
    await status_at(a, request_id, "DISPATCHED", query=CASE)
    await a.data(STEP, {"r": request_id, "k": "RECEIVE", "q": 2})
    await status_at(b, request_id, "RECEIVED", query=CASE)
    assert await booked(rig, li) == [(request_id, True)]  # held until released
    await a.data(STEP, {"r": request_id, "k": "RETURN"})
    history = message_ids((await status_at(a, request_id, "RETURNED", query=STEPS))["steps"])
    at_b = message_ids((await status_at(b, request_id, "RETURNED", query=STEPS))["steps"])
    # B's copy of the open request has its own message id (the hub addressed it to B).
    assert at_b[1:] == history[1:]

    async def hub_returned() -> list[Any] | None:
        rows = await rig.hub_sql(
            "SELECT status, steps FROM aid_cases WHERE request_id = :r", r=request_id
        )
        return rows if rows and rows[0][0] == "returned" else None

    [(_, at_hub)] = await eventually(hub_returned, timeout_s=30)
    at_hub = at_hub if isinstance(at_hub, list) else json.loads(at_hub)
    assert message_ids(at_hub) == history
    assert [kind for kind, _ in history] == [
        "request", "offer", "accept", "commit", "dispatch", "receive", "return",
    ]  # fmt: skip

    async def released() -> bool:
        return await booked(rig, wang) == [(request_id, False)]

    await eventually(released, timeout_s=30)
    assert await booked(rig, li) == [(request_id, False)]

    # The disclosure is in B's audit log, to A, with the request as its purpose.
    audit = await b.data("{ disclosures(first: 50) { edges { node { action org recordType "
                         "purpose decision } } } }")  # fmt: skip
    entries = [e["node"] for e in audit["disclosures"]["edges"]]
    [entry] = [e for e in entries if e["purpose"] == f"aid:{request_id}"]
    assert (entry["action"], entry["org"], entry["recordType"]) == ("disclose", A, "Volunteer")
    assert entry["decision"]["record"] == [wang, li]

    # A second request for the same evening can have them again once they are released.
    again = await a.data(CREATE_REQUEST, {"i": {**REQUEST, "quantity": 1}})
    again_id = again["createAidRequest"]["id"]
    await status_at(b, again_id, "REQUESTED", query=CASE)
    assert (await b.data(OFFER, {"r": again_id, "v": [wang]}))["aidStep"]["status"] == "OFFERED"


BAD = [
    ({"skill": "juggling"}, "AID_SKILL_UNKNOWN"),
    ({"skill": None}, "AID_SKILL_UNKNOWN"),
    ({"quantity": 0}, "OUT_OF_RANGE"),  # as for any request: the record's own bound
    ({"quantity": 201}, "AID_QUANTITY_INVALID"),
    ({"windowTo": FROM.isoformat()}, "AID_WINDOW_INVALID"),
    ({"windowTo": (FROM - timedelta(hours=1)).isoformat()}, "AID_WINDOW_INVALID"),
    ({"windowTo": (FROM + timedelta(days=15)).isoformat()}, "AID_WINDOW_INVALID"),
    ({"windowFrom": None}, "AID_WINDOW_INVALID"),
    ({"resourceKind": "portable_generator", "unit": "台"}, "AID_KIND_MISMATCH"),
]


async def test_bad_requests_for_volunteers_are_refused_with_their_code(rig: AidRig) -> None:
    await rig.start_hub()
    rig.start_node(A)
    a = rig.staff(A)
    for change, code in BAD:
        assert await a.error_code(CREATE_REQUEST, {"i": {**REQUEST, **change}}) == code, change
    written = await rig.node_sql(A, "SELECT count(*) FROM aid_requests")
    assert written[0][0] == 0
    owed = await rig.node_sql(A, "SELECT count(*) FROM flag_outbox")
    assert owed[0][0] == 0


async def test_offers_of_the_wrong_volunteers_are_refused(rig: AidRig) -> None:
    await rig.start_hub()
    for org in (A, B, C):
        rig.start_node(org)
    a, b = rig.staff(A), rig.staff(B)
    electrician = await volunteer(rig, B, "张伟", "13800000003", skills=["电工"])
    on_duty = await volunteer(rig, B, "赵强", "13800000004", availability="ON_DUTY")
    of_c = await volunteer(rig, C, "周敏", "13800000005")
    request = {**REQUEST, "provider": B, "quantity": 1}
    request_id = (await a.data(CREATE_REQUEST, {"i": request}))["createAidRequest"]["id"]
    await status_at(b, request_id, "REQUESTED", query=CASE)
    for named, code in (
        ([electrician], "AID_KIND_MISMATCH"),
        ([on_duty], "AID_VOLUNTEER_UNAVAILABLE"),
        ([of_c], "AID_NOT_OWNER"),
        ([], "AID_QUANTITY_INVALID"),
    ):
        assert await b.error_code(OFFER, {"r": request_id, "v": named}) == code, named
    assert (await status_at(b, request_id, "REQUESTED", query=CASE))["volunteerIds"] is None
    # Straight to the hub's inbox: another community's volunteer, a request with no skill.
    assert rig.hub is not None
    step = {
        "message_id": str(uuid.uuid4()), "kind": "offer", "request_id": request_id,
        "requester": A, "provider": B, "sender": B, "resource_kind": "volunteers",
        "quantity": 1, "unit": "人", "volunteer_ids": [of_c], "at": datetime.now(UTC).isoformat(),
    }  # fmt: skip
    for org, body, code in (
        (B, step, "AID_NOT_OWNER"),
        (A, {**step, "kind": "request", "sender": A, "volunteer_ids": None,
             "request_id": f"AidRequest:{A}:x1"}, "AID_SKILL_UNKNOWN"),
    ):  # fmt: skip
        token = await rig.hub.client_token(org=org, kind=OrgKind.COMMUNITY,
                                           scopes="aid:request aid:respond")  # fmt: skip
        at_hub = GraphQLClient(rig.hub.url, token)
        rig.clients.append(at_hub)
        answer = await at_hub.http.post("/aid/inbox", json=body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["errors"][0]["extensions"]["code"] == code
    cases = await rig.hub_sql("SELECT request_id, status FROM aid_cases")
    assert [tuple(c) for c in cases] == [(request_id, "requested")]  # nothing moved or made
    no_skill = await a_hub_error(rig)
    assert no_skill == "FORBIDDEN"


async def a_hub_error(rig: AidRig) -> str:
    """Matching volunteers without volunteers:read is refused."""
    assert rig.hub is not None
    a_at_hub = await rig.hub.graphql(org=A, kind=OrgKind.COMMUNITY, scopes="aid:request")
    client: GraphQLClient = a_at_hub
    return await client.error_code(MATCHES, {"s": "first_aid"})
