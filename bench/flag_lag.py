"""How long a risk flag takes from a community node to the department's subscription.

Run: ``.venv/bin/python bench/flag_lag.py`` (no options; about a minute).

A hub (``linli hub serve`` over a freshly migrated SQLite database, no routing
file, so every flag is routed to the duty desk ``LINLI_DUTY_DESK``) and three
community nodes (``linli node serve``, SQLite each) run as child processes with
their default timing settings. Every node delivers its flags to the hub with its
own OAuth client and is registered in the hub's sources file. A subscriber
follows ``flagEvents`` over graphql-transport-ws with the duty desk's token.

Phase 1, hub up: after a few warm-up flags, ``UP_FLAGS`` flags are raised, one
every ``INTERVAL_S`` (open loop), round-robin over the nodes, each with
``raiseRiskFlag`` and a staff token whose ``aud`` is that node. Lag: from just
before the raise request to the subscriber receiving the flag's first event
(``flag.routed`` to the duty desk). Floor, measured in the same run: the raise
mutation's own round trip at the node (the flag is stored, nothing can leave
sooner) plus a bare round trip to the hub's ``/healthz`` (the one more hop it
needs at least). What the floor leaves out is the node's outbox hop, the hub's
inbox transaction, and the push to the subscriber: the part the hub and the
node's delivery worker add.

Phase 2, hub down: a steady stream of flags at the same rate; the hub is killed
(SIGKILL) after ``KILL_AFTER`` of them and restarted on the same port and database
``DOWN_S`` seconds later; the stream stops once the hub is ready again. The
subscriber reconnects with ``after`` = the last sequence number it saw. Reports
flags lost, flags seen twice, and how long after the restart the backlog was
delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from _harness import (
    BIN,
    free_port,
    kill,
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
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from schema.enums import OrgKind
from schema.runtime.db import Database

DISTRICT = "110105"
DUTY_DESK = "110105400000"
NODES = ("110105001001", "110105001002", "110105002001")
COMMUNITY_SCOPES = "risk:flag records:write incidents:read"
DEPARTMENT_SCOPES = "risk:verify"
WARMUP_FLAGS = 6
UP_FLAGS = 60
INTERVAL_S = 0.1
FLOOR_SAMPLES = 40
KILL_AFTER = 5
DOWN_S = 3.0
UP_TIMEOUT_S = 20.0  # hub up: a flag not seen by then is reported as not seen
SEEN_TIMEOUT_S = 60.0  # hub restarted: the nodes' retries back off up to 30 s
READY_TIMEOUT_S = 90.0  # a loaded 2-core machine starts four servers slowly
QUIET_S = 1.5  # after the last flag is seen: time for a duplicate to show up
GOAL_P50_MS = 100.0
GOAL_P99_MS = 500.0

RAISE = "mutation ($i: RiskFlagCreateInput!) { raiseRiskFlag(input: $i) { id } }"
EVENTS = """subscription ($after: Int) { flagEvents(after: $after) {
  seq type flagId status assignedTo timeline { hop at } } }"""
OUTBOX = "{ flagOutbox(first: 0) { pending delivered failed } }"


# --- child processes ---------------------------------------------------------------


@dataclass
class Service:
    """A ``linli ... serve`` child process, restartable with the same port and settings."""

    name: str
    port: int
    args: list[str]
    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self) -> None:
        """Start the process, appending to its log."""
        self.process = spawn(
            self.args, log=self.log, append=True, stdin=subprocess.DEVNULL, env=self.env
        )

    def kill(self) -> None:
        """SIGKILL: no shutdown, in-flight requests and transactions are cut off."""
        assert self.process is not None
        kill(self.process)

    async def ready(self, http: aiohttp.ClientSession, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Until ``/readyz`` answers 200."""
        assert self.process is not None
        await wait_ready(
            http, self.url, self.process, self.name, timeout_s=timeout_s, interval_s=0.05
        )

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text("utf-8", "replace")[-chars:] if self.log.exists() else ""


# --- the district --------------------------------------------------------------------


@dataclass
class District:
    hub: Service
    nodes: dict[str, Service]  # by node id (= org code)
    hub_db_url: str
    secrets: dict[str, tuple[str, str]]  # org -> (client id, secret)
    staff: dict[str, str] = field(default_factory=dict)  # node id -> token (aud = node)
    department: str = ""  # the duty desk's token (aud = hub)

    @property
    def ws_url(self) -> str:
        return self.hub.url.replace("http://", "ws://") + "/graphql"

    def services(self) -> list[Service]:
        return [self.hub, *self.nodes.values()]


