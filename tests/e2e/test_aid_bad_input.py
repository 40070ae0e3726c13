"""Bad input and faults of the aid flow, each refused with its stable code and nothing written.

Over real servers (a hub and nodes A and B, see ``aid_rig``): bad requests, bad offers and
steps out of order or by the wrong party, missing scopes, commits above what is available
or on a retired record, duplicate deliveries at the hub and at a node, and a requester
cancelling while the commit is in flight.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from schema.enums import OrgKind
from tests.conftest import BACKENDS, GraphQLClient
from tests.e2e.aid_rig import (
    DISTRICT,
    NO_AID_TOKEN,
    REQUEST_ONLY_TOKEN,
    RESPOND_ONLY_TOKEN,
    A,
    AidRig,
    B,
    aid_rig,
)
from tests.e2e.test_aid_journey import (
    CASE,
    CREATE_REQUEST,
    CREATE_RESOURCE,
    STEP,
    available,
    find_and_request,
    generator,
    start,
    status_at,
)
from tests.hub.flags.conftest import eventually

RETIRE = """mutation ($id: ID!, $v: Int!) { retireResource(id: $id, expectedVersion: $v) { id } }"""
UPDATE = """mutation ($id: ID!, $i: ResourceUpdateInput!) { updateResource(id: $id, input: $i) {
  available } }"""
VERSION = """query ($id: ID!) { node(id: $id) { ... on Resource { version } } }"""


@pytest.fixture(params=BACKENDS)
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AidRig]:
    async with aid_rig(request.param, tmp_path) as built:
        yield built


def request_input(**changes: Any) -> dict[str, Any]:
    return {
        "requester": A,
        "provider": B,
        "resourceKind": "portable_generator",
        "quantity": 1,
        "unit": "台",
        **changes,
    }


async def error(client: GraphQLClient, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    body = await client.post(query, variables)
    assert body.get("errors"), f"expected an error, got {body}"
    extensions: dict[str, Any] = body["errors"][0]["extensions"]
    return extensions


async def count(rig: AidRig, org: str, table: str) -> int:
    return int((await rig.node_sql(org, f"SELECT count(*) FROM {table}"))[0][0])


async def test_bad_requests_are_refused_and_write_nothing(rig: AidRig) -> None:
    await start(rig)
    a = rig.staff(A)
    for quantity in (0, -3):
        refused = await error(a, CREATE_REQUEST, {"i": request_input(quantity=quantity)})
        assert (refused["code"], refused["field"]) == ("OUT_OF_RANGE", "input.quantity")
    refused = await error(a, CREATE_REQUEST, {"i": request_input(resourceKind="unicorn")})
    assert (refused["code"], refused["field"]) == ("UNKNOWN_RESOURCE_KIND", "input.resource_kind")
    refused = await error(rig.staff(A, NO_AID_TOKEN), CREATE_REQUEST, {"i": request_input()})
    assert refused["code"] == "FORBIDDEN"
    refused = await error(a, CREATE_REQUEST, {"i": request_input(requester=B, provider=A)})
    assert (refused["code"], refused["reason"]) == ("FORBIDDEN", "NOT_REQUESTER")
    refused = await error(a, CREATE_REQUEST, {"i": request_input(provider=A)})
    assert refused["code"] == "AID_NOT_YOUR_STEP"
    refused = await error(
        a, CREATE_REQUEST, {"i": request_input(resourceId="Resource:110105009009:x1")}
    )
    assert refused["code"] == "AID_NOT_OWNER"
    for table in ("aid_requests", "aid_cases", "aid_messages", "flag_outbox"):
        assert await count(rig, A, table) == 0, table


async def test_bad_steps_are_refused_and_change_nothing(rig: AidRig) -> None:
    a_at_hub = await start(rig)
    a, b = rig.staff(A), rig.staff(B)
    resource_id, first_request = await find_and_request(rig, a_at_hub)  # 3 available
    water = {**generator(), "kind": "drinking_water", "name": "矿泉水", "unit": "箱"}
    water_id = (await b.data(CREATE_RESOURCE, {"i": water}))["createResource"]["id"]
    at_a = (await a.data(CREATE_RESOURCE, {"i": generator()}))["createResource"]["id"]
    wanted = request_input(resourceId=resource_id, quantity=5)
    request_id = (await a.data(CREATE_REQUEST, {"i": wanted}))["createAidRequest"]["id"]
    before = await status_at(b, request_id, "REQUESTED")

    def offer(quantity: int | None, res: str = resource_id) -> dict[str, Any]:
        return {"r": request_id, "k": "OFFER", "q": quantity, "res": res}

    for quantity in (0, -1, 6, None):  # zero, negative, over the request, none
        refused = await error(b, STEP, offer(quantity))
        assert (refused["code"], refused["limit"]) == ("AID_QUANTITY_INVALID", 5)
    refused = await error(b, STEP, offer(4))
    assert (refused["code"], refused["available"]) == ("AID_ABOVE_AVAILABLE", 3)
    assert (await error(b, STEP, offer(1, at_a)))["code"] == "AID_NOT_OWNER"
    assert (await error(b, STEP, offer(1, water_id)))["code"] == "AID_KIND_MISMATCH"
    refused = await error(a, STEP, {"r": request_id, "k": "RECEIVE", "q": 1})
    assert (refused["code"], refused["status"]) == ("AID_STEP_OUT_OF_ORDER", "requested")
    refused = await error(a, STEP, {"r": request_id, "k": "ACCEPT"})
    assert (refused["code"], refused["status"]) == ("AID_STEP_OUT_OF_ORDER", "requested")
    assert (await error(a, STEP, offer(1)))["code"] == "AID_NOT_YOUR_STEP"
    assert (await error(b, STEP, {"r": request_id, "k": "COMMIT"}))["code"] == (
        "AID_STEP_OUT_OF_ORDER"
    )
    refused = await error(rig.staff(B, REQUEST_ONLY_TOKEN), STEP, offer(1))
    assert (refused["code"], refused["reason"]) == ("FORBIDDEN", "SCOPE_MISSING")
    assert (await error(rig.staff(B, NO_AID_TOKEN), STEP, offer(1)))["code"] == "FORBIDDEN"
    after = (await b.data(CASE, {"r": request_id}))["aidCase"]
    assert after == before  # nothing changed at B
    assert await available(b, resource_id) == 3

    # Receive before dispatch, at A, once there is something to receive in principle.
    await b.data(STEP, offer(3))
    await status_at(a, request_id, "OFFERED")
    refused = await error(rig.staff(A, RESPOND_ONLY_TOKEN), STEP, {"r": request_id, "k": "ACCEPT"})
    assert (refused["code"], refused["scope"]) == ("FORBIDDEN", "aid:request")
    refused = await error(a, STEP, {"r": request_id, "k": "RECEIVE", "q": 1})
    assert (refused["code"], refused["step"]) == ("AID_STEP_OUT_OF_ORDER", "receive")

    # A commit above what is available: B's stock fell to 1 after its offer of 3.
    version = (await b.data(VERSION, {"id": resource_id}))["node"]["version"]
    await b.data(UPDATE, {"id": resource_id, "i": {"available": 1, "expectedVersion": version}})
    await a.data(STEP, {"r": request_id, "k": "ACCEPT"})
    declined = await status_at(a, request_id, "DECLINED")
    refusal = declined["steps"][-1]
    assert (refusal["kind"], refusal["reason"]) == ("refuse", "AID_ABOVE_AVAILABLE")
    assert declined["disclosure"] is None
    assert await available(b, resource_id) == 1  # nothing reserved

    # A commit on a retired record: the first request, offered 1, then the record retired.
    await status_at(b, first_request, "REQUESTED")
    await b.data(STEP, {"r": first_request, "k": "OFFER", "q": 1, "res": resource_id})
    await status_at(a, first_request, "OFFERED")
    version = (await b.data(VERSION, {"id": resource_id}))["node"]["version"]
    await b.data(RETIRE, {"id": resource_id, "v": version})
    await a.data(STEP, {"r": first_request, "k": "ACCEPT"})
    declined = await status_at(a, first_request, "DECLINED")
    assert declined["steps"][-1]["reason"] == "AID_RECORD_RETIRED"
    rows = await rig.node_sql(
        B, "SELECT available FROM resources WHERE kind = 'portable_generator'"
    )
    assert [r[0] for r in rows] == [1]


async def test_duplicate_deliveries_take_effect_once(rig: AidRig) -> None:
    a_at_hub = await start(rig)
    assert rig.hub is not None
    b = rig.staff(B)
    _, request_id = await find_and_request(rig, a_at_hub)
    await status_at(b, request_id, "REQUESTED")
    [(payload,)] = await rig.node_sql(A, "SELECT payload FROM flag_outbox WHERE kind = 'aid.step'")
    step = payload if isinstance(payload, dict) else json.loads(payload)
    events = await rig.hub_sql("SELECT count(*) FROM aid_events")
    to_b = await rig.hub_sql("SELECT count(*) FROM flag_outbox WHERE node = :b", b=B)

    a_token = await rig.hub.client_token(org=A, kind=OrgKind.COMMUNITY, scopes="aid:request")
    other = await rig.hub.client_token(org="110105003001", kind=OrgKind.COMMUNITY,
                                       scopes="aid:request aid:respond")  # fmt: skip
    no_scope = await rig.hub.client_token(org=A, kind=OrgKind.COMMUNITY, scopes="resources:read")
    async with httpx.AsyncClient(base_url=rig.hub.url, timeout=30.0) as http:

        async def post(token: str) -> httpx.Response:
            return await http.post(
                "/aid/inbox", json=step, headers={"Authorization": f"Bearer {token}"}
            )

        again = await post(a_token)
        assert (again.status_code, again.json()["status"]) == (200, "duplicate")
        foreign = await post(other)
        assert foreign.status_code == 403
        assert foreign.json()["errors"][0]["extensions"]["reason"] == "NOT_SENDER"
        unscoped = await post(no_scope)
        assert unscoped.status_code == 403
        assert unscoped.json()["errors"][0]["extensions"]["scope"] == "aid:request"
        bad = await http.post("/aid/inbox", json={**step, "quantity": -1},
                              headers={"Authorization": f"Bearer {a_token}"})  # fmt: skip
        assert bad.status_code in (400, 422)
        unknown = await http.post(
            "/aid/inbox",
            json={**step, "kind": "cancel", "message_id": str(uuid.uuid4()),
                  "request_id": f"AidRequest:{A}:nosuchrequest"},
            headers={"Authorization": f"Bearer {a_token}"},
        )  # fmt: skip
        assert unknown.status_code == 400  # permanent: the node's outbox marks it FAILED
        assert unknown.json()["errors"][0]["extensions"]["code"] == "AID_UNKNOWN_REQUEST"
    assert await rig.hub_sql("SELECT count(*) FROM aid_events") == events
    assert await rig.hub_sql("SELECT count(*) FROM flag_outbox WHERE node = :b", b=B) == to_b

    # At B's node: the hub's relay of the same step, delivered twice more.
    hub_token = await rig.hub.client_token(org=DISTRICT, kind=OrgKind.HUB, scopes="aid:respond",
                                           resource=B)  # fmt: skip
    before = (await b.data(CASE, {"r": request_id}))["aidCase"]
    async with httpx.AsyncClient(base_url=rig.nodes[B].url) as http:
        for _ in range(2):
            answer = await http.post(
                "/aid/steps", json=step, headers={"Authorization": f"Bearer {hub_token}"}
            )
            assert (answer.status_code, answer.json()["status"]) == (200, "duplicate")
        stray = {**step, "kind": "cancel", "message_id": str(uuid.uuid4()),
                 "request_id": f"AidRequest:{A}:nosuchrequest"}  # fmt: skip
        answer = await http.post(
            "/aid/steps", json=stray, headers={"Authorization": f"Bearer {hub_token}"}
        )
        assert (answer.status_code, answer.json()["status"]) == (200, "ignored")
        forged = await http.post(
            "/aid/steps", json=step, headers={"Authorization": f"Bearer {a_token}"}
        )
        assert forged.status_code in (401, 403)
    assert (await b.data(CASE, {"r": request_id}))["aidCase"] == before


async def test_cancel_while_the_commit_is_in_flight_releases_the_units(rig: AidRig) -> None:
    a_at_hub = await start(rig)
    a, b = rig.staff(A), rig.staff(B)
    resource_id, request_id = await find_and_request(rig, a_at_hub)
    await status_at(b, request_id, "REQUESTED")
    await b.data(STEP, {"r": request_id, "k": "OFFER", "q": 1, "res": resource_id})
    await status_at(a, request_id, "OFFERED")
    await rig.stop_node(B)
    await a.data(STEP, {"r": request_id, "k": "ACCEPT"})
    await a.data(STEP, {"r": request_id, "k": "CANCEL", "n": "已自行解决 solved locally"})
    rig.start_node(B)
    at_b = await status_at(b, request_id, "CANCELLED")
    # B committed on the accept, then released on the cancel: never both kept.
    assert [s["kind"] for s in at_b["steps"]] == [
        "request", "offer", "accept", "commit", "cancel",
    ]  # fmt: skip
    assert at_b["committed"] == 0
    assert await available(b, resource_id) == 3
    at_a = await status_at(a, request_id, "CANCELLED")
    assert at_a["disclosure"] is None  # the commit arrived after the cancel: ignored
    assert rig.hub is not None

    async def hub_ignored_commit() -> bool:
        rows = await rig.hub_sql(
            "SELECT count(*) FROM aid_inbox_messages WHERE outcome = 'ignored'"
        )
        return bool(rows[0][0] == 1)

    await eventually(hub_ignored_commit, timeout_s=30)
    [(status,)] = await rig.hub_sql("SELECT status FROM aid_cases")
    assert status == "cancelled"
