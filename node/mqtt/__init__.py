"""Sensor readings over MQTT: the topic scheme, the subscriber and the sink it feeds."""

from node.mqtt.errors import MessageTooLarge, SensorTopicInvalid
from node.mqtt.sink import DeviceMessage, IngestOutcome, ReadingsSink
from node.mqtt.subscriber import MqttMetrics, MqttSubscriber
from node.mqtt.topics import SensorTopic, parse_topic, sensor_topic, subscription

__all__ = [
    "DeviceMessage",
    "IngestOutcome",
    "MessageTooLarge",
    "MqttMetrics",
    "MqttSubscriber",
    "ReadingsSink",
    "SensorTopic",
    "SensorTopicInvalid",
    "parse_topic",
    "sensor_topic",
    "subscription",
]
