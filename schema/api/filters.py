"""Filter inputs of the read API, shared by every source."""

from __future__ import annotations

from datetime import datetime

import strawberry

from schema.enums import (
    CapStatus,
    IncidentCategory,
    IncidentStatus,
    ResourceStatus,
    RiskFlagStatus,
    ShelterStatus,
    VolunteerAvailability,
)

__all__ = [
    "AlertFilter",
    "BBoxInput",
    "IncidentFilter",
    "NearInput",
    "RecordFilter",
    "ResourceFilter",
    "RiskFlagFilter",
    "ShelterFilter",
    "VolunteerFilter",
]


@strawberry.input(description="Within radiusKm of a point")
class NearInput:
    lat: float
    lon: float
    radius_km: float


@strawberry.input(description="A box in degrees")
class BBoxInput:
    west: float
    south: float
    east: float
    north: float


@strawberry.input(description="Filters every record type understands")
class RecordFilter:
    text: str | None = strawberry.field(
        default=None, description="Substring of name, title, description or address (any script)"
    )
    near: NearInput | None = None
    bbox: BBoxInput | None = None
    updated_since: datetime | None = None


@strawberry.input
class IncidentFilter(RecordFilter):
    categories: list[IncidentCategory] | None = None
    statuses: list[IncidentStatus] | None = None


@strawberry.input
class ResourceFilter(RecordFilter):
    kinds: list[str] | None = strawberry.field(default=None, description="Resource-kind codes")
    statuses: list[ResourceStatus] | None = None
    shareable: bool | None = None


@strawberry.input
class ShelterFilter(RecordFilter):
    statuses: list[ShelterStatus] | None = None
    accessible: bool | None = None


@strawberry.input
class VolunteerFilter(RecordFilter):
    skills: list[str] | None = None
    availabilities: list[VolunteerAvailability] | None = None


@strawberry.input
class RiskFlagFilter(RecordFilter):
    categories: list[str] | None = strawberry.field(default=None, description="Risk-category codes")
    statuses: list[RiskFlagStatus] | None = None


@strawberry.input
class AlertFilter(RecordFilter):
    statuses: list[CapStatus] | None = None
    active_only: bool = False
