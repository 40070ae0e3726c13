"""The GraphQL API of situation reports: drafts prefilled from live data, edits, submissions."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import strawberry
from strawberry.types import Info

from hub.federation.context import HubContext
from hub.flags.tables import FlagEventRow
from hub.sitreps.model import ReportFields, ReportKind, ReportStatus
from hub.sitreps.tables import SitrepRow, SitrepVersionRow
from schema.api.pagination import Connection, Edge, PageInfo
from schema.enums import SeverityLevel
from schema.storage import utcnow

__all__ = [
    "ReportFieldsInput",
    "ReportFieldsType",
    "SitrepWork",
    "SituationReport",
    "mutation_fields",
    "query_fields",
]


class SitrepWork(Protocol):
    """What the GraphQL fields need of the hub's report part (``component.HubSitreps`` is one)."""

    async def create(
        self, context: HubContext, incident_id: str, kind: ReportKind
    ) -> SitrepRow: ...

    async def edit(
        self, context: HubContext, report_id: str, expected_revision: int, changes: dict[str, Any]
    ) -> SitrepRow: ...

    async def submit(
        self, context: HubContext, report_id: str, expected_revision: int
    ) -> SitrepRow: ...

    async def report(
        self, context: HubContext, report_id: str
    ) -> tuple[SitrepRow, list[SitrepVersionRow]]: ...

    async def reports(
        self, context: HubContext, incident_id: str | None, first: int | None, after: str | None
    ) -> tuple[list[tuple[str, SitrepRow, list[SitrepVersionRow]]], bool]: ...

    async def events(
        self, context: HubContext, after: int | None, first: int | None
    ) -> tuple[list[FlagEventRow], bool]: ...


def _fields_class(name: str, *, as_input: bool) -> Any:
    # Derived from ReportFields: one declaration of what a report holds and its limits.
    namespace: dict[str, Any] = {"__annotations__": {}}
    for field_name, info in ReportFields.model_fields.items():
        annotation: Any = info.annotation
        namespace["__annotations__"][field_name] = annotation | None if as_input else annotation
        if as_input:
            namespace[field_name] = strawberry.field(default=None, description=info.description)
        else:
            namespace[field_name] = strawberry.field(description=info.description)
    cls = type(name, (), namespace)
    description = "The content of a situation report (要素)"
    if as_input:
        return strawberry.input(cls, description="Fields to change; the others stay")
    return strawberry.type(cls, description=description)


ReportFieldsType = _fields_class("SituationReportFields", as_input=False)
ReportFieldsInput = _fields_class("SituationReportFieldsInput", as_input=True)


@strawberry.type(description="What one read of the prefill contributed")
class ReportBasis:
    path: str
    source: str
    status: str
    count: int


@strawberry.type(description="One submitted version, as sent")
class SituationReportVersion:
    version: int
    submitted_at: datetime
    submitted_by: str
    received_at: datetime | None = strawberry.field(description="Set when it came from below")
    forwarded_at: datetime | None = strawberry.field(description="When the superior hub took it")
    forward_error: str | None
    fields: ReportFieldsType  # type: ignore[valid-type]

    @classmethod
    def of(cls, row: SitrepVersionRow) -> SituationReportVersion:
        return cls(
            version=row.version,
            submitted_at=row.submitted_at,
            submitted_by=row.submitted_by,
            received_at=row.received_at,
            forwarded_at=row.forwarded_at,
            forward_error=row.forward_error,
            fields=_fields(row.body.get("fields", {})),
        )


def _fields(values: dict[str, Any]) -> Any:
    return ReportFieldsType(**dict(ReportFields.model_validate(values)))


@strawberry.type(description="A situation report (初报/续报/终报) on one incident")
class SituationReport:
    id: strawberry.ID
    origin: str = strawberry.field(description="The hub that wrote it")
    origin_district: str
    incident_id: str
    incident_owner: str
    incident_title: str
    kind: ReportKind
    severity: SeverityLevel
    status: ReportStatus
    version: int = strawberry.field(description="The last version submitted; 0: none yet")
    revision: int = strawberry.field(description="Send as expectedRevision to edit or submit")
    fields: ReportFieldsType  # type: ignore[valid-type]
    basis: list[ReportBasis]
    due_at: datetime | None
    overdue: bool = strawberry.field(description="Past its deadline and never submitted")
    escalated_at: datetime | None
    escalated_to: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    versions: list[SituationReportVersion]

    @classmethod
    def of(cls, row: SitrepRow, versions: list[SitrepVersionRow] | None = None) -> SituationReport:
        now = utcnow()
        return cls(
            id=strawberry.ID(row.id),
            origin=row.origin,
            origin_district=row.origin_district,
            incident_id=row.incident_id,
            incident_owner=row.incident_owner,
            incident_title=row.incident_title,
            kind=ReportKind(row.kind),
            severity=SeverityLevel(row.severity),
            status=ReportStatus(row.status),
            version=row.version,
            revision=row.revision,
            fields=_fields(row.fields),
            basis=[ReportBasis(**b) for b in row.basis],
            due_at=row.due_at,
            overdue=row.version == 0 and row.due_at is not None and row.due_at < now,
            escalated_at=row.escalated_at,
            escalated_to=row.escalated_to,
            created_by=row.created_by,
            created_at=row.created_at,
            updated_at=row.updated_at,
            submitted_at=row.submitted_at,
            versions=[SituationReportVersion.of(v) for v in versions or []],
        )


