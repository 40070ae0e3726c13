"""Why a call to a source gave no usable answer.

Each error names the ``SourceStatus`` it puts in ``extensions.sources`` and the
stable ``code`` of the GraphQL error that names the source::

    SourceError               error        SOURCE_ERROR
     ├── SourceTimeout        timeout      SOURCE_TIMEOUT
 │    └── CallerTimeout   timeout      SOURCE_TIMEOUT      (the caller's deadline, not the source)
     ├── SourceUnavailable    unavailable  SOURCE_UNAVAILABLE
     │    ├── CircuitOpen     unavailable  SOURCE_UNAVAILABLE  (refused by the breaker)
     │    └── SourceBusy      busy         SOURCE_BUSY         (its database is busy or gone)
     ├── SourceRefused        error        SOURCE_ERROR        (the source refused the input)
     ├── SourceDenied         denied       SOURCE_DENIED
     ├── SourceUrlNotAllowed  refused      URL_NOT_ALLOWED     (the hub would not call it)
     └── SourceNotFound       not_found    NOT_FOUND           (the source holds no such record)
"""

from __future__ import annotations

from typing import Any, ClassVar

from hub.federation.reports import SourceStatus

__all__ = [
    "CallerTimeout",
    "CircuitOpen",
    "SourceBusy",
    "SourceDenied",
    "SourceError",
    "SourceNotFound",
    "SourceRefused",
    "SourceTimeout",
    "SourceUnavailable",
    "SourceUrlNotAllowed",
]


class SourceError(Exception):
    """A source failed to answer, or answered something unusable."""

    status: ClassVar[SourceStatus] = SourceStatus.ERROR
    code: ClassVar[str] = "SOURCE_ERROR"
    #: The ``extensions`` of the source's own GraphQL error (its code and details), when it
    #: answered with one: a hub relaying a mutation passes a refusal on as the source gave it.
    refusal: dict[str, Any] | None = None

    @property
    def message(self) -> str:
        """What went wrong, for people: every caller of the answer reads it."""
        return str(self)

    @property
    def detail(self) -> str:
        """What went wrong, for the hub's operators (a source's ``lastError``)."""
        return self.message


class SourceTimeout(SourceError):
    """No answer within the time the source was given."""

    status = SourceStatus.TIMEOUT
    code = "SOURCE_TIMEOUT"


class CallerTimeout(SourceTimeout):
    """The caller's deadline passed before the call got its turn: no verdict on the source."""


class SourceUnavailable(SourceError):
    """The source cannot be reached."""

    status = SourceStatus.UNAVAILABLE
    code = "SOURCE_UNAVAILABLE"


class CircuitOpen(SourceUnavailable):
    """The source's breaker refused the call: it failed repeatedly and is cooling down."""


class SourceBusy(SourceUnavailable):
    """The source answered, but its database was locked or unreachable (it said when to retry)."""

    status = SourceStatus.BUSY
    code = "SOURCE_BUSY"


class SourceRefused(SourceError):
    """The source answered and refused the request with a stable code (a bad filter): it is
    healthy, and one caller's bad input must not open the circuit every caller shares."""


class SourceDenied(SourceError):
    """The source refused the hub's token, or the caller's purpose (not in its list)."""

    status = SourceStatus.DENIED
    code = "SOURCE_DENIED"


class SourceUrlNotAllowed(SourceError):
    """The hub did not call the source: its URL, or what its name resolves to now, is refused.

    Callers read only that; which host and address were refused maps the hub's network,
    so it is the ``detail``, for operators.
    """

    status = SourceStatus.REFUSED
    code = "URL_NOT_ALLOWED"

    def __init__(self, detail: str) -> None:
        super().__init__(f"{self.code}: the hub's outbound rules refuse the source's address")
        self._detail = f"{self.code}: {detail}"

    @property
    def detail(self) -> str:
        return self._detail


class SourceNotFound(SourceError):
    """The source answered that it holds no such record: it is healthy."""

    status = SourceStatus.NOT_FOUND
    code = "NOT_FOUND"
