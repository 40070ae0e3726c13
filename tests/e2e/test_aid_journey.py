"""Mutual aid from community A to community B and back, over real servers.

A finds B's generator through the hub, requests it at its own node; B is notified through
the hub's ``aidEvents`` subscription, offers, and B's node commits when A accepts; only
then does A see the exact address and a contact, and B's audit log holds the disclosure.
B dispatches, A receives, B asks for it back, A returns it. Every step crosses through the
nodes' outboxes and the hub's node outbox; both nodes and the hub end with the same
history. The second test kills B's node between offer and commit.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from hub.flags.webhooks import sign
from schema.enums import OrgKind
from tests.conftest import BACKENDS, GraphQLClient
from tests.e2e.aid_rig import CONTACT, A, AidRig, B, aid_rig
from tests.hub.flags.conftest import Receiver, eventually, receivers

ADDRESS = "建外街道某社区3号楼地下车库"
CREATE_RESOURCE = """mutation ($i: ResourceCreateInput!) { createResource(input: $i) { id } }"""
CREATE_REQUEST = """mutation ($i: AidRequestCreateInput!) {
  createAidRequest(input: $i) { id status } }"""
STEP = """mutation ($r: ID!, $k: AidStepKind!, $q: Int, $res: ID, $n: String! = "") {
  aidStep(requestId: $r, kind: $k, quantity: $q, resourceId: $res, note: $n) {
    status committed received disclosure { resourceId address contact } } }"""
CASE = """query ($r: ID!) { aidCase(requestId: $r) {
  status role offered committed received disclosure { resourceId address contact } steps } }"""
RESOURCE = """query ($id: ID!) { node(id: $id) { ... on Resource { quantity available } } }"""
HUB_CASE = """query ($r: ID!) { aidCase(requestId: $r) {
  status committed received steps requestedAt firstOfferAt committedAt receivedAt } }"""
REGISTER_WEBHOOK = """mutation ($url: String!) { registerWebhook(url: $url) {
  secret webhook { id department } } }"""
EVENTS = """subscription ($after: Int) { aidEvents(after: $after) {
  seq type requestId status requester provider resourceKind quantity } }"""


__all__ = ["receivers"]  # the fixture, imported for the webhook receiver


@pytest.fixture(params=BACKENDS)
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AidRig]:
    async with aid_rig(request.param, tmp_path) as built:
        yield built


class AidSubscriber:
    """A graphql-transport-ws client of ``aidEvents``."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, hub_url: str, token: str, after: int | None = None) -> AidSubscriber:
        ws = await connect(
            hub_url.replace("http://", "ws://") + "/graphql",
            subprotocols=[Subprotocol("graphql-transport-ws")],
        )
        await ws.send(json.dumps({"type": "connection_init",
                                  "payload": {"Authorization": f"Bearer {token}"}}))  # fmt: skip
        ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
        assert ack["type"] == "connection_ack", ack
        await ws.send(json.dumps({"id": "1", "type": "subscribe",
                                  "payload": {"query": EVENTS,
                                              "variables": {"after": after}}}))  # fmt: skip
        return cls(ws)

    async def event(self, timeout_s: float = 15.0) -> dict[str, Any]:
        message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout_s))
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        event: dict[str, Any] = message["payload"]["data"]["aidEvents"]
        return event

    async def close(self) -> None:
        await self.ws.close()


def generator() -> dict[str, Any]:
    return {
        "kind": "portable_generator",
        "name": "5 kW 汽油发电机",
        "quantity": 3,
        "available": 3,
        "unit": "台",
        "location": {"coordinates": [116.4470, 39.9090]},
        "address": ADDRESS,
        "shareable": True,
    }


async def status_at(
    client: GraphQLClient, request_id: str, status: str, *, query: str = CASE
) -> dict[str, Any]:
    """The node's case once it reaches ``status`` (``query`` selects its fields)."""

    async def reached() -> dict[str, Any] | None:
        case: dict[str, Any] | None = (await client.data(query, {"r": request_id}))["aidCase"]
        return case if case is not None and case["status"] == status else None

    found: dict[str, Any] = await eventually(reached, timeout_s=30)
    return found


