"""Storing, finding and paging records of any type; services flush, callers commit."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from schema.api.pagination import RecordOrder, decode_cursor, encode_cursor
from schema.errors import InvalidInput, NotFound, StaleVersion
from schema.geo import (
    SHOWN_LOCATION_MARGIN_KM,
    BBox,
    GeoPoint,
    GeoPolygon,
    distance_km,
    polygon_distance_km,
    polygon_meets_bbox,
)
from schema.ids import new_local_id
from schema.records import code
from schema.storage import contains, utcnow
from schema.store.specs import RecordSpec
from schema.store.tables import RowMixin

__all__ = [
    "Page",
    "create_record",
    "find_page",
    "get_record",
    "index_columns",
    "retire_record",
    "shown_match",
    "update_record",
    "validated",
]

MAX_RADIUS_KM = 1000.0
KM_PER_DEGREE = 111.32


def validated(model: type[BaseModel], data: dict[str, Any], *, prefix: str = "input") -> Any:
    """``model`` built from ``data``; schema failures become ``InvalidInput``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput.from_validation(exc, prefix=prefix) from exc


def index_columns(spec: RecordSpec, values: dict[str, Any]) -> dict[str, Any]:
    """The columns a row has for area and text filters, from its record's values."""
    location = values.get("location")
    point = location if isinstance(location, GeoPoint) else None
    parts: list[str] = []
    for name in spec.search_fields:
        value = values.get(name)
        if isinstance(value, list):
            parts.extend(str(v) for v in value)
        elif value:
            parts.append(str(value))
    return {
        "lat": point.lat if point else None,
        "lon": point.lon if point else None,
        "search_text": "\n".join(parts).casefold()[:10000],
    }


def _base_values(record: BaseModel) -> dict[str, Any]:
    # Shallow: nested models stay models, as the table's JSON columns expect.
    return {name: getattr(record, name) for name in type(record).model_fields}


async def create_record(
    session: AsyncSession, spec: RecordSpec, data: BaseModel, **system: Any
) -> RowMixin:
    """Insert a validated ``<Type>Create`` as a new row."""
    now = utcnow()
    values = _base_values(data)
    table: type[RowMixin] = spec.table
    row = table(
        id=new_local_id(),
        version=1,
        created_at=now,
        updated_at=now,
        **values,
        **system,
        **index_columns(spec, values),
    )
    session.add(row)
    await session.flush()
    return row


async def get_record(
    session: AsyncSession, spec: RecordSpec, local_id: str, *, include_retired: bool = False
) -> RowMixin:
    """The row with ``local_id``; ``NotFound`` when absent or retired."""
    table: type[RowMixin] = spec.table
    row = await session.get(table, local_id)
    if row is None or (row.retired_at is not None and not include_retired):
        raise NotFound(f"no {spec.type_name} with id {local_id}", type=spec.type_name)
    return row


