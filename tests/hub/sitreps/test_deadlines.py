"""A report past its deadline escalates once: an event in the hub's numbered log, a webhook."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from standardwebhooks.webhooks import Webhook

from tests.hub.flags.conftest import Receiver, eventually
from tests.hub.sitreps.conftest import OFFICE, REPORT, SUBMIT, District

REGISTER = "mutation ($url: String!) { registerWebhook(url: $url) { secret } }"
EVENTS = """query($after: Int) { situationReportEvents(after: $after) {
  edges { cursor node { seq type reportId community assignedTo at } } } }"""


async def test_an_overdue_initial_report_escalates_once_with_an_event_and_a_signed_webhook(
    start_district: Callable[..., Any], serve: Callable[..., Any]
) -> None:
    district: District = await start_district(
        sitrep_escalate_to=OFFICE,
        sitrep_check_interval_s=0.2,
        delivery_poll_s=0.1,
    )
    receiver = Receiver()
    url = serve(receiver.app()).url + "/hook"
    secret = (await district.office.data(REGISTER, {"url": url}))["registerWebhook"]["secret"]
    # Level I: the initial report is due one hour after the start (the default setting).
    late = await district.add_incident(
        title="危化品仓库火灾", level="I", started=datetime.now(UTC) - timedelta(hours=2)
    )
    on_time = await district.add_incident(title="小区停电", level="I")
    overdue = await district.create(late)
    fresh = await district.create(on_time)
    assert overdue["overdue"]
    assert not fresh["overdue"]

    async def escalated() -> Any:
        report = (await district.office.data(REPORT, {"id": overdue["id"]}))["situationReport"]
        return report if report["escalatedAt"] else None

    report = await eventually(escalated, timeout_s=30.0)
    assert report["escalatedTo"] == OFFICE
    due = datetime.fromisoformat(report["dueAt"])
    started = datetime.fromisoformat(report["fields"]["occurredAt"])
    assert due - started == timedelta(hours=1)

    (delivered,) = await eventually(lambda: _async(receiver.received), timeout_s=30.0)
    payload = Webhook(secret).verify(delivered.body, delivered.headers)
    assert payload["type"] == "report.overdue"
    data = payload["data"]
    assert (data["reportId"], data["incidentId"], data["kind"]) == (overdue["id"], late, "initial")
    assert (data["severity"], data["escalatedTo"]) == ("I", OFFICE)

    events = (await district.office.data(EVENTS, {"after": None}))["situationReportEvents"]
    (event,) = [e["node"] for e in events["edges"]]
    assert (event["type"], event["reportId"], event["assignedTo"]) == (
        "report.overdue",
        overdue["id"],
        OFFICE,
    )
    assert event["seq"] == data["seq"]
    # Once escalated it is not escalated again, and the report on time never is; submitting
    # the overdue one ends its overdue state.
    await district.office.data(SUBMIT, {"id": overdue["id"], "rev": 1})
    await asyncio.sleep(1.0)  # five more rounds of the check
    events = (await district.office.data(EVENTS, {"after": None}))["situationReportEvents"]
    assert [e["node"]["reportId"] for e in events["edges"]] == [overdue["id"]]
    assert len(receiver.received) == 1
    after = (await district.office.data(REPORT, {"id": overdue["id"]}))["situationReport"]
    assert not after["overdue"]
    assert after["escalatedAt"] == report["escalatedAt"]


async def _async(value: Any) -> Any:
    return value