async def available(client: GraphQLClient, resource_id: str) -> int:
    node = (await client.data(RESOURCE, {"id": resource_id}))["node"]
    return int(node["available"])


async def find_and_request(rig: AidRig, a_at_hub: GraphQLClient) -> tuple[str, str]:
    """B's generator, found by A through the hub; A's request for it. (resource id, request id)"""
    b = rig.staff(B)
    resource_id = (await b.data(CREATE_RESOURCE, {"i": generator()}))["createResource"]["id"]

    async def found() -> list[dict[str, Any]] | None:
        body = await a_at_hub.post(
            """{ resources(where: {kinds: ["portable_generator"]}) {
                 edges { node { id kind unit availableBand { label } address } } } }"""
        )
        edges = ((body.get("data") or {}).get("resources") or {}).get("edges") or []
        return edges or None

    edges = await eventually(found, timeout_s=30)
    assert [e["node"]["id"] for e in edges] == [resource_id]
    assert ADDRESS not in json.dumps(edges, ensure_ascii=False)  # not before a commit
    request = {
        "requester": A,
        "provider": B,
        "resourceKind": "portable_generator",
        "resourceId": resource_id,
        "quantity": 1,
        "unit": "台",
        "purpose": "居民楼停电，电梯困人救援 Power for a stuck lift",
    }
    created = (await rig.staff(A).data(CREATE_REQUEST, {"i": request}))["createAidRequest"]
    assert created["status"] == "REQUESTED"
    return resource_id, created["id"]


async def start(rig: AidRig) -> GraphQLClient:
    """The hub and both nodes; A's client at the hub."""
    hub = await rig.start_hub()
    rig.start_node(A)
    rig.start_node(B)
    return await hub.graphql(org=A, kind=OrgKind.COMMUNITY, scopes="resources:read aid:request")


def message_ids(steps: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(s["kind"], s["message_id"]) for s in steps]


async def same_history(rig: AidRig, a: GraphQLClient, b: GraphQLClient, request_id: str,
                       status: str) -> list[tuple[str, str]]:  # fmt: skip
    """Both nodes and the hub at ``status`` with the same steps in the same order."""
    assert rig.hub is not None
    department = await rig.hub.graphql(org="110105400003", kind=OrgKind.DEPARTMENT,
                                       scopes="risk:verify")  # fmt: skip
    at_a = await status_at(a, request_id, status)
    at_b = await status_at(b, request_id, status)

    async def hub_reached() -> dict[str, Any] | None:
        case: dict[str, Any] | None = (await department.data(HUB_CASE, {"r": request_id}))[
            "aidCase"
        ]
        return case if case is not None and case["status"] == status else None

    at_hub = await eventually(hub_reached, timeout_s=30)
    history = message_ids(at_a["steps"])
    assert message_ids(at_b["steps"]) == history
    assert message_ids(at_hub["steps"]) == history
    return history


