"""Errors of the hub's authorization server.

Management errors (clients, keys) carry a stable ``code``; token refusals by the
hub's own caller check extend ``policies.tokens.TokenError`` with a ``reason``:

    LinliError
    ├── InvalidInput
    │   ├── UnknownScope            UNKNOWN_SCOPE
    │   ├── InvalidClientField      INVALID_CLIENT_FIELD
    │   └── InvalidPersonField      INVALID_PERSON_FIELD
    ├── ClientExists                CLIENT_EXISTS
    ├── PersonExists                PERSON_EXISTS
    ├── ScopeNotGranted             SCOPE_NOT_GRANTED
    ├── NotFound
    │   ├── ClientNotFound          NOT_FOUND
    │   └── PersonNotFound          NOT_FOUND
    └── Unauthenticated
        ├── ClientCredentialsInvalid  UNAUTHENTICATED  (CLI `linli token`)
        └── TokenError              (policies.tokens, re-exported here)
            ├── TokenRevoked        reason TOKEN_REVOKED
            └── TokenClientDisabled reason TOKEN_CLIENT_DISABLED

The sign-in page answers a wrong password with ``SIGNIN_FAILED`` (401), a disabled
account with ``ACCOUNT_DISABLED`` (403) and too many failures with ``RATE_LIMITED``
(429, ``hub.throttle``): in the page and in its ``X-Linli-Code`` header.

Errors of the OAuth endpoints themselves are RFC 6749 §5.2 bodies
(``{"error": ..., "error_description": ...}``) produced by authlib.
"""

from __future__ import annotations

from typing import Any

from policies.tokens import TokenClientDisabled, TokenRevoked
from schema.errors import InvalidInput, LinliError, NotFound, Unauthenticated

__all__ = [
    "ClientCredentialsInvalid",
    "ClientExists",
    "ClientNotFound",
    "InvalidClientField",
    "InvalidPersonField",
    "PersonExists",
    "PersonNotFound",
    "ScopeNotGranted",
    "TokenClientDisabled",
    "TokenRevoked",
    "UnknownScope",
]


class UnknownScope(InvalidInput):
    """A scope that is not in ``hub.auth.scopes.SCOPES``."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message, code="UNKNOWN_SCOPE", field="scopes", **details)


class InvalidClientField(InvalidInput):
    """A client attribute (id, organisation, district) that is not well-formed."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message, code="INVALID_CLIENT_FIELD", field=field)


class ClientExists(LinliError):
    """A client with that id is already registered."""

    code = "CLIENT_EXISTS"


class ScopeNotGranted(LinliError):
    """A scope the client was never allowed."""

    code = "SCOPE_NOT_GRANTED"


class ClientNotFound(NotFound):
    """No client with that id."""


class ClientCredentialsInvalid(Unauthenticated):
    """Unknown client, wrong secret, or a disabled client."""


class InvalidPersonField(InvalidInput):
    """A person's attribute (username, organisation, roles, password) that is not acceptable."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message, code="INVALID_PERSON_FIELD", field=field)


class PersonExists(LinliError):
    """A person with that username is already registered."""

    code = "PERSON_EXISTS"


class PersonNotFound(NotFound):
    """No person with that username."""