async def _versioned_update(
    session: AsyncSession,
    spec: RecordSpec,
    local_id: str,
    expected_version: int,
    values: dict[str, Any],
) -> RowMixin:
    table: Any = spec.table
    statement = (
        update(table)
        .where(
            table.id == local_id,
            table.version == expected_version,
            table.retired_at.is_(None),
        )
        .values(**values, version=table.version + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    result = await session.execute(statement)
    if result.rowcount != 1:  # type: ignore[attr-defined]
        # Read the stored row again, not the copy this session loaded before the write.
        session.expire_all()
        current = await get_record(session, spec, local_id)
        raise StaleVersion(
            f"{spec.type_name} {local_id} is at version {current.version}, not {expected_version}",
            currentVersion=current.version,
        )
    session.expire_all()
    return await get_record(session, spec, local_id, include_retired=True)


async def update_record(
    session: AsyncSession, spec: RecordSpec, local_id: str, patch: BaseModel
) -> RowMixin:
    """Apply the set fields of ``patch`` if the row is still at ``patch.expected_version``."""
    changes = {
        name: getattr(patch, name)
        for name in type(patch).model_fields
        if name != "expected_version" and getattr(patch, name) is not None
    }
    expected_version: int = patch.expected_version  # type: ignore[attr-defined]
    row = await get_record(session, spec, local_id)
    merged = {**_base_values_of_row(spec, row), **changes}
    checked = validated(spec.create, merged)
    values = _base_values(checked)
    return await _versioned_update(
        session, spec, local_id, expected_version, {**values, **index_columns(spec, values)}
    )


def _base_values_of_row(spec: RecordSpec, row: RowMixin) -> dict[str, Any]:
    return {name: getattr(row, name) for name in spec.create.model_fields}


async def retire_record(
    session: AsyncSession, spec: RecordSpec, local_id: str, expected_version: int
) -> RowMixin:
    """Mark a row retired: it leaves every list, its id answers NOT_FOUND."""
    return await _versioned_update(
        session, spec, local_id, expected_version, {"retired_at": utcnow()}
    )


class Page:
    """Rows of one page and whether more follow."""

    def __init__(
        self, rows: Sequence[RowMixin], has_next: bool, order: RecordOrder, secret: bytes
    ) -> None:
        self.rows = rows
        self.has_next = has_next
        self.order = order
        self.secret = secret

    def cursor(self, row: RowMixin) -> str:
        """The signed cursor just after ``row``."""
        return encode_cursor(
            self.order, getattr(row, self.order.column), row.id, secret=self.secret
        )


def _conditions(spec: RecordSpec, where: Any) -> list[ColumnElement[bool]]:
    table: Any = spec.table
    conditions: list[ColumnElement[bool]] = []
    if where is None:
        return conditions
    if where.text:
        conditions.append(contains(table.search_text, where.text, field="text"))
    # Areas are widened by the most a shown (approximate) location can be off, so
    # SQL never drops a record whose shown location ``shown_match`` would pass.
    # A type placed by areas has no point columns: only ``shown_match`` decides.
    placed_by_areas = spec.record.areas is not None
    if where.bbox is not None:
        box = where.bbox
        _check_box(box.west, box.south, box.east, box.north)
    if where.bbox is not None and not placed_by_areas:
        dlat = SHOWN_LOCATION_MARGIN_KM / KM_PER_DEGREE
        dlon = dlat / max(math.cos(math.radians(max(abs(box.south), abs(box.north)))), 1e-6)
        conditions += [
            table.lat.between(box.south - dlat, box.north + dlat),
            table.lon.between(box.west - dlon, box.east + dlon),
        ]
    if where.near is not None:
        _check_near(where.near.lat, where.near.lon, where.near.radius_km)
    if where.near is not None and not placed_by_areas:
        near = where.near
        # (1.02: the SQL distance is equirectangular, within 1 % of the true one here.)
        reach = near.radius_km * 1.02 + SHOWN_LOCATION_MARGIN_KM
        conditions += _near(table, near.lat, near.lon, reach)
    if where.updated_since is not None:
        since: datetime = where.updated_since
        if since.tzinfo is None:
            raise InvalidInput(
                "updatedSince needs a time zone", code="INVALID_DATETIME", field="updatedSince"
            )
        conditions.append(table.updated_at >= since)
    for f in spec.filters:
        value = getattr(where, f.name, None)
        if value is None:
            continue
        if f.condition is not None:
            condition = f.condition(table, value)
            if condition is not None:
                conditions.append(condition)
        else:
            column = getattr(table, str(f.column))
            if isinstance(value, list):
                conditions.append(column.in_([getattr(v, "value", v) for v in value]))
            else:
                conditions.append(column == value)
    return conditions


def _shown_point(value: Any) -> tuple[float, float] | None:
    """(lon, lat) of a shown location, a GeoPoint or its GeoJSON mapping."""
    if isinstance(value, GeoPoint):
        return value.lon, value.lat
    if isinstance(value, Mapping):
        lon, lat = value["coordinates"][:2]
        return float(lon), float(lat)
    return None


def _shown_text(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list):
        return [t for v in value for t in _shown_text(v)]
    return [code(value).casefold()]


def shown_match(spec: RecordSpec, where: Any, shown: Mapping[str, Any]) -> bool:
    """Whether a record, as the caller is shown it, passes ``where``.

    Filters see only the caller's view: text only in fields shown to the caller,
    areas against the location as shown (a grid cell's centre when approximate),
    and a filter on a field the caller is not shown never matches.
    """
    if where is None:
        return True
    if where.text:
        text = where.text.strip().casefold()
        shown_texts = (t for name in spec.search_fields for t in _shown_text(shown.get(name)))
        if not any(text in t for t in shown_texts):
            return False
    if spec.record.areas is not None:
        if not _areas_match(spec.record.areas(shown), where):
            return False
    elif not _point_matches(_shown_point(shown.get("location")), where):
        return False
    if where.updated_since is not None and shown["updated_at"] < where.updated_since:
        return False
    for f in spec.filters:
        value = getattr(where, f.name, None)
        if value is not None and not f.passes(shown, value):
            return False
    return True


def _areas_match(areas: list[GeoPolygon], where: Any) -> bool:
    """Whether one of the shown areas meets ``where``'s box and one meets its circle."""
    if where.bbox is not None:
        box = BBox(
            west=where.bbox.west, south=where.bbox.south,
            east=where.bbox.east, north=where.bbox.north,
        )  # fmt: skip
        if not any(polygon_meets_bbox(area, box) for area in areas):
            return False
    if where.near is not None:
        near = where.near
        reach = [polygon_distance_km(area, near.lon, near.lat) for area in areas]
        if not any(distance <= near.radius_km for distance in reach):
            return False
    return True


def _point_matches(point: tuple[float, float] | None, where: Any) -> bool:
    """Whether the shown location lies in ``where``'s box and circle."""
    if where.bbox is not None:
        box = where.bbox
        if point is None or not (
            box.west <= point[0] <= box.east and box.south <= point[1] <= box.north
        ):
            return False
    if where.near is not None:
        near = where.near
        if point is None or distance_km(point, (near.lon, near.lat)) > near.radius_km:
            return False
    return True


def _check_box(west: float, south: float, east: float, north: float) -> None:
    if not (-180 <= west <= east <= 180 and -90 <= south <= north <= 90):
        raise InvalidInput(
            "bbox needs -180 <= west <= east <= 180 and -90 <= south <= north <= 90",
            code="INVALID_GEOMETRY",
            field="bbox",
        )


def _check_near(lat: float, lon: float, radius_km: float) -> None:
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise InvalidInput("near: coordinates out of range", code="INVALID_GEOMETRY", field="near")
    if not (0 < radius_km <= MAX_RADIUS_KM):
        raise InvalidInput(
            f"near.radiusKm must be in (0, {MAX_RADIUS_KM:g}]", code="OUT_OF_RANGE", field="near"
        )


def _near(table: Any, lat: float, lon: float, radius_km: float) -> list[ColumnElement[bool]]:
    # An equirectangular distance in plain arithmetic, the same SQL on SQLite
    # and PostgreSQL; within a district (< 100 km) its error is far under 1 %.
    dlat = radius_km / KM_PER_DEGREE
    scale = max(math.cos(math.radians(lat)), 1e-6)
    dlon = dlat / scale
    dx = (table.lon - lon) * scale
    dy = table.lat - lat
    return [
        table.lat.between(lat - dlat, lat + dlat),
        table.lon.between(lon - dlon, lon + dlon),
        dx * dx + dy * dy <= dlat * dlat,
    ]


async def find_page(
    session: AsyncSession,
    spec: RecordSpec,
    where: Any,
    *,
    order: RecordOrder,
    first: int,
    after: str | None,
    secret: bytes,
) -> Page:
    """One page of live rows that may match ``where`` (``shown_match`` decides), in ``order``."""
    table: Any = spec.table
    key = getattr(table, order.column)
    statement = select(table).where(table.retired_at.is_(None), *_conditions(spec, where))
    if after is not None:
        moment, last_id = decode_cursor(after, order, secret=secret)
        if order.descending:
            statement = statement.where(or_(key < moment, and_(key == moment, table.id < last_id)))
        else:
            statement = statement.where(or_(key > moment, and_(key == moment, table.id > last_id)))
    if order.descending:
        statement = statement.order_by(key.desc(), table.id.desc())
    else:
        statement = statement.order_by(key.asc(), table.id.asc())
    rows = list((await session.execute(statement.limit(first + 1))).scalars())
    return Page(rows[:first], len(rows) > first, order, secret)
