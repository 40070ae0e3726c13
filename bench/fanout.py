"""What the hub's federated fan-out costs, against calling the same sources directly.

Run: ``.venv/bin/python bench/fanout.py [--latency-ms 20] [--runs 40] [--cases 1:50,100:50]
[--profile DIR]``.

One child process hosts the sources (``bench/_sources.py``: tiny aiohttp apps
that answer the first ``first`` of their 500 resources after sleeping the
latency). For each N a fresh hub runs as ``linli hub serve`` over a freshly
migrated SQLite database and a sources file naming the first N sources. For each
case (N sources, page size F), timed R times each, alternating which goes first:

- hub: ``{ resources(first: F) { edges { node { id name available } } } }``
  through the hub with a real bearer token (client credentials);
- floor: the same N calls made directly with raw aiohttp (one session,
  ``asyncio.gather`` of N POSTs to the sources' ``/graphql``), no hub.

Prints p50 and p99 of both and their ratio, the ms the hub adds at N = 1, and
the hub process's CPU (user + system, from ``/proc``) over the timed runs: per
request, per record received from the sources, and the marginal CPU of one more
record received (between the smallest and the largest page at the same N). With
``--profile DIR`` each hub runs under cProfile timed by its CPU clock
(``bench/_profiled.py``) and leaves ``hub-N.prof`` in DIR (the timings then
include the profiler's overhead: read the profile, not the ratios). The hub's
background health checks are slowed to one round per 5 minutes so that a round
of N GETs does not land inside the timed runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from _harness import (
    BIN,
    cpu_s,
    free_port,
    load_line,
    migrate_hub,
    p50,
    p99,
    register_clients,
    run_bench,
    scratch_folder,
    spawn,
    stop,
    token,
    wait_ready,
    write_sources_file,
)
from _sources import RECORDS_PER_SOURCE

from schema.enums import OrgKind

# (sources, page size): the goals' cases, and enough page sizes at one N for the
# marginal CPU of a received record.
CASES = ((1, 10), (1, 50), (10, 10), (10, 50), (10, 500), (100, 10), (100, 50))
QUERY = "{{ resources(first: {first}) {{ edges {{ node {{ id name available }} }} }} }}"
# What the hub sends each source for QUERY (hub/federation/executor.py), so the floor
# carries the same request body.
SOURCE_DOCUMENT = (
    "query($where: ResourceFilter, $first: Int, $after: String, $order: RecordOrder!) { "
    "resources(where: $where, first: $first, after: $after, orderBy: $order) { "
    "edges { cursor node { id name available owner version createdAt updatedAt } } "
    "pageInfo { hasNextPage endCursor } } }"
)
SOURCE_VARIABLES = {"where": None, "after": None, "order": "CREATED_DESC"}
CALLER_ORG = "110105900001"
DISTRICT = "110105"
SCOPES = "resources:read"
WARMUP = 5
# The goals of issue 12, as (N, first): largest hub p50 / floor p50.
GOAL_RATIOS = {(100, 50): 1.5, (10, 500): 2.0}
GOAL_ADDED_MS_AT_1 = 5.0  # at N = 1, first 50
GOAL_CPU_PER_RECORD_US = 5.0
MARGINAL_MIN_RECORDS = 500

HERE = Path(__file__).resolve().parent


@dataclass
class Row:
    """The timings of one case, in milliseconds, and the hub's CPU over its timed runs."""

    n: int
    first: int
    floor: list[float]
    hub: list[float]
    failures: int
    hub_cpu_s: float = 0.0

    @property
    def received(self) -> int:
        """Records the hub receives from the sources per request."""
        return self.n * min(self.first, RECORDS_PER_SOURCE)

    @property
    def cpu_ms(self) -> float:
        """Hub CPU per request (ms)."""
        return self.hub_cpu_s * 1000 / len(self.hub)

    @property
    def cpu_per_record_us(self) -> float:
        """Hub CPU per request over the records received (µs)."""
        return self.cpu_ms * 1000 / self.received

    @property
    def floor_p50(self) -> float:
        return p50(self.floor)

    @property
    def hub_p50(self) -> float:
        return p50(self.hub)

    @property
    def floor_p99(self) -> float:
        return p99(self.floor)

    @property
    def hub_p99(self) -> float:
        return p99(self.hub)


