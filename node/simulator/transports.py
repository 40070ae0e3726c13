"""How the simulator's devices send their readings: SenML packs over HTTP or MQTT.

Both keep trying until the node (HTTP) or the broker (MQTT, QoS 1: PUBACK)
has taken each pack, with backoff; a pack is never skipped. Sending a pack
again is harmless: the node stores a sensor's reading at a given time once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import urlsplit

import aiomqtt
import httpx
import orjson

from node.mqtt.topics import sensor_topic
from schema.runtime.retry import backoff_s

__all__ = ["HttpTransport", "MqttTransport", "Reading", "SendRefused", "Transport", "senml_pack"]

log = logging.getLogger("linli.simulator")

RETRY_BASE_S = 0.2
RETRY_MAX_S = 5.0
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Reading:
    """One reading of one sensor, as a device sends it."""

    sensor: str
    unit: str
    time: datetime
    value: float


def senml_pack(readings: Sequence[Reading]) -> bytes:
    """A SenML (RFC 8428) JSON pack: one record per reading, each with its name, unit and time."""
    return orjson.dumps(
        [{"n": r.sensor, "u": r.unit, "t": r.time.timestamp(), "v": r.value} for r in readings]
    )


class Transport(Protocol):
    """Sends one step's readings; returns once the receiving end has them."""

    async def send(self, readings: Sequence[Reading]) -> None: ...

    async def aclose(self) -> None: ...


class HttpTransport:
    """``POST`` a pack to the node's readings endpoint with the device's bearer token."""

    def __init__(self, url: str, token: str, *, timeout_s: float = TIMEOUT_S) -> None:
        self.url = url
        self.http = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/senml+json"},
            timeout=timeout_s,
        )

    async def send(self, readings: Sequence[Reading]) -> None:
        body = senml_pack(readings)
        attempts = 0
        while True:
            attempts += 1
            try:
                response = await self.http.post(self.url, content=body)
            except httpx.HTTPError as error:
                reason = f"{type(error).__name__}: {error}"
            else:
                if response.status_code < 300:
                    return
                if response.status_code not in (429, 502, 503, 504):
                    raise SendRefused(response.status_code, response.text)
                reason = f"HTTP {response.status_code}"
            delay = backoff_s(attempts, base_s=RETRY_BASE_S, max_s=RETRY_MAX_S)
            log.warning("sending readings to %s: %s; again in %.1f s", self.url, reason, delay)
            await asyncio.sleep(delay)

    async def aclose(self) -> None:
        await self.http.aclose()


class SendRefused(Exception):
    """The node refused a pack for good (not busy, not unavailable)."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status


class MqttTransport:
    """Publish each sensor's readings to its topic with QoS 1, reconnecting as needed."""

    def __init__(
        self,
        broker_url: str,
        *,
        node: str,
        device: str,
        prefix: str = "linli",
        username: str | None = None,
        password: str | None = None,
        client_id: str | None = None,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        parts = urlsplit(broker_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 1883
        self.node, self.device, self.prefix = node, device, prefix
        self.username, self.password = username, password
        self.client_id = client_id
        self.timeout_s = timeout_s
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: aiomqtt.Client | None = None

    async def _connected(self) -> aiomqtt.Client:
        if self._client is None:
            stack = contextlib.AsyncExitStack()
            client = aiomqtt.Client(
                self.host,
                self.port,
                username=self.username,
                password=self.password,
                identifier=self.client_id,
                timeout=self.timeout_s,
            )
            await stack.enter_async_context(client)
            self._stack, self._client = stack, client
        return self._client

    async def _drop(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            with contextlib.suppress(Exception):
                await stack.aclose()

    async def publish(self, topic: str, payload: bytes) -> None:
        """Publish until the broker acknowledges (PUBACK)."""
        attempts = 0
        while True:
            attempts += 1
            try:
                client = await self._connected()
                await client.publish(topic, payload, qos=1, timeout=self.timeout_s)
                return
            except aiomqtt.MqttError as error:
                await self._drop()
                delay = backoff_s(attempts, base_s=RETRY_BASE_S, max_s=RETRY_MAX_S)
                log.warning(
                    "publishing to %s:%d: %s; again in %.1f s", self.host, self.port, error, delay
                )
                await asyncio.sleep(delay)

    async def send(self, readings: Sequence[Reading]) -> None:
        by_sensor: dict[str, list[Reading]] = {}
        for reading in readings:
            by_sensor.setdefault(reading.sensor, []).append(reading)
        for sensor, own in by_sensor.items():
            topic = sensor_topic(self.prefix, self.node, self.device, sensor)
            await self.publish(topic, senml_pack(own))

    async def aclose(self) -> None:
        await self._drop()
