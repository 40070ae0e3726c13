"""``linli ... serve`` as child processes of a test: real processes, fixed ports, own logs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

__all__ = ["LINLI", "ServiceProcess"]

LINLI = Path(sys.executable).parent / "linli"


class ServiceProcess:
    """One ``linli <part> serve`` process on a fixed port; its output goes to ``log``."""

    def __init__(
        self, name: str, args: list[str], env: Mapping[str, str], port: int, log: Path
    ) -> None:
        self.name = name
        self.args = [str(LINLI), *args]
        self.env = {**os.environ, **env, "LINLI_PORT": str(port)}
        self.port = port
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text("utf-8", "replace")[-chars:] if self.log.exists() else ""

    def spawn(self) -> subprocess.Popen[bytes]:
        """Start the process, appending to its log."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.args, env=self.env, stdout=out, stderr=out)
        return self.process

    async def start(self, timeout_s: float = 60.0) -> None:
        """Start the process and wait until its ``/readyz`` answers 200."""
        process = self.spawn()
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=30.0) as http:
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise AssertionError(f"{self.name} exited:\n{self.tail()}")
                try:
                    if (await http.get(f"{self.url}/readyz", timeout=1)).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.05)
        raise AssertionError(f"{self.name} not ready within {timeout_s:g} s:\n{self.tail()}")

    def stop(self) -> None:
        """Terminate the process; kill it if it lingers."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
