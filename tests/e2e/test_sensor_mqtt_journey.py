"""Early warning end to end: a simulated storm over MQTT raises one flag that reaches a department.

A real hub and a real node (each on SQLite or PostgreSQL, real OAuth tokens)
and the machine's MQTT broker at 127.0.0.1:1883. ``linli sensors simulate``
runs as a child process and publishes the rain scenario with QoS 1; the node's
subscriber stores the readings through ``node.sensors.ingest``, the rule raises
a flag, the node's outbox delivers it and the department's ``flagEvents``
subscription at the hub sees it routed. Each test uses a topic prefix and MQTT
client id of its own, so it shares the broker with nobody.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiomqtt
import orjson
import pytest

from node.mqtt import sensor_topic
from node.simulator.scenario import CAR_PARK_LEVEL, RAIN_GAUGE
from node.simulator.transports import MqttTransport
from schema.enums import OrgKind
from tests.brokers import SHARED_BROKER, PrivateBroker, forget_session, unique
from tests.conftest import BACKENDS
from tests.e2e.test_flag_journey import oauth_token
from tests.hub.flags.conftest import Subscriber, eventually
from tests.node.flags.conftest import COMMUNITY, FlagRig, flag_rig, metric
from tests.node.sensors.conftest import SensorRig, at, local, start, water_level

DEPT_DEFAULT = "110105400009"  # the routing file's default: flooding goes there
LINLI = Path(sys.executable).parent / "linli"
SPEED = 400.0  # the 52 simulated minutes above the alarm take about 8 s
INTERVAL_S = 0.1
RULE_DURATION_S = 3.0
FLAG_AT_NODE = """query ($id: ID!) { node(id: $id) { ... on RiskFlag {
  id category estimatedSeverity source { sensor rule unit level } evidence { t v }
  timeline { hop at } } } }"""


@pytest.fixture(params=BACKENDS)
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[FlagRig]:
    async with flag_rig(request.param, tmp_path) as built:
        yield built


@pytest.fixture
async def mqtt_sensors(rig: FlagRig) -> AsyncIterator[tuple[SensorRig, str]]:
    """The hub, and a node subscribed to the machine's broker under a prefix of its own."""
    prefix, client_id = unique("linli-test"), unique("linli-node")
    built = await start(
        rig, mqtt_url=SHARED_BROKER, mqtt_topic_prefix=prefix, mqtt_client_id=client_id,
        mqtt_reconnect_base_s=0.1, mqtt_reconnect_max_s=1.0,
    )  # fmt: skip

    async def subscribed() -> bool:
        return metric(await rig.metrics(), "linli_node_mqtt_connected") == 1

    await eventually(subscribed, timeout_s=30)
    try:
        yield built, prefix
    finally:
        await built.close()
        await forget_session(SHARED_BROKER, client_id)


def car_park(device: str) -> dict[str, Any]:
    sensor = water_level(
        CAR_PARK_LEVEL.code,
        device,
        [
            {
                "id": "high-water",
                "kind": "ABOVE",
                "level": CAR_PARK_LEVEL.alarm,
                "clear": CAR_PARK_LEVEL.clear,
                "durationS": RULE_DURATION_S,
                "severity": "II",
            }
        ],
    )
    return sensor


def rain_gauge(device: str) -> dict[str, Any]:
    return {
        **water_level(RAIN_GAUGE.code, device, []),
        "name": "雨量计 rain gauge",
        "kind": "RAINFALL",
        "unit": RAIN_GAUGE.unit,
    }


