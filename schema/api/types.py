"""The GraphQL types of the common schema, derived from the record models.

Nothing here is written twice: each strawberry type is built from its
pydantic model with ``all_fields=True``; enums are the schema's own enums.
"""

from __future__ import annotations

from typing import Any

import strawberry
import strawberry.experimental.pydantic as sp
from strawberry.types import Info

from schema import enums
from schema.geo import BBox as BBoxModel
from schema.geo import GeoPoint as GeoPointModel
from schema.geo import GeoPolygon as GeoPolygonModel
from schema.records import (
    REGISTRY,
    AlertArea,
    AlertInfo,
    AlertResource,
    FlagSource,
    FlagTransition,
    NameValue,
    OrganisationPublic,
    QuantityBand,
    RecordType,
    RiskFlagHop,
    SensorReading,
    SensorRule,
    SeriesPoint,
)

__all__ = [
    "CREATE_INPUTS",
    "RECORD_TYPES",
    "UPDATE_INPUTS",
    "BBox",
    "FlagSourceType",
    "GeoPoint",
    "GeoPointInput",
    "GeoPolygon",
    "Organisation",
    "SensorReadingType",
]

for _enum in (
    enums.OrgKind,
    enums.IncidentCategory,
    enums.SeverityLevel,
    enums.WarningColour,
    enums.CapCategory,
    enums.CapSeverity,
    enums.CapUrgency,
    enums.CapCertainty,
    enums.CapStatus,
    enums.CapMsgType,
    enums.CapScope,
    enums.IncidentStatus,
    enums.ResourceStatus,
    enums.ShelterStatus,
    enums.VolunteerAvailability,
    enums.RiskFlagStatus,
    enums.AidRequestStatus,
    enums.SensorKind,
    enums.SensorStatus,
    enums.SensorRuleKind,
):
    strawberry.enum(_enum)


# --- value types ---------------------------------------------------------


@sp.type(model=GeoPointModel, all_fields=True, description="A GeoJSON Point [lon, lat]")
class GeoPoint:
    pass


@sp.input(model=GeoPointModel, all_fields=True, name="GeoPointInput")
class GeoPointInput:
    pass


@sp.type(model=GeoPolygonModel, all_fields=True, description="A GeoJSON Polygon")
class GeoPolygon:
    pass


@sp.input(model=GeoPolygonModel, all_fields=True, name="GeoPolygonInput")
class GeoPolygonInput:
    pass


@sp.type(model=BBoxModel, all_fields=True)
class BBox:
    pass


@sp.type(model=QuantityBand, all_fields=True, name="QuantityBand")
class QuantityBandType:
    pass


@sp.type(model=FlagTransition, all_fields=True, name="FlagTransition")
class FlagTransitionType:
    pass


@sp.type(model=RiskFlagHop, all_fields=True, name="RiskFlagHop")
class RiskFlagHopType:
    pass


@sp.type(model=NameValue, all_fields=True, name="NameValue")
class NameValueType:
    pass


@sp.type(model=AlertResource, all_fields=True, name="AlertResource")
class AlertResourceType:
    pass


@sp.type(model=AlertArea, all_fields=True, name="AlertArea")
class AlertAreaType:
    pass


@sp.type(model=AlertInfo, all_fields=True, name="AlertInfo")
class AlertInfoType:
    pass


@sp.type(model=FlagSource, all_fields=True, name="FlagSource")
class FlagSourceType:
    pass


@sp.type(model=SensorReading, all_fields=True, name="SensorReading")
class SensorReadingType:
    pass


@sp.type(model=SeriesPoint, all_fields=True, name="SeriesPoint")
class SeriesPointType:
    pass


@sp.type(model=SensorRule, all_fields=True, name="SensorRule")
class SensorRuleType:
    pass


@sp.input(model=SensorRule, all_fields=True, name="SensorRuleInput")
class SensorRuleInput:
    pass


# --- records --------------------------------------------------------------


async def _owner_organisation(root: Any, info: Info[Any, Any]) -> Organisation | None:
    # Batched per request: the service's context offers a DataLoader keyed by owner.
    loader = getattr(info.context, "organisations", None)
    if loader is None:
        return None
    found: Organisation | None = await loader.load(root.owner)
    return found


def _owner_field() -> Any:
    return strawberry.field(
        resolver=_owner_organisation, description="The organisation that owns the record"
    )


@sp.type(model=OrganisationPublic, all_fields=True, name="Organisation")
class Organisation:
    pass


def _record_type(record_type: RecordType) -> Any:
    namespace = {
        "__annotations__": {"owner_organisation": Organisation | None},
        "owner_organisation": _owner_field(),
    }
    cls = type(record_type.name, (), namespace)
    return sp.type(model=record_type.public, all_fields=True, name=record_type.name)(cls)


def _input(model: type[Any], name: str) -> Any:
    return sp.input(model=model, all_fields=True, name=name)(type(name, (), {}))


RECORD_TYPES: dict[str, Any] = {name: _record_type(r) for name, r in REGISTRY.items()}
"""GraphQL record types by name (the ``<type>`` part of a global id)."""

CREATE_INPUTS: dict[str, Any] = {
    name: _input(r.create, f"{name}CreateInput") for name, r in REGISTRY.items() if r.staff_create
}
"""The create input of each type its own staff create, by type name."""

UPDATE_INPUTS: dict[str, Any] = {
    name: _input(r.update, f"{name}UpdateInput")
    for name, r in REGISTRY.items()
    if r.update is not None
}
"""The update input of each type its own staff change, by type name."""
