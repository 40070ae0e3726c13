"""Incidents: something that is happening and needs a response."""

from __future__ import annotations

from sqlmodel import SQLModel

from schema.enums import (
    CapCategory,
    CapCertainty,
    CapSeverity,
    CapUrgency,
    IncidentCategory,
    IncidentStatus,
    SeverityLevel,
)
from schema.fields import FieldGroup, grouped
from schema.geo import GeoPoint
from schema.records._family import public_model, update_model
from schema.records._registry import Filter, RecordType
from schema.records._types import LongText, Moment, Name, ShortText
from schema.scopes import Scope
from schema.storage import PydanticJSON, UTCDateTime

__all__ = ["RECORD", "IncidentBase", "IncidentCreate", "IncidentPublic", "IncidentUpdate"]


class IncidentBase(SQLModel):
    """An emergency incident, classified after GB/T 35561 and described with CAP 1.2 terms."""

    title: Name = grouped(FieldGroup.IDENTITY)
    category: IncidentCategory = grouped(FieldGroup.IDENTITY)
    cap_category: CapCategory = grouped(FieldGroup.IDENTITY, default=CapCategory.OTHER)
    severity_level: SeverityLevel = grouped(FieldGroup.IDENTITY, default=SeverityLevel.IV)
    cap_severity: CapSeverity = grouped(FieldGroup.IDENTITY, default=CapSeverity.UNKNOWN)
    urgency: CapUrgency = grouped(FieldGroup.IDENTITY, default=CapUrgency.UNKNOWN)
    certainty: CapCertainty = grouped(FieldGroup.IDENTITY, default=CapCertainty.UNKNOWN)
    status: IncidentStatus = grouped(FieldGroup.STATUS, default=IncidentStatus.REPORTED)
    description: LongText = grouped(FieldGroup.DESCRIPTION, default="")
    location: GeoPoint | None = grouped(
        FieldGroup.LOCATION_EXACT, default=None, sa_type=PydanticJSON(GeoPoint)
    )
    address: ShortText = grouped(FieldGroup.LOCATION_EXACT, default="")
    affected_people: int = grouped(FieldGroup.QUANTITY_EXACT, default=0, ge=0, le=100_000_000)
    reported_at: Moment | None = grouped(FieldGroup.STATUS, default=None, sa_type=UTCDateTime)


class IncidentCreate(IncidentBase):
    """A new incident."""


IncidentUpdate = update_model(IncidentBase, "IncidentUpdate")
IncidentPublic = public_model(IncidentBase, "IncidentPublic")

RECORD = RecordType(
    name="Incident",
    field_name="incidents",
    table_name="incidents",
    create=IncidentCreate,
    update=IncidentUpdate,
    public=IncidentPublic,
    read_scopes=(Scope.INCIDENTS_READ,),
    search_fields=("title", "description", "address"),
    filters=(
        Filter("categories", list[IncidentCategory] | None, column="category"),
        Filter("statuses", list[IncidentStatus] | None, column="status"),
    ),
)
