"""Situation reports: drafts, edits, versioned submissions, the order of kinds, deadlines.

A report belongs to one incident and one kind (初报 initial, 续报 follow-up, 终报
final). A follow-up or a final needs the incident's initial report submitted first,
nothing follows a submitted final, and an incident has one initial and one final
report per hub (``REPORT_OUT_OF_ORDER``). Each submission of a revision of the
report is a new version (v1, v2 ...), stored as sent and audited; submitting a
revision already submitted is ``REPORT_ALREADY_SUBMITTED``. Reports received from a
hub below are stored the same way; the same version received again is a duplicate
(nothing changes), with other content ``REPORT_VERSION_CONFLICT``. A received version
of a severe enough incident (``relay_from``) is owed, unchanged, to this hub's own
superior too (越级上报): a province hears of a major incident in a district as the city
does, without waiting for the city to write its own report.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from hub.flags.events import number_event
from hub.flags.tables import FlagEventRow
from hub.flags.webhooks import enqueue_event_deliveries
from hub.sitreps.errors import ReportAlreadySubmitted, ReportOutOfOrder, ReportVersionConflict
from hub.sitreps.model import ReportFields, ReportKind, ReportStatus, validated_fields
from hub.sitreps.prefill import IncidentFacts, Prefill
from hub.sitreps.tables import SitrepMissedRow, SitrepRow, SitrepVersionRow
from policies.audit import AuditEntry
from policies.caller import Caller, is_superior_division
from schema.api.pagination import RecordOrder, decode_cursor, encode_cursor, page_size
from schema.enums import OrgKind, SeverityLevel
from schema.errors import Forbidden, InvalidInput, NotFound, StaleVersion
from schema.scopes import Scope

__all__ = [
    "MISSING_EVENT",
    "OVERDUE_EVENT",
    "RECORD_TYPE",
    "Received",
    "create_draft",
    "due_at",
    "due_for_escalation",
    "escalate_missing",
    "escalate_report",
    "get_report",
    "list_reports",
    "missing_initial_reports",
    "overdue_json",
    "receive_report",
    "report_events",
    "report_json",
    "require",
    "submission_audit",
    "submit_report",
    "update_draft",
    "versions_of",
    "versions_of_many",
]

RECORD_TYPE = "SituationReport"
OVERDUE_EVENT = "report.overdue"
MISSING_EVENT = "report.missing"
_ORDER = RecordOrder.CREATED_DESC
_SEVERITY_RANK = {level.value: len(SeverityLevel) - i for i, level in enumerate(SeverityLevel)}


def relayed(severity: str, relay_from: SeverityLevel | None) -> bool:
    """Whether a received report of ``severity`` goes on up: ``relay_from`` or more severe."""
    if relay_from is None:
        return False
    return _SEVERITY_RANK.get(severity, 0) >= _SEVERITY_RANK[relay_from.value]


def require(caller: Caller, scope: Scope) -> Caller:
    """The caller, if its token grants ``scope``."""
    if not caller.has_scope(scope):
        raise Forbidden(f"the token lacks the scope {scope.value!r}", scope=scope.value)
    return caller


def due_at(
    deadlines: Mapping[str, Mapping[str, int]],
    kind: ReportKind,
    severity: SeverityLevel,
    *,
    started_at: datetime,
    previous_at: datetime | None,
) -> datetime | None:
    """When a report of ``kind`` is due: from the incident's start (a follow-up: the last one)."""
    seconds = deadlines.get(kind.value, {}).get(severity.value)
    if seconds is None:
        return None
    since = previous_at if kind is ReportKind.FOLLOW_UP and previous_at else started_at
    return since + timedelta(seconds=seconds)


async def _reports_of(session: AsyncSession, origin: str, incident_id: str) -> list[SitrepRow]:
    rows = await session.execute(
        select(SitrepRow).where(
            col(SitrepRow.origin) == origin, col(SitrepRow.incident_id) == incident_id
        )
    )
    return list(rows.scalars())


def _check_order(
    kind: ReportKind, others: list[SitrepRow], *, incident_id: str, submitting: bool
) -> None:
    """Refuse a report of ``kind`` the incident's other reports do not allow (yet, or any more)."""
    submitted = {ReportKind(r.kind) for r in others if r.version > 0}

    def refuse(message: str, needs: str | None = None) -> ReportOutOfOrder:
        return ReportOutOfOrder(message, kind=kind.value, incidentId=incident_id, needs=needs)

    if ReportKind.FINAL in submitted:
        raise refuse(f"the final report on {incident_id} was submitted: nothing follows it")
    if (
        kind is not ReportKind.FOLLOW_UP
        and not submitting
        and any(ReportKind(r.kind) is kind for r in others)
    ):
        raise refuse(f"{incident_id} has its {kind.value} report: edit it")
    if kind is not ReportKind.INITIAL and ReportKind.INITIAL not in submitted:
        raise refuse(
            f"a {kind.value} report needs the initial report on {incident_id} submitted first",
            needs=ReportKind.INITIAL.value,
        )


