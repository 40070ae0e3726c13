"""Requests a second and CPU per request of the hub and of one node, on the demo district.

Run: ``.venv/bin/python bench/throughput.py [--concurrency 10] [--seconds 8] [--rounds 2]``.

``linli demo`` runs as a child process on free ports in a scratch folder: the hub,
three community nodes seeded with the demo data, and the CAP adapter (which does
not serve ``resources``, so the hub does not plan it). Then, ``--rounds`` times,
two phases of ``--seconds`` each with ``--concurrency`` clients in a closed loop:

- hub: ``{ resources(first: 50) { edges { node { id name available } } } }`` at
  the hub with the emergency office's token (a federated request over the three
  nodes);
- node: the same query directly at the first node with its staff token.

For each phase: requests a second, p50 and p99 latency, and the CPU (user +
system, from ``/proc``) of the hub and of each node per request. The demo's
GraphQL rate limit per client is lifted: it is not what is measured.

Goals (issue 12), as ratios in this run: the hub's CPU per federated request
over the three nodes at most one node's CPU per direct request; the node's p99
under the concurrency within 5x its p50.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from _harness import BIN, cpu_s, load_line, p50, p99, run_bench, scratch_folder, spawn, stop_all

QUERY = "{ resources(first: 50) { edges { node { id name available } } } }"
DEMO_PORTS = 5  # the hub, three nodes, the CAP adapter
GOAL_CPU_RATIO = 1.0
GOAL_NODE_P99_OVER_P50 = 5.0


@dataclass
class Demo:
    """The running demo: URLs, tokens, and the process of each server."""

    hub_url: str
    hub_token: str
    node_url: str
    node_org: str
    node_token: str
    pids: dict[str, int]  # "hub", "node 110105001001", ...


@dataclass
class Phase:
    """One closed-loop phase at one target."""

    target: str  # "hub" or "node"
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)  # ms
    failures: int = 0
    cpu: dict[str, float] = field(default_factory=dict)  # process name -> CPU seconds

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds

    def cpu_ms(self, name: str) -> float:
        """CPU of process ``name`` per request of this phase (ms)."""
        return self.cpu[name] * 1000 / len(self.latencies)


def free_port_run(count: int) -> int:
    """The first of ``count`` consecutive TCP ports on 127.0.0.1 that were free a moment ago."""
    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base: int = probe.getsockname()[1]
        if base + count > 65535:
            continue
        sockets: list[socket.socket] = []
        try:
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return base
    raise RuntimeError(f"no {count} consecutive free ports")


def child_pids(parent: int) -> dict[str, int]:
    """The demo's servers by name (``hub``, ``node ORG``, ``adapter``), from ``/proc``."""
    found: dict[str, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) != parent:
                continue
            args = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if b"hub" in args and b"serve" in args:
            found["hub"] = int(entry.name)
        elif b"node" in args and b"serve" in args:
            org = next(v for v in environ if v.startswith(b"LINLI_ORG_CODE=")).split(b"=", 1)[1]
            found[f"node {org.decode()}"] = int(entry.name)
        elif b"adapter" in args:
            found["adapter"] = int(entry.name)
    return found


async def start_demo(folder: Path) -> Demo:
    """Run ``linli demo`` on free ports until it has written its ``demo.json``."""
    port = free_port_run(DEMO_PORTS)
    env = {**os.environ, "LINLI_GRAPHQL_RATE_PER_CLIENT": "100000"}
    await asyncio.to_thread(folder.mkdir)
    log = folder / "demo.log"
    args = [str(BIN / "linli"), "demo", "--port", str(port), "--data-dir", str(folder)]
    process = spawn(args, log=log, env=env)
    state_path = folder / "demo.json"
    deadline = time.monotonic() + 180
    while not state_path.is_file():
        if process.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text("utf-8", "replace")[-4000:]
            print(f"--- demo log ({log}) ---\n{tail}", file=sys.stderr)
            raise RuntimeError("the demo did not start")
        await asyncio.sleep(0.5)
    await asyncio.sleep(0.5)  # the file is written in one go; let it land
    state: dict[str, Any] = json.loads(state_path.read_text("utf-8"))
    staff = state["roles"]["community_staff"][0]
    pids = child_pids(process.pid)
    if "hub" not in pids or sum(name.startswith("node ") for name in pids) != 3:
        raise RuntimeError(f"the demo's servers are not all found: {sorted(pids)}")
    return Demo(
        hub_url=state["hub"]["url"],
        hub_token=state["roles"]["department"]["token"],
        node_url=staff["graphql"].removesuffix("/graphql"),
        node_org=staff["org"],
        node_token=staff["token"],
        pids=pids,
    )


def failure(body: Any, *, federated: bool) -> bool:
    """Whether an answer is not a full one (an error, or a source that did not answer ok)."""
    if body.get("errors") or not body.get("data", {}).get("resources", {}).get("edges"):
        return True
    if federated:
        statuses = [s["status"] for s in body.get("extensions", {}).get("sources", [])]
        return len(statuses) != 3 or any(s != "ok" for s in statuses)
    return False