async def test_a_generator_travels_from_b_to_a_and_back(rig: AidRig, receivers: Any) -> None:
    a_at_hub = await start(rig)
    assert rig.hub is not None
    b_token = await rig.hub.client_token(org=B, kind=OrgKind.COMMUNITY, scopes="aid:respond")
    receiver = Receiver()
    hook_url = receivers(receiver) + "/hook"
    b_at_hub = GraphQLClient(rig.hub.url, b_token)
    rig.clients.append(b_at_hub)
    registered = (await b_at_hub.data(REGISTER_WEBHOOK, {"url": hook_url}))["registerWebhook"]
    assert registered["webhook"]["department"] == B
    subscriber = await AidSubscriber.open(rig.hub.url, b_token)
    a, b = rig.staff(A), rig.staff(B)
    try:
        await asyncio.sleep(0.3)  # the subscription is live before the request
        resource_id, request_id = await find_and_request(rig, a_at_hub)
        notified = await subscriber.event()
        assert (notified["type"], notified["requestId"], notified["provider"]) == (
            "aid.request",
            request_id,
            B,
        )
        assert (notified["resourceKind"], notified["quantity"]) == ("portable_generator", 1)

        async def hooked() -> list[Any]:
            return [r for r in receiver.received if r.json()["type"] == "aid.request"]

        [delivery] = await eventually(hooked, timeout_s=30)  # B's signed webhook too
        assert delivery.json()["data"]["requestId"] == request_id
        assert delivery.json()["data"]["seq"] == notified["seq"]
        signature = sign(
            registered["secret"],
            delivery.headers["webhook-id"],
            int(delivery.headers["webhook-timestamp"]),
            delivery.body.decode(),
        )
        assert delivery.headers["webhook-signature"] == signature
        await status_at(b, request_id, "REQUESTED")  # B's node has it from the hub
        offered = await b.data(STEP, {"r": request_id, "k": "OFFER", "q": 1, "res": resource_id})
        assert offered["aidStep"]["status"] == "OFFERED"
        assert (await subscriber.event())["type"] == "aid.offer"
    finally:
        await subscriber.close()
    case = await status_at(a, request_id, "OFFERED")
    assert case["disclosure"] is None
    assert case["offered"] == 1
    assert await available(b, resource_id) == 3  # an offer reserves nothing

    await a.data(STEP, {"r": request_id, "k": "ACCEPT"})
    case = await status_at(a, request_id, "COMMITTED")
    assert case["committed"] == 1
    assert case["disclosure"] == {"resourceId": resource_id, "address": ADDRESS,
                                  "contact": CONTACT}  # fmt: skip
    assert await available(b, resource_id) == 2
    # B never sees a disclosure of its own resource; the hub keeps none in its history.
    assert (await status_at(b, request_id, "COMMITTED"))["disclosure"] is None
    hub_rows = await rig.hub_sql("SELECT steps FROM aid_cases")
    assert ADDRESS not in str(hub_rows)
    assert CONTACT not in str(hub_rows)

    await b.data(STEP, {"r": request_id, "k": "DISPATCH", "n": "司机 李师傅"})
    await status_at(a, request_id, "DISPATCHED")
    await a.data(STEP, {"r": request_id, "k": "RECEIVE", "q": 1, "n": "油箱半满 half a tank"})
    received = await status_at(b, request_id, "RECEIVED")
    assert received["received"] == 1
    await b.data(STEP, {"r": request_id, "k": "REQUEST_RETURN"})
    await status_at(a, request_id, "RETURN_REQUESTED")
    await a.data(STEP, {"r": request_id, "k": "RETURN", "n": "已加满油 refuelled"})
    history = await same_history(rig, a, b, request_id, "RETURNED")
    assert [kind for kind, _ in history] == [
        "request", "offer", "accept", "commit", "dispatch", "receive", "request_return", "return",
    ]  # fmt: skip
    assert await available(b, resource_id) == 3  # the generator is back

    # The disclosure is in B's audit log, to A, with the request as its purpose.
    audit = await b.data("{ disclosures(first: 50) { edges { node { action org recordType "
                         "purpose decision } } } }")  # fmt: skip
    entries = [e["node"] for e in audit["disclosures"]["edges"]]
    aid_entries = [e for e in entries if e["purpose"] == f"aid:{request_id}"]
    assert len(aid_entries) == 1, entries
    assert aid_entries[0]["action"] == "disclose"
    assert aid_entries[0]["org"] == A
    assert aid_entries[0]["recordType"] == "Resource"
    assert aid_entries[0]["decision"]["record"] == resource_id

    # The district view counts it: nothing open, one request with every hop timed.
    department = await rig.hub.graphql(org="110105400003", kind=OrgKind.DEPARTMENT,
                                       scopes="risk:verify")  # fmt: skip
    district = (
        await department.data(
            "{ aidDistrict { requests openNeeds { area } unmetNeeds { resourceKind } "
            "toFirstOffer { p50 p90 } toCommit { p50 p90 } toReceipt { p50 p90 } } }"
        )
    )["aidDistrict"]
    assert district["requests"] == 1
    assert district["openNeeds"] == []
    assert district["unmetNeeds"] == []
    for hop in ("toFirstOffer", "toCommit", "toReceipt"):
        assert district[hop]["p50"] is not None
        assert district[hop]["p50"] >= 0
    metrics = (await department.http.get("/metrics")).text
    assert "linli_hub_aid_request_to_commit_seconds_count 1.0" in metrics


