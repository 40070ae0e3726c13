"""A fake Open311 GeoReport v2 server, written from the public specification.

It keeps service requests in memory and answers the spec's endpoints in JSON
and XML: ``GET services.{fmt}``, ``GET requests.{fmt}`` (``start_date``,
``end_date``, ``status``, ``service_code``; newest first, at most
``page_limit``), ``GET requests/{id}.{fmt}``, ``POST requests.{fmt}``
(``api_key`` required; answers a ``service_request_id`` or, in token mode, a
``token``) and ``GET tokens/{token}.{fmt}``. Errors are
``[{"code": ..., "description": ...}]``. ``fault`` makes it misbehave the ways
real servers do (500, an HTML error page, a malformed date).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import parse_qsl
from xml.etree.ElementTree import Element, SubElement, tostring

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["FakeOpen311", "fake_open311_app"]

Fault = Literal["500", "html", "bad_date"] | None


@dataclass
class FakeOpen311:
    """The server's state: services, requests, pending tokens, and how it misbehaves."""

    api_key: str = "fake-open311-key"
    services: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {
                "service_code": "001",
                "service_name": "道路塌陷 Road collapse",
                "description": "A hole or collapse in a road",
                "metadata": False,
                "type": "realtime",
                "keywords": "road,collapse",
                "group": "streets",
            },
            {
                "service_code": "002",
                "service_name": "燃气异味 Gas smell",
                "description": "A smell of gas outdoors",
                "metadata": False,
                "type": "realtime",
                "keywords": "gas",
                "group": "utilities",
            },
        ]
    )
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, str | None] = field(default_factory=dict)
    token_mode: bool = False
    """POST answers a token; the id appears at ``tokens/{token}`` after ``token_delay`` reads."""
    token_delay: int = 1
    page_limit: int = 1000
    fault: Fault = None
    calls: list[str] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1001))
    _token_reads: dict[str, int] = field(default_factory=dict)

    def add_request(self, **values: Any) -> dict[str, Any]:
        """Put a service request in the store (as if a resident had filed it)."""
        request_id = values.pop("service_request_id", None) or str(next(self._ids))
        record: dict[str, Any] = {
            "service_request_id": request_id,
            "status": "open",
            "status_notes": None,
            "service_name": self.services[0]["service_name"],
            "service_code": self.services[0]["service_code"],
            "description": "",
            "agency_responsible": "区城管委 District City Management",
            "service_notice": None,
            "requested_datetime": "2026-11-28T08:00:00+08:00",
            "updated_datetime": "2026-11-28T08:00:00+08:00",
            "expected_datetime": None,
            "address": "",
            "address_id": None,
            "zipcode": None,
            "lat": None,
            "long": None,
            "media_url": None,
            **values,
        }
        self.requests[request_id] = record
        return record

    def set_status(self, request_id: str, status: str, notes: str, at: datetime) -> None:
        """The department moves a request (what the adapter reads back)."""
        record = self.requests[request_id]
        record.update(status=status, status_notes=notes, updated_datetime=at.isoformat())


def _xml(root_name: str, item_name: str, items: list[dict[str, Any]]) -> bytes:
    root = Element(root_name)
    for item in items:
        element = SubElement(root, item_name)
        for key, value in item.items():
            child = SubElement(element, key)
            child.text = (
                ""
                if value is None
                else str(value).lower()
                if isinstance(value, bool)
                else str(value)
            )
    return b'<?xml version="1.0" encoding="utf-8"?>' + tostring(root, encoding="unicode").encode()


_XML_NAMES = {
    "services": ("services", "service"),
    "requests": ("service_requests", "request"),
    "tokens": ("service_requests", "request"),
    "errors": ("errors", "error"),
}


def _answer(kind: str, fmt: str, items: list[dict[str, Any]], status: int = 200) -> Response:
    if fmt == "xml":
        root, item = _XML_NAMES[kind]
        return Response(_xml(root, item, items), status_code=status, media_type="text/xml")
    return JSONResponse(items, status_code=status)


def _error(fmt: str, status: int, description: str) -> Response:
    return _answer("errors", fmt, [{"code": status, "description": description}], status)


