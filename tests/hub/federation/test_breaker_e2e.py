"""A node process killed and restarted under continuous traffic: the hub's breaker closes again.

The hub runs in-process on real HTTP; the node is a ``linli node serve`` process
on its own SQLite database, killed with SIGKILL and started again on the same port.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from tests.hub.federation.conftest import DISTRICT, RunningHub

NODE = "110105001001"
COOLDOWN_S = 2.0
PERIOD_S = 0.15  # one query every 150 ms
MARGIN_S = 1.5  # two shared cores: scheduling and a slow first answer
INCIDENTS = "{ incidents(first: 5) { edges { node { id } } } }"
CIRCUIT = "{ sources { id circuit } }"


class NodeProcess:
    """``linli node serve`` on a fixed port and database."""

    def __init__(self, folder: Path, port: int, hub: RunningHub) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log = folder / "node.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.env = {
            **os.environ,
            "LINLI_DATABASE_URL": f"sqlite+aiosqlite:///{folder / 'node.db'}",
            "LINLI_PORT": str(port),
            "LINLI_ORG_CODE": NODE,
            "LINLI_DISTRICT": DISTRICT,
            "LINLI_TOKEN_ISSUER": hub.settings.issuer,
            "LINLI_JWKS_URL": f"{hub.url}/.well-known/jwks.json",
            "LINLI_LOG_LEVEL": "WARNING",
        }

    def spawn(self) -> subprocess.Popen[bytes]:
        linli = Path(sys.executable).parent / "linli"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(linli), "node", "serve"], env=self.env, stdout=log, stderr=log
            )
        return self.process

    async def start(self) -> float:
        """Start the process; the moment it is ready."""
        process = self.spawn()
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient(timeout=30.0) as http:
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise AssertionError(f"node exited: {self.log.read_text('utf-8')[-2000:]}")
                try:
                    if (await http.get(f"{self.url}/readyz", timeout=1)).status_code == 200:
                        return time.monotonic()
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError("node not ready within 30 s")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@dataclass
class Traffic:
    """What each query of the continuous traffic saw of the node: (sent at, status)."""

    seen: list[tuple[float, str]] = field(default_factory=list)
    sent: list[float] = field(default_factory=list)

    def statuses_since(self, moment: float) -> list[str]:
        return [status for at, status in self.seen if at >= moment]

    def first_since(self, moment: float, status: str) -> float | None:
        return next((at for at, s in self.seen if at >= moment and s == status), None)


@pytest.fixture
async def node_process(tmp_path: Path) -> AsyncIterator[Callable[..., NodeProcess]]:
    started: list[NodeProcess] = []

    def make(port: int, hub: RunningHub) -> NodeProcess:
        node = NodeProcess(tmp_path, port, hub)
        started.append(node)
        return node

    yield make
    for node in started:
        node.stop()


async def test_the_breaker_closes_again_while_traffic_continues(
    start_hub: Callable[..., Any], node_process: Callable[..., NodeProcess]
) -> None:
    port = free_port()
    hub = await start_hub(
        {NODE: f"http://127.0.0.1:{port}"},
        source_timeout_s=1.0,
        deadline_s=2.0,
        breaker_threshold=3,
        breaker_cooldown_s=COOLDOWN_S,
    )
    node = node_process(port, hub)
    await node.start()
    client = await hub.graphql()
    traffic = Traffic()
    stop = asyncio.Event()

    async def continuous() -> None:
        for _ in range(600):  # bounded: at most ~90 s of traffic
            if stop.is_set():
                return
            sent = time.monotonic()
            traffic.sent.append(sent)
            body = await client.post(INCIDENTS)
            [report] = body["extensions"]["sources"]
            traffic.seen.append((sent, report["status"]))
            await asyncio.sleep(max(0.0, PERIOD_S - (time.monotonic() - sent)))

    async def circuit() -> str:
        [source] = (await client.data(CIRCUIT))["sources"]
        return str(source["circuit"])

    running = asyncio.create_task(continuous())
    try:
        await _until(lambda: traffic.first_since(0, "ok") is not None, 10)
        killed = time.monotonic()
        node.kill()
        opened = await _until_async(lambda: _is(circuit, "open"), 10)
        assert set(traffic.statuses_since(killed)) <= {"ok", "unavailable", "error", "timeout"}
        await asyncio.sleep(COOLDOWN_S)  # traffic goes on against the open breaker
        assert not running.done()
        ready = await node.start()  # the same port, the same database
        bound = ready + COOLDOWN_S + PERIOD_S + MARGIN_S
        await _until(lambda: traffic.first_since(ready, "ok") is not None, bound - ready + 5)
        recovered = traffic.first_since(ready, "ok")
        assert recovered is not None
        assert recovered <= bound, (
            f"ok {recovered - ready:.2f} s after the node was ready "
            f"(cool-down {COOLDOWN_S} s, opened {opened - killed:.2f} s after the kill)"
        )
        assert await circuit() == "closed"
        assert not running.done()  # the traffic never stopped
    finally:
        stop.set()
        await running
    during = [at for at in traffic.sent if killed <= at <= recovered]
    gaps = [b - a for a, b in itertools.pairwise(during)]
    assert max(gaps) < PERIOD_S + 1.0 + MARGIN_S  # one source timeout at most between queries
    assert "unavailable" in traffic.statuses_since(killed)  # refused while the circuit was open


async def _is(check: Callable[[], Any], wanted: str) -> bool:
    return bool(await check() == wanted)


async def _until(condition: Callable[[], bool], timeout_s: float) -> float:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:.1f} s")
        await asyncio.sleep(0.02)
    return time.monotonic()


async def _until_async(condition: Callable[[], Any], timeout_s: float) -> float:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:.1f} s")
        await asyncio.sleep(0.05)
    return time.monotonic()
