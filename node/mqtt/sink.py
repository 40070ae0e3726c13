"""What the MQTT subscriber hands its messages to: one call per batch, one outcome per message.

The sink stores each message's readings (idempotently: a reading already stored
is a duplicate, not an error) or refuses the whole message with a stable code.
Raising means a failure worth retrying (the database is busy or gone): the
subscriber then retries the batch and acknowledges nothing until it is stored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

__all__ = ["DeviceMessage", "IngestOutcome", "ReadingsSink"]


@dataclass(frozen=True)
class DeviceMessage:
    """One MQTT message: the device and sensor its topic names, and its SenML payload."""

    device: str
    sensor: str
    payload: bytes


@dataclass(frozen=True)
class IngestOutcome:
    """What became of one message: readings stored, duplicates and refused readings (by code),
    or ``refused``: the code that refused the whole message."""

    stored: int = 0
    duplicates: int = 0
    refused_readings: tuple[str, ...] = ()
    refused: str | None = None


ReadingsSink = Callable[[Sequence[DeviceMessage]], Awaitable[list[IngestOutcome]]]
"""Stores a batch of messages in one go; one outcome per message, in order."""