async def test_a_simulated_storm_over_mqtt_raises_one_flag_that_reaches_the_department(
    rig: FlagRig, mqtt_sensors: tuple[SensorRig, str]
) -> None:
    sensors, prefix = mqtt_sensors
    device = await sensors.device()
    level_id = await sensors.create_sensor(car_park(device.client_id))
    await sensors.create_sensor(rain_gauge(device.client_id))
    assert rig.hub is not None
    department = await oauth_token(
        rig.hub_url, rig, org=DEPT_DEFAULT, kind=OrgKind.DEPARTMENT, scopes="risk:verify",
        resource=None,
    )  # fmt: skip
    subscriber = await Subscriber.open(
        rig.hub_url.replace("http://", "ws://") + "/graphql", department
    )
    try:
        assert (await subscriber.ack())["type"] == "connection_ack"
        await subscriber.subscribe()
        simulator = await asyncio.create_subprocess_exec(
            str(LINLI), "sensors", "simulate", "--transport", "mqtt", "--broker", SHARED_BROKER,
            "--node-id", COMMUNITY, "--device", device.client_id, "--topic-prefix", prefix,
            "--speed", str(SPEED), "--interval", str(INTERVAL_S), "--quiet",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        routed = await subscriber.event(timeout_s=60)
        assert routed["type"] == "flag.routed"
        assert routed["assignedTo"] == DEPT_DEFAULT
        assert routed["community"] == COMMUNITY
        # The level fell below its clear level: the department is told, the timeline records it.
        cleared = await subscriber.event(timeout_s=60)
        assert (cleared["type"], cleared["flagId"]) == ("flag.condition_cleared", routed["flagId"])
        assert cleared["status"] == "ROUTED"  # only the department resolves it
        assert "condition_cleared" in {hop["hop"] for hop in cleared["timeline"]}
        output, _ = await asyncio.wait_for(simulator.communicate(), 120)
        assert simulator.returncode == 0, output.decode()
        sent = int(output.decode().split("sent ")[-1].split()[0])
        # One flag: the noisy level never dipped below 0.15 m while it was in alarm.
        await subscriber.nothing_more(wait_s=2.0)
    finally:
        await subscriber.close()

    # Every published reading was stored (QoS 1, acknowledged after storing).
    async def all_stored() -> bool:
        return len(await sensors.readings()) == sent

    await eventually(all_stored, timeout_s=30)
    flags = [f for f in await sensors.flags() if f["source"] is not None]
    assert len(flags) == 1, flags
    flag = flags[0]
    assert flag["id"] == routed["flagId"]
    assert flag["category"] == "flooding"
    assert flag["estimatedSeverity"] == "II"
    assert flag["source"]["sensor"] == level_id
    assert flag["source"]["rule"] == "high-water"
    assert flag["source"]["level"] == CAR_PARK_LEVEL.alarm
    # The readings that held above the alarm for the rule's duration are the evidence.
    evidence = flag["evidence"]
    assert evidence
    assert all(reading["v"] >= CAR_PARK_LEVEL.alarm for reading in evidence)
    stored = dict(await sensors.readings(local(level_id)))
    assert {e["v"] for e in evidence} <= set(stored.values())

    # The level fell below its clear level: the flag's timeline records it.
    async def cleared() -> dict[str, Any] | None:
        found = next(f for f in await sensors.flags() if f["id"] == flag["id"])
        return found if "condition_cleared" in {h["hop"] for h in found["timeline"]} else None

    await eventually(cleared, timeout_s=30)
    assert metric(await rig.metrics(), 'linli_node_mqtt_readings_total{outcome="stored"}') == sent


async def test_over_mqtt_duplicates_are_stored_once_and_bad_messages_refused_with_codes(
    rig: FlagRig, mqtt_sensors: tuple[SensorRig, str]
) -> None:
    sensors, prefix = mqtt_sensors
    device = await sensors.device()
    other = await sensors.device()
    level_id = await sensors.create_sensor(car_park(device.client_id))
    own = MqttTransport(SHARED_BROKER, node=COMMUNITY, device=device.client_id, prefix=prefix)
    intruder = MqttTransport(SHARED_BROKER, node=COMMUNITY, device=other.client_id, prefix=prefix)
    topic = sensor_topic(prefix, COMMUNITY, device.client_id, CAR_PARK_LEVEL.code)
    try:
        reading = orjson.dumps([{"t": at(0), "u": "m", "v": 0.1}])  # no name: the topic's
        await own.publish(topic, reading)
        await own.publish(topic, reading)  # at least once: the same reading again
        await own.publish(topic, b'[{"t": 0, "v": ')  # no SenML
        await own.publish(topic, orjson.dumps([{"n": "rain-gauge-01", "t": at(1), "v": 1.0}]))
        await own.publish(topic, orjson.dumps([{"t": at(2), "u": "mm", "v": 0.2}]))
        await intruder.publish(
            sensor_topic(prefix, COMMUNITY, other.client_id, CAR_PARK_LEVEL.code),
            orjson.dumps([{"t": at(3), "u": "m", "v": 9.9}]),
        )
        await own.publish(topic, orjson.dumps([{"t": at(4), "u": "m", "v": 0.3}]))

        async def handled() -> str | None:
            text = await rig.metrics()
            return (
                text
                if metric(text, 'linli_node_mqtt_messages_total{outcome="stored"}')
                + metric(text, 'linli_node_mqtt_messages_total{outcome="refused"}')
                == 7
                else None
            )

        text = await eventually(handled, timeout_s=30)
    finally:
        await own.aclose()
        await intruder.aclose()
    values = [value for _, value in await sensors.readings(local(level_id))]
    assert values == [0.1, 0.3]
    for name, expected in {
        'linli_node_mqtt_readings_total{outcome="stored"}': 2,
        'linli_node_mqtt_readings_total{outcome="duplicate"}': 1,
        'linli_node_mqtt_refused_total{code="SENML_INVALID"}': 1,
        'linli_node_mqtt_refused_total{code="SENSOR_TOPIC_MISMATCH"}': 1,
        'linli_node_mqtt_refused_total{code="UNIT_MISMATCH"}': 1,
        'linli_node_mqtt_refused_total{code="SENSOR_NOT_OWNED"}': 1,
    }.items():
        assert metric(text, name) == expected, name


BURST = 10_000


async def test_a_burst_of_10000_readings_over_mqtt_is_all_stored(
    rig: FlagRig, tmp_path: Path
) -> None:
    """Published as fast as the broker takes them, one reading a message: none dropped.

    A broker of the test's own, configured as README advises (``max_queued_messages 0``):
    the node's in-flight window holds the burst back at the broker, not in the node.
    """
    with PrivateBroker.running(tmp_path / "broker") as broker:
        client_id = unique("linli-node")
        sensors = await start(rig, mqtt_url=broker.url, mqtt_client_id=client_id)
        try:

            async def subscribed() -> bool:
                return metric(await rig.metrics(), "linli_node_mqtt_connected") == 1

            await eventually(subscribed, timeout_s=30)
            device = await sensors.device()
            level_id = await sensors.create_sensor(car_park(device.client_id))
            topic = sensor_topic("linli", COMMUNITY, device.client_id, CAR_PARK_LEVEL.code)
            host, port = broker.url.removeprefix("mqtt://").split(":")
            slots = asyncio.Semaphore(200)
            async with aiomqtt.Client(host, int(port), identifier=unique("dev")) as client:
                client.pending_calls_threshold = 201

                async def publish(i: int) -> None:
                    async with slots:
                        body = orjson.dumps([{"u": "m", "t": at(i / 1000), "v": 0.01}])
                        await client.publish(topic, body, qos=1, timeout=60)

                await asyncio.gather(*(publish(i) for i in range(BURST)))

            async def all_stored() -> int | None:
                count = len(await sensors.readings(local(level_id)))
                return count if count >= BURST else None

            assert await eventually(all_stored, timeout_s=300) == BURST
            text = await rig.metrics()
            assert metric(text, 'linli_node_mqtt_readings_total{outcome="stored"}') == BURST
            assert metric(text, 'linli_node_mqtt_messages_total{outcome="refused"}') == 0
        finally:
            await sensors.close()
