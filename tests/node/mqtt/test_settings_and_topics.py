"""MQTT settings a node refuses, the password kept out of logs, and the topic scheme."""

from __future__ import annotations

import asyncio
import logging

import pytest
from pydantic import ValidationError

from node.mqtt import MqttMetrics, MqttSubscriber, SensorTopic, parse_topic, sensor_topic
from node.mqtt.sink import DeviceMessage, IngestOutcome
from node.settings import NodeSettings
from schema.runtime.settings import Environment

PRODUCTION = {
    "environment": Environment.PRODUCTION,
    "token_issuer": "https://hub.example.org",
    "jwks_url": "https://hub.example.org/.well-known/jwks.json",
    "mqtt_url": "mqtts://broker.example.org",
}


def test_a_production_node_needs_broker_credentials_that_are_no_placeholder() -> None:
    with pytest.raises(ValidationError, match="needs mqtt_username and mqtt_password"):
        NodeSettings(**PRODUCTION)
    with pytest.raises(ValidationError, match="mqtt_password is a placeholder"):
        NodeSettings(**PRODUCTION, mqtt_username="node", mqtt_password="changeme")
    settings = NodeSettings(
        **PRODUCTION, mqtt_username="node", mqtt_password="a-long-enough-broker-password-1"
    )
    assert settings.mqtt_identifier == "linli-node-110105001001"


@pytest.mark.parametrize(
    "url", ["http://broker:1883", "mqtt://user:pw@broker", "mqtt://broker/path", "broker:1883"]
)
def test_a_broker_url_must_be_mqtt_or_mqtts_without_credentials(url: str) -> None:
    with pytest.raises(ValidationError, match="mqtt_url"):
        NodeSettings(mqtt_url=url)


async def test_the_password_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Even when the broker cannot be reached and the subscriber says so, again and again."""
    secret = "s3cret-broker-password-not-for-logs"
    settings = NodeSettings(
        mqtt_url="mqtt://127.0.0.1:1",  # nothing listens there
        mqtt_username="node",
        mqtt_password=secret,
        mqtt_reconnect_base_s=0.05,
        mqtt_reconnect_max_s=0.1,
    )

    async def sink(batch: list[DeviceMessage]) -> list[IngestOutcome]:
        raise AssertionError("no message can arrive")

    metrics = MqttMetrics()
    caplog.set_level(logging.DEBUG)
    async with MqttSubscriber(settings, sink, metrics).running():
        while metrics.connection_failures._value.get() < 3:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    assert "reconnecting" in caplog.text
    assert secret not in caplog.text
    assert secret not in repr(settings)


def test_topics_name_the_device_and_the_sensor() -> None:
    topic = sensor_topic("linli", "110105001003", "dev-7", "floors/b2/level")
    assert topic == "linli/110105001003/devices/dev-7/sensors/floors/b2/level"
    assert parse_topic("linli", "110105001003", topic) == SensorTopic("dev-7", "floors/b2/level")
    for other in [
        "linli/110105001003/devices/dev-7/sensors",  # no sensor
        "linli/110105001003/devices/dev-7/sensors/",
        "linli/110105001003/devices/dev-7/sensors/a//b",
        "linli/110105001003/devices//sensors/x",  # no device
        "linli/110105001001/devices/dev-7/sensors/x",  # another node
        "other/110105001003/devices/dev-7/sensors/x",
        "linli/110105001003/gadgets/dev-7/sensors/x",
    ]:
        assert parse_topic("linli", "110105001003", other) is None, other
