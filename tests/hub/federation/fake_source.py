"""A source that speaks the node protocol from memory, and misbehaves on request.

Real HTTP, so the hub's transport, timeouts and limits are what is tested;
the behaviours are the faults a district sees in a flood: down, hanging,
slow, garbage, errors, huge answers, wrong types, redirects.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from schema import SCHEMA_VERSION

EPOCH = datetime(2026, 7, 1, tzinfo=UTC)


@dataclass
class FakeSource:
    source_id: str
    count: int = 5
    behaviour: str = "ok"  # ok | hang | slow | queue | invalid_json | graphql_error | huge | wrong_type | unordered | redirect | http500
    schema_version: str = SCHEMA_VERSION
    bbox: dict[str, float] | None = None
    delay_s: float = 0.3
    hang_s: float = 3.0  # longer than the hub's timeout in the tests, short for teardown
    calls: int = 0
    tokens: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)
    described: dict[str, Any] | None = None  # serve this well-known document instead
    most_in_flight: int = 0  # the most GraphQL requests it held at once
    _in_flight: int = 0

    @property
    def in_flight(self) -> int:
        """The GraphQL requests it holds now (abandoned ones included, until it finishes them)."""
        return self._in_flight

    _worker: asyncio.Lock = field(default_factory=asyncio.Lock)  # "queue": one at a time

    def __post_init__(self) -> None:
        if not self.records:
            self.records = [self.record(i) for i in range(self.count)]

    def record(self, i: int, created: datetime | None = None) -> dict[str, Any]:
        created = created or EPOCH + timedelta(minutes=i * 7 + hash(self.source_id) % 5)
        return {
            "id": f"Resource:{self.source_id}:r{i:05d}",
            "owner": self.source_id,
            "version": 1,
            "createdAt": created.isoformat(),
            "updatedAt": created.isoformat(),
            "kind": "drinking_water",
            "name": f"{self.source_id} 饮用水 {i}",
            "quantity": 10 + i,
            "available": 10 + i,
            "unit": "箱",
            "status": "AVAILABLE",
            "availableBand": None,
            "location": {"type": "Point", "coordinates": [116.44, 39.9]},
        }

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/linli-node", self.well_known),
                Route("/graphql", self.graphql, methods=["POST"]),
            ]
        )

    async def well_known(self, request: Request) -> JSONResponse:
        if self.described is not None:
            return JSONResponse(self.described)
        return JSONResponse(
            {
                "id": self.source_id,
                "kind": "community",
                "name": f"社区 {self.source_id}",
                "division_code": self.source_id,
                "bbox": self.bbox,
                "schema_version": self.schema_version,
                "capabilities": ["resources", "shelters"],
            }
        )

    async def graphql(self, request: Request) -> Response:
        self._in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self._in_flight)
        try:
            return await self._graphql(request)
        finally:
            self._in_flight -= 1

    async def _graphql(self, request: Request) -> Response:
        self.calls += 1
        self.tokens.append(request.headers.get("authorization", ""))
        body = await request.json()
        behaviour = self.behaviour
        if behaviour == "hang":
            await asyncio.sleep(self.hang_s)
        if behaviour == "slow":
            await asyncio.sleep(self.delay_s)
        if behaviour == "queue":  # a single worker: overload makes every caller wait
            async with self._worker:
                await asyncio.sleep(self.delay_s)
        if behaviour == "invalid_json":
            return Response(b"{not json", media_type="application/json")
        if behaviour == "http500":
            return Response(b"<html>Internal Server Error</html>", status_code=500)
        if behaviour == "graphql_error":
            return JSONResponse(
                {
                    "data": None,
                    "errors": [
                        {"message": "database is on fire", "extensions": {"code": "INTERNAL"}}
                    ],
                }
            )
        if behaviour == "refuse":  # a healthy source refusing the caller's input
            return JSONResponse(
                {
                    "data": None,
                    "errors": [
                        {"message": "near.radiusKm must be in (0, 1000]",
                         "extensions": {"code": "OUT_OF_RANGE", "field": "near"}}
                    ],
                }
            )  # fmt: skip
        if behaviour == "redirect":
            return RedirectResponse("http://127.0.0.2:9/graphql", status_code=307)
        if behaviour == "huge":
            blob = "x" * (9 * 1024 * 1024)
            return Response(
                json.dumps(
                    {
                        "data": {"resources": {"edges": [], "pageInfo": {"hasNextPage": False}}},
                        "pad": blob,
                    }
                ),
                media_type="application/json",
            )
        variables = body.get("variables") or {}
        if "id" in variables:
            found = next((r for r in self.records if r["id"] == variables["id"]), None)
            return JSONResponse({"data": {"node": found and {"__typename": "Resource", **found}}})
        return JSONResponse({"data": {"resources": self.page(variables)}})

    def page(self, variables: dict[str, Any]) -> dict[str, Any]:
        descending = variables.get("order", "CREATED_DESC").endswith("DESC")
        ordered = sorted(self.records, key=lambda r: (r["createdAt"], r["id"]), reverse=descending)
        start = 0
        if variables.get("after"):
            last = json.loads(base64.b64decode(variables["after"]))
            start = next(i for i, r in enumerate(ordered) if r["id"] == last) + 1
        first = variables.get("first") or 50
        chunk = ordered[start : start + first]
        edges = []
        for record in chunk:
            node = dict(record)
            if self.behaviour == "wrong_type":
                node["id"] = node["id"].replace("Resource:", "Shelter:")
            edges.append(
                {
                    "cursor": base64.b64encode(json.dumps(record["id"]).encode()).decode(),
                    "node": node,
                }
            )
        if self.behaviour == "unordered":  # the page's records, oldest first whatever was asked
            edges.sort(key=lambda e: (e["node"]["createdAt"], e["node"]["id"]))
        return {
            "edges": edges,
            "pageInfo": {
                "hasNextPage": start + first < len(ordered),
                "endCursor": edges[-1]["cursor"] if edges else None,
            },
        }