async def start_sources(count: int, latency_ms: float) -> dict[str, str]:
    """Start the sources process; their ids and URLs, in order."""
    process = spawn([sys.executable, str(HERE / "_sources.py"), str(count), str(latency_ms)])
    assert process.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 60)
    if not line:
        raise RuntimeError(f"the sources process exited ({process.wait()}) before listening")
    urls: dict[str, str] = json.loads(line)["sources"]
    return urls


@dataclass
class Hub:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    token: str


async def start_hub(
    http: aiohttp.ClientSession, folder: Path, sources: dict[str, str], profile: Path | None
) -> Hub:
    """Migrate a fresh database, register a client, serve a hub over ``sources``, get a token."""
    n = len(sources)
    database_url = f"sqlite+aiosqlite:///{folder}/hub-{n}.db"
    await migrate_hub(database_url)
    secrets = await register_clients(
        database_url, [(CALLER_ORG, OrgKind.DEPARTMENT, SCOPES)], DISTRICT
    )
    sources_file = write_sources_file(folder / f"sources-{n}.toml", sources)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "LINLI_DATABASE_URL": database_url,
        "LINLI_PORT": str(port),
        "LINLI_ISSUER": url,
        "LINLI_SOURCES_FILE": str(sources_file),
        "LINLI_LOG_LEVEL": "WARNING",
        "LINLI_HEALTH_INTERVAL_S": "300",
        # One sequential client, large pages: neither limit is what is measured.
        "LINLI_GRAPHQL_RATE_PER_CLIENT": "100000",
        "LINLI_MAX_QUERY_COST": "10000000",
        # On a loaded machine 100 sources in one process can take over the default 2 s:
        # a timeout would measure the load, not the hub.
        "LINLI_SOURCE_TIMEOUT_S": "20",
        "LINLI_DEADLINE_S": "30",
    }
    log = folder / f"hub-{n}.log"
    args = [str(BIN / "linli"), "hub", "serve", "--no-migrate"]
    if profile is not None:
        args = [sys.executable, str(HERE / "_profiled.py"), str(profile / f"hub-{n}.prof"), *args]
    process = spawn(args, log=log, env=env)
    hub = Hub(url, process, log, token="")
    try:
        await wait_ready(http, url, process, "the hub", timeout_s=90, interval_s=0.2)
        hub.token = await token(http, url, secrets[CALLER_ORG], SCOPES)
        await wait_sources_ok(http, hub, n)
    except BaseException as exc:
        if isinstance(exc, Exception):  # not when interrupted
            tail = log.read_text("utf-8", "replace")[-4000:]
            print(f"--- hub log ({log}) ---\n{tail}", file=sys.stderr)
        stop(process)
        raise
    return hub


async def wait_sources_ok(
    http: aiohttp.ClientSession, hub: Hub, n: int, timeout_s: float = 30
) -> None:
    """Until the hub's ``sources`` shows all ``n`` sources ``ok``."""
    deadline = time.monotonic() + timeout_s
    statuses: dict[str, int] = {}
    while time.monotonic() < deadline:
        body = await hub_post(http, hub, "{ sources { id status } }")
        statuses = {}
        for source in body["data"]["sources"]:
            statuses[source["status"]] = statuses.get(source["status"], 0) + 1
        if statuses.get("ok") == n:
            return
        await asyncio.sleep(0.5)
    raise TimeoutError(f"the hub's sources are {statuses}, not {n} ok")


async def hub_post(http: aiohttp.ClientSession, hub: Hub, query: str) -> Any:
    async with http.post(
        f"{hub.url}/graphql",
        json={"query": query},
        headers={"Authorization": f"Bearer {hub.token}"},
    ) as response:
        return await response.json()


