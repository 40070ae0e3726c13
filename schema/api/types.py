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
    AidRequestCreate,
    AidRequestPublic,
    AlertArea,
    AlertInfo,
    AlertPublic,
    AlertResource,
    FlagTransition,
    IncidentCreate,
    IncidentPublic,
    IncidentUpdate,
    NameValue,
    OrganisationPublic,
    QuantityBand,
    ResourceCreate,
    ResourcePublic,
    ResourceUpdate,
    RiskFlagCreate,
    RiskFlagHop,
    RiskFlagPublic,
    ShelterCreate,
    ShelterPublic,
    ShelterUpdate,
    VolunteerCreate,
    VolunteerPublic,
    VolunteerUpdate,
)

__all__ = [
    "RECORD_TYPES",
    "AidRequest",
    "AidRequestCreateInput",
    "Alert",
    "BBox",
    "GeoPoint",
    "GeoPointInput",
    "GeoPolygon",
    "Incident",
    "IncidentCreateInput",
    "IncidentUpdateInput",
    "Organisation",
    "Resource",
    "ResourceCreateInput",
    "ResourceUpdateInput",
    "RiskFlag",
    "RiskFlagCreateInput",
    "Shelter",
    "ShelterCreateInput",
    "ShelterUpdateInput",
    "Volunteer",
    "VolunteerCreateInput",
    "VolunteerUpdateInput",
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


@sp.type(model=IncidentPublic, all_fields=True, name="Incident")
class Incident:
    owner_organisation: Organisation | None = _owner_field()


@sp.type(model=ResourcePublic, all_fields=True, name="Resource")
class Resource:
    owner_organisation: Organisation | None = _owner_field()


@sp.type(model=ShelterPublic, all_fields=True, name="Shelter")
class Shelter:
    owner_organisation: Organisation | None = _owner_field()


@sp.type(model=VolunteerPublic, all_fields=True, name="Volunteer")
class Volunteer:
    owner_organisation: Organisation | None = _owner_field()


@sp.type(model=RiskFlagPublic, all_fields=True, name="RiskFlag")
class RiskFlag:
    owner_organisation: Organisation | None = _owner_field()


@sp.type(model=AidRequestPublic, all_fields=True, name="AidRequest")
class AidRequest:
    owner_organisation: Organisation | None = _owner_field()


@sp.type(model=AlertPublic, all_fields=True, name="Alert")
class Alert:
    owner_organisation: Organisation | None = _owner_field()


# --- inputs ---------------------------------------------------------------


@sp.input(model=IncidentCreate, all_fields=True, name="IncidentCreateInput")
class IncidentCreateInput:
    pass


@sp.input(model=IncidentUpdate, all_fields=True, name="IncidentUpdateInput")
class IncidentUpdateInput:
    pass


@sp.input(model=ResourceCreate, all_fields=True, name="ResourceCreateInput")
class ResourceCreateInput:
    pass


@sp.input(model=ResourceUpdate, all_fields=True, name="ResourceUpdateInput")
class ResourceUpdateInput:
    pass


@sp.input(model=ShelterCreate, all_fields=True, name="ShelterCreateInput")
class ShelterCreateInput:
    pass


@sp.input(model=ShelterUpdate, all_fields=True, name="ShelterUpdateInput")
class ShelterUpdateInput:
    pass


@sp.input(model=VolunteerCreate, all_fields=True, name="VolunteerCreateInput")
class VolunteerCreateInput:
    pass


@sp.input(model=VolunteerUpdate, all_fields=True, name="VolunteerUpdateInput")
class VolunteerUpdateInput:
    pass


@sp.input(model=RiskFlagCreate, all_fields=True, name="RiskFlagCreateInput")
class RiskFlagCreateInput:
    pass


@sp.input(model=AidRequestCreate, all_fields=True, name="AidRequestCreateInput")
class AidRequestCreateInput:
    pass


RECORD_TYPES: dict[str, Any] = {
    "Incident": Incident,
    "Resource": Resource,
    "Shelter": Shelter,
    "Volunteer": Volunteer,
    "RiskFlag": RiskFlag,
    "AidRequest": AidRequest,
    "Alert": Alert,
}
"""GraphQL record types by name (the ``<type>`` part of a global id)."""
