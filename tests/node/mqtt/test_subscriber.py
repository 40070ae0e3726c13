"""The MQTT subscriber against real brokers, with a sink that records what it is handed.

The sink is the subscriber's boundary (node.mqtt.sink); what the node's real sink
stores is tested end to end in tests/e2e/test_sensor_journey.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from node.mqtt import DeviceMessage, IngestOutcome, MqttMetrics, MqttSubscriber
from node.settings import NodeSettings
from node.simulator.transports import MqttTransport, Reading
from tests.brokers import SHARED_BROKER, PrivateBroker, forget_session, unique

DEADLINE_S = 60.0


class RecordingSink:
    """Keeps every message it is handed; refuses devices writing a sensor not their own."""

    def __init__(self, owners: dict[str, str]) -> None:
        self.owners = owners  # sensor -> device
        self.stored: list[DeviceMessage] = []
        self.failures_left = 0  # raise this many times first (a database that is down)
        self.block = asyncio.Event()
        self.block.set()
        self.calls = 0

    async def __call__(self, batch: Sequence[DeviceMessage]) -> list[IngestOutcome]:
        self.calls += 1
        await self.block.wait()
        if self.failures_left:
            self.failures_left -= 1
            raise ConnectionError("database unavailable")
        outcomes = []
        for message in batch:
            if self.owners.get(message.sensor) != message.device:
                outcomes.append(IngestOutcome(refused="SENSOR_NOT_OWNED"))
                continue
            self.stored.append(message)
            outcomes.append(IngestOutcome(stored=1))
        return outcomes

    def values(self) -> list[float]:
        return [record["v"] for m in self.stored for record in orjson.loads(m.payload)]


def node_settings(broker: str, node: str, client_id: str) -> NodeSettings:
    return NodeSettings(
        node_id=node,
        mqtt_url=broker,
        mqtt_client_id=client_id,
        mqtt_reconnect_base_s=0.1,
        mqtt_reconnect_max_s=1.0,
    )


@contextlib.asynccontextmanager
async def subscribed(
    settings: NodeSettings, sink: RecordingSink
) -> AsyncIterator[tuple[MqttSubscriber, MqttMetrics]]:
    metrics = MqttMetrics()
    subscriber = MqttSubscriber(settings, sink, metrics)
    async with subscriber.running():
        await asyncio.wait_for(subscriber.subscribed.wait(), DEADLINE_S)
        yield subscriber, metrics


async def wait_until(check: object, what: str) -> None:
    deadline = asyncio.get_running_loop().time() + DEADLINE_S
    while not check():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def reading(sensor: str, value: float, unit: str = "m") -> Reading:
    return Reading(sensor, unit, datetime.now(UTC), value)


@pytest.fixture
async def shared_session() -> AsyncIterator[tuple[str, str]]:
    """A node id and client id of this test's own on the machine's broker; forgotten after."""
    node, client_id = unique("node"), unique("linli-node")
    yield node, client_id
    await forget_session(SHARED_BROKER, client_id)


async def test_readings_reach_the_sink_with_their_device_and_sensor(
    shared_session: tuple[str, str],
) -> None:
    node, client_id = shared_session
    sink = RecordingSink({"carpark-b2-level": "dev-1", "floors/b3/level": "dev-2"})
    async with subscribed(node_settings(SHARED_BROKER, node, client_id), sink) as (_, metrics):
        one = MqttTransport(SHARED_BROKER, node=node, device="dev-1")
        two = MqttTransport(SHARED_BROKER, node=node, device="dev-2")
        for i in range(5):
            await one.send([reading("carpark-b2-level", 0.1 * i)])
            await two.send([reading("floors/b3/level", 1.0 + i)])
        await wait_until(lambda: len(sink.stored) == 10, "ten messages")
        await one.aclose()
        await two.aclose()
    by_sensor = {(m.device, m.sensor) for m in sink.stored}
    # A sensor code with "/" in it is the rest of the topic.
    assert by_sensor == {("dev-1", "carpark-b2-level"), ("dev-2", "floors/b3/level")}
    assert sorted(sink.values()) == sorted(
        [0.1 * i for i in range(5)] + [1.0 + i for i in range(5)]
    )
    assert metrics.messages.labels("stored")._value.get() == 10


async def test_a_device_writing_another_devices_sensor_is_refused_and_counted(
    shared_session: tuple[str, str],
) -> None:
    node, client_id = shared_session
    sink = RecordingSink({"carpark-b2-level": "dev-1"})
    async with subscribed(node_settings(SHARED_BROKER, node, client_id), sink) as (_, metrics):
        intruder = MqttTransport(SHARED_BROKER, node=node, device="dev-evil")
        await intruder.send([reading("carpark-b2-level", 9.9)])
        owner = MqttTransport(SHARED_BROKER, node=node, device="dev-1")
        await owner.send([reading("carpark-b2-level", 0.2)])
        # Not a sensor topic of this node's scheme: refused before the sink.
        await owner.publish(f"linli/{node}/devices/dev-1/sensors", b"[]")
        await wait_until(
            lambda: metrics.messages.labels("refused")._value.get() == 2 and len(sink.stored) == 1,
            "two refusals and one stored",
        )
        await intruder.aclose()
        await owner.aclose()
    assert sink.values() == [0.2]
    assert metrics.refused.labels("SENSOR_NOT_OWNED")._value.get() == 1
    assert metrics.refused.labels("SENSOR_TOPIC_INVALID")._value.get() == 1


async def test_a_batch_that_cannot_be_stored_is_retried_until_it_is(
    shared_session: tuple[str, str],
) -> None:
    node, client_id = shared_session
    sink = RecordingSink({"carpark-b2-level": "dev-1"})
    sink.failures_left = 3
    async with subscribed(node_settings(SHARED_BROKER, node, client_id), sink) as (_, metrics):
        device = MqttTransport(SHARED_BROKER, node=node, device="dev-1")
        await device.send([reading("carpark-b2-level", 0.5)])
        await wait_until(lambda: len(sink.stored) == 1, "the reading stored after 3 failures")
        await device.aclose()
    assert sink.values() == [0.5]
    assert metrics.retries._value.get() == 3


async def test_a_message_is_acknowledged_only_once_stored(shared_session: tuple[str, str]) -> None:
    """A node that stops while storing gets the message again from the broker when it is back."""
    node, client_id = shared_session
    settings = node_settings(SHARED_BROKER, node, client_id)
    first = RecordingSink({"carpark-b2-level": "dev-1"})
    first.block.clear()  # the database hangs: the message is handed over, never stored
    device = MqttTransport(SHARED_BROKER, node=node, device="dev-1")
    async with subscribed(settings, first):
        await device.send([reading("carpark-b2-level", 0.7)])
        await wait_until(lambda: first.calls == 1, "the sink to be handed the message")
    # The node stopped (its task cancelled) without acknowledging; while it is away,
    # the persistent session queues what the device sends.
    await device.send([reading("carpark-b2-level", 0.8)])
    await device.aclose()
    second = RecordingSink({"carpark-b2-level": "dev-1"})
    async with subscribed(settings, second):
        await wait_until(lambda: len(second.stored) == 2, "both readings after the restart")
    assert sorted(second.values()) == [0.7, 0.8]
    assert first.stored == []


async def test_readings_published_while_the_broker_restarts_are_all_stored(
    tmp_path: Path,
) -> None:
    """QoS 1 readings the broker took survive its restarts: nothing acknowledged is lost.

    First the broker restarts under a running node while the device publishes; then it
    restarts while the node is away and its persistent session holds queued readings.
    """
    with PrivateBroker.running(tmp_path / "broker") as broker:
        node = unique("node")
        sink = RecordingSink({"carpark-b2-level": "dev-1"})
        settings = node_settings(broker.url, node, unique("linli-node"))
        device = MqttTransport(broker.url, node=node, device="dev-1", client_id=unique("dev"))

        async def publish(values: range) -> None:
            for i in values:
                await device.send([reading("carpark-b2-level", float(i))])
                await asyncio.sleep(0.02)

        async with subscribed(settings, sink) as (subscriber, metrics):
            await publish(range(10))
            await wait_until(lambda: len(sink.stored) == 10, "ten readings before the restart")
            await asyncio.to_thread(broker.stop)
            # The device keeps publishing (and retrying) while the broker is down.
            publishing = asyncio.create_task(publish(range(10, 20)))
            await asyncio.sleep(1.0)
            await asyncio.to_thread(broker.start)
            await asyncio.wait_for(publishing, DEADLINE_S)
            await wait_until(lambda: len(set(sink.values())) == 20, "the first twenty")
            assert metrics.connects._value.get() >= 2  # it reconnected by itself
            assert subscriber.subscribed.is_set()
        # The node is away: the broker queues what the device sends for its session ...
        await publish(range(20, 30))
        # ... and keeps it through a restart (it saves its sessions when stopped).
        await asyncio.to_thread(broker.stop)
        await asyncio.to_thread(broker.start)
        async with subscribed(settings, sink):
            await publish(range(30, 40))
            await wait_until(lambda: len(set(sink.values())) == 40, "every reading")
        await device.aclose()
        assert sorted(set(sink.values())) == [float(i) for i in range(40)]