async def register_district_clients(database_url: str) -> dict[str, tuple[str, str]]:
    """One community client per node and the duty desk's client; org -> (id, secret)."""
    clients = [(org, OrgKind.COMMUNITY, COMMUNITY_SCOPES) for org in NODES]
    clients.append((DUTY_DESK, OrgKind.DEPARTMENT, DEPARTMENT_SCOPES))
    return await register_clients(database_url, clients, DISTRICT)


async def start_district(http: aiohttp.ClientSession, folder: Path) -> District:
    """Migrate the hub's database, register the clients, start the hub and the nodes."""
    hub_db_url = f"sqlite+aiosqlite:///{folder}/hub.db"
    await migrate_hub(hub_db_url)
    secrets = await register_district_clients(hub_db_url)
    hub_port = free_port()
    hub_url = f"http://127.0.0.1:{hub_port}"
    base_env = {**os.environ, "LINLI_LOG_LEVEL": "WARNING", "LINLI_DISTRICT": DISTRICT}
    nodes: dict[str, Service] = {}
    for i, org in enumerate(NODES, start=1):
        port = free_port()
        client_id, secret = secrets[org]
        env = {
            **base_env,
            "LINLI_PORT": str(port),
            "LINLI_DATABASE_URL": f"sqlite+aiosqlite:///{folder}/node-{org}.db",
            "LINLI_ORG_CODE": org,
            "LINLI_ORG_NAME": f"社区 {i} Community {i}",
            "LINLI_TOKEN_ISSUER": hub_url,
            "LINLI_JWKS_URL": f"{hub_url}/.well-known/jwks.json",
            "LINLI_HUB_URL": hub_url,
            "LINLI_HUB_CLIENT_ID": client_id,
            "LINLI_HUB_CLIENT_SECRET": secret,
        }
        args = [str(BIN / "linli"), "node", "serve"]
        nodes[org] = Service(f"node {org}", port, args, env, folder / f"node-{org}.log")
    sources = write_sources_file(
        folder / "sources.toml", {org: node.url for org, node in nodes.items()}
    )
    hub_env = {
        **base_env,
        "LINLI_PORT": str(hub_port),
        "LINLI_DATABASE_URL": hub_db_url,
        "LINLI_ISSUER": hub_url,
        "LINLI_SOURCES_FILE": str(sources),
        "LINLI_DUTY_DESK": DUTY_DESK,
    }
    # As an operator runs it: it migrates first (a no-op here), on the restart too.
    hub_args = [str(BIN / "linli"), "hub", "serve"]
    hub = Service("hub", hub_port, hub_args, hub_env, folder / "hub.log")
    district = District(hub, nodes, hub_db_url, secrets)
    for service in district.services():
        service.spawn()
    await asyncio.gather(*(s.ready(http) for s in district.services()))
    district.department = await token(http, hub_url, secrets[DUTY_DESK], DEPARTMENT_SCOPES, None)
    for org in NODES:
        district.staff[org] = await token(http, hub_url, secrets[org], COMMUNITY_SCOPES, org)
    return district


# --- raising flags -------------------------------------------------------------------


def flag_input(n: int) -> dict[str, Any]:
    return {
        "category": "gas_leak",
        "description": f"燃气味 #{n} Gas smell in building {n}",
        "location": {"coordinates": [116.4435, 39.9087]},
        "address": f"某社区{n}号楼",
        "estimatedSeverity": "III",
    }


@dataclass
class Raised:
    """One ``raiseRiskFlag`` call: when it started (both clocks), its round trip, its answer."""

    n: int
    node: str
    started: float  # perf_counter
    started_wall: float  # time.time(), to compare with the hops' timestamps
    rtt_ms: float = 0.0
    flag_id: str | None = None
    error: str | None = None


