"""A city hub over district hubs over lightweight sources: the city's latency against a district's.

Run: ``python bench/hierarchy.py [--districts 10] [--sources 20] [--runs 60] [--profile DIR]``.

One process serves ``districts * sources`` tiny node-protocol sources
(``bench/_sources.py``, each answering after ``--latency-ms``); ``districts``
district hubs (``linli hub serve``) federate ``sources`` of them each and trust the
city's issuer; a city hub federates the district hubs. In the same run, runs
interleaved, it times:

* a federated query, ``resources(first: 50)``, at the city (over every district) and
  the same query at one district (over its own sources);
* ``aggregates`` (summed totals) at the city and at one district.

It prints p50 and p99 of each and the city/district ratio of the p50s (goal: the
city's p50 within 2x the district's). A query at the city is one more hop (the city
calls each district with a token it mints, the district calls its sources with one
of its own) and one more merge, so the ratio measures what a level costs.

It also prints the CPU (user + system, from ``/proc``) each process used per timed
request: the city hub, the district hubs, the sources and the bench client share the
machine's cores, so a city query that keeps ten districts busy waits for CPU. With
``--profile DIR`` the city hub and the timed district hub run under cProfile timed by
their CPU clock (``bench/_profiled.py``) and leave ``hub-*.prof`` in DIR (the timings
then include the profiler's overhead: read the profiles, not the ratios).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench._harness import (
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
    token,
    wait_ready,
    write_sources_file,
)
from schema.enums import OrgKind

HERE = Path(__file__).resolve().parent
CITY = "110100"
SCOPES = "resources:read shelters:read incidents:read risk:verify"
FIRST = 50
QUERY = f"{{ resources(first: {FIRST}) {{ edges {{ node {{ id name available }} }} }} }}"
AGGREGATES = "{ aggregates { totals { recordType area kind status count quantity } } }"
GOAL_RATIO = 2.0


@dataclass
class Level:
    """One hub process and a token of a department of its own."""

    name: str
    url: str
    pid: int
    token: str = ""
    samples: dict[str, list[float]] = field(default_factory=lambda: {"query": [], "total": []})
    # kind -> process group ("city", "districts", "sources", "bench") -> CPU seconds used
    cpu: dict[str, dict[str, float]] = field(default_factory=lambda: {"query": {}, "total": {}})


async def start_sources(count: int, latency_ms: float) -> tuple[dict[str, str], int]:
    """The sources' URLs (id -> URL) and the pid of the process serving them."""
    process = spawn([sys.executable, str(HERE / "_sources.py"), str(count), str(latency_ms)])
    assert process.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 120)
    if not line:
        raise RuntimeError("the sources process exited before listening")
    urls: dict[str, str] = json.loads(line)["sources"]
    return urls, process.pid


