"""GeoJSON geometry (RFC 7946) for the common schema: points, polygons, boxes."""

from __future__ import annotations

import itertools
import math
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict
from pydantic_core import PydanticCustomError

__all__ = [
    "BBox",
    "GeoPoint",
    "GeoPolygon",
    "LonLat",
    "circle_polygon",
    "distance_km",
    "polygon_covers",
    "polygon_distance_km",
    "polygon_meets_bbox",
]

EARTH_RADIUS_KM = 6371.0088
SHOWN_LOCATION_MARGIN_KM = 1.0
"""The most a location shown approximately may lie from the true one (policies' grid is finer)."""


def _geometry_type(expected: str) -> AfterValidator:
    def check(value: str) -> str:
        if value != expected:
            raise PydanticCustomError(
                "invalid_geometry",
                "expected a GeoJSON {expected}, got {got}",
                {"expected": expected, "got": value[:20]},
            )
        return value

    return AfterValidator(check)


def _check_lon_lat(value: tuple[float, float]) -> tuple[float, float]:
    lon, lat = value
    if not (math.isfinite(lon) and math.isfinite(lat)):
        raise PydanticCustomError("invalid_geometry", "coordinates must be finite numbers")
    if not -180.0 <= lon <= 180.0:
        raise PydanticCustomError(
            "invalid_geometry", "longitude {lon} is outside -180..180", {"lon": lon}
        )
    if not -90.0 <= lat <= 90.0:
        raise PydanticCustomError(
            "invalid_geometry", "latitude {lat} is outside -90..90", {"lat": lat}
        )
    return value


def _two_numbers(value: object) -> object:
    if isinstance(value, list | tuple) and len(value) != 2:
        raise PydanticCustomError(
            "invalid_geometry",
            "a position is [longitude, latitude], got {n} numbers",
            {"n": len(value)},
        )
    return value


LonLat = Annotated[
    tuple[float, float], BeforeValidator(_two_numbers), AfterValidator(_check_lon_lat)
]
"""A GeoJSON position: longitude first, then latitude (RFC 7946 §3.1.1)."""


class GeoPoint(BaseModel):
    """A GeoJSON Point, WGS 84, ``coordinates = [longitude, latitude]``."""

    model_config = ConfigDict(frozen=True)

    type: Annotated[str, _geometry_type("Point")] = "Point"
    coordinates: LonLat

    @property
    def lon(self) -> float:
        return self.coordinates[0]

    @property
    def lat(self) -> float:
        return self.coordinates[1]

    @classmethod
    def at(cls, lon: float, lat: float) -> GeoPoint:
        """A point from longitude and latitude."""
        return cls(coordinates=(lon, lat))


def _check_rings(rings: list[list[tuple[float, float]]]) -> list[list[tuple[float, float]]]:
    if not rings:
        raise PydanticCustomError("invalid_geometry", "a polygon needs at least one ring")
    for ring in rings:
        if len(ring) < 4:
            raise PydanticCustomError(
                "invalid_geometry", "a polygon ring needs at least four positions"
            )
        if ring[0] != ring[-1]:
            raise PydanticCustomError("invalid_geometry", "a polygon ring must end where it starts")
    return rings


class GeoPolygon(BaseModel):
    """A GeoJSON Polygon: an outer ring, then holes; each ring closed."""

    model_config = ConfigDict(frozen=True)

    type: Annotated[str, _geometry_type("Polygon")] = "Polygon"
    coordinates: Annotated[list[list[LonLat]], AfterValidator(_check_rings)]

    def bbox(self) -> BBox:
        """The smallest box around the outer ring."""
        lons = [p[0] for p in self.coordinates[0]]
        lats = [p[1] for p in self.coordinates[0]]
        return BBox(west=min(lons), south=min(lats), east=max(lons), north=max(lats))