async def test_b_down_between_offer_and_commit_commits_once_after_restart(rig: AidRig) -> None:
    a_at_hub = await start(rig)
    a, b = rig.staff(A), rig.staff(B)
    resource_id, request_id = await find_and_request(rig, a_at_hub)
    await status_at(b, request_id, "REQUESTED")
    await b.data(STEP, {"r": request_id, "k": "OFFER", "q": 1, "res": resource_id})
    await status_at(a, request_id, "OFFERED")

    await rig.stop_node(B)
    await a.data(STEP, {"r": request_id, "k": "ACCEPT"})

    async def tried_while_down() -> int | None:
        rows = await rig.hub_sql(
            "SELECT attempts FROM flag_outbox WHERE node = :b AND path = '/aid/steps' "
            "AND delivered_at IS NULL",
            b=B,
        )
        return rows[0][0] if rows and rows[0][0] >= 2 else None

    await eventually(tried_while_down, timeout_s=30)  # the accept waits at the hub for B
    assert (await status_at(a, request_id, "ACCEPTED"))["committed"] == 0

    rig.start_node(B)
    case = await status_at(a, request_id, "COMMITTED")
    assert case["disclosure"]["address"] == ADDRESS
    history = await same_history(rig, a, b, request_id, "COMMITTED")
    assert [kind for kind, _ in history] == ["request", "offer", "accept", "commit"]
    assert await available(b, resource_id) == 2  # exactly one commitment
    accepts = await rig.node_sql(B, "SELECT count(*) FROM aid_messages WHERE kind = 'accept'")
    assert accepts[0][0] == 1


MATCHES = """query ($k: String!, $q: Int!, $near: NearInput) {
  aidMatches(resourceKind: $k, quantity: $q, near: $near) {
    resourceId owner name available availableBand enough distanceKm } }"""


async def test_matches_come_in_dispatch_order(rig: AidRig) -> None:
    a_at_hub = await start(rig)
    a, b = rig.staff(A), rig.staff(B)

    async def generator_at(name: str, lon: float, available: int) -> str:
        made = {**generator(), "name": name, "available": available,
                "location": {"coordinates": [lon, 39.9090]}}  # fmt: skip
        return str((await b.data(CREATE_RESOURCE, {"i": made}))["createResource"]["id"])

    near_empty = await generator_at("near, none left", 116.4450, 0)
    far = await generator_at("far", 116.5200, 3)
    near = await generator_at("near", 116.4480, 3)
    await a.data(CREATE_RESOURCE, {"i": generator()})  # A's own: never a match for A
    here = {"lat": 39.9090, "lon": 116.4440, "radiusKm": 20}

    async def three() -> list[dict[str, Any]] | None:
        body = await a_at_hub.post(MATCHES, {"k": "portable_generator", "q": 2, "near": here})
        matches = (body.get("data") or {}).get("aidMatches") or []
        return matches if len(matches) == 3 else None

    matches = await eventually(three, timeout_s=30)
    assert [m["resourceId"] for m in matches] == [near, far, near_empty]
    # A neighbour sees bands ("1-9" may cover 2, "none" cannot) and coarse locations.
    assert [m["enough"] for m in matches] == [None, None, False]
    assert [m["availableBand"] for m in matches] == ["1-9", "1-9", "none"]
    assert {m["owner"] for m in matches} == {B}
    assert matches[0]["distanceKm"] < matches[1]["distanceKm"]
    exact = await a_at_hub.post(MATCHES, {"k": "portable_generator", "q": 20, "near": here})
    assert [m["enough"] for m in exact["data"]["aidMatches"]] == [False, False, False]
    refused = await a_at_hub.post(MATCHES, {"k": "unicorn", "q": 1})
    assert refused["errors"][0]["extensions"]["code"] == "UNKNOWN_RESOURCE_KIND"
    refused = await a_at_hub.post(MATCHES, {"k": "portable_generator", "q": 0})
    assert refused["errors"][0]["extensions"]["code"] == "AID_QUANTITY_INVALID"