async def raise_flag(http: aiohttp.ClientSession, district: District, n: int) -> Raised:
    node = NODES[n % len(NODES)]
    raised = Raised(n, node, time.perf_counter(), time.time())
    try:
        async with http.post(
            f"{district.nodes[node].url}/graphql",
            json={"query": RAISE, "variables": {"i": flag_input(n)}},
            headers={"Authorization": f"Bearer {district.staff[node]}"},
        ) as response:
            body = await response.json()
    except (aiohttp.ClientError, ValueError) as exc:
        raised.error = f"{type(exc).__name__}: {exc}"
        return raised
    raised.rtt_ms = (time.perf_counter() - raised.started) * 1000
    if body.get("errors") or not body.get("data"):
        raised.error = str(body.get("errors"))[:300]
    else:
        raised.flag_id = body["data"]["raiseRiskFlag"]["id"]
    return raised


async def raise_stream(
    http: aiohttp.ClientSession,
    district: District,
    first_n: int,
    *,
    count: int | None = None,
    until: asyncio.Event | None = None,
    answered: asyncio.Queue[Raised] | None = None,
) -> list[Raised]:
    """Raise one flag every ``INTERVAL_S`` (not waiting for answers), ``count`` or ``until``."""
    started = time.perf_counter()
    tasks: list[asyncio.Task[Raised]] = []

    async def one(n: int) -> Raised:
        result = await raise_flag(http, district, n)
        if answered is not None:
            answered.put_nowait(result)
        return result

    i = 0
    while (count is None or i < count) and not (until is not None and until.is_set()):
        delay = started + i * INTERVAL_S - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(first_n + i)))
        i += 1
    return list(await asyncio.gather(*tasks))


# --- the subscriber ------------------------------------------------------------------


@dataclass
class Seen:
    """The first event of a flag at the subscriber (both clocks) and how often it came."""

    at: float  # perf_counter
    at_wall: float
    event: dict[str, Any]
    routed: int = 0


@dataclass
class EventLog:
    """Every event the subscriber received, over all its connections."""

    first: dict[str, Seen] = field(default_factory=dict)
    seqs: Counter[int] = field(default_factory=Counter)
    last_seq: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, event: dict[str, Any], at: float, at_wall: float) -> None:
        self.seqs[event["seq"]] += 1
        self.last_seq = max(self.last_seq, event["seq"])
        seen = self.first.setdefault(event["flagId"], Seen(at, at_wall, event))
        if event["type"] == "flag.routed":
            seen.routed += 1

    async def wait_for(self, flag_ids: list[str], timeout_s: float) -> bool:
        """Until every flag in ``flag_ids`` was seen; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while any(f not in self.first for f in flag_ids):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True


class Subscriber:
    """One graphql-transport-ws connection following ``flagEvents`` into an ``EventLog``."""

    def __init__(self, ws: ClientConnection, log: EventLog) -> None:
        self.ws = ws
        self.log = log
        self.reading = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, token: str, after: int, log: EventLog) -> Subscriber:
        ws = await connect(url, subprotocols=[Subprotocol("graphql-transport-ws")], open_timeout=10)
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await ws.send(json.dumps(init))
        ack = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if ack.get("type") != "connection_ack":
            await ws.close()
            raise RuntimeError(f"the hub did not acknowledge the subscriber: {ack}")
        payload = {"query": EVENTS, "variables": {"after": after}}
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
        return cls(ws, log)

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in self.ws:
                at, at_wall = time.perf_counter(), time.time()
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "next":
                    payload = message["payload"]
                    if payload.get("errors"):
                        self.log.errors.append(str(payload["errors"])[:300])
                    if payload.get("data"):
                        self.log.add(payload["data"]["flagEvents"], at, at_wall)
                elif kind == "ping":
                    await self.ws.send(json.dumps({"type": "pong"}))
                elif kind in ("error", "complete"):
                    self.log.errors.append(f"{kind}: {str(message.get('payload'))[:300]}")
                    return

    async def ended(self, timeout_s: float) -> None:
        await asyncio.wait_for(asyncio.shield(self.reading), timeout_s)

    async def close(self) -> None:
        await self.ws.close()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(self.reading, 5)


# --- measuring -----------------------------------------------------------------------


def hop_times(event: dict[str, Any]) -> dict[str, float]:
    """The event's timeline as epoch seconds by hop."""
    return {h["hop"]: datetime.fromisoformat(h["at"]).timestamp() for h in event["timeline"]}


async def healthz_ms(http: aiohttp.ClientSession, url: str) -> float:
    started = time.perf_counter()
    async with http.get(f"{url}/healthz") as response:
        await response.read()
        response.raise_for_status()
    return (time.perf_counter() - started) * 1000


