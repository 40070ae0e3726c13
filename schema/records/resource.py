"""Relief resources: supplies and equipment a community holds."""

from __future__ import annotations

from typing import Self

from pydantic import model_validator
from pydantic_core import PydanticCustomError
from sqlmodel import SQLModel

from schema.enums import ResourceStatus
from schema.fields import FieldGroup, grouped
from schema.geo import GeoPoint
from schema.records._family import QuantityBand, public_model, update_model
from schema.records._registry import Band, Fact, Filter, RecordType
from schema.records._types import LongText, Name, ResourceKindCode, ShortText
from schema.scopes import Scope
from schema.storage import PydanticJSON

__all__ = ["RECORD", "ResourceBase", "ResourceCreate", "ResourcePublic", "ResourceUpdate"]

MAX_QUANTITY = 1_000_000_000


class ResourceBase(SQLModel):
    """A stock of one kind of relief supply or equipment, counted in ``unit``."""

    kind: ResourceKindCode = grouped(FieldGroup.IDENTITY, max_length=40)
    name: Name = grouped(FieldGroup.IDENTITY)
    quantity: int = grouped(FieldGroup.QUANTITY_EXACT, ge=0, le=MAX_QUANTITY)
    available: int = grouped(FieldGroup.QUANTITY_EXACT, ge=0, le=MAX_QUANTITY)
    unit: Name = grouped(FieldGroup.IDENTITY, max_length=20)
    status: ResourceStatus = grouped(FieldGroup.STATUS, default=ResourceStatus.AVAILABLE)
    location: GeoPoint | None = grouped(
        FieldGroup.LOCATION_EXACT, default=None, sa_type=PydanticJSON(GeoPoint)
    )
    address: ShortText = grouped(FieldGroup.LOCATION_EXACT, default="")
    shareable: bool = grouped(FieldGroup.IDENTITY, default=True)
    description: LongText = grouped(FieldGroup.DESCRIPTION, default="")

    @model_validator(mode="after")
    def _available_within_quantity(self) -> Self:
        if self.available > self.quantity:
            raise PydanticCustomError(
                "available_exceeds_quantity",
                "available ({available}) exceeds quantity ({quantity})",
                {"available": self.available, "quantity": self.quantity},
            )
        return self


class ResourceCreate(ResourceBase):
    """A new resource."""


ResourceUpdate = update_model(ResourceBase, "ResourceUpdate")
ResourcePublic = public_model(
    ResourceBase,
    "ResourcePublic",
    {"available_band": (QuantityBand | None, None)},
)

RECORD = RecordType(
    name="Resource",
    field_name="resources",
    table_name="resources",
    create=ResourceCreate,
    update=ResourceUpdate,
    public=ResourcePublic,
    read_scopes=(Scope.RESOURCES_READ,),
    search_fields=("name", "kind", "description", "address"),
    filters=(
        Filter("kinds", list[str] | None, column="kind", description="Resource-kind codes"),
        Filter("statuses", list[ResourceStatus] | None, column="status"),
        Filter("shareable", bool | None, column="shareable"),
    ),
    facts=(
        Fact(
            "shareable",
            bool,
            # Only an explicit True shares: a missing flag must not widen anything.
            of=lambda record: record.get("shareable") is True,
            typical=lambda owner, caller: True,
        ),
    ),
    band=Band("available_band", lambda record: record.get("available")),
    served_stale=True,
)
