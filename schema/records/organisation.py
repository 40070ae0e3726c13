"""Organisations: the communities and departments of a district."""

from __future__ import annotations

from sqlmodel import Field, SQLModel

from schema.enums import OrgKind
from schema.fields import FieldGroup, grouped
from schema.geo import BBox, GeoPolygon
from schema.records._types import DivisionCode, Name, Phone
from schema.storage import PydanticJSON

__all__ = ["OrganisationBase", "OrganisationPublic"]


class OrganisationBase(SQLModel):
    """A community (社区) or a department, identified by its division code."""

    code: DivisionCode = grouped(FieldGroup.IDENTITY, max_length=12)
    name: Name = grouped(FieldGroup.IDENTITY)
    kind: OrgKind = grouped(FieldGroup.IDENTITY)
    district: DivisionCode = grouped(FieldGroup.IDENTITY, description="County-level GB/T 2260 code")
    neighbours: list[str] = grouped(
        FieldGroup.IDENTITY, default_factory=list, sa_type=PydanticJSON(list[str])
    )
    area: GeoPolygon | None = grouped(
        FieldGroup.IDENTITY, default=None, sa_type=PydanticJSON(GeoPolygon)
    )
    bbox: BBox | None = grouped(FieldGroup.IDENTITY, default=None, sa_type=PydanticJSON(BBox))
    duty_phone: Phone | None = grouped(FieldGroup.CONTACT, default=None)


class OrganisationPublic(OrganisationBase):
    """An organisation as any caller sees it."""

    id: str = Field(description="Global id")