@dataclass
class UpResult:
    raised: list[Raised]
    lag_ms: list[float]
    rtt_ms: list[float]
    hub_healthz_ms: list[float]
    node_healthz_ms: list[float]
    hops_ms: dict[str, list[float]]
    missing: int
    errors: int


async def phase_up(http: aiohttp.ClientSession, district: District, log: EventLog) -> UpResult:
    """Warm up, measure the floor's round trips, then raise ``UP_FLAGS`` flags and time them."""
    warm = await raise_stream(http, district, 0, count=WARMUP_FLAGS)
    if not await log.wait_for([r.flag_id for r in warm if r.flag_id], UP_TIMEOUT_S):
        errors = [r.error for r in warm if r.error] + log.errors
        raise RuntimeError(f"warm-up flags did not reach the subscriber: {errors[:3]}")
    hub_healthz: list[float] = []
    node_healthz: list[float] = []
    for i in range(FLOOR_SAMPLES):
        hub_healthz.append(await healthz_ms(http, district.hub.url))
        node = district.nodes[NODES[i % len(NODES)]]
        node_healthz.append(await healthz_ms(http, node.url))
    raised = await raise_stream(http, district, WARMUP_FLAGS, count=UP_FLAGS)
    ok = [r for r in raised if r.flag_id is not None]
    await log.wait_for([r.flag_id for r in ok if r.flag_id], UP_TIMEOUT_S)
    lag: list[float] = []
    hops: dict[str, list[float]] = {"at node": [], "node -> hub": [], "hub -> subscriber": []}
    for r in ok:
        assert r.flag_id is not None
        seen = log.first.get(r.flag_id)
        if seen is None:
            continue
        lag.append((seen.at - r.started) * 1000)
        t = hop_times(seen.event)
        if {"raised_at_node", "received_at_hub", "routed"} <= t.keys():
            hops["at node"].append((t["raised_at_node"] - r.started_wall) * 1000)
            hops["node -> hub"].append((t["received_at_hub"] - t["raised_at_node"]) * 1000)
            hops["hub -> subscriber"].append((seen.at_wall - t["routed"]) * 1000)
    return UpResult(
        raised=raised,
        lag_ms=lag,
        rtt_ms=[r.rtt_ms for r in ok],
        hub_healthz_ms=hub_healthz,
        node_healthz_ms=node_healthz,
        hops_ms=hops,
        missing=len(ok) - len(lag),
        errors=len(raised) - len(ok),
    )


@dataclass
class DownResult:
    raised: list[Raised]
    raised_while_down: int
    lost: list[str]
    seen_twice: int
    seqs_twice: int
    restart_to_ready_s: float
    restart_to_all_s: float | None
    first_delivery_s: dict[str, float]  # node -> its first flag at the restarted hub
    at_hub: int
    outboxes: dict[str, dict[str, int]]
    pending_at_restart: int


async def outbox_counts(
    http: aiohttp.ClientSession, district: District
) -> dict[str, dict[str, int]]:
    """Each node's ``flagOutbox`` counts: pending, delivered, failed."""
    counts = {}
    for org, node in district.nodes.items():
        async with http.post(
            f"{node.url}/graphql",
            json={"query": OUTBOX},
            headers={"Authorization": f"Bearer {district.staff[org]}"},
        ) as response:
            body = await response.json()
        if not body.get("data"):
            raise RuntimeError(f"flagOutbox at node {org}: {body.get('errors')}")
        counts[org] = body["data"]["flagOutbox"]
    return counts


async def flags_at_hub(database_url: str) -> int:
    db = Database(database_url)
    try:
        async with db.sessions() as session:
            return int((await session.execute(sa.text("SELECT count(*) FROM flags"))).scalar_one())
    finally:
        await db.dispose()


