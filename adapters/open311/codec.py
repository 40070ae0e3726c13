"""Open311 GeoReport v2 service requests to and from the common schema.

A service request becomes an Incident: ``service_name`` is its title,
``description``, ``address`` and ``lat``/``long`` carry over, ``open`` is an
active incident and ``closed`` a closed one, ``requested_datetime`` is when it
was reported. Answers come as JSON or XML; both read into the same dicts.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml  # type: ignore[import-untyped]
import defusedxml.ElementTree  # type: ignore[import-untyped]
from pydantic import ValidationError

from adapters.errors import UpstreamBadData, UpstreamBadResponse
from schema.enums import IncidentCategory, IncidentStatus, RiskFlagStatus
from schema.geo import GeoPoint
from schema.records import IncidentCreate

__all__ = [
    "FLAG_STATUS",
    "INCIDENT_STATUS",
    "incident_from_request",
    "parse_time",
    "read_list",
]

INCIDENT_STATUS = {"open": IncidentStatus.ACTIVE, "closed": IncidentStatus.CLOSED}
"""GeoReport v2 has two statuses; an open request is an incident being handled."""

FLAG_STATUS = {"open": RiskFlagStatus.ACKNOWLEDGED, "closed": RiskFlagStatus.RESOLVED}
"""What a pushed flag's request status means for the flag's workflow."""

_LIST_ITEMS = {"services": "service", "service_requests": "request", "errors": "error"}


def read_list(body: bytes, content_type: str, *, where: str) -> list[dict[str, Any]]:
    """An Open311 answer (a JSON array or an XML list) as a list of dicts of strings and values."""
    if content_type.endswith("json") or body.lstrip()[:1] in (b"[", b"{"):
        try:
            value = json.loads(body)
        except ValueError as error:
            raise UpstreamBadResponse(f"{where}: not JSON ({error})", where=where) from error
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise UpstreamBadResponse(f"{where}: expected a JSON array of objects", where=where)
        return value
    if "xml" not in content_type and not body.lstrip().startswith(b"<?xml"):
        shown = content_type or "no content type"
        raise UpstreamBadResponse(f"{where}: expected JSON or XML, got {shown}", where=where)
    try:
        root: Element = defusedxml.ElementTree.fromstring(
            body, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except (ParseError, defusedxml.DefusedXmlException) as error:
        raise UpstreamBadResponse(f"{where}: not usable XML ({error})", where=where) from error
    item = _LIST_ITEMS.get(root.tag)
    if item is None:
        raise UpstreamBadResponse(f"{where}: unexpected XML root <{root.tag}>", where=where)
    return [
        {child.tag: (child.text or "").strip() or None for child in element}
        for element in root.findall(item)
    ]


def parse_time(value: Any, *, field: str) -> datetime | None:
    """A W3C datetime with a zone (GeoReport v2 dates), or UPSTREAM_BAD_DATA."""
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise UpstreamBadData(
            f"{field} {str(value)[:40]!r} is not a W3C datetime", field=field
        ) from None
    if parsed.tzinfo is None:
        raise UpstreamBadData(f"{field} {str(value)[:40]!r} has no time zone", field=field)
    return parsed


def _number(value: Any, *, field: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UpstreamBadData(f"{field} {str(value)[:40]!r} is not a number", field=field) from None


def incident_from_request(
    record: dict[str, Any],
    *,
    category: IncidentCategory = IncidentCategory.ACCIDENT,
) -> tuple[str, IncidentCreate, datetime | None]:
    """(service_request_id, the Incident, updated_datetime) of one service request."""
    request_id = record.get("service_request_id")
    if request_id in (None, ""):
        raise UpstreamBadData("a service request has no service_request_id", field="id")
    status_text = str(record.get("status") or "").lower()
    status = INCIDENT_STATUS.get(status_text)
    if status is None:
        raise UpstreamBadData(f"status {status_text[:20]!r} is not open or closed", field="status")
    requested = parse_time(record.get("requested_datetime"), field="requested_datetime")
    updated = parse_time(record.get("updated_datetime"), field="updated_datetime")
    lat = _number(record.get("lat"), field="lat")
    lon = _number(record.get("long"), field="long")
    title = str(record.get("service_name") or record.get("service_code") or "Open311 request")
    notes = record.get("status_notes")
    description = str(record.get("description") or "")
    if notes:
        description = f"{description}\n\n{notes}".strip()
    try:
        location = None if lat is None or lon is None else GeoPoint.at(lon, lat)
        incident = IncidentCreate(
            title=title[:200],
            category=category,
            status=status,
            description=description[:4000],
            location=location,
            address=str(record.get("address") or "")[:500],
            reported_at=requested,
        )
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"]) or "request"
        raise UpstreamBadData(f"{where}: {first['msg']}", field=where) from error
    return str(request_id), incident, updated