async def start_hub(
    http: aiohttp.ClientSession,
    folder: Path,
    *,
    name: str,
    division: str,
    port: int,
    sources: dict[str, str],
    trusted: str | None,
    profile: Path | None,
) -> Level:
    """Migrate, register a department client, serve the hub on ``port``, get a token."""
    database_url = f"sqlite+aiosqlite:///{folder}/{name}.db"
    await migrate_hub(database_url)
    org = f"{division}400001"
    secrets = await register_clients(database_url, [(org, OrgKind.DEPARTMENT, SCOPES)], division)
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "LINLI_DATABASE_URL": database_url,
        "LINLI_PORT": str(port),
        "LINLI_ISSUER": url,
        "LINLI_HUB_ID": name,
        "LINLI_DISTRICT": division,
        "LINLI_SOURCES_FILE": str(write_sources_file(folder / f"{name}.toml", sources)),
        "LINLI_LOG_LEVEL": "WARNING",
        # Each hub checks its sources at start; a round of 200 GETs every 2 s would land
        # inside the timed runs (the longer city runs more often) and measure the checks.
        "LINLI_HEALTH_INTERVAL_S": "30",
        # Eleven hubs share the cores here, each on its own machine in a deployment: their
        # idle polls for flags (escalation, outbox, webhooks: no flags in this bench) and
        # reports would take the CPU the queries wait for. Revocations are polled as usual.
        "LINLI_ESCALATION_INTERVAL_S": "30",
        "LINLI_DELIVERY_POLL_S": "30",
        "LINLI_SITREP_CHECK_INTERVAL_S": "30",
        "LINLI_GRAPHQL_RATE_PER_CLIENT": "100000",
        "LINLI_MAX_QUERY_COST": "10000000",
        "LINLI_SOURCE_TIMEOUT_S": "20",
        "LINLI_DEADLINE_S": "30",
        # Starting eleven hubs on a loaded machine can take longer than the default 300 s.
        "LINLI_ACCESS_TOKEN_TTL_S": "3600",
    }
    if trusted is not None:
        env["LINLI_TRUSTED_ISSUERS"] = json.dumps(
            [{"issuer": trusted, "jwks_url": f"{trusted}/.well-known/jwks.json"}]
        )
    args = [str(BIN / "linli"), "hub", "serve", "--no-migrate"]
    if profile is not None:
        args = [sys.executable, str(HERE / "_profiled.py"), str(profile / f"{name}.prof"), *args]
    process = spawn(args, log=folder / f"{name}.log", env=env)
    ready_s = 300 if profile is None else 900  # a loaded machine; cProfile slows more
    await wait_ready(http, url, process, name, timeout_s=ready_s, interval_s=0.2)
    level = Level(name, url, process.pid)
    level.token = await token(http, url, secrets[org], SCOPES)
    return level


async def post(http: aiohttp.ClientSession, level: Level, query: str) -> dict[str, object]:
    # A pooled connection the hub closed while idle (keep-alive) fails before the request
    # is sent: ask once more on a new one.
    for attempt in (1, 2):
        try:
            async with http.post(
                f"{level.url}/graphql",
                json={"query": query},
                headers={"Authorization": f"Bearer {level.token}"},
            ) as response:
                body: dict[str, object] = await response.json()
                return body
        except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError):
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def all_ok(body: dict[str, object], expected: int) -> bool:
    """Whether every source (and every nested one) answered ``ok``."""
    entries = body.get("extensions", {}).get("sources", [])  # type: ignore[union-attr]
    leaves = [nested["status"] for entry in entries for nested in (entry.get("sources") or [entry])]
    return "errors" not in body and len(leaves) == expected and set(leaves) == {"ok"}


async def wait_all_ok(
    http: aiohttp.ClientSession, level: Level, expected: int, timeout_s: float = 300
) -> None:
    deadline = time.monotonic() + timeout_s
    body: dict[str, object] = {}
    while time.monotonic() < deadline:
        body = await post(http, level, QUERY)
        if all_ok(body, expected):
            return
        await asyncio.sleep(1.0)
    raise TimeoutError(f"{level.name}: not all of {expected} sources ok: {str(body)[-600:]}")


async def timed(
    http: aiohttp.ClientSession, level: Level, kind: str, expected: int, pids: dict[str, list[int]]
) -> None:
    query = QUERY if kind == "query" else AGGREGATES
    cpu_before = {group: sum(map(cpu_s, ids)) for group, ids in pids.items()}
    started = time.perf_counter()
    body = await post(http, level, query)
    elapsed = (time.perf_counter() - started) * 1000
    if not all_ok(body, expected):
        raise RuntimeError(f"{level.name} {kind}: not a full answer: {str(body)[:400]}")
    level.samples[kind].append(elapsed)
    used = level.cpu[kind]
    for group, ids in pids.items():
        used[group] = used.get(group, 0.0) + sum(map(cpu_s, ids)) - cpu_before[group]


