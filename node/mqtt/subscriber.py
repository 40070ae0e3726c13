"""The node's MQTT subscriber: sensor readings from the broker into the node's store.

It connects with a stable client id and a persistent session (MQTT 3.1.1
``clean_session`` false), subscribes to this node's sensor topics with QoS 1,
and acknowledges a message (PUBACK) only after the sink has stored it or
refused it for good. A broker that restarts, or a node that stops, therefore
loses nothing that was acknowledged: the broker keeps the session and sends
again what was not. Messages are stored in batches of up to ``mqtt_batch``;
the broker sends no more than its in-flight window of unacknowledged messages,
so a burst waits at the broker (back-pressure) rather than being dropped here.
A lost connection is retried for ever, with backoff. The password is never
logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import NoReturn
from urllib.parse import urlsplit

import aiomqtt
from prometheus_client import CollectorRegistry, Counter, Gauge

from node.mqtt.errors import MessageTooLarge, SensorTopicInvalid
from node.mqtt.sink import DeviceMessage, IngestOutcome, ReadingsSink
from node.mqtt.topics import parse_topic, subscription
from node.settings import NodeSettings
from schema.runtime.retry import backoff_s
from schema.runtime.tasks import BackgroundTasks

__all__ = ["MqttMetrics", "MqttSubscriber"]

log = logging.getLogger("linli.node.mqtt")

QOS = 1


class MqttMetrics:
    """The subscriber's Prometheus metrics, on the node's registry."""

    def __init__(self) -> None:
        self.connected = Gauge(
            "linli_node_mqtt_connected", "1 while subscribed to the MQTT broker", registry=None
        )
        self.connects = Counter(
            "linli_node_mqtt_connects_total", "Successful connections to the broker", registry=None
        )
        self.connection_failures = Counter(
            "linli_node_mqtt_connection_failures_total",
            "Connections to the broker that failed or were lost",
            registry=None,
        )
        self.messages = Counter(
            "linli_node_mqtt_messages_total",
            "MQTT messages handled: stored (readings kept, duplicates included) or refused",
            ["outcome"],
            registry=None,
        )
        self.refused = Counter(
            "linli_node_mqtt_refused_total",
            "MQTT messages, or readings in them, refused by code (e.g. SENSOR_NOT_OWNED)",
            ["code"],
            registry=None,
        )
        self.readings = Counter(
            "linli_node_mqtt_readings_total",
            "Readings received over MQTT: stored, duplicate (already stored) or refused",
            ["outcome"],
            registry=None,
        )
        self.retries = Counter(
            "linli_node_mqtt_store_retries_total",
            "Batches stored again after a failure (the database was busy or gone)",
            registry=None,
        )

    def register(self, registry: CollectorRegistry) -> None:
        """Expose the metrics on ``registry`` (the node's ``/metrics``)."""
        for metric in (
            self.connected,
            self.connects,
            self.connection_failures,
            self.messages,
            self.refused,
            self.readings,
            self.retries,
        ):
            registry.register(metric)

    def outcome(self, outcome: IngestOutcome) -> None:
        if outcome.refused is not None:
            self.messages.labels("refused").inc()
            self.refused.labels(outcome.refused).inc()
            return
        self.messages.labels("stored").inc()
        self.readings.labels("stored").inc(outcome.stored)
        self.readings.labels("duplicate").inc(outcome.duplicates)
        for code in outcome.refused_readings:
            self.readings.labels("refused").inc()
            self.refused.labels(code).inc()


@dataclass(frozen=True)
class _Broker:
    host: str
    port: int
    tls: bool

    @classmethod
    def of(cls, url: str) -> _Broker:
        parts = urlsplit(url)
        tls = parts.scheme == "mqtts"
        return cls(
            host=parts.hostname or "127.0.0.1", port=parts.port or (8883 if tls else 1883), tls=tls
        )

    def __str__(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


class MqttSubscriber:
    """Subscribes to this node's sensor topics and hands each batch to ``sink``."""

    def __init__(
        self,
        settings: NodeSettings,
        sink: ReadingsSink,
        metrics: MqttMetrics,
        *,
        max_payload_bytes: int | None = None,
    ) -> None:
        assert settings.mqtt_url is not None
        self.settings = settings
        self.sink = sink
        self.metrics = metrics
        self.broker = _Broker.of(settings.mqtt_url)
        self.topic_filter = subscription(settings.mqtt_topic_prefix, settings.source_id)
        self.max_payload_bytes = max_payload_bytes or settings.max_body_bytes
        self.subscribed = asyncio.Event()

    def _client(self) -> aiomqtt.Client:
        password = self.settings.mqtt_password
        client = aiomqtt.Client(
            self.broker.host,
            self.broker.port,
            username=self.settings.mqtt_username,
            password=password.get_secret_value() if password is not None else None,
            identifier=self.settings.mqtt_identifier,
            clean_session=False,
            keepalive=self.settings.mqtt_keepalive_s,
            timeout=self.settings.mqtt_timeout_s,
            tls_context=ssl.create_default_context() if self.broker.tls else None,
            logger=logging.getLogger("linli.node.mqtt.client"),
        )
        # Acknowledge only what the sink has stored: aiomqtt has no option for it yet
        # (empicano/aiomqtt#345); paho-mqtt's manual acknowledgement is the documented way.
        client._client.manual_ack_set(True)
        return client

    async def run(self) -> NoReturn:
        """Stay subscribed for ever: reconnect with backoff whenever the connection is lost."""
        failures = 0
        while True:
            try:
                async with self._client() as client:
                    await client.subscribe(self.topic_filter, qos=QOS)
                    failures = 0
                    self.metrics.connects.inc()
                    self.metrics.connected.set(1)
                    self.subscribed.set()
                    log.info("subscribed to %s at %s", self.topic_filter, self.broker)
                    await self._consume(client)
            except aiomqtt.MqttError as error:
                reason = str(error)
            except Exception as error:  # never give up: log it and reconnect
                log.exception("MQTT subscriber failed")
                reason = type(error).__name__
            else:
                reason = "the message stream ended"
            finally:
                self.subscribed.clear()
                self.metrics.connected.set(0)
            failures += 1
            self.metrics.connection_failures.inc()
            delay = backoff_s(
                failures,
                base_s=self.settings.mqtt_reconnect_base_s,
                max_s=self.settings.mqtt_reconnect_max_s,
            )
            log.warning("MQTT broker %s: %s; reconnecting in %.1f s", self.broker, reason, delay)
            await asyncio.sleep(delay)

    async def _consume(self, client: aiomqtt.Client) -> None:
        messages = client.messages
        async for first in messages:
            batch = [first]
            # Whatever is already queued goes in the same transaction.
            while len(messages) and len(batch) < self.settings.mqtt_batch:
                batch.append(await anext(messages))
            outcomes = await self._store(batch)
            for message, outcome in zip(batch, outcomes, strict=True):
                self.metrics.outcome(outcome)
                refused = outcome.refused or ", ".join(sorted(set(outcome.refused_readings)))
                if refused:
                    log.warning("refused (readings on) %s: %s", message.topic.value, refused)
                client._client.ack(message.mid, message.qos)

    async def _store(self, batch: Sequence[aiomqtt.Message]) -> list[IngestOutcome]:
        """The batch's outcomes; retried (nothing acknowledged) until the sink has stored it."""
        outcomes: list[IngestOutcome | None] = []
        accepted: list[DeviceMessage] = []
        for message in batch:
            outcome, device_message = self._screen(message)
            outcomes.append(outcome)
            if device_message is not None:
                accepted.append(device_message)
        attempts = 0
        while True:
            try:
                stored = await self.sink(accepted) if accepted else []
                break
            except Exception:
                attempts += 1
                self.metrics.retries.inc()
                delay = backoff_s(
                    attempts,
                    base_s=self.settings.mqtt_reconnect_base_s,
                    max_s=self.settings.mqtt_reconnect_max_s,
                )
                log.exception(
                    "could not store %d MQTT messages; again in %.1f s", len(accepted), delay
                )
                await asyncio.sleep(delay)
        results = iter(stored)
        return [outcome if outcome is not None else next(results) for outcome in outcomes]

    def _screen(
        self, message: aiomqtt.Message
    ) -> tuple[IngestOutcome | None, DeviceMessage | None]:
        """A refusal, or the message for the sink."""
        topic = parse_topic(
            self.settings.mqtt_topic_prefix, self.settings.source_id, message.topic.value
        )
        if topic is None:
            return IngestOutcome(refused=SensorTopicInvalid.code), None
        payload = message.payload
        if isinstance(payload, str):
            payload = payload.encode()
        if not isinstance(payload, bytes | bytearray):
            payload = b""
        if len(payload) > self.max_payload_bytes:
            return IngestOutcome(refused=MessageTooLarge.code), None
        return None, DeviceMessage(device=topic.device, sensor=topic.sensor, payload=bytes(payload))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The subscriber, for the life of the block."""
        async with BackgroundTasks("mqtt-subscriber") as tasks:
            tasks.start(self.run())
            yield