async def phase_down(
    http: aiohttp.ClientSession, district: District, log: EventLog, subscriber: Subscriber
) -> tuple[DownResult, Subscriber]:
    """Kill the hub in the middle of a steady stream, restart it, resume, count."""
    first_n = WARMUP_FLAGS + UP_FLAGS
    hub_ready = asyncio.Event()
    answered: asyncio.Queue[Raised] = asyncio.Queue()
    stream = asyncio.create_task(
        raise_stream(http, district, first_n, until=hub_ready, answered=answered)
    )
    try:
        for _ in range(KILL_AFTER):
            await answered.get()
        district.hub.kill()
        killed = time.perf_counter()
        await subscriber.ended(10)  # the hub's end ends the subscription
        await asyncio.sleep(max(0.0, killed + DOWN_S - time.perf_counter()))
        pending = sum(c["pending"] for c in (await outbox_counts(http, district)).values())
        restarted = time.perf_counter()
        district.hub.spawn()
        await district.hub.ready(http)
        ready, ready_wall = time.perf_counter(), time.time()
    finally:
        hub_ready.set()
        raised = await stream
    resumed = await Subscriber.open(district.ws_url, district.department, log.last_seq, log)
    ok = [r.flag_id for r in raised if r.flag_id is not None]
    complete = await log.wait_for(ok, SEEN_TIMEOUT_S)
    await asyncio.sleep(QUIET_S)
    lost = [f for f in ok if f not in log.first]
    last_seen = max((log.first[f].at for f in ok if f in log.first), default=restarted)
    first_delivery: dict[str, float] = {}
    for r in raised:
        seen = log.first.get(r.flag_id or "")
        if seen is None or r.started < killed:
            continue
        received = hop_times(seen.event).get("received_at_hub")
        if received is not None:
            after = received - ready_wall
            first_delivery[r.node] = min(first_delivery.get(r.node, after), after)
    return (
        DownResult(
            raised=raised,
            raised_while_down=sum(1 for r in raised if killed <= r.started < ready),
            lost=lost,
            seen_twice=sum(1 for f in ok if f in log.first and log.first[f].routed > 1),
            seqs_twice=sum(1 for n in log.seqs.values() if n > 1),
            restart_to_ready_s=ready - restarted,
            restart_to_all_s=(last_seen - restarted) if complete else None,
            first_delivery_s=first_delivery,
            at_hub=await flags_at_hub(district.hub_db_url),
            outboxes=await outbox_counts(http, district),
            pending_at_restart=pending,
        ),
        resumed,
    )


# --- the report ----------------------------------------------------------------------


def verdict(value: float, goal: float) -> str:
    if value < goal:
        return f"met ({goal - value:.0f} ms to spare)"
    return f"MISSED by {value - goal:.0f} ms ({value / goal:.1f}x the goal)"


def report_up(up: UpResult) -> None:
    print(
        f"phase 1, hub up: {UP_FLAGS} flags, one every {INTERVAL_S * 1000:.0f} ms, round-robin "
        f"over {len(NODES)} nodes (after {WARMUP_FLAGS} warm-up flags)"
    )
    print("lag: raiseRiskFlag sent to a node -> the flag's flag.routed at the subscriber")
    print(
        "floor: the raise mutation's own round trip (client -> node -> stored -> client) "
        "+ a bare GET /healthz round trip to the hub"
    )
    if not up.lag_ms:
        print(f"  no flag reached the subscriber ({up.errors} raise errors)")
        return
    floor50 = p50(up.rtt_ms) + p50(up.hub_healthz_ms)
    floor99 = p99(up.rtt_ms) + p99(up.hub_healthz_ms)
    rows = [
        ("lag", up.lag_ms),
        ("raise round trip (floor)", up.rtt_ms),
        ("hub /healthz (floor)", up.hub_healthz_ms),
        ("node /healthz (reference)", up.node_healthz_ms),
    ]
    print(f"  {'':<28}{'p50':>9}{'p99':>9}{'max':>9}{'n':>5}")
    for name, samples in rows:
        print(
            f"  {name:<28}{p50(samples):>9.1f}{p99(samples):>9.1f}{max(samples):>9.1f}"
            f"{len(samples):>5}"
        )
    print(f"  {'floor':<28}{floor50:>9.1f}{floor99:>9.1f}")
    print(
        f"  {'lag / floor':<28}{p50(up.lag_ms) / floor50:>8.2f}x{p99(up.lag_ms) / floor99:>8.2f}x"
    )
    print("  where the lag goes (hub's and node's timestamps, same machine clock):")
    for hop, samples in up.hops_ms.items():
        if samples:
            print(f"    {hop:<26}{p50(samples):>9.1f}{p99(samples):>9.1f}{max(samples):>9.1f}")
    print(
        f"  not seen: {up.missing}, raise errors: {up.errors}   (times in ms; p99 of "
        f"{len(up.lag_ms)} samples interpolates between the slowest two)"
    )
    print(f"goal p50 < {GOAL_P50_MS:g} ms: {p50(up.lag_ms):.1f} ms, ", end="")
    print(verdict(p50(up.lag_ms), GOAL_P50_MS))
    print(f"goal p99 < {GOAL_P99_MS:g} ms: {p99(up.lag_ms):.1f} ms, ", end="")
    print(verdict(p99(up.lag_ms), GOAL_P99_MS))


