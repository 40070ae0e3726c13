"""Two hub replica processes on one PostgreSQL database: events cross over LISTEN/NOTIFY.

Each replica is a ``linli hub serve`` process. ``LINLI_EVENT_POLL_S`` is an hour,
so a subscriber on replica B can only hear of an event raised at replica A
through the notification B's listener receives (or the catch-up it does after
reconnecting), never through a timed re-read of the event table.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest

from hub.app import MIGRATIONS
from hub.auth.service import create_client
from hub.flags.events import LISTENER_NAME
from schema.enums import OrgKind
from schema.runtime.db import Database
from tests.conftest import PG_DSN, DatabaseUnderTest, free_port, migrate
from tests.hub.flags.conftest import (
    COMMUNITY,
    DEPT_GAS,
    ROUTING,
    Subscriber,
    eventually,
    flag_message,
)
from tests.processes import ServiceProcess

DISTRICT = "110105"


@dataclass
class Replicas:
    """Replicas A and B of one hub, and a community's and a department's clients."""

    a: ServiceProcess
    b: ServiceProcess
    database: str  # the PostgreSQL database's name
    community: tuple[str, str]
    department: tuple[str, str]

    async def token(self, replica: ServiceProcess, client: tuple[str, str]) -> str:
        async with httpx.AsyncClient(timeout=30.0) as http:
            response = await http.post(
                f"{replica.url}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=client,
            )
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token

    async def raise_at(self, replica: ServiceProcess, token: str) -> str:
        async with httpx.AsyncClient(timeout=30.0) as http:
            response = await http.post(
                f"{replica.url}/flags/inbox",
                json=flag_message(),
                headers={"Authorization": f"Bearer {token}"},
            )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "accepted"
        flag_id: str = response.json()["flag_id"]
        return flag_id

    async def subscribe_at(self, replica: ServiceProcess) -> Subscriber:
        token = await self.token(replica, self.department)
        ws_url = replica.url.replace("http://", "ws://") + "/graphql"
        subscriber = await Subscriber.open(ws_url, token)
        assert (await subscriber.ack())["type"] == "connection_ack"
        await subscriber.subscribe()
        await subscriber.nothing_more(wait_s=0.5)  # subscribed, and nothing to replay
        return subscriber

    async def listeners(self) -> set[int]:
        """Backend pids of the replicas' listening connections."""
        connection = await asyncpg.connect(PG_DSN)
        try:
            rows = await connection.fetch(
                "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = $2",
                LISTENER_NAME,
                self.database,
            )
        finally:
            await connection.close()
        return {row["pid"] for row in rows}

    async def cut_listeners(self) -> int:
        """``pg_terminate_backend`` every listening connection; how many were cut."""
        connection = await asyncpg.connect(PG_DSN)
        try:
            rows = await connection.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = $1 AND datname = $2",
                LISTENER_NAME,
                self.database,
            )
        finally:
            await connection.close()
        return sum(1 for row in rows if row[0])


async def _client(url: str, org: str, kind: OrgKind, scopes: str) -> tuple[str, str]:
    db = Database(url)
    try:
        async with db.transaction() as session:
            client, secret = await create_client(
                session, org=org, org_kind=kind, district=DISTRICT, scopes=scopes
            )
    finally:
        await db.dispose()
    return client.client_id, secret


@pytest.fixture
async def replicas(fresh_database: DatabaseUnderTest, tmp_path: Path) -> AsyncIterator[Replicas]:
    if fresh_database.backend != "postgresql":
        pytest.skip(
            "replicas share PostgreSQL and hear each other through LISTEN/NOTIFY; "
            "on SQLite one hub process serves and wakes its subscribers in-process"
        )
    await migrate(MIGRATIONS, fresh_database.url)
    routing = tmp_path / "routing.toml"
    routing.write_text(ROUTING, "utf-8")
    port_a, port_b = free_port(), free_port()
    env = {
        "LINLI_DATABASE_URL": fresh_database.url,
        "LINLI_ISSUER": f"http://127.0.0.1:{port_a}",  # one district, one issuer
        "LINLI_ROUTING_FILE": str(routing),
        "LINLI_EVENT_POLL_S": "3600",  # no timed re-read could deliver within a test
        "LINLI_LOG_LEVEL": "INFO",
    }
    args = ["hub", "serve", "--no-migrate"]
    a = ServiceProcess("replica A", args, env, port_a, tmp_path / "replica-a.log")
    b = ServiceProcess("replica B", args, env, port_b, tmp_path / "replica-b.log")
    try:
        await a.start()
        await b.start()
        yield Replicas(
            a,
            b,
            database=fresh_database.url.rsplit("/", 1)[1],
            community=await _client(fresh_database.url, COMMUNITY, OrgKind.COMMUNITY, "risk:flag"),
            department=await _client(
                fresh_database.url, DEPT_GAS, OrgKind.DEPARTMENT, "risk:verify"
            ),
        )
    finally:
        await asyncio.to_thread(b.stop)
        await asyncio.to_thread(a.stop)


async def test_a_subscriber_on_one_replica_hears_a_flag_raised_at_the_other(
    replicas: Replicas,
) -> None:
    subscriber = await replicas.subscribe_at(replicas.b)
    try:
        community = await replicas.token(replicas.a, replicas.community)
        for _ in range(3):
            flag_id = await replicas.raise_at(replicas.a, community)
            event = await subscriber.event(timeout_s=30)
            assert (event["type"], event["flagId"], event["assignedTo"]) == (
                "flag.routed",
                flag_id,
                DEPT_GAS,
            )
        await subscriber.nothing_more(wait_s=0.5)  # each event once
    finally:
        await subscriber.close()


async def test_the_listener_reconnects_by_itself_and_nothing_is_missed(
    replicas: Replicas,
) -> None:
    subscriber = await replicas.subscribe_at(replicas.b)
    try:
        community = await replicas.token(replicas.a, replicas.community)
        first = await replicas.raise_at(replicas.a, community)
        assert (await subscriber.event(timeout_s=30))["flagId"] == first

        before = await replicas.listeners()
        assert len(before) == 2  # one listening connection per replica
        assert await replicas.cut_listeners() == 2
        # Raised at once: B may not be listening yet; its catch-up finds it.
        during = await replicas.raise_at(replicas.a, community)
        assert (await subscriber.event(timeout_s=30))["flagId"] == during

        async def listening_again() -> set[int] | None:
            now = await replicas.listeners()
            return now if len(now) == 2 and not now & before else None

        await eventually(listening_again, timeout_s=15)
        after = [await replicas.raise_at(replicas.a, community) for _ in range(2)]
        assert [(await subscriber.event(timeout_s=30))["flagId"] for _ in after] == after
        await subscriber.nothing_more(wait_s=0.5)
    finally:
        await subscriber.close()
    assert "listening for flag events again" in replicas.b.tail(20_000)
