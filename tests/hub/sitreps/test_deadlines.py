"""A report past its deadline escalates once: an event in the hub's numbered log, a webhook."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from standardwebhooks.webhooks import Webhook

from hub.app import MIGRATIONS
from hub.settings import HubSettings
from hub.sitreps import service
from hub.sitreps.model import ReportFields, ReportKind
from hub.sitreps.prefill import IncidentFacts, Prefill
from policies.caller import Caller
from schema.enums import OrgKind, SeverityLevel
from schema.runtime.db import Database
from tests.conftest import DatabaseUnderTest, migrate
from tests.hub.flags.conftest import Receiver, Subscriber, eventually
from tests.hub.sitreps.conftest import OFFICE, REPORT, SUBMIT, District

REGISTER = "mutation ($url: String!) { registerWebhook(url: $url) { secret } }"
EVENTS = """query($after: Int) { situationReportEvents(after: $after) {
  edges { cursor node { seq type subjectId community assignedTo at } } } }"""


async def test_an_overdue_initial_report_escalates_once_with_an_event_and_a_signed_webhook(
    start_district: Callable[..., Any], serve: Callable[..., Any]
) -> None:
    district: District = await start_district(
        sitrep_escalate_to=OFFICE,
        sitrep_check_interval_s=0.2,
        sitrep_watch_interval_s=3600.0,  # its one round runs at start, before any incident
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
    assert (event["type"], event["subjectId"], event["assignedTo"]) == (
        "report.overdue",
        overdue["id"],
        OFFICE,
    )
    assert event["seq"] == data["seq"]
    # The log is shared, but flagEvents follows flags only: the office, told of the overdue
    # report, replays nothing from the start of the log.
    token = district.office.http.headers["Authorization"].removeprefix("Bearer ")
    subscriber = await Subscriber.open(district.url.replace("http://", "ws://") + "/graphql", token)
    try:
        assert (await subscriber.ack())["type"] == "connection_ack"
        await subscriber.subscribe(after=0)
        await subscriber.nothing_more()
    finally:
        await subscriber.close()
    # Once escalated it is not escalated again, and the report on time never is; submitting
    # the overdue one ends its overdue state.
    await district.office.data(SUBMIT, {"id": overdue["id"], "rev": 1})
    await asyncio.sleep(1.0)  # five more rounds of the check
    events = (await district.office.data(EVENTS, {"after": None}))["situationReportEvents"]
    assert [e["node"]["subjectId"] for e in events["edges"]] == [overdue["id"]]
    assert len(receiver.received) == 1
    after = (await district.office.data(REPORT, {"id": overdue["id"]}))["situationReport"]
    assert not after["overdue"]
    assert after["escalatedAt"] == report["escalatedAt"]


async def _async(value: Any) -> Any:
    return value


async def test_an_open_incident_whose_initial_report_was_never_started_escalates_once(
    start_district: Callable[..., Any], serve: Callable[..., Any]
) -> None:
    district: District = await start_district(
        sitrep_escalate_to=OFFICE,
        sitrep_watch_interval_s=0.3,
        delivery_poll_s=0.1,
    )
    receiver = Receiver()
    url = serve(receiver.app()).url + "/hook"
    secret = (await district.office.data(REGISTER, {"url": url}))["registerWebhook"]["secret"]
    two_hours_ago = datetime.now(UTC) - timedelta(hours=2)
    # Level I: due an hour after the start. Level IV: due after four hours.
    forgotten = await district.add_incident(title="燃气管道破裂", level="I", started=two_hours_ago)
    await district.add_incident(title="路灯损坏", level="IV", started=two_hours_ago)

    (delivered,) = await eventually(lambda: _async(receiver.received), timeout_s=30.0)
    payload = Webhook(secret).verify(delivered.body, delivered.headers)
    assert payload["type"] == "report.missing"
    data = payload["data"]
    assert (data["incidentId"], data["reportId"], data["kind"]) == (forgotten, None, "initial")
    assert (data["severity"], data["escalatedTo"]) == ("I", OFFICE)
    started = datetime.fromisoformat(data["dueAt"]) - timedelta(hours=1)
    assert abs(started - two_hours_ago) < timedelta(seconds=1)

    await asyncio.sleep(1.5)  # five more reads of the open incidents
    events = (await district.office.data(EVENTS, {"after": None}))["situationReportEvents"]
    assert [(e["node"]["type"], e["node"]["subjectId"]) for e in events["edges"]] == [
        ("report.missing", forgotten)
    ]
    assert len(receiver.received) == 1


async def test_an_incident_with_an_initial_report_started_or_already_escalated_is_not_missing(
    fresh_database: DatabaseUnderTest,
) -> None:
    await migrate(MIGRATIONS, fresh_database.url)
    db = Database(fresh_database.url)
    now = datetime.now(UTC)
    late = now - timedelta(hours=2)

    def incident(local: str, level: SeverityLevel = SeverityLevel.I) -> IncidentFacts:
        return IncidentFacts(
            id=f"Incident:110105001001:{local}",
            owner="110105001001",
            title="",
            severity=level,
            started_at=late,
        )

    drafted, escalated, forgotten = incident("d"), incident("e"), incident("f")
    minor = incident("m", SeverityLevel.IV)
    caller = Caller(
        org=OFFICE, org_kind=OrgKind.DEPARTMENT, scopes=frozenset(), client_id="c", subject="s"
    )
    deadlines = HubSettings().sitrep_deadlines_s
    try:
        async with db.transaction() as session:
            await service.create_draft(
                session,
                caller=caller,
                kind=ReportKind.INITIAL,
                prefilled=Prefill(drafted, ReportFields(), []),
                hub_id="hub-110105",
                district="110105",
                deadlines=deadlines,
                now=now,
            )
            await service.escalate_missing(
                session, escalated, due=late + timedelta(hours=1), to=OFFICE, now=now
            )
        async with db.sessions() as session:
            missing = await service.missing_initial_reports(
                session,
                [drafted, escalated, forgotten, minor],
                hub_id="hub-110105",
                deadlines=deadlines,
                now=now,
            )
            # Another hub's report on the same incident is no report of this hub.
            elsewhere = await service.missing_initial_reports(
                session, [drafted], hub_id="hub-110106", deadlines=deadlines, now=now
            )
    finally:
        await db.dispose()
    assert missing == [(forgotten, late + timedelta(hours=1))]
    assert elsewhere == [(drafted, late + timedelta(hours=1))]
