"""The OAuth 2.0 scopes a hub client may hold: what it may do at all (policy decides the rest)."""

from __future__ import annotations

from collections.abc import Iterable

from hub.auth.errors import UnknownScope
from schema.scopes import Scope

__all__ = ["SCOPES", "format_scopes", "parse_scopes"]

#: Every scope the hub issues, in the documented order.
SCOPES: tuple[str, ...] = tuple(Scope)
_KNOWN = frozenset(SCOPES)


def parse_scopes(scopes: str | Iterable[str]) -> frozenset[str]:
    """The scopes named in a space-separated string (or an iterable); unknown ones are refused."""
    names = scopes.split() if isinstance(scopes, str) else [s for s in scopes if s]
    unknown = sorted(set(names) - _KNOWN)
    if unknown:
        raise UnknownScope(f"unknown scope(s): {' '.join(unknown)}", scopes=unknown)
    return frozenset(names)


def format_scopes(scopes: Iterable[str]) -> str:
    """Scopes as the space-separated string of the ``scope`` claim, in a stable order."""
    given = set(scopes)
    known = [s for s in SCOPES if s in given]
    return " ".join(known + sorted(given - _KNOWN))
