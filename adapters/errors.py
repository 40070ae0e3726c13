"""Errors of the adapter framework, each with a stable ``code``.

LinliError                    (schema.errors)
└── AdapterError              ADAPTER_ERROR
    ├── UpstreamUnavailable   UPSTREAM_UNAVAILABLE  unreachable, or it answered 5xx
    ├── UpstreamTimeout       UPSTREAM_TIMEOUT      no answer within the timeout
    ├── UpstreamRefused       UPSTREAM_REFUSED      the system answered 4xx (its errors kept)
    ├── UpstreamBadResponse   UPSTREAM_BAD_RESPONSE the wrong kind of answer (HTML for JSON)
    ├── UpstreamBadData       UPSTREAM_BAD_DATA     a record that does not map (bad date)
    ├── UpstreamTooLarge      UPSTREAM_TOO_LARGE    body over the size limit
    ├── UpstreamPending       UPSTREAM_PENDING      accepted, no id yet (token flow)
    └── InvalidMapping        INVALID_MAPPING       a field or column mapping is wrong

The CAP codec's own errors (``adapters.cap.errors``) are reported with their codes as they are.
"""

from __future__ import annotations

from typing import Any

from schema.errors import LinliError

__all__ = [
    "AdapterError",
    "InvalidMapping",
    "UpstreamBadData",
    "UpstreamBadResponse",
    "UpstreamPending",
    "UpstreamRefused",
    "UpstreamTimeout",
    "UpstreamTooLarge",
    "UpstreamUnavailable",
]


class AdapterError(LinliError):
    """Base of every error an adapter raises about its upstream system."""

    code = "ADAPTER_ERROR"


class UpstreamUnavailable(AdapterError):
    """The system could not be reached, or answered with a server error."""

    code = "UPSTREAM_UNAVAILABLE"


class UpstreamTimeout(AdapterError):
    """The system did not answer within the timeout."""

    code = "UPSTREAM_TIMEOUT"


class UpstreamRefused(AdapterError):
    """The system refused the request (4xx); ``errors`` holds what it said."""

    code = "UPSTREAM_REFUSED"


class UpstreamBadResponse(AdapterError):
    """The system answered, but not with what its protocol promises."""

    code = "UPSTREAM_BAD_RESPONSE"


class UpstreamBadData(AdapterError):
    """One record of the system's answer cannot be mapped; ``field`` says which value."""

    code = "UPSTREAM_BAD_DATA"

    def __init__(self, message: str, *, field: str, **details: Any) -> None:
        super().__init__(message, field=field, **details)
        self.field = field


class UpstreamTooLarge(AdapterError):
    """The body is over the size limit; reading stopped there."""

    code = "UPSTREAM_TOO_LARGE"

    def __init__(self, *, url: str, limit: int) -> None:
        super().__init__(f"{url}: body is over the limit of {limit} bytes", url=url, limit=limit)


class UpstreamPending(AdapterError):
    """The system accepted a request but has not given it an id yet (Open311 token flow)."""

    code = "UPSTREAM_PENDING"


class InvalidMapping(AdapterError):
    """A configured mapping names something the input does not have, or is not allowed."""

    code = "INVALID_MAPPING"
