"""Errors that cross HTTP, each with a stable ``code`` clients can rely on.

    LinliError                      (base; code INTERNAL)
    ├── InvalidInput                (code from the field's failure, e.g. STRING_TOO_LONG)
    ├── NotFound                    NOT_FOUND
    ├── StaleVersion                STALE_VERSION
    ├── InvalidCursor               INVALID_CURSOR
    ├── PageSizeTooLarge            PAGE_SIZE_TOO_LARGE
    ├── Unauthenticated             UNAUTHENTICATED
    ├── Forbidden                   FORBIDDEN
    ├── DatabaseBusy                DATABASE_BUSY         (retryAfter: seconds)
    └── DatabaseUnavailable         DATABASE_UNAVAILABLE  (retryAfter: seconds)

GraphQL shows ``code`` (and any details) in ``errors[].extensions``; plain
HTTP endpoints answer ``{"error": {"code": ..., "message": ...}}``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import ValidationError

__all__ = [
    "DatabaseBusy",
    "DatabaseUnavailable",
    "Forbidden",
    "InvalidCursor",
    "InvalidInput",
    "LinliError",
    "NotFound",
    "PageSizeTooLarge",
    "StaleVersion",
    "Unauthenticated",
    "input_error_code",
]


class LinliError(Exception):
    """Base of every error that reaches a caller."""

    code: ClassVar[str] = "INTERNAL"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    @property
    def extensions(self) -> dict[str, Any]:
        """What GraphQL puts in ``errors[].extensions``."""
        return {"code": self.code, **self.details}


class NotFound(LinliError):
    """No record with that id here (or none the caller may see)."""

    code = "NOT_FOUND"


class StaleVersion(LinliError):
    """The update was made against an older version of the record."""

    code = "STALE_VERSION"


class InvalidCursor(LinliError):
    """A pagination cursor that this service did not issue for this query."""

    code = "INVALID_CURSOR"


class PageSizeTooLarge(LinliError):
    """``first`` is above the page-size cap."""

    code = "PAGE_SIZE_TOO_LARGE"


class Unauthenticated(LinliError):
    """No credentials, or credentials that do not check out."""

    code = "UNAUTHENTICATED"


class Forbidden(LinliError):
    """The caller is known but may not do this."""

    code = "FORBIDDEN"


# pydantic's error types -> our codes. Custom errors raised by schema
# validators (unknown_resource_kind, invalid_geometry, ...) map to their own
# type in upper case.
_PYDANTIC_CODES = {
    "string_too_long": "STRING_TOO_LONG",
    "string_too_short": "STRING_TOO_SHORT",
    "too_long": "TOO_MANY_ITEMS",
    "too_short": "TOO_FEW_ITEMS",
    "string_pattern_mismatch": "INVALID_FORMAT",
    "greater_than_equal": "OUT_OF_RANGE",
    "greater_than": "OUT_OF_RANGE",
    "less_than_equal": "OUT_OF_RANGE",
    "less_than": "OUT_OF_RANGE",
    "int_parsing": "NOT_A_NUMBER",
    "float_parsing": "NOT_A_NUMBER",
    "enum": "INVALID_ENUM_VALUE",
    "literal_error": "INVALID_GEOMETRY",
    "url_parsing": "INVALID_URL",
    "url_scheme": "INVALID_URL",
    "missing": "MISSING_FIELD",
}


def input_error_code(error_type: str) -> str:
    """The stable code for one pydantic error type."""
    return _PYDANTIC_CODES.get(error_type, error_type.upper())


class InvalidInput(LinliError):
    """Input that fails the schema; ``code`` names the first failure."""

    def __init__(self, message: str, *, code: str, field: str, **details: Any) -> None:
        super().__init__(message, field=field, **details)
        self._code = code

    @property
    def extensions(self) -> dict[str, Any]:
        return {"code": self._code, **self.details}

    @classmethod
    def from_validation(cls, error: ValidationError, *, prefix: str = "") -> InvalidInput:
        """Turn pydantic's report into one error naming the first failing field."""
        errors = error.errors(include_url=False, include_input=False)
        first = errors[0]
        loc = ".".join(str(p) for p in first["loc"]) or "(record)"
        field = f"{prefix}.{loc}" if prefix else loc
        problems = [
            {"field": ".".join(str(p) for p in e["loc"]) or "(record)", "message": e["msg"]}
            for e in errors
        ]
        return cls(
            f"{field}: {first['msg']}",
            code=input_error_code(first["type"]),
            field=field,
            problems=problems,
        )


class DatabaseBusy(LinliError):
    """The service's database stayed locked by another writer for longer than it waits.

    Nothing was written; the same request may be sent again after ``retryAfter`` seconds.
    """

    code = "DATABASE_BUSY"


class DatabaseUnavailable(LinliError):
    """The service's database cannot be reached; nothing was written. Retry later."""

    code = "DATABASE_UNAVAILABLE"
