"""What the benches share: child processes, ports, readiness, OAuth clients, percentiles."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import aiohttp

from hub.auth.service import create_client
from schema.enums import OrgKind
from schema.runtime.db import Database

__all__ = [
    "BIN",
    "basic_auth",
    "children",
    "cpu_s",
    "free_port",
    "kill",
    "load_line",
    "migrate_hub",
    "p50",
    "p99",
    "register_clients",
    "run_bench",
    "scratch_folder",
    "spawn",
    "stop",
    "stop_all",
    "token",
    "wait_ready",
    "write_sources_file",
]

BIN = Path(sys.executable).parent
children: list[subprocess.Popen[bytes]] = []


# --- child processes ---------------------------------------------------------------


def spawn(
    args: list[str],
    *,
    log: Path | None = None,
    append: bool = False,
    stdin: int = subprocess.PIPE,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a child process that is stopped when the bench ends, however it ends."""
    with contextlib.ExitStack() as files:
        mode = "ab" if append else "wb"
        out: Any = files.enter_context(log.open(mode)) if log is not None else subprocess.PIPE
        process = subprocess.Popen(args, stdin=stdin, stdout=out, stderr=subprocess.STDOUT, env=env)
    children.append(process)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate a child, kill it if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            stream.close()
    if process in children:
        children.remove(process)


def kill(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL a child: no shutdown, in-flight requests and transactions are cut off."""
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    children.remove(process)


def stop_all() -> None:
    """Stop every child process still running."""
    for process in list(children):
        stop(process)


def run_bench(main: Coroutine[Any, Any, None]) -> None:
    """Run ``main``; stop every child process whatever happens, SIGTERM included."""
    # Terminated like interrupted: unwind, so that the children are stopped too.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        asyncio.run(main)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    finally:
        stop_all()


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from ``/proc`` (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime are the 14th and 15th fields of the line, in clock ticks.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def wait_ready(
    http: aiohttp.ClientSession,
    url: str,
    process: subprocess.Popen[bytes],
    name: str,
    *,
    timeout_s: float,
    interval_s: float,
) -> None:
    """Until ``url``'s ``/readyz`` answers 200; fails if ``process`` exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}")
        with contextlib.suppress(aiohttp.ClientError):
            async with http.get(f"{url}/readyz") as response:
                if response.status == 200:
                    return
        await asyncio.sleep(interval_s)
    raise TimeoutError(f"{name} was not ready within {timeout_s:g} s")


@contextlib.contextmanager
def scratch_folder(prefix: str) -> Iterator[Path]:
    """A temporary folder, removed with everything in it on the way out."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


# --- the hub's database, clients and tokens ------------------------------------------


async def migrate_hub(database_url: str) -> None:
    """Bring a hub database to the newest migration with ``linli db upgrade hub``."""
    await asyncio.to_thread(
        subprocess.run,
        [str(BIN / "linli"), "db", "upgrade", "hub", "--database-url", database_url],
        check=True,
        capture_output=True,
        timeout=180,
    )


async def register_clients(
    database_url: str, clients: Sequence[tuple[str, OrgKind, str]], district: str
) -> dict[str, tuple[str, str]]:
    """One hub OAuth client per ``(org, kind, scopes)``, in one transaction; org -> (id, secret)."""
    secrets: dict[str, tuple[str, str]] = {}
    db = Database(database_url)
    try:
        async with db.transaction() as session:
            for org, org_kind, scopes in clients:
                client, secret = await create_client(
                    session, org=org, org_kind=org_kind, district=district, scopes=scopes
                )
                secrets[org] = (client.client_id, secret)
    finally:
        await db.dispose()
    return secrets


def basic_auth(user: str, password: str) -> str:
    """An HTTP Basic ``Authorization`` value (RFC 6749 §2.3.1: form-encode, then base64)."""
    pair = f"{quote_plus(user)}:{quote_plus(password)}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


async def token(
    http: aiohttp.ClientSession,
    hub_url: str,
    client: tuple[str, str],
    scopes: str,
    aud: str | None = None,
) -> str:
    """A client-credentials access token from the hub's ``/oauth/token``, for ``aud`` if given."""
    form = {"grant_type": "client_credentials", "scope": scopes}
    if aud is not None:
        form["resource"] = aud
    async with http.post(
        f"{hub_url}/oauth/token", data=form, headers={"Authorization": basic_auth(*client)}
    ) as response:
        body = await response.json()
        if response.status != 200:
            raise RuntimeError(f"token for {client[0]}: {response.status} {body}")
        access_token: str = body["access_token"]
        return access_token


def write_sources_file(path: Path, sources: Mapping[str, str]) -> Path:
    """Write a hub sources file naming ``sources`` (id -> URL) in order; ``path``."""
    path.write_text(
        "".join(f'[[sources]]\nid = "{sid}"\nurl = "{url}"\n\n' for sid, url in sources.items()),
        "utf-8",
    )
    return path


# --- reporting -----------------------------------------------------------------------


def p50(samples: list[float]) -> float:
    """The median."""
    return statistics.median(samples)


def p99(samples: list[float]) -> float:
    """The 99th percentile, interpolated (with 40 samples, close to the slowest one)."""
    if len(samples) < 2:
        return samples[0]
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


def load_line(elapsed_s: float) -> str:
    """How long the bench took, on how many cores, and the load average now."""
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"(bench took {elapsed_s:.0f} s on {os.cpu_count()} cores; load average now {load})"
