"""CAP element values to and from Python: times, code values, lists, coordinates."""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeVar
from xml.etree.ElementTree import Element

from pydantic import ValidationError

from adapters.cap.errors import CapInvalid
from schema.enums import CapCertainty
from schema.geo import GeoPolygon, circle_polygon
from schema.records.alert import NameValue

__all__ = [
    "CapReader",
    "circle_geometry",
    "format_datetime",
    "format_decimal",
    "join_quoted",
    "parse_certainty",
    "parse_datetime",
    "parse_enum",
    "polygon_geometry",
    "polygon_text",
    "split_quoted",
]

E = TypeVar("E", bound=enum.Enum)

# "38.47, -120.14" occurs in hand-written feeds; CAP means "38.47,-120.14".
_COMMA = re.compile(r"\s*,\s*")
# CAP's space-delimited lists, where a value containing whitespace is double-quoted.
_QUOTED_OR_BARE = re.compile(r'"([^"]*)"|(\S+)')


@dataclass(frozen=True)
class CapReader:
    """Reads the children of CAP elements in one CAP namespace (1.1 or 1.2)."""

    namespace: str

    def all(self, parent: Element, name: str) -> list[Element]:
        """Every child element called ``name``, in document order."""
        return parent.findall(f"{{{self.namespace}}}{name}")

    def text(self, parent: Element, name: str) -> str | None:
        """The text of the first child ``name`` exactly as written, or None if it is absent."""
        child = parent.find(f"{{{self.namespace}}}{name}")
        return None if child is None else "".join(child.itertext())

    def token(self, parent: Element, name: str) -> str | None:
        """The text of child ``name`` without surrounding whitespace, or None if absent."""
        text = self.text(parent, name)
        return None if text is None else text.strip()

    def tokens(self, parent: Element, name: str) -> list[str]:
        """The stripped text of every child called ``name``."""
        return ["".join(child.itertext()).strip() for child in self.all(parent, name)]

    def required(self, parent: Element, name: str, path: str) -> str:
        """The text of child ``name``; CAP_INVALID if the message lacks it."""
        text = self.text(parent, name)
        if text is None:
            raise CapInvalid(f"<{name}> is required", path=path)
        return text

    def time(self, parent: Element, name: str, path: str) -> datetime | None:
        """Child ``name`` as a timezone-aware datetime, or None if absent."""
        text = self.token(parent, name)
        return None if text is None else parse_datetime(text, path=f"{path}/{name}")

    def pairs(self, parent: Element, name: str) -> list[NameValue]:
        """The ``valueName``/``value`` pairs of each child ``name`` (eventCode, parameter, geocode).

        CAP has one pair per element; index feeds such as the NWS ATOM feed put
        several pairs in one element, so pairs are taken in document order.
        """
        found: list[NameValue] = []
        for element in self.all(parent, name):
            pending: str | None = None
            for child in element:
                text = "".join(child.itertext()).strip()
                # By local name: in the NWS feed they sit in the ATOM default namespace.
                local_name = child.tag.rpartition("}")[2]
                if local_name == "valueName":
                    pending = text
                elif local_name == "value" and pending is not None:
                    found.append(NameValue(value_name=pending, value=text))
                    pending = None
        return found

    def shapes(self, parent: Element, path: str) -> tuple[list[str], list[str], list[GeoPolygon]]:
        """The non-empty ``polygon`` and ``circle`` texts of ``parent``, and their GeoJSON."""
        polygons: list[str] = []
        circles: list[str] = []
        geometry: list[GeoPolygon] = []
        # Empty <polygon/> elements carry nothing (index feeds write one for every entry).
        for i, text in enumerate(self.tokens(parent, "polygon"), 1):
            shape = polygon_geometry(text, path=f"{path}/polygon[{i}]")
            if shape is not None:
                polygons.append(text)
                geometry.append(shape)
        for i, text in enumerate(self.tokens(parent, "circle"), 1):
            shape = circle_geometry(text, path=f"{path}/circle[{i}]")
            if shape is not None:
                circles.append(text)
                geometry.append(shape)
        return polygons, circles, geometry


def parse_datetime(text: str, *, path: str) -> datetime:
    """A CAP time (``2003-06-17T14:57:00-07:00``) as a timezone-aware datetime."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise CapInvalid(f"{text!r} is not a date and time", path=path) from None
    if value.tzinfo is None:
        raise CapInvalid(f"{text!r} has no timezone offset", path=path)
    return value


def format_datetime(value: datetime, *, path: str) -> str:
    """A datetime the way CAP 1.2 writes it: whole seconds, numeric offset, UTC as ``-00:00``."""
    offset = value.utcoffset()
    if offset is None:
        raise CapInvalid("datetime has no timezone", path=path)
    # The XSD pattern has no fractional seconds, so they cannot be kept.
    text = value.replace(microsecond=0).isoformat()
    if offset == timedelta(0):
        # CAP 1.2 §3.3.2: "the timezone for UTC MUST be represented as -00:00".
        text = text[: -len("+00:00")] + "-00:00"
    return text


def parse_enum(kind: type[E], text: str, *, path: str) -> E:
    """CAP code value ``text`` as member of ``kind``; CAP_INVALID names the allowed values."""
    try:
        return kind(text.strip())
    except ValueError:
        allowed = ", ".join(str(member.value) for member in kind)
        raise CapInvalid(f"{text!r} is not one of {allowed}", path=path) from None


def parse_certainty(text: str, *, path: str) -> CapCertainty:
    """CAP ``certainty``; CAP 1.0's ``Very Likely`` (still seen in 1.1 feeds) reads as LIKELY."""
    if text.strip() == "Very Likely":
        return CapCertainty.LIKELY
    return parse_enum(CapCertainty, text, path=path)


