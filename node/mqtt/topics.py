"""The MQTT topic scheme of sensor readings: one topic per owner, device and sensor.

``<prefix>/<node id>/devices/<device>/sensors/<sensor code>``, where ``<device>``
is the OAuth client id of the device that writes the sensor and ``<sensor code>``
the sensor's SenML name (it may hold ``/``: it is the rest of the topic). The
payload is a SenML pack (RFC 8428, JSON). The broker lets each device publish
only under its own ``devices/<device>/`` level (a per-user ACL); the node checks
again that the device is the sensor's.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SensorTopic", "parse_topic", "sensor_topic", "subscription"]


@dataclass(frozen=True)
class SensorTopic:
    """Whose readings a message carries, as its topic names them."""

    device: str
    sensor: str


def subscription(prefix: str, node: str) -> str:
    """The topic filter a node subscribes to: every device and sensor under its own id."""
    return f"{prefix}/{node}/devices/+/sensors/#"


def sensor_topic(prefix: str, node: str, device: str, sensor: str) -> str:
    """The topic a device publishes one sensor's readings to."""
    return f"{prefix}/{node}/devices/{device}/sensors/{sensor}"


def parse_topic(prefix: str, node: str, topic: str) -> SensorTopic | None:
    """The device and sensor a topic names; None when it is not a sensor topic of this node."""
    levels = topic.split("/")
    if len(levels) < 6 or levels[:3] != [prefix, node, "devices"] or levels[4] != "sensors":
        return None
    device, sensor = levels[3], "/".join(levels[5:])
    if not device or not sensor or "" in levels[5:]:
        return None
    return SensorTopic(device=device, sensor=sensor)
