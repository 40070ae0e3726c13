"""Risk flags: a community tells its district department about a risk."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AnyHttpUrl, StringConstraints
from sqlmodel import Field, SQLModel

from schema.enums import RiskFlagStatus, SeverityLevel
from schema.fields import FieldGroup, grouped
from schema.geo import GeoPoint
from schema.records._family import public_model, update_model
from schema.records._registry import Actor, Filter, RecordType
from schema.records._types import LongText, RiskCategoryCode, ShortText
from schema.records.sensor import SensorReading
from schema.scopes import Scope
from schema.storage import PydanticJSON

__all__ = [
    "RECORD",
    "FlagSource",
    "FlagTransition",
    "RiskFlagBase",
    "RiskFlagCreate",
    "RiskFlagHop",
    "RiskFlagPublic",
    "RiskFlagState",
    "RiskFlagUpdate",
]

EvidenceLink = Annotated[str, StringConstraints(max_length=2000)]


class FlagTransition(SQLModel):
    """One step of a flag's workflow: who moved it where, when, and why."""

    status: RiskFlagStatus
    at: datetime
    by: str = ""
    note: str = ""
    person: str | None = Field(
        default=None,
        description="The person who made the step (username, the token's sub), when a person"
        " signed in made it; null for a machine client",
    )


class RiskFlagHop(SQLModel):
    """One hop of a flag's journey (raised_at_node, received_at_hub, routed, ...) and when."""

    hop: str
    at: datetime


class FlagSource(SQLModel):
    """What raised a flag by itself: a sensor's rule (none: a person raised it)."""

    sensor: str = Field(max_length=200, description="Global id of the sensor")
    rule: str = Field(max_length=40, description="The sensor rule's id")
    unit: str = Field(default="", max_length=40, description="Unit of the evidence readings")
    level: float | None = Field(default=None, description="The rule's alarm level")


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


class RiskFlagState(SQLModel):
    """Where a flag is in its workflow: set by the node and the hub, never by its author."""

    status: RiskFlagStatus = grouped(FieldGroup.STATUS, default=RiskFlagStatus.RAISED)
    transitions: list[FlagTransition] = grouped(
        FieldGroup.STATUS, default_factory=list, sa_type=PydanticJSON(list[FlagTransition])
    )
    assigned_to: str | None = grouped(FieldGroup.STATUS, default=None, max_length=64)
    timeline: list[RiskFlagHop] = grouped(
        FieldGroup.STATUS, default_factory=list, sa_type=PydanticJSON(list[RiskFlagHop])
    )
    source: FlagSource | None = grouped(
        FieldGroup.DESCRIPTION, default=None, sa_type=PydanticJSON(FlagSource)
    )
    evidence: list[SensorReading] = grouped(
        FieldGroup.DESCRIPTION,
        default_factory=list,
        sa_type=PydanticJSON(list[SensorReading]),
        description="The readings that raised it (a sensor's flag), oldest first",
    )


def _raised(actor: Actor, now: datetime) -> dict[str, Any]:
    step = FlagTransition(
        status=RiskFlagStatus.RAISED, at=now, by=actor.subject, person=actor.person
    )
    return {
        "status": RiskFlagStatus.RAISED,
        "transitions": [step],
        "timeline": [RiskFlagHop(hop="raised_at_node", at=now)],
    }


RiskFlagUpdate = update_model(RiskFlagBase, "RiskFlagUpdate")
RiskFlagPublic = public_model(RiskFlagBase, "RiskFlagPublic", state=RiskFlagState)

RECORD = RecordType(
    name="RiskFlag",
    field_name="riskFlags",
    table_name="risk_flags",
    create=RiskFlagCreate,
    public=RiskFlagPublic,
    # The departments that verify flags read them as well.
    read_scopes=(Scope.INCIDENTS_READ, Scope.RISK_VERIFY),
    state=RiskFlagState,
    create_scopes=(Scope.RISK_FLAG,),
    create_verb="raise",
    initial_state=_raised,
    search_fields=("category", "description", "address"),
    filters=(
        Filter(
            "categories", list[str] | None, column="category", description="Risk-category codes"
        ),
        Filter("statuses", list[RiskFlagStatus] | None, column="status"),
    ),
)
