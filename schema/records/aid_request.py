"""Mutual-aid requests between communities, after OASIS EDXL-RM."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import SQLModel

from schema.enums import AidRequestStatus
from schema.fields import FieldGroup, grouped
from schema.records._family import public_model, update_model
from schema.records._types import DivisionCode, LongText, Name, ResourceKindCode
from schema.storage import UTCDateTime

__all__ = ["AidRequestBase", "AidRequestCreate", "AidRequestPublic", "AidRequestUpdate"]


class AidRequestBase(SQLModel):
    """A RequestResource message: who needs how much of what, by when, and why."""

    requester: DivisionCode = grouped(FieldGroup.IDENTITY, max_length=12)
    provider: DivisionCode = grouped(FieldGroup.IDENTITY, max_length=12)
    resource_kind: ResourceKindCode = grouped(FieldGroup.IDENTITY, max_length=40)
    resource_id: str | None = grouped(FieldGroup.IDENTITY, default=None, max_length=200)
    quantity: int = grouped(FieldGroup.QUANTITY_EXACT, gt=0, le=1_000_000_000)
    unit: Name = grouped(FieldGroup.IDENTITY, max_length=20)
    needed_by: datetime | None = grouped(FieldGroup.STATUS, default=None, sa_type=UTCDateTime)
    purpose: LongText = grouped(FieldGroup.DESCRIPTION, default="")


class AidRequestCreate(AidRequestBase):
    """A new aid request."""


AidRequestUpdate = update_model(AidRequestBase, "AidRequestUpdate")
AidRequestPublic = public_model(
    AidRequestBase,
    "AidRequestPublic",
    {"status": (AidRequestStatus | None, grouped(FieldGroup.STATUS, default=None))},
)
