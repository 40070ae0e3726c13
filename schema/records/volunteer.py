"""Volunteers: people a community can call on."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import StringConstraints
from sqlalchemy import false, or_
from sqlmodel import SQLModel

from schema.enums import VolunteerAvailability
from schema.errors import InvalidInput
from schema.fields import FieldGroup, grouped
from schema.records._family import public_model, update_model
from schema.records._registry import Filter, RecordType
from schema.records._types import Name, Phone, ShortText
from schema.scopes import Scope
from schema.storage import PydanticJSON, contains

__all__ = ["RECORD", "VolunteerBase", "VolunteerCreate", "VolunteerPublic", "VolunteerUpdate"]

MAX_SKILLS = 20

Skill = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]


class VolunteerBase(SQLModel):
    """A registered volunteer; name and phone are personal data."""

    name: Name = grouped(FieldGroup.PERSONAL)
    phone: Phone | None = grouped(FieldGroup.PERSONAL, default=None)
    skills: list[Skill] = grouped(
        FieldGroup.IDENTITY,
        default_factory=list,
        max_length=MAX_SKILLS,
        sa_type=PydanticJSON(list[str]),
    )
    availability: VolunteerAvailability = grouped(
        FieldGroup.STATUS, default=VolunteerAvailability.AVAILABLE
    )
    team: ShortText = grouped(FieldGroup.IDENTITY, default="")


class VolunteerCreate(VolunteerBase):
    """A new volunteer."""


VolunteerUpdate = update_model(VolunteerBase, "VolunteerUpdate")
VolunteerPublic = public_model(VolunteerBase, "VolunteerPublic")


def _any_skill(table: Any, skills: list[str]) -> Any:
    if len(skills) > MAX_SKILLS:
        raise InvalidInput(
            f"skills lists over {MAX_SKILLS} skills", code="LIST_TOO_LONG", field="skills"
        )
    return or_(false(), *(contains(table.search_text, s, field="skills") for s in skills))


def _has_skill(shown: Mapping[str, Any], skills: list[str]) -> bool:
    held = [s.casefold() for s in shown.get("skills") or []]
    return any(s.strip().casefold() in h for s in skills for h in held)


RECORD = RecordType(
    name="Volunteer",
    field_name="volunteers",
    table_name="volunteers",
    create=VolunteerCreate,
    update=VolunteerUpdate,
    public=VolunteerPublic,
    read_scopes=(Scope.VOLUNTEERS_READ,),
    search_fields=("name", "team", "skills"),
    filters=(
        Filter("skills", list[str] | None, condition=_any_skill, test=_has_skill),
        Filter("availabilities", list[VolunteerAvailability] | None, column="availability"),
    ),
)