async def run(
    districts: int, per_district: int, latency_ms: float, runs: int, profile: Path | None
) -> None:
    started = time.monotonic()
    with scratch_folder("linli-hierarchy-") as folder:
        sources, sources_pid = await start_sources(districts * per_district, latency_ms)
        ids = list(sources)
        city_port = free_port()
        city_url = f"http://127.0.0.1:{city_port}"
        district_ports = [free_port() for _ in range(districts)]
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            print(f"starting a city over {districts} districts …", file=sys.stderr, flush=True)
            # Together: each migrates its own SQLite file and starts its own process.
            levels = await asyncio.gather(
                *(
                    start_hub(
                        http,
                        folder,
                        name=f"hub-d{i:02d}",
                        division="110105",
                        port=port,
                        sources={
                            sid: sources[sid]
                            for sid in ids[i * per_district : (i + 1) * per_district]
                        },
                        trusted=city_url,
                        profile=profile if i == 0 else None,
                    )
                    for i, port in enumerate(district_ports)
                )
            )
            # The city last: its first health check, at start, finds every district up.
            city = await start_hub(
                http, folder, name=f"hub-{CITY}", division=CITY, port=city_port,
                sources={
                    f"hub-d{i:02d}": f"http://127.0.0.1:{port}"
                    for i, port in enumerate(district_ports)
                },
                trusted=None, profile=profile,  # and the first district: the two timed
            )  # fmt: skip
            district = levels[0]
            await wait_all_ok(http, district, per_district)
            await wait_all_ok(http, city, districts * per_district)
            for _ in range(5):  # warm up: pools, token caches
                await post(http, city, QUERY)
                await post(http, district, QUERY)
                await post(http, city, AGGREGATES)
                await post(http, district, AGGREGATES)
            pids = {
                "city": [city.pid],
                "districts": [level.pid for level in levels],
                "sources": [sources_pid],
                "bench": [os.getpid()],
            }
            for _ in range(runs):  # interleaved, so load hits both alike
                for kind in ("query", "total"):
                    await timed(http, city, kind, districts * per_district, pids)
                    await timed(http, district, kind, per_district, pids)
        report(city, district, districts, per_district, latency_ms, runs, started)


def report(
    city: Level,
    district: Level,
    districts: int,
    per_district: int,
    latency_ms: float,
    runs: int,
    started: float,
) -> None:
    print(
        f"\nhierarchy: a city over {districts} district hubs x {per_district} sources"
        f" ({districts * per_district} sources, {latency_ms:g} ms each), {runs} runs each\n"
    )
    print(f"{'':38} {'p50 ms':>9} {'p99 ms':>9}")
    for kind, label in (("query", f"resources(first: {FIRST})"), ("total", "aggregates")):
        for level, where in ((city, "city"), (district, "one district")):
            samples = level.samples[kind]
            print(f"{label + ' @ ' + where:38} {p50(samples):9.1f} {p99(samples):9.1f}")
        ratio = p50(city.samples[kind]) / p50(district.samples[kind])
        met = "met" if ratio <= GOAL_RATIO else "NOT met"
        print(f"{'  city p50 / district p50':38} {ratio:9.2f}   goal <= {GOAL_RATIO:g}: {met}\n")
    print("CPU ms per request (user + system) of each process group while it ran:")
    groups = list(city.cpu["query"])
    print(f"{'':38} " + " ".join(f"{group:>9}" for group in groups))
    for kind, label in (("query", "resources"), ("total", "aggregates")):
        for level, where in ((city, "city"), (district, "one district")):
            used = level.cpu[kind]
            cells = " ".join(f"{used[g] * 1000 / runs:9.1f}" for g in groups)
            print(f"{label + ' @ ' + where:38} {cells}")
    print()
    print(load_line(time.monotonic() - started))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--districts", type=int, default=10)
    parser.add_argument("--sources", type=int, default=20, help="sources per district")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="each source's latency")
    parser.add_argument("--runs", type=int, default=60, help="timed runs of each query")
    parser.add_argument(
        "--profile", type=Path, default=None, help="run each hub under cProfile; profiles here"
    )
    args = parser.parse_args()
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    runs = max(args.runs, 2)
    run_bench(run(args.districts, args.sources, args.latency_ms, runs, args.profile))


if __name__ == "__main__":
    main()