class BBox(BaseModel):
    """A bounding box in degrees (west, south, east, north)."""

    model_config = ConfigDict(frozen=True)

    west: float
    south: float
    east: float
    north: float

    def model_post_init(self, __context: object) -> None:
        _check_lon_lat((self.west, self.south))
        _check_lon_lat((self.east, self.north))
        if self.west > self.east or self.south > self.north:
            raise PydanticCustomError(
                "invalid_geometry", "a bbox needs west <= east and south <= north"
            )

    def contains(self, lon: float, lat: float) -> bool:
        return self.west <= lon <= self.east and self.south <= lat <= self.north

    def intersects(self, other: BBox) -> bool:
        return not (
            other.west > self.east
            or other.east < self.west
            or other.south > self.north
            or other.north < self.south
        )


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (lon, lat) positions."""
    lon1, lat1, lon2, lat2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def circle_polygon(lon: float, lat: float, radius_km: float, points: int = 32) -> GeoPolygon:
    """Approximate a circle (as CAP's ``circle``) by a closed polygon."""
    ring: list[tuple[float, float]] = []
    for i in range(points):
        bearing = 2 * math.pi * i / points
        dlat = radius_km / 111.32 * math.cos(bearing)
        dlon = radius_km / (111.32 * max(math.cos(math.radians(lat)), 1e-6)) * math.sin(bearing)
        ring.append((max(-180.0, min(180.0, lon + dlon)), max(-90.0, min(90.0, lat + dlat))))
    ring.append(ring[0])
    return GeoPolygon(coordinates=[ring])


_Position = tuple[float, float]


def _on_segment(p: _Position, a: _Position, b: _Position, eps: float = 1e-12) -> bool:
    """Whether ``p`` lies on the segment ``a``-``b`` (planar, in degrees)."""
    cross = (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])
    if abs(cross) > eps * max(1.0, abs(b[0] - a[0]) + abs(b[1] - a[1])):
        return False
    return min(a[0], b[0]) - eps <= p[0] <= max(a[0], b[0]) + eps and (
        min(a[1], b[1]) - eps <= p[1] <= max(a[1], b[1]) + eps
    )


def _in_ring(p: _Position, ring: list[tuple[float, float]]) -> bool:
    """Whether ``p`` is inside a closed ring or on its edge (even-odd rule)."""
    inside = False
    for a, b in itertools.pairwise(ring):
        if _on_segment(p, a, b):
            return True
        if (a[1] > p[1]) != (b[1] > p[1]):
            x = a[0] + (p[1] - a[1]) * (b[0] - a[0]) / (b[1] - a[1])
            if p[0] < x:
                inside = not inside
    return inside


def polygon_covers(polygon: GeoPolygon, lon: float, lat: float) -> bool:
    """Whether the position lies in the polygon: inside or on its outer ring, not in a hole."""
    outer, *holes = polygon.coordinates
    if not _in_ring((lon, lat), outer):
        return False
    return not any(
        _in_ring((lon, lat), hole)
        and not any(_on_segment((lon, lat), a, b) for a, b in itertools.pairwise(hole))
        for hole in holes
    )


def _segments_meet(a: _Position, b: _Position, c: _Position, d: _Position) -> bool:
    """Whether the segments ``a``-``b`` and ``c``-``d`` touch or cross."""

    def side(p: _Position, q: _Position, r: _Position) -> float:
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    d1, d2, d3, d4 = side(c, d, a), side(c, d, b), side(a, b, c), side(a, b, d)
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True
    return (
        _on_segment(a, c, d) or _on_segment(b, c, d) or _on_segment(c, a, b) or _on_segment(d, a, b)
    )


def polygon_meets_bbox(polygon: GeoPolygon, box: BBox) -> bool:
    """Whether the polygon (its outer ring) and the box share at least one point."""
    if not polygon.bbox().intersects(box):
        return False
    outer = polygon.coordinates[0]
    if any(box.contains(lon, lat) for lon, lat in outer):
        return True
    corners = [(box.west, box.south), (box.east, box.south), (box.east, box.north),
               (box.west, box.north)]  # fmt: skip
    if any(_in_ring(corner, outer) for corner in corners):
        return True
    edges = list(zip(corners, [*corners[1:], corners[0]], strict=True))
    return any(_segments_meet(a, b, c, d) for a, b in itertools.pairwise(outer) for c, d in edges)


def polygon_distance_km(polygon: GeoPolygon, lon: float, lat: float) -> float:
    """How far the position is from the polygon: 0 inside or on it, else to its nearest edge.

    Edges are measured in a plane tangent at the position (equirectangular), which is
    within 1 % of the great-circle distance over the few tens of km of a district.
    """
    if polygon_covers(polygon, lon, lat):
        return 0.0
    ky = EARTH_RADIUS_KM * math.pi / 180.0
    kx = ky * math.cos(math.radians(lat))

    def plane(p: _Position) -> _Position:
        return ((p[0] - lon) * kx, (p[1] - lat) * ky)

    nearest = math.inf
    for ring in polygon.coordinates:
        for a, b in itertools.pairwise(ring):
            (ax, ay), (bx, by) = plane(a), plane(b)
            dx, dy = bx - ax, by - ay
            length2 = dx * dx + dy * dy
            t = 0.0 if length2 == 0 else max(0.0, min(1.0, -(ax * dx + ay * dy) / length2))
            nearest = min(nearest, math.hypot(ax + t * dx, ay + t * dy))
    return nearest
