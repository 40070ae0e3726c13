"""What each source contributed to an answer: the entries of ``extensions.sources``."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["SourceReport", "SourceStatus"]


class SourceStatus(enum.StrEnum):
    """How one source answered; the value is the wire value of ``extensions.sources[].status``."""

    OK = "ok"
    TIMEOUT = "timeout"
    ERROR = "error"
    UNAVAILABLE = "unavailable"
    BUSY = "busy"  # answered that its database is locked or gone, and when to retry
    DENIED = "denied"
    STALE = "stale"  # down, and its last good answer was served
    NOT_FOUND = "not_found"  # answered that it holds no such record (node(id), mutations)

    @property
    def error_code(self) -> str | None:
        """The stable code of the GraphQL error naming the source, if this status is a failure."""
        return _ERROR_CODES.get(self)


_ERROR_CODES = {
    SourceStatus.TIMEOUT: "SOURCE_TIMEOUT",
    SourceStatus.ERROR: "SOURCE_ERROR",
    SourceStatus.UNAVAILABLE: "SOURCE_UNAVAILABLE",
    SourceStatus.BUSY: "SOURCE_BUSY",
    SourceStatus.DENIED: "SOURCE_DENIED",
    SourceStatus.STALE: "SOURCE_STALE",
}


@dataclass
class SourceReport:
    """What one source contributed to an answer: one entry of ``extensions.sources[]``."""

    source: str
    status: SourceStatus
    ms: float
    count: int = 0
    as_of: datetime | None = None
    message: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The entry as it goes on the wire."""
        return {
            "source": self.source,
            "status": self.status.value,
            "ms": self.ms,
            "count": self.count,
            "asOf": self.as_of.isoformat() if self.as_of else None,
        }

    @property
    def error_code(self) -> str | None:
        """The code of the GraphQL error naming this source, or ``None`` if it answered."""
        return self.status.error_code
