"""Mutual-aid requests between communities, after OASIS EDXL-RM."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import SQLModel

from schema.enums import AidRequestStatus
from schema.fields import FieldGroup, grouped
from schema.geo import GeoPoint
from schema.records._family import public_model, update_model
from schema.records._registry import Fact, Filter, RecordType
from schema.records._types import AidKindCode, DivisionCode, LongText, Moment, Name
from schema.scopes import Scope
from schema.storage import PydanticJSON, UTCDateTime

__all__ = [
    "RECORD",
    "AidRequestBase",
    "AidRequestCreate",
    "AidRequestPublic",
    "AidRequestState",
    "AidRequestUpdate",
]


class AidRequestBase(SQLModel):
    """A RequestResource message: who needs how much of what, by when, and why."""

    requester: DivisionCode = grouped(FieldGroup.IDENTITY, max_length=12)
    # None: open to the district; the first owner of a matching resource to offer answers.
    provider: DivisionCode | None = grouped(FieldGroup.IDENTITY, default=None, max_length=12)
    # A resource kind, or "volunteers": people with ``skill`` for the window, ``quantity`` of them.
    resource_kind: AidKindCode = grouped(FieldGroup.IDENTITY, max_length=40)
    resource_id: str | None = grouped(FieldGroup.IDENTITY, default=None, max_length=200)
    quantity: int = grouped(FieldGroup.QUANTITY_EXACT, gt=0, le=1_000_000_000)
    unit: Name = grouped(FieldGroup.IDENTITY, max_length=20)
    needed_by: Moment | None = grouped(FieldGroup.STATUS, default=None, sa_type=UTCDateTime)
    purpose: LongText = grouped(FieldGroup.DESCRIPTION, default="")
    # Only for volunteers: a skill code (schema.codes.VOLUNTEER_SKILLS) and when they are needed.
    skill: str | None = grouped(FieldGroup.IDENTITY, default=None, max_length=40)
    window_from: Moment | None = grouped(FieldGroup.STATUS, default=None, sa_type=UTCDateTime)
    window_to: Moment | None = grouped(FieldGroup.STATUS, default=None, sa_type=UTCDateTime)
    # Where it is needed: an open request is matched nearest first from here.
    location: GeoPoint | None = grouped(
        FieldGroup.LOCATION_EXACT, default=None, sa_type=PydanticJSON(GeoPoint)
    )


class AidRequestCreate(AidRequestBase):
    """A new aid request."""


class AidRequestState(SQLModel):
    """Where a request is in the EDXL-RM exchange: set by the source, never by its author."""

    status: AidRequestStatus = grouped(FieldGroup.STATUS, default=AidRequestStatus.REQUESTED)


def _parties(record: Mapping[str, Any]) -> frozenset[str]:
    parties = (record.get("requester"), record.get("provider"))
    return frozenset(str(p) for p in parties if p)


AidRequestUpdate = update_model(AidRequestBase, "AidRequestUpdate")
AidRequestPublic = public_model(AidRequestBase, "AidRequestPublic", state=AidRequestState)

RECORD = RecordType(
    name="AidRequest",
    field_name="aidRequests",
    table_name="aid_requests",
    create=AidRequestCreate,
    public=AidRequestPublic,
    read_scopes=(Scope.AID_REQUEST, Scope.AID_RESPOND),
    state=AidRequestState,
    create_scopes=(Scope.AID_REQUEST,),
    initial_state=lambda actor, now: {"status": AidRequestStatus.REQUESTED},
    search_fields=("resource_kind", "purpose"),
    filters=(
        Filter("resource_kinds", list[str] | None, column="resource_kind"),
        Filter("statuses", list[AidRequestStatus] | None, column="status"),
    ),
    facts=(
        Fact(
            "parties",
            frozenset,
            of=_parties,
            typical=lambda owner, caller: frozenset({owner, caller}),
            doc="requester and provider",
        ),
    ),
)
