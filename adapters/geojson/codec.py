"""GeoJSON hazard FeatureCollections (RFC 7946) to Incidents, by a configurable property mapping.

The defaults read the USGS earthquake feed: ``properties.title``, ``time``
(milliseconds since the epoch), ``mag`` (magnitude, mapped to a severity
level by thresholds), ``place`` (the address) and the feature's ``id``.
A feature that does not map is a problem of its own; the others are read.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from adapters.base import Batch, Keyed, Problem
from adapters.errors import UpstreamBadData, UpstreamBadResponse
from schema.enums import CapSeverity, IncidentCategory, IncidentStatus, SeverityLevel
from schema.geo import GeoPoint
from schema.records import IncidentCreate

__all__ = ["PropertyMapping", "incidents_from_collection", "parse_collection"]

_CAP_SEVERITY = {
    SeverityLevel.I: CapSeverity.EXTREME,
    SeverityLevel.II: CapSeverity.SEVERE,
    SeverityLevel.III: CapSeverity.MODERATE,
    SeverityLevel.IV: CapSeverity.MINOR,
}


class PropertyMapping(BaseModel):
    """Which feature properties hold what; ``id`` None means the feature's own ``id``."""

    id: str | None = None
    title: str = "title"
    time: str = "time"
    time_format: Literal["epoch_ms", "epoch_s", "iso"] = "epoch_ms"
    magnitude: str | None = "mag"
    place: str | None = "place"
    description: str | None = None
    severity_thresholds: list[tuple[float, SeverityLevel]] = Field(
        default_factory=lambda: [
            (7.0, SeverityLevel.I),
            (6.0, SeverityLevel.II),
            (5.0, SeverityLevel.III),
        ],
        description="(least magnitude, level), most severe first; below all: level IV",
    )
    category: IncidentCategory = IncidentCategory.NATURAL_DISASTER


def parse_collection(body: bytes, *, where: str) -> list[Any]:
    """The features of a FeatureCollection, or UPSTREAM_BAD_RESPONSE."""
    try:
        document = json.loads(body)
    except ValueError as error:
        raise UpstreamBadResponse(f"{where}: not JSON ({error})", where=where) from error
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise UpstreamBadResponse(f"{where}: not a GeoJSON FeatureCollection", where=where)
    features = document.get("features")
    if not isinstance(features, list):
        raise UpstreamBadResponse(f"{where}: features is not a list", where=where)
    return features


def _time(value: Any, mapping: PropertyMapping) -> datetime:
    field = mapping.time
    try:
        if mapping.time_format == "iso":
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            if parsed.tzinfo is None:
                raise ValueError("no time zone")
            return parsed
        number = float(value)
        if not math.isfinite(number):
            raise ValueError("not finite")
        seconds = number / 1000 if mapping.time_format == "epoch_ms" else number
        return datetime.fromtimestamp(seconds, UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        shown = str(value)[:40]
        reason = f"{field} {shown!r} is not a {mapping.time_format} time"
        raise UpstreamBadData(reason, field=field) from None


def _severity(value: Any, mapping: PropertyMapping) -> SeverityLevel:
    if value is None:
        return SeverityLevel.IV
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UpstreamBadData(f"magnitude {str(value)[:40]!r} is not a number", field="magnitude")
    for least, level in mapping.severity_thresholds:
        if value >= least:
            return level
    return SeverityLevel.IV


def _feature(feature: Any, mapping: PropertyMapping) -> tuple[str, IncidentCreate]:
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise UpstreamBadData("not a GeoJSON Feature", field="type")
    properties = feature.get("properties")
    if not isinstance(properties, dict):
        raise UpstreamBadData("properties is not an object", field="properties")
    key = feature.get("id") if mapping.id is None else properties.get(mapping.id)
    if key in (None, ""):
        raise UpstreamBadData("the feature has no id", field=mapping.id or "id")
    title = properties.get(mapping.title)
    if not isinstance(title, str) or not title.strip():
        raise UpstreamBadData(f"{mapping.title} is missing", field=mapping.title)
    reported = _time(properties.get(mapping.time), mapping)
    level = _severity(properties.get(mapping.magnitude) if mapping.magnitude else None, mapping)
    geometry = feature.get("geometry")
    location = None
    if isinstance(geometry, dict) and geometry.get("type") == "Point":
        coordinates = geometry.get("coordinates")
        if not isinstance(coordinates, list) or len(coordinates) < 2:
            raise UpstreamBadData("a Point needs [longitude, latitude]", field="geometry")
        try:
            # RFC 7946 allows an altitude third; the schema keeps longitude and latitude.
            location = GeoPoint.at(float(coordinates[0]), float(coordinates[1]))
        except (TypeError, ValueError, ValidationError) as error:
            raise UpstreamBadData(f"geometry: {error}".splitlines()[0], field="geometry") from None
    place = properties.get(mapping.place) if mapping.place else None
    description = properties.get(mapping.description) if mapping.description else None
    try:
        incident = IncidentCreate(
            title=title.strip()[:200],
            category=mapping.category,
            severity_level=level,
            cap_severity=_CAP_SEVERITY[level],
            status=IncidentStatus.REPORTED,
            description=str(description or "")[:4000],
            location=location,
            address=str(place or "")[:500],
            reported_at=reported,
        )
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise UpstreamBadData(f"{where}: {first['msg']}", field=where) from error
    return str(key), incident


def incidents_from_collection(
    features: list[Any], mapping: PropertyMapping, *, where: str
) -> Batch[IncidentCreate]:
    """Incidents of every feature that maps; a problem for each that does not."""
    batch: Batch[IncidentCreate] = Batch()
    for index, feature in enumerate(features):
        place = f"{where}#features[{index}]"
        try:
            key, incident = _feature(feature, mapping)
        except UpstreamBadData as error:
            batch.problems.append(Problem(place, error.code, error.message))
            continue
        batch.records.append(Keyed(key, incident))
    return batch
