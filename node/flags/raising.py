"""Flags the node raises by itself (a sensor's rule): the same row and outbox as a person's.

``raise_flag`` stores a ``RiskFlag`` exactly as the ``raiseRiskFlag`` mutation
does (``schema.store.service.create_record`` with the type's initial state)
and owes the hub its ``flag.raised`` message in the same transaction, so the
hub routes it, moves it and tells subscribers and webhooks like any other.
``note_condition_cleared`` records on a flag's timeline that the condition
behind it ended and owes the hub a ``flag.cleared`` message; the flag's status
does not change: only the department resolves it. Both flush; the caller
commits, then wakes the delivery worker.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from node.flags.outbox import KIND_CLEARED, enqueue_raised, new_message_id
from node.flags.tables import FlagTables, OutboxStatus
from schema.ids import GlobalId
from schema.records import Actor, RiskFlagCreate, RiskFlagHop
from schema.storage import utcnow
from schema.store import service
from schema.store.specs import RecordSpec
from schema.store.tables import RowMixin

__all__ = ["CLEARED_HOP", "note_condition_cleared", "raise_flag"]

CLEARED_HOP = "condition_cleared"
"""The timeline hop of a flag whose condition ended (at the event time it ended)."""


async def raise_flag(
    session: AsyncSession,
    tables: FlagTables,
    spec: RecordSpec,
    *,
    owner: str,
    content: RiskFlagCreate,
    subject: str,
    **state: Any,
) -> RowMixin:
    """Store a new flag raised by ``subject`` (a machine, no person) with its outbox row;
    ``state``: e.g. its evidence."""
    initial = spec.record.initial_state
    system = {} if initial is None else initial(Actor(subject), utcnow())
    row = await service.create_record(session, spec, content, **{**system, **state})
    await enqueue_raised(session, tables, spec, row, owner)
    return row


async def note_condition_cleared(
    session: AsyncSession,
    tables: FlagTables,
    spec: RecordSpec,
    *,
    flag_id: str,
    cleared_at: datetime,
    note: str,
) -> None:
    """Add the ``condition_cleared`` hop to the flag and owe the hub a ``flag.cleared`` message."""
    table: Any = spec.table
    local = GlobalId.parse(flag_id).local
    row = await session.get(table, local, populate_existing=True)
    if row is not None:
        hops = [h for h in row.timeline if h.hop != CLEARED_HOP]
        hops.append(RiskFlagHop(hop=CLEARED_HOP, at=cleared_at))
        await session.execute(
            sa.update(table)
            .where(table.id == local)
            .values(timeline=sorted(hops, key=lambda h: (h.at, h.hop)), updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )
    message_id = new_message_id()
    now = utcnow()
    await session.execute(
        sa.insert(tables.outbox).values(
            message_id=message_id,
            kind=KIND_CLEARED,
            flag_id=flag_id,
            payload={
                "message_id": message_id,
                "kind": KIND_CLEARED,
                "flag_id": flag_id,
                "cleared_at": cleared_at.isoformat(),
                "note": note,
            },
            status=OutboxStatus.PENDING.value,
            created_at=now,
            attempts=0,
            next_attempt_at=now,
        )
    )
