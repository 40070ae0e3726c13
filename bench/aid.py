"""Mutual aid: how fast a provider hears of a request, and how commits hold up under contention.

Run: ``.venv/bin/python bench/aid.py`` (no options; about a minute). ``LINLI_BENCH_PG`` (a
``postgresql+asyncpg://`` URL of a server where it may create a database) adds part (b)
on PostgreSQL.

(a) Request -> provider notified. A hub (``linli hub serve``) and two community nodes
(``linli node serve``), SQLite each, run as child processes with their default timing
settings. Community B follows ``aidEvents`` over graphql-transport-ws with its own token.
Community A raises ``REQUESTS`` aid requests addressed to B (``createAidRequest`` at its
node), one every ``INTERVAL_S``. Lag: from just before the create call to B's subscriber
receiving the request's ``aid.request`` event; the step crosses A's outbox, the hub's
inbox transaction and its event log. Floor, measured in the same run: the create call's
own round trip at A's node plus a bare round trip to the hub's ``/healthz``.

(b) 50 concurrent commits on 10 units, in one node database built by the migrations:
50 offered requests for 1 unit each against one resource with 10 available, and all
50 accepts applied at once, each in its own transaction as the node applies them (lock
the case, reserve with one conditional UPDATE, record the commit, its outbox row and the
disclosure's audit row). Reports the units committed (never above 10) and commits per
second, against a plain single-row update in the same database: 50 concurrent
``UPDATE resources SET available = available - 1 WHERE id = ? AND available >= 1``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import sqlalchemy as sa
from _harness import (
    BIN,
    free_port,
    load_line,
    migrate_hub,
    p50,
    p99,
    register_clients,
    run_bench,
    scratch_folder,
    spawn,
    stop_all,
    token,
    wait_ready,
    write_sources_file,
)
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from node.aid import service
from node.aid.service import AidParty
from node.app import MIGRATIONS as NODE_MIGRATIONS
from node.tables import AID, AUDIT_LOG, FLAGS, TABLES
from policies.caller import Caller
from schema.aid import AidStep, AidStepKind
from schema.enums import AidRequestStatus, OrgKind
from schema.records.resource import ResourceCreate
from schema.runtime.db import Database, upgrade
from schema.scopes import Scope
from schema.storage import utcnow
from schema.store.service import create_record
from schema.store.specs import bind_specs

DISTRICT = "110105"
A = "110105001001"
B = "110105002001"
COMMUNITY_SCOPES = "aid:request aid:respond records:write risk:flag"
REQUESTS = 40
WARMUP = 4
INTERVAL_S = 0.1
FLOOR_SAMPLES = 40
SEEN_TIMEOUT_S = 20.0
CONTENDERS = 50
UNITS = 10

CREATE = """mutation ($i: AidRequestCreateInput!) { createAidRequest(input: $i) { id } }"""
EVENTS = """subscription { aidEvents { seq type requestId } }"""


# --- (a) request -> provider's subscriber ------------------------------------------------


@dataclass
class District:
    hub_url: str
    nodes: dict[str, str]
    staff_a: str
    subscriber_b: str


async def start_district(http: aiohttp.ClientSession, folder: Path) -> District:
    hub_db = f"sqlite+aiosqlite:///{folder}/hub.db"
    await migrate_hub(hub_db)
    secrets = await register_clients(
        hub_db, [(org, OrgKind.COMMUNITY, COMMUNITY_SCOPES) for org in (A, B)], DISTRICT
    )
    hub_port = free_port()
    hub_url = f"http://127.0.0.1:{hub_port}"
    base_env = {**os.environ, "LINLI_LOG_LEVEL": "WARNING", "LINLI_DISTRICT": DISTRICT}
    ports = {org: free_port() for org in (A, B)}
    urls = {org: f"http://127.0.0.1:{port}" for org, port in ports.items()}
    processes = []
    for org in (A, B):
        client_id, secret = secrets[org]
        env = {
            **base_env,
            "LINLI_PORT": str(ports[org]),
            "LINLI_DATABASE_URL": f"sqlite+aiosqlite:///{folder}/node-{org}.db",
            "LINLI_ORG_CODE": org,
            "LINLI_TOKEN_ISSUER": hub_url,
            "LINLI_JWKS_URL": f"{hub_url}/.well-known/jwks.json",
            "LINLI_HUB_URL": hub_url,
            "LINLI_HUB_CLIENT_ID": client_id,
            "LINLI_HUB_CLIENT_SECRET": secret,
            "LINLI_NEIGHBOURS": json.dumps([o for o in (A, B) if o != org]),
        }
        args = [str(BIN / "linli"), "node", "serve"]
        processes.append((org, urls[org], spawn(args, log=folder / f"{org}.log", env=env)))
    sources = write_sources_file(folder / "sources.toml", urls)
    hub_env = {
        **base_env,
        "LINLI_PORT": str(hub_port),
        "LINLI_DATABASE_URL": hub_db,
        "LINLI_ISSUER": hub_url,
        "LINLI_SOURCES_FILE": str(sources),
    }
    hub = spawn([str(BIN / "linli"), "hub", "serve"], log=folder / "hub.log", env=hub_env)
    await wait_ready(http, hub_url, hub, "hub", timeout_s=60, interval_s=0.05)
    for org, url, process in processes:
        await wait_ready(http, url, process, f"node {org}", timeout_s=60, interval_s=0.05)
    staff_a = await token(http, hub_url, secrets[A], COMMUNITY_SCOPES, A)
    subscriber_b = await token(http, hub_url, secrets[B], "aid:respond", None)
    return District(hub_url, urls, staff_a, subscriber_b)


def request_input(n: int) -> dict[str, Any]:
    return {
        "requester": A,
        "provider": B,
        "resourceKind": "drinking_water",
        "quantity": 1 + n % 20,
        "unit": "箱",
        "purpose": f"#{n} 停水 water cut",
    }


async def phase_notify(http: aiohttp.ClientSession, district: District) -> dict[str, Any]:
    seen: dict[str, float] = {}
    expected: set[str] = set()
    all_seen = asyncio.Event()
    ws = await connect(
        district.hub_url.replace("http://", "ws://") + "/graphql",
        subprotocols=[Subprotocol("graphql-transport-ws")],
    )
    auth = {"Authorization": f"Bearer {district.subscriber_b}"}
    await ws.send(json.dumps({"type": "connection_init", "payload": auth}))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": EVENTS}}))

    async def listen() -> None:
        async for raw in ws:
            message = json.loads(raw)
            if message.get("type") == "next":
                event = message["payload"]["data"]["aidEvents"]
                if event["type"] == "aid.request":
                    seen.setdefault(event["requestId"], time.perf_counter())
                    if expected and expected <= seen.keys():
                        all_seen.set()

    listener = asyncio.create_task(listen())
    await asyncio.sleep(0.5)
    started: dict[str, float] = {}
    rtts: list[float] = []
    for n in range(WARMUP + REQUESTS):
        begin = time.perf_counter()
        async with http.post(
            f"{district.nodes[A]}/graphql",
            json={"query": CREATE, "variables": {"i": request_input(n)}},
            headers={"Authorization": f"Bearer {district.staff_a}"},
        ) as response:
            body = await response.json()
        rtt = (time.perf_counter() - begin) * 1000
        if body.get("errors"):
            raise RuntimeError(f"createAidRequest: {body['errors']}")
        if n >= WARMUP:
            started[body["data"]["createAidRequest"]["id"]] = begin
            rtts.append(rtt)
        await asyncio.sleep(INTERVAL_S)
    expected.update(started)
    if expected <= seen.keys():
        all_seen.set()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(SEEN_TIMEOUT_S):
            await all_seen.wait()
    listener.cancel()
    await ws.close()
    health: list[float] = []
    for _ in range(FLOOR_SAMPLES):
        begin = time.perf_counter()
        async with http.get(f"{district.hub_url}/healthz") as response:
            await response.read()
        health.append((time.perf_counter() - begin) * 1000)
    lags = [(seen[i] - t) * 1000 for i, t in started.items() if i in seen]
    floor = [r + h for r, h in zip(rtts, health, strict=False)]
    return {"lags": lags, "floor": floor, "missing": len(started) - len(lags)}


# --- (b) contention on one resource ---------------------------------------------------


SPECS = bind_specs(TABLES)
PARTY = AidParty(
    org=B, contact="值班室", aid=AID, outbox=FLAGS, resources=SPECS["Resource"].table,
    requests=SPECS["AidRequest"].table, volunteers=SPECS["Volunteer"].table, audit_log=AUDIT_LOG,
)  # fmt: skip
STAFF = Caller(org=B, org_kind=OrgKind.COMMUNITY, scopes=frozenset({Scope.AID_RESPOND}),
               client_id="bench", subject="bench")  # fmt: skip


def aid_step(request_id: str, resource_id: str, kind: AidStepKind, **fields: Any) -> AidStep:
    return AidStep(message_id=uuid.uuid4(), kind=kind, request_id=request_id, requester=A,
                   provider=B, sender=fields.pop("sender", A), resource_id=resource_id,
                   resource_kind="portable_generator", unit="台", at=utcnow(),
                   **fields)  # fmt: skip


async def resource(db: Database) -> tuple[str, str]:
    async with db.transaction() as session:
        row = await create_record(
            session, SPECS["Resource"],
            ResourceCreate(kind="portable_generator", name="发电机", quantity=UNITS,
                           available=UNITS, unit="台", address="车库"),
        )  # fmt: skip
    return row.id, f"Resource:{B}:{row.id}"


async def phase_contention(url: str) -> dict[str, Any]:
    await upgrade(NODE_MIGRATIONS, url)
    db = Database(url)
    try:
        local, resource_id = await resource(db)
        requests = []
        for _ in range(CONTENDERS):
            request_id = f"AidRequest:{A}:{uuid.uuid4().hex[:12]}"
            async with db.transaction() as session:
                await service.receive_step(
                    session, PARTY, aid_step(request_id, resource_id, AidStepKind.REQUEST,
                                             quantity=1))  # fmt: skip
                await service.take_step(session, PARTY, STAFF, request_id=request_id,
                                        kind=AidStepKind.OFFER, quantity=1, resource_id=None,
                                        note="")  # fmt: skip
            requests.append(request_id)

        async def accept(request_id: str) -> bool:
            for attempt in range(20):  # the node's caller (the hub's outbox) retries the same
                try:
                    async with db.transaction() as session:
                        await service.receive_step(
                            session, PARTY, aid_step(request_id, resource_id, AidStepKind.ACCEPT,
                                                     quantity=1))  # fmt: skip
                    return True
                except Exception:  # DATABASE_BUSY on SQLite: sent again, as the hub would
                    await asyncio.sleep(0.01 * (attempt + 1))
            return False

        begin = time.perf_counter()
        done = await asyncio.gather(*(accept(r) for r in requests))
        aid_s = time.perf_counter() - begin
        async with db.sessions() as session:
            cases = [await service.load_case(session, PARTY, r) for r in requests]
            left = (
                await session.execute(
                    sa.select(PARTY.resources.available).where(PARTY.resources.id == local)
                )
            ).scalar_one()
        committed = sum(c is not None and c.status is AidRequestStatus.COMMITTED for c in cases)
        refused = sum(c is not None and c.status is AidRequestStatus.DECLINED for c in cases)

        plain_local, _ = await resource(db)
        table = PARTY.resources

        async def plain() -> bool:
            for attempt in range(20):
                try:
                    async with db.transaction() as session:
                        result = await session.execute(
                            sa.update(table)
                            .where(table.id == plain_local, table.available >= 1)
                            .values(available=table.available - 1)
                        )
                    return bool(getattr(result, "rowcount", 0))
                except Exception:
                    await asyncio.sleep(0.01 * (attempt + 1))
            return False

        begin = time.perf_counter()
        plain_done = await asyncio.gather(*(plain() for _ in range(CONTENDERS)))
        plain_s = time.perf_counter() - begin
    finally:
        await db.dispose()
    return {
        "applied": sum(done),
        "committed": committed,
        "refused": refused,
        "left": left,
        "aid_per_s": CONTENDERS / aid_s,
        "plain_per_s": CONTENDERS / plain_s,
        "plain_taken": sum(plain_done),
    }


async def pg_admin(url: str, statement: str) -> None:
    """Run one statement on the PostgreSQL server of ``url``."""
    connection = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def report_contention(backend: str, result: dict[str, Any]) -> None:
    print(f"\n(b) {CONTENDERS} concurrent commits on {UNITS} units, {backend}")
    print(f"  accepts applied {result['applied']}/{CONTENDERS}; committed {result['committed']}"
          f" (never above {UNITS}), refused AID_ABOVE_AVAILABLE {result['refused']},"
          f" available left {result['left']}")  # fmt: skip
    ratio = result["aid_per_s"] / result["plain_per_s"]
    print(f"  aid commit (case + reservation + outbox + audit): {result['aid_per_s']:.0f}/s;"
          f" plain single-row update: {result['plain_per_s']:.0f}/s"
          f" ({result['plain_taken']} took a unit); ratio {ratio:.2f}")  # fmt: skip
    assert result["committed"] <= UNITS
    assert result["left"] == UNITS - result["committed"]


async def run() -> None:
    started = time.monotonic()
    with scratch_folder("linli-bench-aid-") as folder:
        try:
            async with aiohttp.ClientSession() as http:
                district = await start_district(http, folder)
                notified = await phase_notify(http, district)
        finally:
            stop_all()
        lags, floor = notified["lags"], notified["floor"]
        print(f"(a) request raised at A -> B's aidEvents subscriber, {len(lags)} requests"
              f" ({notified['missing']} not seen within {SEEN_TIMEOUT_S:g} s)")  # fmt: skip
        print(f"  lag   p50 {p50(lags):7.1f} ms  p99 {p99(lags):7.1f} ms")
        print(f"  floor p50 {p50(floor):7.1f} ms  p99 {p99(floor):7.1f} ms"
              "  (create at A's node + a bare hub round trip)")  # fmt: skip
        print(f"  ratio p50 {p50(lags) / p50(floor):.1f}x")
        report_contention("SQLite", await phase_contention(f"sqlite+aiosqlite:///{folder}/b.db"))
    pg = os.environ.get("LINLI_BENCH_PG")
    if pg:
        name = f"linli_bench_aid_{uuid.uuid4().hex[:8]}"
        await pg_admin(pg, f'CREATE DATABASE "{name}"')
        try:
            url = pg.rsplit("/", 1)[0] + f"/{name}"
            report_contention("PostgreSQL", await phase_contention(url))
        finally:
            await pg_admin(pg, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print(load_line(time.monotonic() - started))


def main() -> None:
    run_bench(run())


if __name__ == "__main__":
    sys.exit(main())
