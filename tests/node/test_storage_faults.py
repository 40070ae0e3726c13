"""A database that is locked, or gone, gives a stable code and ``Retry-After``, never INTERNAL.

The node is real (HTTP on a free port, its database built by the migrations); the fault is
real too: another process's SQLite write lock, or the node's PostgreSQL database dropped and
made again. Nothing is written while the fault lasts, and the node serves again by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from node.app import MIGRATIONS, create_app
from tests.conftest import DatabaseUnderTest, ServerThread, _pg_admin, migrate
from tests.node.conftest import NEIGHBOUR, ORG, STAFF_TOKEN, node_settings
from tests.node.issuer import TestIssuer
from tests.node.test_records import resource

CREATE = """mutation($input: ResourceCreateInput!) { createResource(input: $input) { id } }"""
RESOURCE = resource(name="瓶装水 bottled water", kind="drinking_water", unit="箱")
LIST = "{ resources(first: 500) { edges { node { id } } } }"

LOCK_HOLDER = """
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()
connection.execute("ROLLBACK")
"""


@contextlib.contextmanager
def sqlite_write_lock(path: str) -> Iterator[None]:
    """Another process holds the SQLite file's write lock for the duration."""
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, path],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdin is not None
    assert holder.stdout is not None
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(timeout=10)


@pytest.fixture
async def running(
    fresh_database: DatabaseUnderTest, issuer: TestIssuer
) -> AsyncIterator[tuple[str, str]]:
    await migrate(MIGRATIONS, fresh_database.url)
    settings = node_settings(fresh_database.url).model_copy(
        update={"token_issuer": issuer.issuer, "jwks_url": issuer.jwks_url}
    )
    server = ServerThread(create_app(settings)).start()
    try:
        yield server.url, fresh_database.url
    finally:
        await asyncio.to_thread(server.stop)


async def _post(http: httpx.AsyncClient, query: str, variables: dict[str, Any]) -> httpx.Response:
    return await http.post("/graphql", json={"query": query, "variables": variables})


def _codes(response: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in response.json().get("errors", [])]


async def test_a_write_lock_held_elsewhere_is_database_busy_and_heals(
    running: tuple[str, str], issuer: TestIssuer
) -> None:
    url, database_url = running
    path = make_url(database_url).database
    if make_url(database_url).get_backend_name() != "sqlite":
        pytest.skip("an SQLite file lock; PostgreSQL writers queue on rows instead")
    headers = {"Authorization": f"Bearer {STAFF_TOKEN}"}
    neighbour = {"Authorization": f"Bearer {issuer.mint(org=NEIGHBOUR, aud=ORG)}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
        assert _codes(await _post(http, CREATE, {"input": RESOURCE})) == []
        before = len((await _post(http, LIST, {})).json()["data"]["resources"]["edges"])
        with sqlite_write_lock(str(path)):
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert ready.json()["checks"]["database_writable"] is False
            # A write, and a neighbour's read (what it is shown is audited before it answers).
            write, audited = await asyncio.gather(
                _post(http, CREATE, {"input": RESOURCE}),
                http.post("/graphql", json={"query": LIST}, headers=neighbour),
            )
            for response in (write, audited):
                assert response.status_code == 200
                assert _codes(response) == ["DATABASE_BUSY"], response.text
                assert response.json()["errors"][0]["extensions"]["retryAfter"] == 2
                assert response.headers["Retry-After"] == "2"
                assert response.json()["data"] is None
            # The owner's own staff read without an audit row: readers never wait for writers.
            own = await _post(http, LIST, {})
            assert len(own.json()["data"]["resources"]["edges"]) == before
        assert (await http.get("/readyz")).status_code == 200
        created = await _post(http, CREATE, {"input": RESOURCE})
        assert _codes(created) == [], created.text
        after = len((await _post(http, LIST, {})).json()["data"]["resources"]["edges"])
        assert after == before + 1  # the refused write left nothing behind


async def test_a_lost_postgresql_database_is_unavailable_and_heals(
    running: tuple[str, str],
) -> None:
    url, database_url = running
    parsed = make_url(database_url)
    if parsed.get_backend_name() != "postgresql":
        pytest.skip("drops and re-creates a PostgreSQL database")
    name = parsed.database
    headers = {"Authorization": f"Bearer {STAFF_TOKEN}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as http:
        assert _codes(await _post(http, LIST, {})) == []
        await _pg_admin(f'DROP DATABASE "{name}" WITH (FORCE)')
        response = await _post(http, CREATE, {"input": RESOURCE})
        assert _codes(response) == ["DATABASE_UNAVAILABLE"], response.text
        assert response.headers["Retry-After"] == "2"
        ready = await http.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] is False
        # the database comes back (empty, migrated again): the node uses it without a restart
        await _pg_admin(f'CREATE DATABASE "{name}"')
        await migrate(MIGRATIONS, database_url)
        assert (await http.get("/readyz")).status_code == 200
        assert _codes(await _post(http, CREATE, {"input": RESOURCE})) == []
        count = len((await _post(http, LIST, {})).json()["data"]["resources"]["edges"])
        assert count == 1
