"""Volunteers: people a community can call on."""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints
from sqlmodel import SQLModel

from schema.enums import VolunteerAvailability
from schema.fields import FieldGroup, grouped
from schema.records._family import public_model, update_model
from schema.records._types import Name, Phone, ShortText
from schema.storage import PydanticJSON

__all__ = ["VolunteerBase", "VolunteerCreate", "VolunteerPublic", "VolunteerUpdate"]

Skill = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]


class VolunteerBase(SQLModel):
    """A registered volunteer; name and phone are personal data."""

    name: Name = grouped(FieldGroup.PERSONAL)
    phone: Phone | None = grouped(FieldGroup.PERSONAL, default=None)
    skills: list[Skill] = grouped(
        FieldGroup.IDENTITY, default_factory=list, max_length=20, sa_type=PydanticJSON(list[str])
    )
    availability: VolunteerAvailability = grouped(
        FieldGroup.STATUS, default=VolunteerAvailability.AVAILABLE
    )
    team: ShortText = grouped(FieldGroup.IDENTITY, default="")


class VolunteerCreate(VolunteerBase):
    """A new volunteer."""


VolunteerUpdate = update_model(VolunteerBase, "VolunteerUpdate")
VolunteerPublic = public_model(VolunteerBase, "VolunteerPublic")