def report_down(down: DownResult) -> None:
    ok = [r for r in down.raised if r.flag_id is not None]
    print(
        f"phase 2, hub down: a flag every {INTERVAL_S * 1000:.0f} ms; hub SIGKILLed after "
        f"{KILL_AFTER} flags were answered, restarted {DOWN_S:g} s later on the same port "
        f"and database; raising stopped once it was ready; the subscriber resumed after "
        f"its last seq"
    )
    print(
        f"  raised: {len(ok)} ({down.raised_while_down} while the hub was down), "
        f"raise errors at the nodes: {len(down.raised) - len(ok)}"
    )
    print(f"  waiting in the nodes' outboxes at the restart: {down.pending_at_restart}")
    print(f"  lost (never seen by the subscriber): {len(down.lost)}   goal 0: ", end="")
    print("met" if not down.lost else f"MISSED by {len(down.lost)}")
    print(
        f"  seen twice (flag.routed more than once): {down.seen_twice}   goal 0: "
        f"{'met' if not down.seen_twice else f'MISSED by {down.seen_twice}'}"
        f"   (sequence numbers received twice: {down.seqs_twice})"
    )
    print(f"  hub ready {down.restart_to_ready_s:.2f} s after the restart")
    if down.restart_to_all_s is None:
        print(f"  backlog NOT fully delivered within {SEEN_TIMEOUT_S:g} s of the restart")
    else:
        print(
            f"  backlog fully delivered {down.restart_to_all_s:.2f} s after the restart "
            f"({down.restart_to_all_s - down.restart_to_ready_s:.2f} s after the hub was ready)"
        )
    if down.first_delivery_s:
        firsts = ", ".join(f"{v:.2f}" for _, v in sorted(down.first_delivery_s.items()))
        print(
            f"  each node's first flag reached the restarted hub {firsts} s after it was ready "
            "(the nodes' retry backoff: base 1 s, doubling, jitter, at most LINLI_FLAG_RETRY_MAX_S)"
        )
    outbox = {k: sum(c.get(k, 0) for c in down.outboxes.values()) for k in ("pending", "failed")}
    print(
        f"  at the end: {down.at_hub} flags stored at the hub in all; "
        f"nodes' outboxes pending {outbox['pending']}, failed {outbox['failed']}"
    )
    if down.lost:
        print(f"  lost flags: {', '.join(down.lost[:10])}")


async def run() -> None:
    started = time.monotonic()
    with scratch_folder("linli-flag-lag-") as folder:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            print("starting a hub and 3 nodes …", file=sys.stderr, flush=True)
            district: District | None = None
            try:
                district = await start_district(http, folder)
                log = EventLog()
                subscriber = await Subscriber.open(district.ws_url, district.department, 0, log)
                print("phase 1: hub up …", file=sys.stderr, flush=True)
                up = await phase_up(http, district, log)
                print("phase 2: hub killed and restarted …", file=sys.stderr, flush=True)
                down, subscriber = await phase_down(http, district, log, subscriber)
                await subscriber.close()
            except Exception:
                for service in district.services() if district is not None else []:
                    print(f"--- {service.name} log ---\n{service.tail()}", file=sys.stderr)
                raise
            finally:
                stop_all()
    print(
        f"risk flag lag: {len(NODES)} nodes (linli node serve) -> hub (linli hub serve) -> "
        f"flagEvents subscriber (graphql-transport-ws, duty desk {DUTY_DESK}); "
        "SQLite, default delivery settings"
    )
    print()
    report_up(up)
    print()
    report_down(down)
    if log.errors:
        print(f"subscriber errors: {log.errors[:3]}")
    print()
    print(load_line(time.monotonic() - started))


def main() -> None:
    """Run the bench; stop every child process whatever happens."""
    run_bench(run())


if __name__ == "__main__":
    main()
