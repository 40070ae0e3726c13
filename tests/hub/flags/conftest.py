"""A real hub over a migrated database, community and department tokens, and real receivers.

Receivers (a community node's ``/flags/updates``, department webhook endpoints)
are small Starlette apps served by uvicorn on free ports that record what
arrives and misbehave on request.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from hub.app import MIGRATIONS
from schema import SCHEMA_VERSION
from schema.enums import OrgKind
from schema.runtime.db import Database
from tests.conftest import DatabaseUnderTest, GraphQLClient, ServerThread, free_port, migrate
from tests.hub.federation.conftest import RunningHub, hub_over

COMMUNITY = "110105001001"  # 建外街道 某社区: gas leaks here go to DEPT_GAS
OTHER_COMMUNITY = "110105002001"
DEPT_GAS = "110105400003"
DEPT_ESCALATION = "110105400000"
DEPT_DEFAULT = "110105400009"
DEPT_OTHER = "110105400007"

ROUTING = f"""
[defaults]
department = "{DEPT_DEFAULT}"
ack_deadline_s = 1800
escalate_to = "{DEPT_ESCALATION}"

[[routes]]
category = "gas_leak"
area = "110105"
department = "{DEPT_OTHER}"
ack_deadline_s = 900

[[routes]]
category = "gas_leak"
area = "110105001"
department = "{DEPT_GAS}"
ack_deadline_s = 600
escalate_to = "{DEPT_ESCALATION}"
"""

FAST = {
    "event_poll_s": 1.0,
    "delivery_poll_s": 0.1,
    "delivery_retry_base_s": 0.2,
    "delivery_retry_max_s": 1.0,
    "escalation_interval_s": 0.2,
    "webhook_timeout_s": 1.0,
    "node_timeout_s": 1.0,
}


def flag_message(
    community: str = COMMUNITY,
    *,
    local: str | None = None,
    message_id: str | None = None,
    drop: tuple[str, ...] = (),
    **fields: Any,
) -> dict[str, Any]:
    """An inbox message as a node sends it: a RiskFlagPublic dump plus the envelope."""
    now = datetime.now(UTC)
    flag: dict[str, Any] = {
        "id": f"RiskFlag:{community}:{local or uuid.uuid4().hex}",
        "owner": community,
        "version": 1,
        "created_at": now.isoformat(),
        "updated_at": now.isoformat(),
        "category": "gas_leak",
        "description": "3号楼2单元闻到燃气味 Gas smell in building 3",
        "location": {"type": "Point", "coordinates": [116.4435, 39.9087]},
        "address": "建外街道某社区3号楼",
        "estimated_severity": "III",
        "evidence_links": [],
        "status": "raised",
        "transitions": [{"status": "raised", "at": now.isoformat(), "by": "staff-1", "note": ""}],
        "assigned_to": None,
        **fields,
    }
    for name in drop:
        flag.pop(name)
    return {
        "message_id": message_id or str(uuid.uuid4()),
        "kind": "flag.raised",
        "flag": flag,
        "raised_at": now.isoformat(),
        "sent_at": now.isoformat(),
    }


async def eventually(check: Callable[[], Awaitable[Any]], *, timeout_s: float = 30.0) -> Any:
    """The first truthy result of ``check``, polled until ``timeout_s`` (then fail)."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s} s (last: {result!r})")
        await asyncio.sleep(0.05)


@dataclass
class FlagsHub:
    """A running hub and what the flag tests need of it."""

    hub: RunningHub
    folder: Path
    http: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=30.0))
    clients: list[GraphQLClient] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.hub.url

    @property
    def ws_url(self) -> str:
        return self.hub.url.replace("http://", "ws://") + "/graphql"

    async def token(self, org: str, kind: OrgKind, scopes: str) -> str:
        return await self.hub.client_token(org=org, kind=kind, scopes=scopes)

    async def community_token(self, org: str = COMMUNITY, scopes: str = "risk:flag") -> str:
        return await self.token(org, OrgKind.COMMUNITY, scopes)

    async def department_token(self, org: str = DEPT_GAS, scopes: str = "risk:verify") -> str:
        return await self.token(org, OrgKind.DEPARTMENT, scopes)

    async def graphql(self, token: str) -> GraphQLClient:
        client = GraphQLClient(self.url, token)
        self.clients.append(client)
        return client

    async def inbox(self, token: str, message: Any) -> httpx.Response:
        return await self.http.post(
            f"{self.url}/flags/inbox", json=message, headers={"Authorization": f"Bearer {token}"}
        )

    async def raise_flag(self, token: str, **kwargs: Any) -> str:
        message = flag_message(**kwargs)
        response = await self.inbox(token, message)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "accepted"
        flag_id: str = response.json()["flag_id"]
        return flag_id

    async def count(self, table: str) -> int:
        db = Database(self.hub.db_url)
        try:
            async with db.sessions() as session:
                result = await session.execute(sa.text(f"SELECT count(*) FROM {table}"))
                return int(result.scalar_one())
        finally:
            await db.dispose()

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()
        await self.http.aclose()
        await self.hub.stop()