def hub_failure(body: Any, n: int, first: int) -> str | None:
    """Why a federated answer is not the full, all-ok answer; None when it is."""
    if body.get("errors"):
        return f"errors: {body['errors'][:2]}"
    statuses = [s["status"] for s in body.get("extensions", {}).get("sources", [])]
    if len(statuses) != n or any(s != "ok" for s in statuses):
        return f"source statuses: {sorted(set(statuses))} of {len(statuses)}"
    edges = body["data"]["resources"]["edges"]
    if len(edges) != min(first, RECORDS_PER_SOURCE * n):
        return f"{len(edges)} edges"
    return None


async def timed_hub(
    http: aiohttp.ClientSession, hub: Hub, n: int, first: int
) -> tuple[float, str | None]:
    started = time.perf_counter()
    body = await hub_post(http, hub, QUERY.format(first=first))
    return (time.perf_counter() - started) * 1000, hub_failure(body, n, first)


async def timed_floor(
    http: aiohttp.ClientSession, urls: list[str], token: str, first: int
) -> tuple[float, str | None]:
    payload = {"query": SOURCE_DOCUMENT, "variables": {**SOURCE_VARIABLES, "first": first}}
    headers = {"Authorization": f"Bearer {token}"}

    async def call(url: str) -> Any:
        async with http.post(f"{url}/graphql", json=payload, headers=headers) as response:
            return await response.json()

    started = time.perf_counter()
    answers = await asyncio.gather(*(call(url) for url in urls))
    elapsed = (time.perf_counter() - started) * 1000
    missing = sum(1 for a in answers if not a["data"]["resources"]["edges"])
    return elapsed, (f"{missing} empty answers" if missing else None)


async def measure(
    http: aiohttp.ClientSession, hub: Hub, urls: list[str], first: int, runs: int
) -> Row:
    n = len(urls)
    for _ in range(WARMUP):
        _, why = await timed_hub(http, hub, n, first)
        if why is not None:
            raise RuntimeError(f"the hub's answer at N={n}, first {first} is not complete: {why}")
        await timed_floor(http, urls, hub.token, first)
    row = Row(n, first, [], [], 0)
    # The hub is otherwise idle during the timed runs: its CPU over all of them is the
    # CPU of its answers, including what an answer leaves to do after it is sent.
    cpu_before = cpu_s(hub.process.pid)
    for i in range(runs):
        # Alternate which goes first, so neither always runs on a just-woken loop.
        order = (False, True) if i % 2 else (True, False)
        for through_hub in order:
            if through_hub:
                ms, why = await timed_hub(http, hub, n, first)
                row.hub.append(ms)
            else:
                ms, why = await timed_floor(http, urls, hub.token, first)
                row.floor.append(ms)
            if why is not None:
                row.failures += 1
    row.hub_cpu_s = cpu_s(hub.process.pid) - cpu_before
    return row


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def marginal_cpu_us(rows: list[Row]) -> dict[int, float]:
    """Per N with two page sizes: hub CPU of one more received record (µs), smallest to largest."""
    out: dict[int, float] = {}
    for n in sorted({row.n for row in rows}):
        same = sorted((r for r in rows if r.n == n), key=lambda r: r.received)
        # A few dozen records more are within the noise of the CPU clock (10 ms ticks).
        if len(same) >= 2 and same[-1].received - same[0].received >= MARGINAL_MIN_RECORDS:
            extra_ms = same[-1].cpu_ms - same[0].cpu_ms
            out[n] = extra_ms * 1000 / (same[-1].received - same[0].received)
    return out


