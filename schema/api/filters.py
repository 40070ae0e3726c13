"""Filter inputs of the read API, shared by every source, derived from ``REGISTRY``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry

from schema.records import REGISTRY, RecordType

__all__ = ["FILTERS", "BBoxInput", "NearInput", "RecordFilter"]


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


def _filter_input(record_type: RecordType) -> Any:
    """The ``where`` input of one type's list field: the common filters and its own."""
    namespace: dict[str, Any] = {"__annotations__": {}}
    for f in record_type.filters:
        namespace["__annotations__"][f.name] = f.annotation
        namespace[f.name] = strawberry.field(default=f.default, description=f.description)
    cls = type(f"{record_type.name}Filter", (RecordFilter,), namespace)
    return strawberry.input(cls)


FILTERS: dict[str, Any] = {name: _filter_input(r) for name, r in REGISTRY.items()}
"""Each record type's filter input, by type name."""
