"""Shelters: places where people can stay."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Self

from pydantic import model_validator
from pydantic_core import PydanticCustomError
from sqlmodel import SQLModel

from schema.enums import ShelterStatus
from schema.fields import FieldGroup, grouped
from schema.geo import GeoPoint
from schema.records._family import QuantityBand, public_model, update_model
from schema.records._registry import Band, Fact, Filter, RecordType, code
from schema.records._types import LongText, Name, ShortText
from schema.scopes import Scope
from schema.storage import PydanticJSON

__all__ = ["RECORD", "ShelterBase", "ShelterCreate", "ShelterPublic", "ShelterUpdate"]


class ShelterBase(SQLModel):
    """An emergency shelter (应急避难场所) with its beds."""

    name: Name = grouped(FieldGroup.IDENTITY)
    capacity: int = grouped(FieldGroup.QUANTITY_EXACT, ge=0, le=1_000_000)
    occupancy: int = grouped(FieldGroup.QUANTITY_EXACT, default=0, ge=0, le=1_000_000)
    accessible: bool = grouped(FieldGroup.IDENTITY, default=False, description="Step-free access")
    status: ShelterStatus = grouped(FieldGroup.STATUS, default=ShelterStatus.OPEN)
    location: GeoPoint | None = grouped(
        FieldGroup.LOCATION_EXACT, default=None, sa_type=PydanticJSON(GeoPoint)
    )
    address: ShortText = grouped(FieldGroup.LOCATION_EXACT, default="")
    description: LongText = grouped(FieldGroup.DESCRIPTION, default="")

    @model_validator(mode="after")
    def _occupancy_within_capacity(self) -> Self:
        if self.occupancy > self.capacity:
            raise PydanticCustomError(
                "occupancy_exceeds_capacity",
                "occupancy ({occupancy}) exceeds capacity ({capacity})",
                {"occupancy": self.occupancy, "capacity": self.capacity},
            )
        return self


class ShelterCreate(ShelterBase):
    """A new shelter."""


ShelterUpdate = update_model(ShelterBase, "ShelterUpdate")
ShelterPublic = public_model(
    ShelterBase, "ShelterPublic", {"free_beds_band": (QuantityBand | None, None)}
)


def _free_beds(record: Mapping[str, Any]) -> int | None:
    capacity, occupancy = record.get("capacity"), record.get("occupancy")
    if capacity is None or occupancy is None:
        return None
    free: int = max(capacity - occupancy, 0)
    return free


RECORD = RecordType(
    name="Shelter",
    field_name="shelters",
    table_name="shelters",
    create=ShelterCreate,
    update=ShelterUpdate,
    public=ShelterPublic,
    read_scopes=(Scope.SHELTERS_READ,),
    search_fields=("name", "description", "address"),
    filters=(
        Filter("statuses", list[ShelterStatus] | None, column="status"),
        Filter("accessible", bool | None, column="accessible"),
    ),
    facts=(
        Fact(
            "status",
            str,
            of=lambda record: code(record.get("status")),
            typical=lambda owner, caller: ShelterStatus.OPEN.value,
            doc="ShelterStatus value",
        ),
    ),
    band=Band("free_beds_band", _free_beds),
    served_stale=True,
)
