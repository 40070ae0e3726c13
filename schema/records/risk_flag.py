"""Risk flags: a community tells its district department about a risk."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AnyHttpUrl, StringConstraints
from sqlmodel import SQLModel

from schema.enums import RiskFlagStatus, SeverityLevel
from schema.fields import FieldGroup, grouped
from schema.geo import GeoPoint
from schema.records._family import public_model, update_model
from schema.records._types import LongText, RiskCategoryCode, ShortText
from schema.storage import PydanticJSON

__all__ = [
    "FlagTransition",
    "RiskFlagBase",
    "RiskFlagCreate",
    "RiskFlagHop",
    "RiskFlagPublic",
    "RiskFlagUpdate",
]

EvidenceLink = Annotated[str, StringConstraints(max_length=2000)]


class FlagTransition(SQLModel):
    """One step of a flag's workflow: who moved it where, when, and why."""

    status: RiskFlagStatus
    at: datetime
    by: str = ""
    note: str = ""


class RiskFlagHop(SQLModel):
    """One hop of a flag's journey (raised_at_node, received_at_hub, routed, ...) and when."""

    hop: str
    at: datetime


class RiskFlagBase(SQLModel):
    """What community staff write when they flag a risk."""

    category: RiskCategoryCode = grouped(FieldGroup.IDENTITY, max_length=40)
    description: LongText = grouped(FieldGroup.DESCRIPTION, min_length=1)
    location: GeoPoint = grouped(FieldGroup.LOCATION_EXACT, sa_type=PydanticJSON(GeoPoint))
    address: ShortText = grouped(FieldGroup.LOCATION_EXACT, default="")
    estimated_severity: SeverityLevel = grouped(FieldGroup.IDENTITY, default=SeverityLevel.IV)
    evidence_links: list[AnyHttpUrl] = grouped(
        FieldGroup.DESCRIPTION,
        default_factory=list,
        max_length=10,
        sa_type=PydanticJSON(list[AnyHttpUrl]),
    )


class RiskFlagCreate(RiskFlagBase):
    """A new risk flag."""


RiskFlagUpdate = update_model(RiskFlagBase, "RiskFlagUpdate")
RiskFlagPublic = public_model(
    RiskFlagBase,
    "RiskFlagPublic",
    {
        "status": (RiskFlagStatus | None, grouped(FieldGroup.STATUS, default=None)),
        "transitions": (list[FlagTransition] | None, grouped(FieldGroup.STATUS, default=None)),
        "assigned_to": (str | None, grouped(FieldGroup.STATUS, default=None)),
        "timeline": (list[RiskFlagHop] | None, grouped(FieldGroup.STATUS, default=None)),
    },
)