def report(rows: list[Row], *, latency_ms: float, runs: int, elapsed_s: float) -> None:
    print(
        f"federated `resources(first: F)` over N sources, each answering F of its records after "
        f"{latency_ms:g} ms; {runs} timed runs per case after {WARMUP} warm-up runs"
    )
    print("floor: the same N POSTs to the sources directly (one aiohttp session, gather)")
    print()
    print(
        f"{'N':>4}{'F':>5}{'recv':>7}{'floor p50':>11}{'hub p50':>9}{'x p50':>7}"
        f"{'floor p99':>11}{'hub p99':>9}{'x p99':>7}{'hub-floor':>11}"
        f"{'cpu/req':>9}{'cpu/rec':>9}{'failed':>8}"
    )
    for row in rows:
        print(
            f"{row.n:>4}{row.first:>5}{row.received:>7}{row.floor_p50:>11.1f}{row.hub_p50:>9.1f}"
            f"{row.hub_p50 / row.floor_p50:>7.2f}{row.floor_p99:>11.1f}{row.hub_p99:>9.1f}"
            f"{row.hub_p99 / row.floor_p99:>7.2f}{row.hub_p50 - row.floor_p50:>11.1f}"
            f"{row.cpu_ms:>9.1f}{row.cpu_per_record_us:>9.1f}{row.failures:>8}"
        )
    print(
        "(times and cpu/req in ms, cpu/rec in µs; recv = records the hub receives per request;"
        " x = hub / floor;\n cpu = the hub process's user + system CPU over the timed runs;"
        " failed = answers with an error or a missing source)"
    )
    print()
    by_case = {(row.n, row.first): row for row in rows}
    if (one := by_case.get((1, 50))) is not None:
        added = one.hub_p50 - one.floor_p50
        print(
            f"goal N=1, F=50: the hub adds {added:.1f} ms to a direct call (p50); "
            f"goal <= {GOAL_ADDED_MS_AT_1:g} ms: {verdict(added <= GOAL_ADDED_MS_AT_1)}"
        )
    for (n, first), goal in GOAL_RATIOS.items():
        if (row := by_case.get((n, first))) is not None:
            ratio = row.hub_p50 / row.floor_p50
            print(
                f"goal N={n}, F={first}: hub p50 is {ratio:.2f}x the floor; "
                f"goal <= {goal:g}x: {verdict(ratio <= goal)}"
            )
    for n, us in marginal_cpu_us(rows).items():
        print(
            f"goal N={n}: one more received record costs the hub {us:.1f} µs of CPU "
            f"(smallest to largest page); goal <= {GOAL_CPU_PER_RECORD_US:g} µs: "
            f"{verdict(us <= GOAL_CPU_PER_RECORD_US)}"
        )
    print(load_line(elapsed_s))


async def run(
    cases: list[tuple[int, int]], latency_ms: float, runs: int, profile: Path | None
) -> None:
    started = time.monotonic()
    with scratch_folder("linli-fanout-") as folder:
        sources = await start_sources(max(n for n, _ in cases), latency_ms)
        connector = aiohttp.TCPConnector(limit=0)
        rows = []
        async with aiohttp.ClientSession(connector=connector) as http:
            for n in sorted({n for n, _ in cases}):
                chosen = dict(list(sources.items())[:n])
                print(f"N={n}: starting a hub over {n} source(s) …", file=sys.stderr, flush=True)
                hub = await start_hub(http, folder, chosen, profile)
                try:
                    for first in sorted(f for m, f in cases if m == n):
                        urls = list(chosen.values())
                        rows.append(await measure(http, hub, urls, first, runs))
                finally:
                    if profile is not None:
                        # uvicorn re-raises SIGTERM after its shutdown, which would end the
                        # process before cProfile writes; SIGINT ends it through a
                        # KeyboardInterrupt, after which cProfile writes its file.
                        hub.process.send_signal(signal.SIGINT)
                        with contextlib.suppress(subprocess.TimeoutExpired):
                            hub.process.wait(timeout=60)
                    stop(hub.process)
        report(rows, latency_ms=latency_ms, runs=runs, elapsed_s=time.monotonic() - started)


def main() -> None:
    """Parse the options, run the bench, stop every child process whatever happens."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=20.0, help="each source's latency")
    parser.add_argument("--runs", type=int, default=40, help="timed runs per N")
    parser.add_argument(
        "--cases",
        default=",".join(f"{n}:{first}" for n, first in CASES),
        help="comma-separated SOURCES:FIRST cases (default %(default)s)",
    )
    parser.add_argument(
        "--profile", type=Path, default=None, help="run each hub under cProfile; profiles here"
    )
    args = parser.parse_args()
    cases = [(int(n), int(first)) for n, first in (c.split(":") for c in args.cases.split(","))]
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    run_bench(run(cases, args.latency_ms, max(args.runs, 2), args.profile))


if __name__ == "__main__":
    main()
