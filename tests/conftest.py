"""Shared fixtures: real databases built by the migrations, real servers on free ports."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn

from adapters.cap import parse_alert, write_alert
from schema.records import shifted
from schema.runtime.db import upgrade

REPO = Path(__file__).resolve().parents[1]
#: The CAP 1.2 specification's Appendix A messages, package data of the CAP adapter.
CAP_SAMPLES = REPO / "adapters" / "cap" / "samples"
#: Public documents only the tests read (tests/fixtures/cap/README.md names their sources).
CAP_FIXTURES = REPO / "tests" / "fixtures" / "cap"


def current_cap(body: bytes) -> bytes:
    """A CAP message with every time in it moved so that it was sent ten minutes ago.

    The specification's samples date from 2003; an alert that expires is active only
    when it is current.
    """
    alert = parse_alert(body)
    by = datetime.now(UTC) - timedelta(minutes=10) - alert.sent
    return write_alert(shifted(alert, timedelta(seconds=round(by.total_seconds()))))


PG_DSN = os.environ.get("LINLI_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
BACKENDS = [b for b in os.environ.get("LINLI_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class DatabaseUnderTest:
    backend: str
    url: str


async def _pg_admin(statement: str) -> None:
    connection = await asyncpg.connect(PG_DSN)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@asynccontextmanager
async def _empty_database(backend: str, folder: Path) -> AsyncIterator[DatabaseUnderTest]:
    if backend == "sqlite":
        # SQLite creates the database file but not its folder.
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        yield DatabaseUnderTest(backend, f"sqlite+aiosqlite:///{folder / 'linli.db'}")
        return
    name = f"linli_test_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    base = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield DatabaseUnderTest(backend, f"{base}/{name}")
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
async def fresh_database(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[DatabaseUnderTest]:
    """An empty database of the given backend, for one test."""
    async with _empty_database(request.param, tmp_path) as database:
        yield database


@pytest.fixture(scope="module", params=BACKENDS)
async def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[DatabaseUnderTest]:
    """An empty database of the given backend (module scope)."""
    backend: str = request.param
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("db") / "linli.db"
        yield DatabaseUnderTest(backend, f"sqlite+aiosqlite:///{path}")
        return
    name = f"linli_test_{uuid.uuid4().hex[:12]}"
    await _pg_admin(f'CREATE DATABASE "{name}"')
    base = PG_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield DatabaseUnderTest(backend, f"{base}/{name}")
    finally:
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class ServerThread:
    """An ASGI app served by uvicorn on a free port, in a thread with its own loop."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture
def serve() -> Iterator[Any]:
    """Start apps on free ports; they stop at the end of the test."""
    servers: list[ServerThread] = []

    def start(app: Any, port: int | None = None) -> ServerThread:
        server = ServerThread(app, port).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


class GraphQLClient:
    """A small GraphQL-over-HTTP client for tests."""

    def __init__(self, url: str, token: str | None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.AsyncClient(base_url=url, headers=headers, timeout=30.0)

    async def post(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}
        )
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = await self.post(query, variables)
        assert "errors" not in body, body["errors"]
        result: dict[str, Any] = body["data"]
        return result

    async def error_code(self, query: str, variables: dict[str, Any] | None = None) -> str:
        body = await self.post(query, variables)
        assert body.get("errors"), f"expected an error, got {body}"
        code: str = body["errors"][0]["extensions"]["code"]
        return code

    async def aclose(self) -> None:
        await self.http.aclose()


async def migrate(script_location: Path, url: str) -> None:
    await upgrade(script_location, url)