@strawberry.type(description="An event of the hub's numbered log about a report")
class SituationReportEvent:
    seq: int
    type: str = strawberry.field(
        description="report.overdue (a draft past its deadline) or report.missing (an open"
        " incident whose initial report was never started by its deadline)"
    )
    subject_id: strawberry.ID = strawberry.field(
        description="The report (report.overdue) or the incident (report.missing)"
    )
    community: str = strawberry.field(description="The owner of the incident")
    assigned_to: str | None = strawberry.field(description="The department told")
    at: datetime


def query_fields(work: SitrepWork) -> dict[str, Any]:
    """``situationReport``, ``situationReports``, ``situationReportEvents``."""

    async def situation_report(
        info: Info[HubContext, None], id: strawberry.ID
    ) -> SituationReport | None:
        row, versions = await work.report(info.context, str(id))
        return SituationReport.of(row, versions)

    async def situation_reports(
        info: Info[HubContext, None],
        incident_id: str | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[SituationReport] | None:
        page, has_next = await work.reports(info.context, incident_id, first, after)
        return Connection(
            edges=[Edge(cursor=c, node=SituationReport.of(r, v)) for c, r, v in page],
            page_info=PageInfo(has_next_page=has_next, end_cursor=page[-1][0] if page else None),
        )

    async def situation_report_events(
        info: Info[HubContext, None], after: int | None = None, first: int | None = None
    ) -> Connection[SituationReportEvent] | None:
        rows, has_next = await work.events(info.context, after, first)
        edges = [
            Edge(
                cursor=str(r.seq),
                node=SituationReportEvent(
                    seq=r.seq,
                    type=r.type,
                    subject_id=strawberry.ID(r.flag_id),
                    community=r.community,
                    assigned_to=r.assigned_to,
                    at=r.at,
                ),
            )
            for r in rows
        ]
        return Connection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=has_next, end_cursor=edges[-1].cursor if edges else None
            ),
        )

    return {
        "situation_report": strawberry.field(
            resolver=situation_report, description="A report and its versions (sitrep:read)"
        ),
        "situation_reports": strawberry.field(
            resolver=situation_reports,
            description="Reports written here and received from below, newest first",
        ),
        "situation_report_events": strawberry.field(
            resolver=situation_report_events,
            description="Report events (overdue, missing) of the numbered log; after: seq",
        ),
    }


def mutation_fields(work: SitrepWork) -> dict[str, Any]:
    """``createSituationReport``, ``editSituationReport``, ``submitSituationReport``."""

    async def create_situation_report(
        info: Info[HubContext, None], incident_id: str, kind: ReportKind
    ) -> SituationReport:
        return SituationReport.of(await work.create(info.context, incident_id, kind))

    async def edit_situation_report(
        info: Info[HubContext, None],
        id: strawberry.ID,
        expected_revision: int,
        fields: ReportFieldsInput,  # type: ignore[valid-type]
    ) -> SituationReport:
        changes = {
            name: getattr(fields, name)
            for name in ReportFields.model_fields
            if getattr(fields, name) is not None
        }
        return SituationReport.of(
            await work.edit(info.context, str(id), expected_revision, changes)
        )

    async def submit_situation_report(
        info: Info[HubContext, None], id: strawberry.ID, expected_revision: int
    ) -> SituationReport:
        row = await work.submit(info.context, str(id), expected_revision)
        _, versions = await work.report(info.context, row.id)
        return SituationReport.of(row, versions)

    return {
        "create_situation_report": strawberry.mutation(
            resolver=create_situation_report,
            description="A draft prefilled from the incident and its area as the caller sees"
            " them (sitrep:write)",
        ),
        "edit_situation_report": strawberry.mutation(
            resolver=edit_situation_report, description="Change fields of a report written here"
        ),
        "submit_situation_report": strawberry.mutation(
            resolver=submit_situation_report,
            description="Submit the revision as the next version; it goes to the superior hub",
        ),
    }