DISTRICT_VIEW = """{ aidDistrict { requests openNeeds { area resourceKind requests quantity } } }"""


async def test_departments_see_their_own_countys_cases_only(rig: AidRig) -> None:
    """A department above (city: aggregates only) or beside (another county) sees no case,
    and another county's counts none in ``aidDistrict``."""
    a_at_hub = await start(rig)
    assert rig.hub is not None
    _, request_id = await find_and_request(rig, a_at_hub)
    own = await rig.hub.graphql(org="110105400003", kind=OrgKind.DEPARTMENT, scopes="risk:verify")

    async def relayed() -> dict[str, Any] | None:
        case: dict[str, Any] | None = (await own.data(HUB_CASE, {"r": request_id}))["aidCase"]
        return case

    at_hub = await eventually(relayed, timeout_s=30)
    assert at_hub["status"] == "REQUESTED"
    # The purpose and place travel to the parties; a department reads them (as the
    # requester's policy allows) from A's node, not from the hub's relay.
    purpose = "居民楼停电，电梯困人救援 Power for a stuck lift"
    assert "note" not in at_hub["steps"][0]
    assert "place" not in at_hub["steps"][0]
    as_edxl = await own.http.get(f"/aid/cases/{request_id}/steps/1/edxl-rm")
    assert as_edxl.status_code == 200, as_edxl.text
    assert "电梯" not in as_edxl.text
    party = (await a_at_hub.data(HUB_CASE, {"r": request_id}))["aidCase"]
    assert party["steps"][0]["note"] == purpose
    cases = "{ aidCases { items { requestId } hasNextPage endCursor } }"
    assert [c["requestId"] for c in (await own.data(cases))["aidCases"]["items"]] == [request_id]
    step = f"/aid/cases/{request_id}/steps/1/edxl-rm"
    for org, district in (("110100400001", "110100"), ("110106400001", "110106")):
        token = await rig.hub.client_token(org=org, kind=OrgKind.DEPARTMENT,
                                           scopes="risk:verify", district=district)  # fmt: skip
        other = GraphQLClient(rig.hub.url, token)
        rig.clients.append(other)
        assert (await other.data(HUB_CASE, {"r": request_id}))["aidCase"] is None
        assert (await other.data(cases))["aidCases"] == {
            "items": [], "hasNextPage": False, "endCursor": None,
        }  # fmt: skip
        answer = await other.http.get(step)
        assert answer.status_code == 404, answer.text
        figures = (await other.data(DISTRICT_VIEW))["aidDistrict"]
        # The city above counts it (aggregates); another county does not.
        counted = [{"area": A, "resourceKind": "portable_generator", "requests": 1,
                    "quantity": 1}] if district == "110100" else []  # fmt: skip
        assert (figures["requests"], figures["openNeeds"]) == (len(counted), counted)
        subscriber = await AidSubscriber.open(rig.hub.url, token, after=0)
        try:
            with pytest.raises(TimeoutError):
                await subscriber.event(timeout_s=1.0)
        finally:
            await subscriber.close()
    # The district's department sees its event from the log.
    subscriber = await AidSubscriber.open(rig.hub.url, await rig.hub.client_token(
        org="110105400003", kind=OrgKind.DEPARTMENT, scopes="risk:verify"), after=0)  # fmt: skip
    try:
        assert (await subscriber.event())["requestId"] == request_id
    finally:
        await subscriber.close()
