"""What each source contributed to an answer: the entries of ``extensions.sources``."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = ["MAX_NESTING", "SourceReport", "SourceStatus", "nested_sources"]


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
    REFUSED = "refused"  # not called: its URL does not pass allowed_outbound_hosts (now)

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
    SourceStatus.REFUSED: "URL_NOT_ALLOWED",
}


@dataclass
class SourceReport:
    """What one source contributed to an answer: one entry of ``extensions.sources[]``.

    ``count`` is the number of the source's records in this answer (after the merge);
    ``exhausted`` says the source has nothing more for the field, so following the
    field's ``endCursor`` will not ask it again (always so for fields that do not page);
    ``path`` is the response path of the root field (its alias, if it has one).
    """

    source: str
    status: SourceStatus
    ms: float
    count: int = 0
    as_of: datetime | None = None
    message: str | None = None
    exhausted: bool = True
    path: tuple[str | int, ...] = ()
    # A hub source's own ``extensions.sources`` for the field, nested (hierarchical federation).
    sources: list[dict[str, Any]] | None = None
    # The source's own error (``extensions``: code and details), when it refused; not sent on.
    refusal: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        """The entry as it goes on the wire."""
        entry = {
            "path": list(self.path),
            "source": self.source,
            "status": self.status.value,
            "ms": self.ms,
            "count": self.count,
            "exhausted": self.exhausted,
            "asOf": self.as_of.isoformat() if self.as_of else None,
        }
        if self.sources is not None:
            entry["sources"] = self.sources
        return entry

    @property
    def error_code(self) -> str | None:
        """The code of the GraphQL error naming this source, or ``None`` if it answered."""
        return self.status.error_code


#: Levels of nested ``sources`` kept from a hub source's answer (province > city > district).
MAX_NESTING = 6
_NESTED_KEYS = ("source", "status", "ms", "count", "exhausted", "asOf")
_MAX_NESTED_ENTRIES = 1000


def nested_sources(
    extensions: Any, field_path: list[str | int], errors: Any = None, depth: int = 0
) -> list[dict[str, Any]] | None:
    """What a hub source said of its own sources for the field at ``field_path``, if anything.

    Only the known keys of each entry are kept (``path`` is dropped: it is the source's
    request's), with ``error``, the message of the source's GraphQL error naming it, if
    ``errors`` has one; deeper levels nest the same way, up to ``MAX_NESTING``.
    """
    if not isinstance(extensions, dict) or not isinstance(extensions.get("sources"), list):
        return None
    failures: dict[str, str] = {}
    for error in errors if isinstance(errors, list) else []:
        named = error.get("extensions") if isinstance(error, dict) else None
        named_source = named.get("source") if isinstance(named, dict) else None
        if isinstance(named_source, str) and error.get("path") in (None, field_path):
            failures.setdefault(named_source, str(error.get("message", ""))[:300])
    kept: list[dict[str, Any]] = []
    for item in extensions["sources"][:_MAX_NESTED_ENTRIES]:
        if not isinstance(item, dict) or item.get("path", field_path) != field_path:
            continue
        entry = {key: item.get(key) for key in _NESTED_KEYS}
        if not isinstance(entry["source"], str) or not isinstance(entry["status"], str):
            continue
        if (failure := failures.get(entry["source"])) is not None:
            entry["error"] = failure
        elif isinstance(item.get("error"), str):
            entry["error"] = item["error"][:300]
        if depth + 1 < MAX_NESTING:
            deeper = nested_sources({"sources": item.get("sources")}, field_path, depth=depth + 1)
            if deeper is not None:
                entry["sources"] = deeper
        kept.append(entry)
    return kept
