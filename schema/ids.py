"""Global ids: every record's id names its owner, so the hub can route ``node(id)``.

Format: ``<type>:<owner>:<local>``, for example
``Resource:110105001001:7c0d2f5e4b8a4f0e9a52c1d3e4f5a6b7``. The owner is a
source id (a division code or an adapter's id); the local part is the owner's
own key. Ids are readable on purpose: at 3 a.m. a person reads them.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

__all__ = ["GlobalId", "InvalidGlobalId", "new_local_id"]

_PART = r"[A-Za-z0-9][A-Za-z0-9._\-]{0,63}"
_PATTERN = re.compile(rf"^(?P<type>[A-Z][A-Za-z]{{0,31}}):(?P<owner>{_PART}):(?P<local>{_PART})$")


class InvalidGlobalId(ValueError):
    """The string is not a Linli global id."""


@dataclass(frozen=True, slots=True)
class GlobalId:
    """A parsed global id."""

    type: str
    owner: str
    local: str

    def __str__(self) -> str:
        return f"{self.type}:{self.owner}:{self.local}"

    @classmethod
    def parse(cls, value: str) -> GlobalId:
        """Parse ``value``; ``InvalidGlobalId`` when it is malformed."""
        match = _PATTERN.match(value)
        if match is None:
            raise InvalidGlobalId(f"not a global id: {value[:80]!r}")
        return cls(match["type"], match["owner"], match["local"])


def new_local_id() -> str:
    """A fresh local key (32 hex digits)."""
    return uuid.uuid4().hex