@pytest.fixture
async def start_flags_hub(
    fresh_database: DatabaseUnderTest, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[FlagsHub]]]:
    """Start a hub with the test routing rules over a freshly migrated database."""
    await migrate(MIGRATIONS, fresh_database.url)
    routing = tmp_path / "routing.toml"
    routing.write_text(ROUTING, "utf-8")
    hubs: list[FlagsHub] = []

    async def start(sources: dict[str, str] | None = None, **overrides: Any) -> FlagsHub:
        settings = {**FAST, "routing_file": routing, **overrides}
        hub = await hub_over(fresh_database.url, tmp_path, sources or {}, **settings)
        flags_hub = FlagsHub(hub, tmp_path)
        hubs.append(flags_hub)
        return flags_hub

    yield start
    for hub in hubs:
        await hub.close()


# --- receivers -----------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP endpoint that records requests; ``script`` says how to answer each, in turn.

    Script entries: ``ok``, ``http500``, ``http503`` or ``slow`` (sleep ``slow_s``, then 200).
    After the script, every request gets ``ok``.
    """

    source_id: str = COMMUNITY
    script: list[str] = field(default_factory=list)
    slow_s: float = 2.0
    received: list[Received] = field(default_factory=list)  # accepted (2xx) only
    refused: list[Received] = field(default_factory=list)
    calls: int = 0

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/linli-node", self.well_known),
                Route("/flags/updates", self.record, methods=["POST"]),
                Route("/hook", self.record, methods=["POST"]),
            ]
        )

    async def well_known(self, request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "id": self.source_id,
                "kind": "community",
                "name": f"社区 {self.source_id}",
                "division_code": self.source_id,
                "bbox": None,
                "schema_version": SCHEMA_VERSION,
                "capabilities": ["riskFlags"],
            }
        )

    async def record(self, request: Request) -> Response:
        entry = Received({k.lower(): v for k, v in request.headers.items()}, await request.body())
        behaviour = self.script[self.calls] if self.calls < len(self.script) else "ok"
        self.calls += 1
        if behaviour == "slow":
            await asyncio.sleep(self.slow_s)
            self.refused.append(entry)  # the hub gave up waiting before this answer
            return JSONResponse({"status": "late"})
        if behaviour.startswith("http"):
            self.refused.append(entry)
            return Response(b"unavailable", status_code=int(behaviour[4:]))
        self.received.append(entry)
        return JSONResponse({"status": "ok"})


@pytest.fixture
def receivers() -> Any:
    """Start receivers (optionally on a given port); stopped after the test."""
    started: list[ServerThread] = []

    def start(receiver: Receiver, port: int | None = None) -> str:
        server = ServerThread(receiver.app(), port).start()
        started.append(server)
        return server.url

    yield start
    for server in started:
        server.stop()


# --- graphql-transport-ws --------------------------------------------------------

EVENTS = """subscription ($after: Int) { flagEvents(after: $after) {
  seq type flagId status community assignedTo previousAssignee at timeline { hop at } } }"""


class Subscriber:
    """A graphql-transport-ws client of ``flagEvents``."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    @classmethod
    async def open(cls, url: str, token: str | None) -> Subscriber:
        ws = await connect(url, subprotocols=[Subprotocol("graphql-transport-ws")])
        payload = {"Authorization": f"Bearer {token}"} if token else {}
        await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
        return cls(ws)

    async def ack(self) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), 10))
        return message

    async def subscribe(self, after: int | None = None, op_id: str = "1") -> None:
        await self.ws.send(
            json.dumps(
                {
                    "id": op_id,
                    "type": "subscribe",
                    "payload": {"query": EVENTS, "variables": {"after": after}},
                }
            )
        )

    async def message(self, timeout_s: float = 30.0) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout_s))
        return message

    async def event(self, timeout_s: float = 30.0) -> dict[str, Any]:
        message = await self.message(timeout_s)
        assert message["type"] == "next", message
        assert "errors" not in message["payload"], message
        event: dict[str, Any] = message["payload"]["data"]["flagEvents"]
        return event

    async def events(self, count: int, timeout_s: float = 30.0) -> list[dict[str, Any]]:
        return [await self.event(timeout_s) for _ in range(count)]

    async def nothing_more(self, wait_s: float = 1.5) -> None:
        try:
            message = await asyncio.wait_for(self.ws.recv(), wait_s)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected message {message!r}")

    async def close(self) -> None:
        await self.ws.close()


__all__ = [
    "COMMUNITY",
    "DEPT_DEFAULT",
    "DEPT_ESCALATION",
    "DEPT_GAS",
    "DEPT_OTHER",
    "OTHER_COMMUNITY",
    "FlagsHub",
    "Receiver",
    "Subscriber",
    "eventually",
    "flag_message",
    "free_port",
]
