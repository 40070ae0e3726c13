"""Signed webhooks (verified by the independent ``standardwebhooks`` library), retries, log, replay."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from hub.flags.webhooks import MAX_WEBHOOKS
from schema.runtime.settings import Environment
from tests.hub.flags.conftest import (
    DEPT_GAS,
    DEPT_OTHER,
    FlagsHub,
    GraphQLClient,
    Receiver,
    Subscriber,
    eventually,
    free_port,
)

StartHub = Callable[..., Awaitable[FlagsHub]]
REGISTER = "mutation ($url: String!) { registerWebhook(url: $url) { secret webhook { id url department active } } }"
DELIVERIES = """query ($first: Int, $after: String) { webhookDeliveries(first: $first, after: $after) {
  edges { cursor node { id webhookId eventSeq eventType flagId status attempt statusCode error deliveredAt
    attempts { attempt statusCode error durationMs } } }
  pageInfo { hasNextPage endCursor } } }"""


async def register(client: GraphQLClient, url: str) -> tuple[str, str]:
    data = (await client.data(REGISTER, {"url": url}))["registerWebhook"]
    return data["webhook"]["id"], data["secret"]


async def deliveries(client: GraphQLClient) -> list[dict[str, Any]]:
    data = await client.data(DELIVERIES, {"first": 50})
    return [edge["node"] for edge in data["webhookDeliveries"]["edges"]]


def verify(secret: str, entry: Any) -> dict[str, Any]:
    payload: dict[str, Any] = Webhook(secret).verify(entry.body, entry.headers)
    return payload


async def test_events_arrive_signed_and_only_for_the_department(
    start_flags_hub: StartHub, receivers: Any
) -> None:
    hub = await start_flags_hub()
    mine, theirs = Receiver(), Receiver()
    department = await hub.graphql(await hub.department_token())
    hook_id, secret = await register(department, receivers(mine) + "/hook")
    assert secret.startswith("whsec_")
    other = await hub.graphql(await hub.department_token(DEPT_OTHER))
    await register(other, receivers(theirs) + "/hook")
    listed = (await department.data("{ webhooks { id url department active } }"))["webhooks"]
    assert [(w["id"], w["department"], w["active"]) for w in listed] == [(hook_id, DEPT_GAS, True)]

    subscriber = await Subscriber.open(hub.ws_url, await hub.department_token())
    try:
        assert (await subscriber.ack())["type"] == "connection_ack"
        await subscriber.subscribe()
        flag_id = await hub.raise_flag(await hub.community_token())
        await eventually(lambda: _some(mine.received))
        entry = mine.received[0]
        payload = verify(secret, entry)
        # The body carries the event exactly as the GraphQL FlagEvent gives it.
        assert payload["data"] == await subscriber.event()
    finally:
        await subscriber.close()
    assert payload["type"] == "flag.routed"
    assert payload["data"]["flagId"] == flag_id
    assert payload["data"]["assignedTo"] == DEPT_GAS
    assert payload["data"]["status"] == "ROUTED"
    assert entry.headers["webhook-id"].startswith("msg_")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(entry.body.replace(b"routed", b"raised"), entry.headers)
    other_secret = (await department.data(REGISTER, {"url": "https://example.invalid/x"}))[
        "registerWebhook"
    ]["secret"]
    with pytest.raises(WebhookVerificationError):
        Webhook(other_secret).verify(entry.body, entry.headers)
    assert theirs.received == []  # DEPT_OTHER's flags only

    async def delivered_hop() -> bool:
        timeline = await department.data(
            "query ($id: ID!) { flagTimeline(id: $id) { hop } }", {"id": flag_id}
        )
        return "delivered" in {h["hop"] for h in timeline["flagTimeline"]}

    assert await eventually(delivered_hop)
    log = await deliveries(department)
    assert [
        (d["eventType"], d["status"], d["attempt"], d["statusCode"])
        for d in log
        if d["webhookId"] == hook_id
    ] == [("flag.routed", "delivered", 1, 200)]
    community = await hub.graphql(await hub.community_token())
    assert await community.error_code(REGISTER, {"url": "https://example.org/x"}) == "FORBIDDEN"
    assert (
        await department.error_code(REGISTER, {"url": "ftp://example.org/x"}) == "URL_NOT_ALLOWED"
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://user:pass@127.0.0.1:9/hook",
        "http://127.0.0.1:9/hook#x",
        "gopher://127.0.0.1:9/",
        "http://localhost:9/hook",  # not in the allow-list below
        "http://127.0.0.1:9/" + "x" * 2000,
    ],
)
async def test_refused_webhook_urls_write_nothing(start_flags_hub: StartHub, url: str) -> None:
    hub = await start_flags_hub(allowed_outbound_hosts=["127.0.0.1"])
    department = await hub.graphql(await hub.department_token())
    assert await department.error_code(REGISTER, {"url": url}) == "URL_NOT_ALLOWED"
    assert await hub.count("flag_webhooks") == 0
    assert (await department.data("{ webhooks { id } }"))["webhooks"] == []
    await register(department, "http://127.0.0.1:9/hook")  # the same hub takes an allowed one
    assert await hub.count("flag_webhooks") == 1


async def test_an_organisation_registers_a_bounded_number_of_webhooks(
    start_flags_hub: StartHub,
) -> None:
    """Each event is queued once per webhook: unbounded registrations would multiply it."""
    hub = await start_flags_hub(allowed_outbound_hosts=["127.0.0.1"])
    department = await hub.graphql(await hub.department_token())
    for n in range(MAX_WEBHOOKS):
        await register(department, f"http://127.0.0.1:9/hook{n}")
    refused = await department.post(REGISTER, {"url": "http://127.0.0.1:9/one-more"})
    assert refused["errors"][0]["extensions"] == {
        "code": "TOO_MANY_WEBHOOKS",
        "field": "url",
        "limit": MAX_WEBHOOKS,
    }
    assert await hub.count("flag_webhooks") == MAX_WEBHOOKS
    other = await hub.graphql(await hub.department_token(DEPT_OTHER))
    await register(other, "http://127.0.0.1:9/other")  # the bound is per organisation
    assert await hub.count("flag_webhooks") == MAX_WEBHOOKS + 1


async def test_registrations_at_once_never_pass_the_bound(start_flags_hub: StartHub) -> None:
    hub = await start_flags_hub(allowed_outbound_hosts=["127.0.0.1"])
    department = await hub.graphql(await hub.department_token())
    for n in range(MAX_WEBHOOKS - 3):
        await register(department, f"http://127.0.0.1:9/hook{n}")
    # Eight more at once where three fit: each counts the others' before it decides.
    bodies = await asyncio.gather(
        *(department.post(REGISTER, {"url": f"http://127.0.0.1:9/race{n}"}) for n in range(8))
    )
    codes = sorted(b["errors"][0]["extensions"]["code"] for b in bodies if "errors" in b)
    assert codes == ["TOO_MANY_WEBHOOKS"] * 5
    assert await hub.count("flag_webhooks") == MAX_WEBHOOKS


async def _some(items: list[Any]) -> bool:
    return bool(items)


@pytest.mark.parametrize("failure", ["http500", "slow", "down"])
async def test_failed_attempts_are_retried_and_logged(
    start_flags_hub: StartHub, receivers: Any, failure: str
) -> None:
    hub = await start_flags_hub()
    department = await hub.graphql(await hub.department_token())
    receiver = Receiver(script=[] if failure == "down" else [failure], slow_s=2.0)
    port = free_port()
    if failure != "down":
        receivers(receiver, port)
    _hook_id, secret = await register(department, f"http://127.0.0.1:{port}/hook")
    await hub.raise_flag(await hub.community_token())

    async def failed_once() -> list[dict[str, Any]]:
        log = await deliveries(department)
        return [d for d in log if d["attempts"] and d["attempts"][0]["error"]]

    failed = (await eventually(failed_once))[0]
    first = failed["attempts"][0]
    expected_error = {
        "http500": "HTTP 500",
        "slow": "timed out after 1.0 s",
        "down": "ConnectError",
    }[failure]
    assert expected_error in first["error"]
    assert first["statusCode"] == (500 if failure == "http500" else None)
    if failure == "down":
        receivers(receiver, port)  # the endpoint comes back

    async def delivered() -> dict[str, Any] | None:
        log = await deliveries(department)
        return next((d for d in log if d["status"] == "delivered"), None)

    done = await eventually(delivered, timeout_s=15)
    assert done["attempt"] >= 2
    assert done["statusCode"] == 200
    assert done["error"] is None
    assert [a["attempt"] for a in done["attempts"]] == list(range(1, done["attempt"] + 1))
    assert done["attempts"][-1]["statusCode"] == 200
    assert done["deliveredAt"] is not None
    assert len(receiver.received) == 1
    assert verify(secret, receiver.received[0])["type"] == "flag.routed"
    ids = {e.headers["webhook-id"] for e in [*receiver.refused, *receiver.received]}
    assert ids == {done["id"]}  # the same message id on every retry


async def test_replay_sends_the_same_message_again(
    start_flags_hub: StartHub, receivers: Any
) -> None:
    hub = await start_flags_hub()
    department = await hub.graphql(await hub.department_token())
    receiver = Receiver()
    _, secret = await register(department, receivers(receiver) + "/hook")
    await hub.raise_flag(await hub.community_token())
    await eventually(lambda: _some(receiver.received))
    delivery = (await deliveries(department))[0]
    replay = "mutation ($id: ID!) { replayWebhookDelivery(id: $id) { id status } }"
    replayed = (await department.data(replay, {"id": delivery["id"]}))["replayWebhookDelivery"]
    assert replayed == {"id": delivery["id"], "status": "pending"}

    async def twice() -> bool:
        return len(receiver.received) == 2

    await eventually(twice)
    first, second = receiver.received
    assert first.body == second.body
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert verify(secret, second) == json.loads(first.body)

    # the receiver has the body before the hub has recorded the attempt's outcome
    async def recorded() -> dict[str, Any] | None:
        row: dict[str, Any] = (await deliveries(department))[0]
        return row if row["status"] == "delivered" else None

    after = await eventually(recorded)
    assert after["attempt"] == 2
    other = await hub.graphql(await hub.department_token(DEPT_OTHER))
    assert await other.error_code(replay, {"id": delivery["id"]}) == "NOT_FOUND"
    assert await other.data(DELIVERIES) == {
        "webhookDeliveries": {"edges": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}
    }


@pytest.mark.parametrize(
    ("host", "now", "refusal"),
    [
        (
            "localhost",
            {"environment": Environment.PRODUCTION},
            "URL_NOT_ALLOWED: the host localhost is a loopback, link-local or private address (",
        ),
        (
            "127.0.0.1",
            {"allowed_outbound_hosts": ["hooks.example.org"]},
            "URL_NOT_ALLOWED: the host 127.0.0.1 is not in allowed_outbound_hosts",
        ),
    ],
    ids=["resolves-to-loopback-in-production", "allow-list-changed"],
)
async def test_an_endpoint_refused_at_delivery_time_fails_at_once_and_is_never_called(
    start_flags_hub: StartHub, receivers: Any, host: str, now: dict[str, Any], refusal: str
) -> None:
    receiver = Receiver()
    url = receivers(receiver).replace("127.0.0.1", host) + "/hook"
    before = await start_flags_hub()  # development: the endpoint passed when registered
    hook_id, _secret = await register(await before.graphql(await before.department_token()), url)
    await before.close()
    hub = await start_flags_hub(**now)
    department = await hub.graphql(await hub.department_token())
    await hub.raise_flag(await hub.community_token())

    async def failed() -> dict[str, Any] | None:
        log = await deliveries(department)
        return next((d for d in log if d["webhookId"] == hook_id and d["status"] == "failed"), None)

    delivery = await eventually(failed)
    assert delivery["error"].startswith(refusal)
    assert [(a["attempt"], a["statusCode"]) for a in delivery["attempts"]] == [(1, None)]
    assert delivery["attempts"][0]["error"] == delivery["error"]
    assert receiver.calls == 0
