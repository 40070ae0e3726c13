"""MQTT brokers for tests: the machine's Mosquitto for the normal path, or a private one to kill.

Tests never stop or restart the shared broker at 127.0.0.1:1883: a test that needs
a broker to die starts its own ``mosquitto`` on a free port, with persistence in
its own folder, and restarts only that one.
"""

from __future__ import annotations

import contextlib
import getpass
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiomqtt

__all__ = ["SHARED_BROKER", "PrivateBroker", "forget_session", "mosquitto", "unique"]

SHARED_BROKER = "mqtt://127.0.0.1:1883"


def unique(prefix: str) -> str:
    """A name no other test (or helper on this machine) uses: topics and client ids."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def mosquitto() -> str:
    found = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    assert Path(found).exists(), "mosquitto is not installed"
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _answers(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class PrivateBroker:
    """A Mosquitto of this test's own: persistence on, unlimited queues, on a free port."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = _free_port()
        self.conf = folder / "mosquitto.conf"
        self.log = folder / "mosquitto.log"
        (folder / "data").mkdir(parents=True, exist_ok=True)
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence true\n"
            f"persistence_location {folder / 'data'}/\n"
            # Queue every QoS 1 message of an offline persistent session (default 1000).
            "max_queued_messages 0\n"
            f"user {getpass.getuser()}\n"
            f"log_dest file {self.log}\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [mosquitto(), "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not _answers(self.port):
            assert self.process.poll() is None, self.log.read_text() if self.log.exists() else ""
            assert time.monotonic() < deadline, "mosquitto did not start"
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop it as a service manager would (SIGTERM: it saves its sessions and queues)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)

    @classmethod
    @contextlib.contextmanager
    def running(cls, folder: Path) -> Iterator[PrivateBroker]:
        broker = cls(folder)
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()


async def forget_session(url: str, client_id: str) -> None:
    """End a persistent session at the broker (connect once with a clean session)."""
    host, port = url.removeprefix("mqtt://").split(":")
    with contextlib.suppress(aiomqtt.MqttError):
        async with aiomqtt.Client(host, int(port), identifier=client_id, clean_session=True):
            pass
