"""HTTP pieces of the node protocol every service mounts: health, readiness, metrics, limits."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schema.errors import InvalidInput

__all__ = [
    "UNMATCHED_ROUTE",
    "BodyLimitMiddleware",
    "Metrics",
    "error_body",
    "health_router",
    "json_body",
    "route_label",
]


async def json_body(request: Request) -> Any:
    """The request's body parsed as JSON; ``InvalidInput`` (``INVALID_JSON``) if it is not."""
    try:
        return json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidInput("the body is not JSON", code="INVALID_JSON", field="(body)") from exc


def error_body(code: str, message: str, details: Mapping[str, Any] | None = None) -> bytes:
    """A GraphQL-shaped error document, so GraphQL clients can read it too."""
    extensions = {**(details or {}), "code": code}
    return json.dumps(
        {"errors": [{"message": message, "extensions": extensions}]}, ensure_ascii=False
    ).encode()


class BodyLimitMiddleware:
    """Refuse request bodies over ``limit`` bytes with 413 ``BODY_TOO_LARGE``, before parsing."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.limit:
                await self._refuse(send)
                return
            # The server (h11, httptools) never passes more than the declared length.
            await self.app(scope, receive, send)
            return
        # No declared length (chunked): read the body up to the limit before the app sees it.
        messages: list[Message] = []
        received = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            received += len(message.get("body", b""))
            if received > self.limit:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        body = error_body("BODY_TOO_LARGE", f"request body is over the limit of {self.limit} bytes")
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


UNMATCHED_ROUTE = "(unmatched)"
"""The path label every request shares that no route answered: labels stay bounded."""


def route_label(scope: Scope) -> str:
    """The template of the route that answered (``/alerts/{alert_id}.xml``), never the raw path."""
    # The router records the matched route in the scope it was given, which is this one.
    template = getattr(scope.get("route"), "path", None)
    return template if isinstance(template, str) else UNMATCHED_ROUTE


class Metrics:
    """The Prometheus metrics of one service (its own registry, so tests can run many)."""

    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "linli_http_requests_total",
            "HTTP requests by route template and status",
            ["service", "path", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "linli_http_request_seconds",
            "HTTP request latency",
            ["service", "path"],
            registry=self.registry,
        )
        self.service = service

    def middleware(self, app: ASGIApp) -> ASGIApp:
        """Wrap ``app`` so every HTTP request is counted and timed."""

        async def measured(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            start = time.perf_counter()
            status = 500

            async def capture(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await app(scope, receive, capture)
            finally:
                path = route_label(scope)
                self.requests.labels(self.service, path, str(status)).inc()
                self.latency.labels(self.service, path).observe(time.perf_counter() - start)

        return measured

    def render(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


def health_router(ready: Callable[[], Awaitable[dict[str, bool]]], metrics: Metrics) -> APIRouter:
    """``/healthz`` (the process answers), ``/readyz`` (every check passes), ``/metrics``."""
    router = APIRouter()

    @router.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", include_in_schema=False)
    async def readyz(response: Response) -> dict[str, object]:
        checks = await ready()
        ok = all(checks.values())
        response.status_code = 200 if ok else 503
        return {"status": "ok" if ok else "unavailable", "checks": checks}

    @router.get("/metrics", include_in_schema=False)
    async def metrics_endpoint() -> Response:
        return metrics.render()

    return router
