"""Why the node refuses an MQTT message before its readings are looked at.

LinliError
├── SensorTopicInvalid    SENSOR_TOPIC_INVALID  (topic)
└── MessageTooLarge       BODY_TOO_LARGE        (limit)
"""

from __future__ import annotations

from schema.errors import LinliError

__all__ = ["MessageTooLarge", "SensorTopicInvalid"]


class SensorTopicInvalid(LinliError):
    """The topic does not name a device and a sensor of this node."""

    code = "SENSOR_TOPIC_INVALID"


class MessageTooLarge(LinliError):
    """The payload is larger than the node accepts in one request."""

    code = "BODY_TOO_LARGE"