def split_quoted(text: str) -> list[str]:
    """A CAP space-delimited list whose values with whitespace are double-quoted."""
    return [
        match.group(1) if match.group(1) is not None else match.group(2)
        for match in _QUOTED_OR_BARE.finditer(text)
    ]


def join_quoted(values: list[str], *, path: str) -> str:
    """Values as a CAP space-delimited list, double-quoting those that contain whitespace."""
    parts: list[str] = []
    for value in values:
        if value and not any(c.isspace() for c in value):
            parts.append(value)
        elif '"' in value:
            raise CapInvalid(f"{value!r} has whitespace and a double quote", path=path)
        else:
            parts.append(f'"{value}"')
    return " ".join(parts)


def format_decimal(value: float, *, path: str) -> str:
    """A float as an XML Schema decimal (no exponent), CAP_INVALID if not finite."""
    if not math.isfinite(value):
        raise CapInvalid(f"{value} is not a finite number", path=path)
    return format(Decimal(repr(value)), "f")


def _lat_lon(token: str, *, path: str) -> tuple[float, float]:
    """A CAP ``lat,lon`` pair as a GeoJSON ``(lon, lat)`` position."""
    parts = token.split(",")
    if len(parts) != 2:
        raise CapInvalid(f"{token!r} is not a latitude,longitude pair", path=path)
    try:
        lat, lon = float(parts[0]), float(parts[1])
    except ValueError:
        raise CapInvalid(f"{token!r} is not a latitude,longitude pair", path=path) from None
    if not (math.isfinite(lat) and -90.0 <= lat <= 90.0):
        raise CapInvalid(f"latitude {parts[0]} is outside -90..90", path=path)
    if not (math.isfinite(lon) and -180.0 <= lon <= 180.0):
        raise CapInvalid(f"longitude {parts[1]} is outside -180..180", path=path)
    return lon, lat


def _polygon(ring: list[tuple[float, float]], *, path: str) -> GeoPolygon:
    try:
        return GeoPolygon(coordinates=[ring])
    except ValidationError as exc:
        raise CapInvalid(exc.errors()[0]["msg"], path=path) from None


def polygon_geometry(text: str, *, path: str) -> GeoPolygon | None:
    """A CAP ``polygon`` ("lat,lon lat,lon ...") as GeoJSON; None if the element is empty."""
    cleaned = _COMMA.sub(",", text.strip())
    if not cleaned:
        return None
    ring = [_lat_lon(token, path=path) for token in cleaned.split()]
    # CAP requires a closed ring, but open rings occur in real feeds and their
    # meaning is not in doubt; the raw string is kept as written either way.
    if ring[0] != ring[-1]:
        ring.append(ring[0])
    if len(ring) < 4:
        raise CapInvalid("a polygon needs at least four coordinate pairs", path=path)
    return _polygon(ring, path=path)


def circle_geometry(text: str, *, path: str) -> GeoPolygon | None:
    """A CAP ``circle`` ("lat,lon radius_km") as a GeoJSON polygon; None if the element is empty."""
    parts = _COMMA.sub(",", text.strip()).split()
    if not parts:
        return None
    if len(parts) != 2:
        raise CapInvalid(f"{text.strip()!r} is not 'latitude,longitude radius'", path=path)
    lon, lat = _lat_lon(parts[0], path=path)
    try:
        radius_km = float(parts[1])
    except ValueError:
        raise CapInvalid(f"radius {parts[1]!r} is not a number", path=path) from None
    if not (math.isfinite(radius_km) and radius_km >= 0):
        raise CapInvalid(f"radius {parts[1]} is not a distance in km", path=path)
    # A radius of 0 (a point, as in CAP's earthquake example) gives a
    # degenerate ring at the centre, which still places the alert on a map.
    return circle_polygon(lon, lat, radius_km)


def polygon_text(polygon: GeoPolygon, *, path: str) -> str:
    """A GeoJSON polygon's outer ring as a CAP ``polygon`` (latitude first; CAP has no holes)."""
    return " ".join(
        f"{format_decimal(lat, path=path)},{format_decimal(lon, path=path)}"
        for lon, lat in polygon.coordinates[0]
    )