async def create_draft(
    session: AsyncSession,
    *,
    caller: Caller,
    kind: ReportKind,
    prefilled: Prefill,
    hub_id: str,
    district: str,
    deadlines: Mapping[str, Mapping[str, int]],
    now: datetime,
) -> SitrepRow:
    """A new draft of ``kind`` on the prefilled incident; flushes."""
    incident = prefilled.incident
    others = await _reports_of(session, hub_id, incident.id)
    _check_order(kind, others, incident_id=incident.id, submitting=False)
    previous = max((r.submitted_at for r in others if r.submitted_at), default=None)
    row = SitrepRow(
        id=f"{RECORD_TYPE}:{hub_id}:{uuid.uuid4().hex}",
        origin=hub_id,
        origin_district=district,
        incident_id=incident.id,
        incident_owner=incident.owner,
        incident_title=incident.title,
        kind=kind.value,
        severity=incident.severity.value,
        incident_started_at=incident.started_at,
        status=ReportStatus.DRAFT.value,
        fields=prefilled.fields.model_dump(mode="json"),
        basis=prefilled.basis,
        due_at=due_at(
            deadlines,
            kind,
            incident.severity,
            started_at=incident.started_at,
            previous_at=previous,
        ),
        created_by=(caller.subject or caller.client_id)[:64],
        created_org=caller.org,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    await session.flush()
    return row


async def get_report(session: AsyncSession, report_id: str, *, lock: bool = False) -> SitrepRow:
    """One report, or ``NotFound``."""
    query = select(SitrepRow).where(col(SitrepRow.id) == report_id)
    if lock:
        query = query.with_for_update()
    row = (await session.execute(query)).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no situation report {report_id}")
    return row


async def update_draft(
    session: AsyncSession,
    *,
    caller: Caller,
    report_id: str,
    expected_revision: int,
    changes: Mapping[str, Any],
    hub_id: str,
    now: datetime,
) -> SitrepRow:
    """Edit the fields of a report written here: a new revision (a draft again). Flushes."""
    row = await get_report(session, report_id, lock=True)
    if row.origin != hub_id:
        raise Forbidden(f"{report_id} was written at {row.origin}; it is edited there")
    if row.revision != expected_revision:
        raise StaleVersion(
            f"{report_id} is at revision {row.revision}, not {expected_revision}",
            revision=row.revision,
        )
    fields = validated_fields({**row.fields, **changes})
    row.fields = fields.model_dump(mode="json")
    row.revision += 1
    row.status = ReportStatus.DRAFT.value
    row.updated_at = now
    await session.flush()
    return row


async def submit_report(
    session: AsyncSession,
    *,
    caller: Caller,
    report_id: str,
    expected_revision: int,
    hub_id: str,
    forward: bool,
    now: datetime,
) -> tuple[SitrepRow, SitrepVersionRow]:
    """Submit the report's current revision as its next version; owed upwards if ``forward``."""
    row = await get_report(session, report_id, lock=True)
    if row.origin != hub_id:
        raise Forbidden(f"{report_id} was written at {row.origin}; it is submitted there")
    if row.submitted_revision == expected_revision:
        raise ReportAlreadySubmitted(
            f"revision {expected_revision} of {report_id} was submitted as version {row.version};"
            " edit it to submit another version",
            reportId=report_id,
            version=row.version,
        )
    if row.revision != expected_revision:
        raise StaleVersion(
            f"{report_id} is at revision {row.revision}, not {expected_revision}",
            revision=row.revision,
        )
    others = [r for r in await _reports_of(session, hub_id, row.incident_id) if r.id != row.id]
    kind = ReportKind(row.kind)
    _check_order(kind, others, incident_id=row.incident_id, submitting=True)
    row.version += 1
    row.submitted_revision = row.revision
    row.status = ReportStatus.SUBMITTED.value
    row.submitted_at = now
    row.updated_at = now
    version = SitrepVersionRow(
        report_id=row.id,
        version=row.version,
        origin=row.origin,
        body=report_json(row),
        submitted_at=now,
        submitted_by=(caller.subject or caller.client_id)[:64],
        forward_next_at=now if forward else None,
    )
    session.add(version)
    await session.flush()
    return row, version


def submission_audit(caller: Caller, row: SitrepRow, action: str) -> AuditEntry:
    """The audit row of one version submitted here or received from below."""
    return AuditEntry(
        action=action,
        owner=row.origin,
        caller=caller,
        record_type=RECORD_TYPE,
        count=1,
        decision={
            "report": row.id,
            "incident": row.incident_id,
            "kind": row.kind,
            "version": row.version,
        },
    )


def report_json(row: SitrepRow) -> dict[str, Any]:
    """The report as structured data (the JSON endpoint, the superior hub's inbox)."""
    return {
        "id": row.id,
        "origin": row.origin,
        "originDistrict": row.origin_district,
        "incidentId": row.incident_id,
        "incidentOwner": row.incident_owner,
        "incidentTitle": row.incident_title,
        "incidentStartedAt": row.incident_started_at.isoformat(),
        "kind": row.kind,
        "severity": row.severity,
        "status": row.status,
        "version": row.version,
        "revision": row.revision,
        "fields": dict(row.fields),
        "basis": list(row.basis),
        "dueAt": row.due_at.isoformat() if row.due_at else None,
        "escalatedAt": row.escalated_at.isoformat() if row.escalated_at else None,
        "createdBy": row.created_by,
        "createdAt": row.created_at.isoformat(),
        "submittedAt": row.submitted_at.isoformat() if row.submitted_at else None,
    }


@dataclass(frozen=True)
class Received:
    """What the inbox did with a version from below."""

    status: str  # accepted | duplicate
    report: SitrepRow


def _parse_body(body: Any) -> tuple[dict[str, Any], ReportFields]:
    if not isinstance(body, dict):
        raise InvalidInput("the body is not a JSON object", code="INVALID_JSON", field="(body)")
    for name, kind in (
        ("id", str),
        ("origin", str),
        ("originDistrict", str),
        ("incidentId", str),
        ("incidentOwner", str),
        ("kind", str),
        ("severity", str),
        ("version", int),
        ("fields", dict),
        ("incidentStartedAt", str),
        ("submittedAt", str),
    ):
        if not isinstance(body.get(name), kind):
            raise InvalidInput(
                f"{name} is missing or not a {kind.__name__}", code="MISSING_FIELD", field=name
            )
    if body["kind"] not in ReportKind._value2member_map_:
        raise InvalidInput(
            f"kind {body['kind']!r} is not a report kind", code="INVALID_ENUM_VALUE", field="kind"
        )
    if body["severity"] not in SeverityLevel._value2member_map_:
        raise InvalidInput("severity is not I-IV", code="INVALID_ENUM_VALUE", field="severity")
    if not body["id"].startswith(f"{RECORD_TYPE}:{body['origin']}:") or len(body["id"]) > 200:
        raise InvalidInput(
            "id is not SituationReport:<origin>:<local>", code="INVALID_ID", field="id"
        )
    if body["version"] < 1:
        raise InvalidInput("version starts at 1", code="OUT_OF_RANGE", field="version")
    return body, validated_fields(body["fields"])


def _moment(body: Mapping[str, Any], name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(body[name])
    except (TypeError, ValueError) as exc:
        raise InvalidInput(
            f"{name} is not an ISO 8601 time", code="INVALID_DATETIME", field=name
        ) from exc
    if moment.tzinfo is None:
        raise InvalidInput(f"{name} has no time zone", code="INVALID_DATETIME", field=name)
    return moment


async def receive_report(
    session: AsyncSession,
    *,
    caller: Caller,
    body: Any,
    now: datetime,
    relay_from: SeverityLevel | None = None,
) -> Received:
    """Store a version a hub below submitted (or relayed); owed further up by ``relay_from``.

    The token is the lower hub's own client here: its ``org`` is the report's origin (the
    lower hub's id, as ``hub.federation.superior`` registers it) or the origin's district;
    or a hub whose district is the city of the origin's district, relaying it.
    """
    require(caller, Scope.SITREP_SUBMIT)
    report, fields = _parse_body(body)
    relaying = caller.org_kind is OrgKind.HUB and is_superior_division(
        caller.district, report["originDistrict"]
    )
    if caller.org not in (report["origin"], report["originDistrict"]) and not relaying:
        raise Forbidden(
            f"the token's organisation {caller.org} does not write the reports of"
            f" {report['originDistrict']}"
        )
    started, submitted = _moment(report, "incidentStartedAt"), _moment(report, "submittedAt")
    version_no: int = report["version"]
    existing = (
        await session.execute(
            select(SitrepVersionRow).where(
                col(SitrepVersionRow.report_id) == report["id"],
                col(SitrepVersionRow.version) == version_no,
            )
        )
    ).scalar_one_or_none()
    row = await session.get(SitrepRow, report["id"], with_for_update=True)
    if existing is not None and row is not None:
        if existing.body.get("fields") != fields.model_dump(mode="json"):
            raise ReportVersionConflict(
                f"version {version_no} of {report['id']} was received before with other content",
                reportId=report["id"],
                version=version_no,
            )
        return Received("duplicate", row)
    kind = ReportKind(report["kind"])
    others = [
        r
        for r in await _reports_of(session, report["origin"], report["incidentId"])
        if r.id != report["id"]
    ]
    _check_order(kind, others, incident_id=report["incidentId"], submitting=True)
    if row is None:
        row = SitrepRow(
            id=report["id"],
            origin=report["origin"],
            origin_district=report["originDistrict"],
            incident_id=report["incidentId"],
            incident_owner=report["incidentOwner"],
            incident_title=str(report.get("incidentTitle") or "")[:200],
            kind=kind.value,
            severity=report["severity"],
            incident_started_at=started,
            status=ReportStatus.SUBMITTED.value,
            fields={},
            created_by=caller.client_id[:64],
            created_org=caller.org,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
    if version_no <= row.version:  # an older version arriving late: kept, the report stays
        stored_row = row
    else:
        row.fields = fields.model_dump(mode="json")
        row.version = version_no
        row.submitted_revision = row.revision = version_no
        row.submitted_at = submitted
        row.updated_at = now
        stored_row = row
    sent = {**report, "fields": fields.model_dump(mode="json")}
    session.add(
        SitrepVersionRow(
            report_id=report["id"],
            version=version_no,
            origin=report["origin"],
            body=sent,
            submitted_at=submitted,
            submitted_by=caller.client_id[:64],
            received_at=now,
            forward_next_at=now if relayed(report["severity"], relay_from) else None,
        )
    )
    await session.flush()
    return Received("accepted", stored_row)


async def list_reports(
    session: AsyncSession,
    *,
    incident_id: str | None,
    first: int | None,
    after: str | None,
    secret: bytes,
) -> tuple[list[tuple[str, SitrepRow]], bool]:
    """Reports newest first (written here and received from below), one page."""
    size = page_size(first)
    query = select(SitrepRow)
    if incident_id is not None:
        query = query.where(col(SitrepRow.incident_id) == incident_id)
    if after is not None:
        key, last_id = decode_cursor(after, _ORDER, secret=secret)
        query = query.where(
            sa.or_(
                col(SitrepRow.created_at) < key,
                sa.and_(col(SitrepRow.created_at) == key, col(SitrepRow.id) < last_id),
            )
        )
    query = query.order_by(col(SitrepRow.created_at).desc(), col(SitrepRow.id).desc())
    rows = list((await session.execute(query.limit(size + 1))).scalars())
    page = rows[:size]
    return [
        (encode_cursor(_ORDER, row.created_at, row.id, secret=secret), row) for row in page
    ], len(rows) > size


async def versions_of(session: AsyncSession, report_id: str) -> list[SitrepVersionRow]:
    """Every version of a report, oldest first."""
    return (await versions_of_many(session, [report_id]))[report_id]


async def versions_of_many(
    session: AsyncSession, report_ids: list[str]
) -> dict[str, list[SitrepVersionRow]]:
    """Every version of each report (one query), oldest first."""
    found: dict[str, list[SitrepVersionRow]] = {report_id: [] for report_id in report_ids}
    if report_ids:
        rows = await session.execute(
            select(SitrepVersionRow)
            .where(col(SitrepVersionRow.report_id).in_(report_ids))
            .order_by(col(SitrepVersionRow.report_id), col(SitrepVersionRow.version))
        )
        for row in rows.scalars():
            found[row.report_id].append(row)
    return found


async def due_for_escalation(session: AsyncSession, *, hub_id: str, now: datetime) -> list[str]:
    """Reports written here, never submitted, past their deadline and not yet escalated."""
    rows = await session.execute(
        select(col(SitrepRow.id)).where(
            col(SitrepRow.origin) == hub_id,
            col(SitrepRow.version) == 0,
            col(SitrepRow.due_at) < now,
            col(SitrepRow.escalated_at).is_(None),
        )
    )
    return list(rows.scalars())


def overdue_json(event: FlagEventRow, row: SitrepRow) -> dict[str, Any]:
    """The JSON of a ``report.overdue`` event (webhook ``data``)."""
    return {
        "seq": event.seq,
        "type": event.type,
        "reportId": row.id,
        "incidentId": row.incident_id,
        "kind": row.kind,
        "severity": row.severity,
        "dueAt": row.due_at.isoformat() if row.due_at else None,
        "escalatedTo": row.escalated_to,
        "at": event.at.isoformat(),
    }


async def escalate_report(
    session: AsyncSession, report_id: str, *, to: str, now: datetime
) -> FlagEventRow | None:
    """Mark an overdue report escalated, number its ``report.overdue`` event, owe its webhooks."""
    row = await session.get(SitrepRow, report_id, with_for_update=True)
    if row is None or row.version > 0 or row.escalated_at is not None:
        return None  # submitted or escalated meanwhile
    row.escalated_at = now
    row.escalated_to = to
    event = await number_event(
        session,
        FlagEventRow(
            seq=0,
            type=OVERDUE_EVENT,
            flag_id=row.id,
            status="overdue",
            community=row.incident_owner,
            assigned_to=to,
            at=now,
            timeline={"due": row.due_at or now, "escalated": now},
        ),
    )
    await enqueue_event_deliveries(session, event, overdue_json(event, row))
    return event


async def report_events(
    session: AsyncSession, *, after: int | None, first: int | None
) -> tuple[list[FlagEventRow], bool]:
    """``report.*`` events of the hub's numbered log after ``after``, oldest first."""
    size = page_size(first)
    rows = await session.execute(
        select(FlagEventRow)
        .where(
            col(FlagEventRow.type).startswith("report."),
            col(FlagEventRow.seq) > (after or 0),
        )
        .order_by(col(FlagEventRow.seq))
        .limit(size + 1)
    )
    events = list(rows.scalars())
    return events[:size], len(events) > size


async def missing_initial_reports(
    session: AsyncSession,
    incidents: list[IncidentFacts],
    *,
    hub_id: str,
    deadlines: Mapping[str, Mapping[str, int]],
    now: datetime,
) -> list[tuple[IncidentFacts, datetime]]:
    """The incidents past their initial report's deadline with no initial report here, ever."""
    late = []
    for incident in incidents:
        due = due_at(
            deadlines,
            ReportKind.INITIAL,
            incident.severity,
            started_at=incident.started_at,
            previous_at=None,
        )
        if due is not None and due < now:
            late.append((incident, due))
    if not late:
        return []
    ids = [incident.id for incident, _ in late]
    started = set(
        (
            await session.execute(
                select(col(SitrepRow.incident_id)).where(
                    col(SitrepRow.origin) == hub_id,
                    col(SitrepRow.kind) == ReportKind.INITIAL.value,
                    col(SitrepRow.incident_id).in_(ids),
                )
            )
        ).scalars()
    )
    escalated = set(
        (
            await session.execute(
                select(col(SitrepMissedRow.incident_id)).where(
                    col(SitrepMissedRow.incident_id).in_(ids)
                )
            )
        ).scalars()
    )
    return [(i, due) for i, due in late if i.id not in started and i.id not in escalated]


async def escalate_missing(
    session: AsyncSession, incident: IncidentFacts, *, due: datetime, to: str, now: datetime
) -> FlagEventRow | None:
    """Record the missing initial report once, number its ``report.missing`` event, owe webhooks."""
    if await session.get(SitrepMissedRow, incident.id) is not None:
        return None  # another replica was first
    session.add(
        SitrepMissedRow(
            incident_id=incident.id,
            incident_owner=incident.owner,
            severity=incident.severity.value,
            due_at=due,
            escalated_at=now,
            escalated_to=to,
        )
    )
    await session.flush()
    event = await number_event(
        session,
        FlagEventRow(
            seq=0,
            type=MISSING_EVENT,
            flag_id=incident.id,
            status="missing",
            community=incident.owner,
            assigned_to=to,
            at=now,
            timeline={"due": due, "escalated": now},
        ),
    )
    data = {
        "seq": event.seq,
        "type": event.type,
        "reportId": None,
        "incidentId": incident.id,
        "kind": ReportKind.INITIAL.value,
        "severity": incident.severity.value,
        "dueAt": due.isoformat(),
        "escalatedTo": to,
        "at": now.isoformat(),
    }
    await enqueue_event_deliveries(session, event, data)
    return event
