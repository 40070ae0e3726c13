"""Emergency mode: declared emergencies, and the policy mode they put a source in.

An emergency is declared by an authorised department with a level (I–IV)
and an expiry; it is active from its declaration until it is ended or its
``expires_at`` passes. Nothing has to run for it to end: whether it is active
is computed when it is read.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from policies.engine import Mode
from schema.enums import SeverityLevel
from schema.scopes import Scope
from schema.storage import UTCDateTime, utcnow

__all__ = [
    "DECLARE_SCOPE",
    "Emergency",
    "PolicyMode",
    "active_emergencies",
    "define_emergency_table",
    "most_severe",
    "policy_mode",
]

DECLARE_SCOPE: Final = Scope.EMERGENCY_DECLARE
TABLE_NAME: Final = "emergencies"
MAX_REASON: Final = 500

# Level I is the most severe.
_RANK: Final = {SeverityLevel.I: 1, SeverityLevel.II: 2, SeverityLevel.III: 3, SeverityLevel.IV: 4}


def define_emergency_table(metadata: sa.MetaData) -> sa.Table:
    """The ``emergencies`` table in ``metadata``."""
    return sa.Table(
        TABLE_NAME,
        metadata,
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("level", sa.String(4), nullable=False),
        sa.Column("reason", sa.String(MAX_REASON), nullable=False),
        sa.Column("declared_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False, index=True),
        sa.Column("declared_by_org", sa.String(64), nullable=False),
        sa.Column("declared_by", sa.String(200), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("ended_by", sa.String(200), nullable=True),
    )


@dataclass(frozen=True, slots=True)
class Emergency:
    """One declared emergency."""

    id: str
    level: SeverityLevel
    reason: str
    declared_at: datetime
    expires_at: datetime
    declared_by_org: str
    declared_by: str
    ended_at: datetime | None = None
    ended_by: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> Emergency:
        """The emergency of one ``emergencies`` row."""
        values = dict(row._mapping)
        values["level"] = SeverityLevel(values["level"])
        return cls(**values)

    def active_at(self, moment: datetime) -> bool:
        """Whether the emergency is in force at ``moment``."""
        return self.ended_at is None and self.declared_at <= moment < self.expires_at


@dataclass(frozen=True, slots=True)
class PolicyMode:
    """The mode policies are evaluated in, and the most severe active level."""

    mode: Mode
    level: SeverityLevel | None = None


NORMAL: Final = PolicyMode(Mode.NORMAL)


def most_severe(levels: Iterable[SeverityLevel]) -> SeverityLevel | None:
    """The most severe of ``levels`` (I before IV), or None."""
    return min(levels, key=lambda level: _RANK[level], default=None)


def policy_mode(emergencies: Iterable[Emergency], moment: datetime | None = None) -> PolicyMode:
    """Emergency mode at the most severe level while any emergency is active, else normal."""
    now = moment or utcnow()
    level = most_severe(e.level for e in emergencies if e.active_at(now))
    return NORMAL if level is None else PolicyMode(Mode.EMERGENCY, level)


async def active_emergencies(
    session: AsyncSession, table: sa.Table, moment: datetime | None = None
) -> list[Emergency]:
    """The emergencies in force at ``moment`` (now)."""
    now = moment or utcnow()
    rows = await session.execute(
        sa.select(table).where(
            table.c.ended_at.is_(None), table.c.expires_at > now, table.c.declared_at <= now
        )
    )
    return [Emergency.from_row(row) for row in rows]