async def phase(
    http: aiohttp.ClientSession, demo: Demo, target: str, concurrency: int, seconds: float
) -> Phase:
    """``concurrency`` clients in a closed loop at ``target`` for ``seconds``."""
    url, bearer = (
        (demo.hub_url, demo.hub_token) if target == "hub" else (demo.node_url, demo.node_token)
    )
    headers = {"Authorization": f"Bearer {bearer}"}
    result = Phase(target)
    stop_at = time.monotonic() + seconds

    async def client() -> None:
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            async with http.post(f"{url}/graphql", json={"query": QUERY}, headers=headers) as r:
                body = await r.json()
            result.latencies.append((time.perf_counter() - started) * 1000)
            if failure(body, federated=target == "hub"):
                result.failures += 1

    cpu_before = {name: cpu_s(pid) for name, pid in demo.pids.items()}
    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    result.seconds = time.monotonic() - started
    result.cpu = {name: cpu_s(pid) - cpu_before[name] for name, pid in demo.pids.items()}
    return result


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def report(phases: list[Phase], demo: Demo, concurrency: int, elapsed_s: float) -> None:
    nodes = sorted(name for name in demo.pids if name.startswith("node "))
    first_node = f"node {demo.node_org}"
    print(
        f"`resources(first: 50)` on the demo district, {concurrency} clients in a closed loop; "
        f"hub = federated over {len(nodes)} nodes, node = direct at {first_node}"
    )
    print()
    print(
        f"{'round':>5}{'target':>7}{'req/s':>8}{'p50':>8}{'p99':>8}{'p99/p50':>9}"
        f"{'hub cpu/req':>13}{'nodes cpu/req':>15}{'failed':>8}"
    )
    for i, result in enumerate(phases):
        nodes_cpu = sum(result.cpu_ms(n) for n in nodes)
        print(
            f"{i // 2 + 1:>5}{result.target:>7}{result.rps:>8.1f}"
            f"{p50(result.latencies):>8.1f}{p99(result.latencies):>8.1f}"
            f"{p99(result.latencies) / p50(result.latencies):>9.2f}"
            f"{result.cpu_ms('hub'):>13.2f}{nodes_cpu:>15.2f}{result.failures:>8}"
        )
    print(
        "(latencies in ms; cpu/req = ms of user + system CPU per request of the phase;"
        " nodes = the three nodes together)"
    )
    print()
    hub_phases = [p for p in phases if p.target == "hub"]
    node_phases = [p for p in phases if p.target == "node"]
    for hub, node in zip(hub_phases, node_phases, strict=True):
        ratio = hub.cpu_ms("hub") / node.cpu_ms(first_node)
        spread = p99(node.latencies) / p50(node.latencies)
        print(
            f"hub {hub.rps:.1f} req/s, node {node.rps:.1f} req/s; hub CPU per federated request"
            f" {hub.cpu_ms('hub'):.2f} ms = {ratio:.2f}x the node's per direct request"
            f" ({node.cpu_ms(first_node):.2f} ms), goal <= {GOAL_CPU_RATIO:g}x:"
            f" {verdict(ratio <= GOAL_CPU_RATIO)}; node p99/p50 {spread:.2f},"
            f" goal <= {GOAL_NODE_P99_OVER_P50:g}: {verdict(spread <= GOAL_NODE_P99_OVER_P50)}"
        )
    print(load_line(elapsed_s))


async def run(concurrency: int, seconds: float, rounds: int) -> None:
    started = time.monotonic()
    with scratch_folder("linli-throughput-") as folder:
        print("starting the demo …", file=sys.stderr, flush=True)
        try:
            demo = await start_demo(folder / "1")
        except RuntimeError:  # on a loaded machine the demo's 60 s for start-up can pass
            stop_all()
            print("starting the demo again …", file=sys.stderr, flush=True)
            demo = await start_demo(folder / "2")
        connector = aiohttp.TCPConnector(limit=0)
        phases: list[Phase] = []
        async with aiohttp.ClientSession(connector=connector) as http:
            await phase(http, demo, "hub", concurrency, 1.0)  # warm-up
            await phase(http, demo, "node", concurrency, 1.0)
            for _ in range(rounds):
                for target in ("hub", "node"):
                    phases.append(await phase(http, demo, target, concurrency, seconds))
        report(phases, demo, concurrency, time.monotonic() - started)


def main() -> None:
    """Parse the options, run the bench, stop every child process whatever happens."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=10, help="clients in a closed loop")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each phase")
    parser.add_argument("--rounds", type=int, default=2, help="hub and node phases, alternating")
    args = parser.parse_args()
    run_bench(run(args.concurrency, args.seconds, max(args.rounds, 1)))


if __name__ == "__main__":
    main()
