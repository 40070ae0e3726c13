"""What the hub's federated fan-out costs, against calling the same sources directly.

Run: ``.venv/bin/python bench/fanout.py [--latency-ms 20] [--runs 40]``.

One child process hosts the sources (``bench/_sources.py``: tiny aiohttp apps
that answer a page of 5 resources after sleeping the latency). For each N a
fresh hub runs as ``linli hub serve`` over a freshly migrated SQLite database
and a sources file naming the first N sources. Timed, R times each,
alternating which goes first:

- hub: ``{ resources(first: 50) { edges { node { id name available } } } }``
  through the hub with a real bearer token (client credentials);
- floor: the same N calls made directly with raw aiohttp (one session,
  ``asyncio.gather`` of N POSTs to the sources' ``/graphql``), no hub.

Prints p50 and p99 of both and their ratio, and the ms the hub adds at N = 1.
The hub's background health checks are slowed to one round per 5 minutes so
that a round of N GETs does not land inside the timed runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
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
    stop,
    token,
    wait_ready,
    write_sources_file,
)

from schema.enums import OrgKind

SIZES = (1, 10, 50, 100)
QUERY = "{ resources(first: 50) { edges { node { id name available } } } }"
# What the hub sends each source for QUERY (hub/federation/executor.py), so the floor
# carries the same request body.
SOURCE_DOCUMENT = (
    "query($where: ResourceFilter, $first: Int, $after: String, $order: RecordOrder!) { "
    "resources(where: $where, first: $first, after: $after, orderBy: $order) { "
    "edges { cursor node { id name available owner version createdAt updatedAt } } "
    "pageInfo { hasNextPage endCursor } } }"
)
SOURCE_VARIABLES = {"where": None, "first": 50, "after": None, "order": "CREATED_DESC"}
CALLER_ORG = "110105900001"
DISTRICT = "110105"
SCOPES = "resources:read"
WARMUP = 5
GOAL_RATIO_AT_100 = 3.0
GOAL_ADDED_MS_AT_1 = 15.0

HERE = Path(__file__).resolve().parent


@dataclass
class Row:
    """The timings at one N, in milliseconds."""

    n: int
    floor: list[float]
    hub: list[float]
    failures: int

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


async def start_hub(http: aiohttp.ClientSession, folder: Path, sources: dict[str, str]) -> Hub:
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
    }
    log = folder / f"hub-{n}.log"
    process = spawn([str(BIN / "linli"), "hub", "serve", "--no-migrate"], log=log, env=env)
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


def hub_failure(body: Any, n: int) -> str | None:
    """Why a federated answer is not the full, all-ok answer; None when it is."""
    if body.get("errors"):
        return f"errors: {body['errors'][:2]}"
    statuses = [s["status"] for s in body.get("extensions", {}).get("sources", [])]
    if len(statuses) != n or any(s != "ok" for s in statuses):
        return f"source statuses: {sorted(set(statuses))} of {len(statuses)}"
    edges = body["data"]["resources"]["edges"]
    if len(edges) != min(50, 5 * n):
        return f"{len(edges)} edges"
    return None


async def timed_hub(http: aiohttp.ClientSession, hub: Hub, n: int) -> tuple[float, str | None]:
    started = time.perf_counter()
    body = await hub_post(http, hub, QUERY)
    return (time.perf_counter() - started) * 1000, hub_failure(body, n)


async def timed_floor(
    http: aiohttp.ClientSession, urls: list[str], token: str
) -> tuple[float, str | None]:
    payload = {"query": SOURCE_DOCUMENT, "variables": SOURCE_VARIABLES}
    headers = {"Authorization": f"Bearer {token}"}

    async def call(url: str) -> Any:
        async with http.post(f"{url}/graphql", json=payload, headers=headers) as response:
            return await response.json()

    started = time.perf_counter()
    answers = await asyncio.gather(*(call(url) for url in urls))
    elapsed = (time.perf_counter() - started) * 1000
    missing = sum(1 for a in answers if not a["data"]["resources"]["edges"])
    return elapsed, (f"{missing} empty answers" if missing else None)


async def measure(http: aiohttp.ClientSession, hub: Hub, urls: list[str], runs: int) -> Row:
    n = len(urls)
    for _ in range(WARMUP):
        _, why = await timed_hub(http, hub, n)
        if why is not None:
            raise RuntimeError(f"the hub's answer at N={n} is not complete: {why}")
        await timed_floor(http, urls, hub.token)
    row = Row(n, [], [], 0)
    for i in range(runs):
        # Alternate which goes first, so neither always runs on a just-woken loop.
        order = (False, True) if i % 2 else (True, False)
        for through_hub in order:
            if through_hub:
                ms, why = await timed_hub(http, hub, n)
                row.hub.append(ms)
            else:
                ms, why = await timed_floor(http, urls, hub.token)
                row.floor.append(ms)
            if why is not None:
                row.failures += 1
    return row


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def report(rows: list[Row], *, latency_ms: float, runs: int, elapsed_s: float) -> None:
    print(
        f"federated `resources(first: 50)` over N sources, each answering 5 records after "
        f"{latency_ms:g} ms; {runs} timed runs per N after {WARMUP} warm-up runs"
    )
    print("floor: the same N POSTs to the sources directly (one aiohttp session, gather)")
    print()
    print(
        f"{'N':>4}{'floor p50':>11}{'floor p99':>11}{'hub p50':>10}{'hub p99':>10}"
        f"{'x p50':>8}{'x p99':>8}{'hub-floor p50':>15}{'failed':>8}"
    )
    for row in rows:
        print(
            f"{row.n:>4}{row.floor_p50:>11.1f}{row.floor_p99:>11.1f}"
            f"{row.hub_p50:>10.1f}{row.hub_p99:>10.1f}"
            f"{row.hub_p50 / row.floor_p50:>8.2f}{row.hub_p99 / row.floor_p99:>8.2f}"
            f"{row.hub_p50 - row.floor_p50:>15.1f}{row.failures:>8}"
        )
    print("(times in ms; x = hub / floor; failed = answers with an error or a missing source)")
    print()
    by_n = {row.n: row for row in rows}
    if 1 in by_n:
        added = by_n[1].hub_p50 - by_n[1].floor_p50
        print(
            f"goal N=1:   the hub adds {added:.1f} ms to a direct call (p50); "
            f"goal < {GOAL_ADDED_MS_AT_1:g} ms: {verdict(added < GOAL_ADDED_MS_AT_1)}"
        )
    if 100 in by_n:
        ratio = by_n[100].hub_p50 / by_n[100].floor_p50
        print(
            f"goal N=100: hub p50 is {ratio:.2f}x the floor; "
            f"goal <= {GOAL_RATIO_AT_100:g}x: {verdict(ratio <= GOAL_RATIO_AT_100)}"
        )
    print(load_line(elapsed_s))


async def run(sizes: list[int], latency_ms: float, runs: int) -> None:
    started = time.monotonic()
    with scratch_folder("linli-fanout-") as folder:
        sources = await start_sources(max(sizes), latency_ms)
        connector = aiohttp.TCPConnector(limit=0)
        rows = []
        async with aiohttp.ClientSession(connector=connector) as http:
            for n in sizes:
                chosen = dict(list(sources.items())[:n])
                print(f"N={n}: starting a hub over {n} source(s) …", file=sys.stderr, flush=True)
                hub = await start_hub(http, folder, chosen)
                try:
                    rows.append(await measure(http, hub, list(chosen.values()), runs))
                finally:
                    stop(hub.process)
        report(rows, latency_ms=latency_ms, runs=runs, elapsed_s=time.monotonic() - started)


def main() -> None:
    """Parse the options, run the bench, stop every child process whatever happens."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-ms", type=float, default=20.0, help="each source's latency")
    parser.add_argument("--runs", type=int, default=40, help="timed runs per N")
    parser.add_argument(
        "--sizes",
        default=",".join(map(str, SIZES)),
        help="comma-separated numbers of sources (default %(default)s)",
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    run_bench(run(sizes, args.latency_ms, max(args.runs, 2)))


if __name__ == "__main__":
    main()
