"""Hub tables of situation reports: the reports (drafts and submitted), and every version sent."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from hub.db import HubTable
from schema.storage import PydanticJSON, UTCDateTime

__all__ = ["SitrepMissedRow", "SitrepRow", "SitrepVersionRow"]


class SitrepRow(HubTable, table=True):
    """A situation report on one incident: written here, or received from a hub below."""

    __tablename__ = "situation_reports"

    id: str = Field(primary_key=True, max_length=200)  # SituationReport:<origin hub>:<local>
    origin: str = Field(index=True, max_length=64)  # the hub that wrote it
    origin_district: str = Field(max_length=12)
    incident_id: str = Field(index=True, max_length=200)
    incident_owner: str = Field(max_length=64)
    incident_title: str = Field(default="", max_length=200)
    kind: str = Field(max_length=12)  # ReportKind
    severity: str = Field(max_length=4)  # SeverityLevel of the incident when the draft was made
    incident_started_at: datetime = Field(sa_type=UTCDateTime)
    status: str = Field(index=True, max_length=12)  # ReportStatus
    fields: dict[str, Any] = Field(sa_type=PydanticJSON(dict[str, Any]))  # ReportFields
    basis: list[dict[str, Any]] = Field(
        default_factory=list, sa_type=PydanticJSON(list[dict[str, Any]])
    )  # what the prefill read: [{source, status, count, path}]
    revision: int = 1  # each edit of the draft; send it as expectedRevision to submit
    submitted_revision: int = 0
    version: int = 0  # the last version submitted (v1, v2 ...); 0: never
    due_at: datetime | None = Field(default=None, index=True, sa_type=UTCDateTime)
    escalated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    escalated_to: str | None = Field(default=None, max_length=64)
    created_by: str = Field(max_length=64)
    created_org: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)
    submitted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SitrepVersionRow(HubTable, table=True):
    """One submitted version of a report, exactly as sent; an outbox row to the superior hub."""

    __tablename__ = "situation_report_versions"
    __table_args__ = (sa.UniqueConstraint("report_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    report_id: str = Field(index=True, max_length=200)
    version: int
    origin: str = Field(max_length=64)
    body: dict[str, Any] = Field(sa_type=PydanticJSON(dict[str, Any]))  # report_json of it
    submitted_at: datetime = Field(sa_type=UTCDateTime)
    submitted_by: str = Field(max_length=64)
    received_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # from a hub below
    # Sending it up: pending while forward_next_at is set, done at forwarded_at.
    forward_next_at: datetime | None = Field(default=None, index=True, sa_type=UTCDateTime)
    forward_attempts: int = 0
    forward_error: str | None = Field(default=None, max_length=500)
    forwarded_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SitrepMissedRow(HubTable, table=True):
    """An open incident whose initial report was never started by its deadline: escalated once."""

    __tablename__ = "situation_reports_missed"

    incident_id: str = Field(primary_key=True, max_length=200)
    incident_owner: str = Field(max_length=64)
    severity: str = Field(max_length=4)
    due_at: datetime = Field(sa_type=UTCDateTime)
    escalated_at: datetime = Field(sa_type=UTCDateTime)
    escalated_to: str = Field(max_length=64)
