"""Errors of the node's sensor readings, each with a stable ``code``.

LinliError
├── InvalidInput
│   └── SenmlInvalid          SENML_INVALID        (field): the whole pack is refused
└── IngestBusy                INGEST_BUSY          (retryAfter): HTTP 429, send again later

A record refused on its own is no exception: its ``IngestResult`` entry names
the code (``SENML_INVALID``, ``SENML_NOT_NUMERIC``, ``UNKNOWN_SENSOR``,
``SENSOR_NOT_OWNED``, ``UNIT_MISMATCH``, ``TIME_OUT_OF_RANGE``).
"""

from __future__ import annotations

from typing import Any

from schema.errors import InvalidInput, LinliError

__all__ = ["IngestBusy", "SenmlInvalid"]


class SenmlInvalid(InvalidInput):
    """A body that is not a SenML pack at all; nothing of it is stored."""

    def __init__(self, message: str, *, field: str, **details: Any) -> None:
        super().__init__(message, code="SENML_INVALID", field=field, **details)


class IngestBusy(LinliError):
    """Readings are arriving faster than they are stored: nothing of this pack was stored."""

    code = "INGEST_BUSY"