def _parse_time(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def fake_open311_app(state: FakeOpen311) -> Starlette:
    """The fake server as an ASGI app (mount it at the endpoint's base URL)."""

    def fault(fmt: str) -> Response | None:
        if state.fault == "500":
            return _error(fmt, 500, "internal server error")
        if state.fault == "html":
            return Response(
                "<html><body><h1>502 Bad Gateway</h1></body></html>", media_type="text/html"
            )
        return None

    def split(name: str) -> tuple[str, str]:
        stem, _, fmt = name.rpartition(".")
        return (stem, fmt) if fmt in ("json", "xml") else (name, "")

    async def services(request: Request) -> Response:
        _, fmt = split(request.path_params["name"])
        state.calls.append(f"GET services.{fmt}")
        return fault(fmt) or _answer("services", fmt, state.services)

    def shown(record: dict[str, Any]) -> dict[str, Any]:
        if state.fault == "bad_date":
            return {**record, "updated_datetime": "28/11/2026 8am"}
        return record

    async def requests_collection(request: Request) -> Response:
        _, fmt = split(request.path_params["name"])
        if not fmt:
            return _error("json", 404, "unknown format")
        if request.method == "POST":
            return await post_request(request, fmt)
        state.calls.append(f"GET requests.{fmt}?{request.url.query}")
        failed = fault(fmt)
        if failed:
            return failed
        query = request.query_params
        bounds: dict[str, datetime | None] = {}
        for name in ("start_date", "end_date"):
            text = query.get(name)
            bounds[name] = None if text is None else _parse_time(text)
            if text is not None and bounds[name] is None:
                return _error(fmt, 400, f"{name} is not a W3C datetime")
        end = bounds["end_date"]
        start = bounds["start_date"] or ((end or datetime.now().astimezone()) - timedelta(days=90))
        statuses = set(query.get("status", "").split(",")) - {""}
        codes = set(query.get("service_code", "").split(",")) - {""}
        found = []
        for record in state.requests.values():
            requested = _parse_time(record["requested_datetime"])
            assert requested is not None
            if requested < start or (end is not None and requested > end):
                continue
            if statuses and record["status"] not in statuses:
                continue
            if codes and record["service_code"] not in codes:
                continue
            found.append(record)
        found.sort(key=lambda r: r["requested_datetime"], reverse=True)
        return _answer("requests", fmt, [shown(r) for r in found[: state.page_limit]])

    async def post_request(request: Request, fmt: str) -> Response:
        # application/x-www-form-urlencoded, read without python-multipart.
        pairs = parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True)
        form = dict(pairs)
        state.calls.append(f"POST requests.{fmt}")
        failed = fault(fmt)
        if failed:
            return failed
        if form.get("api_key") != state.api_key:
            return _error(fmt, 403, "api_key is missing or not valid")
        code = str(form.get("service_code", ""))
        service = next((s for s in state.services if s["service_code"] == code), None)
        if service is None:
            return _error(fmt, 400, f"service_code {code!r} is not a service")
        lat, lon = form.get("lat"), form.get("long")
        if not (form.get("address_string") or (lat and lon) or form.get("address_id")):
            return _error(
                fmt, 400, "a location (lat/long, address_string or address_id) is required"
            )
        now = datetime.now().astimezone().replace(microsecond=0).isoformat()
        values = {
            "service_code": code,
            "service_name": service["service_name"],
            "description": str(form.get("description", "")),
            "lat": float(str(lat)) if lat else None,
            "long": float(str(lon)) if lon else None,
            "address": str(form.get("address_string", "")),
            "requested_datetime": now,
            "updated_datetime": now,
        }
        if state.token_mode:
            token = f"tok-{len(state.tokens) + 1}"
            record = state.add_request(**values)
            state.tokens[token] = record["service_request_id"]
            state._token_reads[token] = 0
            return _answer("requests", fmt, [{"token": token, "service_notice": "queued"}])
        record = state.add_request(**values)
        return _answer(
            "requests",
            fmt,
            [{"service_request_id": record["service_request_id"], "service_notice": None}],
        )

    async def one_request(request: Request) -> Response:
        request_id, fmt = split(request.path_params["name"])
        state.calls.append(f"GET requests/{request_id}.{fmt}")
        failed = fault(fmt)
        if failed:
            return failed
        record = state.requests.get(request_id)
        if record is None:
            return _error(fmt, 404, f"no service request {request_id}")
        return _answer("requests", fmt, [shown(record)])

    async def token(request: Request) -> Response:
        token_id, fmt = split(request.path_params["name"])
        state.calls.append(f"GET tokens/{token_id}.{fmt}")
        failed = fault(fmt)
        if failed:
            return failed
        if token_id not in state.tokens:
            return _error(fmt, 404, f"no token {token_id}")
        state._token_reads[token_id] += 1
        ready = state._token_reads[token_id] > state.token_delay
        request_id = state.tokens[token_id] if ready else None
        return _answer("tokens", fmt, [{"service_request_id": request_id, "token": token_id}])

    return Starlette(
        routes=[
            Route("/services.{name}", services),
            Route("/requests.{name}", requests_collection, methods=["GET", "POST"]),
            Route("/requests/{name}", one_request),
            Route("/tokens/{name}", token),
        ]
    )
