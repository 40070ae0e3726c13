"""A throwaway record type that a separate package adds through the registry alone."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlmodel import SQLModel

from schema.fields import FieldGroup, grouped
from schema.geo import GeoPoint
from schema.records import Filter, RecordType, public_model, update_model
from schema.scopes import Scope
from schema.storage import PydanticJSON


class WaterPumpCreate(SQLModel):
    """A mobile drainage pump (移动排水泵)."""

    name: str = grouped(FieldGroup.IDENTITY, max_length=200)
    flow_m3h: int = grouped(FieldGroup.QUANTITY_EXACT, ge=0, le=100_000)
    location: GeoPoint | None = grouped(
        FieldGroup.LOCATION_EXACT, default=None, sa_type=PydanticJSON(GeoPoint)
    )


def _min_flow(table: Any, value: int) -> Any:
    return table.flow_m3h >= value


def _flow_at_least(shown: Mapping[str, Any], value: int) -> bool:
    flow = shown.get("flow_m3h")
    return flow is not None and flow >= value


RECORD = RecordType(
    name="WaterPump",
    field_name="waterPumps",
    table_name="water_pumps",
    create=WaterPumpCreate,
    update=update_model(WaterPumpCreate, "WaterPumpUpdate"),
    public=public_model(WaterPumpCreate, "WaterPumpPublic"),
    read_scopes=(Scope.RESOURCES_READ,),
    search_fields=("name",),
    filters=(Filter("min_flow", int | None, condition=_min_flow, test=_flow_at_least),),
    served_stale=True,
)
