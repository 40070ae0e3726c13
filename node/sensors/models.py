"""What ingesting a SenML pack answers: one outcome per record (``node.sensors.ingest``)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["Device", "IngestResult", "Outcome", "RecordResult"]


@dataclass(frozen=True, slots=True)
class Device:
    """Who sends readings: its organisation and its OAuth client id."""

    org: str
    client_id: str


class Outcome(enum.StrEnum):
    """What became of one SenML record."""

    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class RecordResult:
    """The outcome of one record of a pack (``index`` in the pack)."""

    index: int
    status: Outcome
    sensor: str | None = None
    """The sensor's global id, when the record named one of this node's sensors."""
    time: datetime | None = None
    code: str | None = None
    message: str | None = None

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"index": self.index, "status": self.status.value}
        if self.sensor is not None:
            body["sensor"] = self.sensor
        if self.time is not None:
            body["time"] = self.time.isoformat()
        if self.code is not None:
            body["code"] = self.code
            body["message"] = self.message
        return body


@dataclass(frozen=True, slots=True)
class IngestResult:
    """One outcome per record, in pack order, and the flags the pack raised or cleared."""

    results: tuple[RecordResult, ...]
    flags_raised: tuple[str, ...] = ()
    flags_cleared: tuple[str, ...] = ()
    counts: dict[Outcome, int] = field(init=False)

    def __post_init__(self) -> None:
        counts = dict.fromkeys(Outcome, 0)
        for result in self.results:
            counts[result.status] += 1
        object.__setattr__(self, "counts", counts)

    def as_json(self) -> dict[str, Any]:
        return {
            "accepted": self.counts[Outcome.ACCEPTED],
            "duplicate": self.counts[Outcome.DUPLICATE],
            "refused": self.counts[Outcome.REFUSED],
            "flagsRaised": list(self.flags_raised),
            "flagsCleared": list(self.flags_cleared),
            "results": [r.as_json() for r in self.results],
        }
