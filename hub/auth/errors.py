"""Errors of the hub's authorization server.

Management errors (clients, keys) carry a stable ``code``; token refusals by the
hub's own caller check extend ``policies.tokens.TokenError`` with a ``reason``:

    LinliError
    ├── InvalidInput
    │   ├── UnknownScope            UNKNOWN_SCOPE
    │   └── InvalidClientField      INVALID_CLIENT_FIELD
    ├── ClientExists                CLIENT_EXISTS
    ├── ScopeNotGranted             SCOPE_NOT_GRANTED
    ├── NotFound
    │   └── ClientNotFound          NOT_FOUND
    └── Unauthenticated
        ├── ClientCredentialsInvalid  UNAUTHENTICATED  (CLI `linli token`)
        └── TokenError              (policies.tokens, re-exported here)
            ├── TokenRevoked        reason TOKEN_REVOKED
            └── TokenClientDisabled reason TOKEN_CLIENT_DISABLED

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
