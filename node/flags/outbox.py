"""The node's outbox to the hub: a row per message, written in the transaction of its change.

It carries risk flags (``flag.raised`` to ``/flags/inbox``) and mutual-aid steps
(``aid.step`` to ``/aid/inbox``) alike, in one queue: ``enqueue`` writes any kind,
``ROUTES`` says where the delivery worker posts each kind.

``OutboxHooks`` is the ``RecordHooks`` of ``RiskFlag``: the generic create
(``schema.store.resolvers``) calls ``created`` inside the transaction that
inserts the flag, so a flag is never stored without the message that tells the
hub about it, and ``committed`` afterwards, which wakes the delivery worker.
The rest are the queries the worker and the ``flagOutbox`` field use; they
flush, the caller commits.

Several node processes may share one PostgreSQL database: ``claim_head``
locks the oldest pending row with ``SELECT ... FOR UPDATE SKIP LOCKED`` in the
transaction that sends it and records the outcome, so one process sends it
and the others, finding it locked, wait their turn: each row is sent once (the
hub's answer lost in a timeout aside, which the hub drops by message id), and
still in ``id`` order. A process that dies mid-send takes its lock with its
connection, and another one sends the row again. SQLite has no row locks: one
node process per SQLite database (its own delivery is serial anyway).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from node.flags.errors import OutboxEntryNotFailed
from node.flags.tables import MAX_ERROR, FlagTables, OutboxStatus
from schema.errors import NotFound
from schema.scopes import Scope
from schema.storage import utcnow
from schema.store.resolvers import public_values
from schema.store.specs import RecordSpec
from schema.store.tables import RowMixin

__all__ = [
    "KIND_AID_STEP",
    "KIND_CLEARED",
    "KIND_RAISED",
    "ROUTES",
    "Claim",
    "OutboxEntry",
    "OutboxHooks",
    "Route",
    "claim_head",
    "enqueue",
    "enqueue_raised",
    "mark_delivered",
    "mark_failed",
    "mark_retry",
    "new_message_id",
    "outbox_counts",
    "outbox_entries",
    "raised_message",
    "resend_failed",
]

KIND_RAISED = "flag.raised"
KIND_AID_STEP = "aid.step"
KIND_CLEARED = "flag.cleared"
"""The condition behind a flag a sensor raised has ended (``node.flags.raising``)."""


@dataclass(frozen=True, slots=True)
class Route:
    """Where the hub takes one kind of message, and the scope its token asks for."""

    path: str
    scope: str | None  # None: every scope the node's client has


ROUTES: dict[str, Route] = {
    KIND_RAISED: Route("/flags/inbox", Scope.RISK_FLAG),
    # A step is the requester's (aid:request) or the provider's (aid:respond): the hub checks.
    KIND_AID_STEP: Route("/aid/inbox", None),
    KIND_CLEARED: Route("/flags/inbox", Scope.RISK_FLAG),
}


def new_message_id() -> str:
    """A fresh message id (the hub drops repeats by it)."""
    return str(uuid.uuid4())


def raised_message(spec: RecordSpec, row: RowMixin, owner: str, message_id: str) -> dict[str, Any]:
    """The ``/flags/inbox`` body of a new flag, without ``sent_at`` (each attempt adds it)."""
    flag = spec.public.model_validate(public_values(spec, row, owner)).model_dump(mode="json")
    transitions = getattr(row, "transitions", None) or []
    raised_at: datetime = transitions[0].at if transitions else row.created_at
    return {
        "message_id": message_id,
        "kind": KIND_RAISED,
        "flag": flag,
        "raised_at": raised_at.isoformat(),
    }


async def enqueue_raised(
    session: AsyncSession, tables: FlagTables, spec: RecordSpec, row: RowMixin, owner: str
) -> str:
    """Owe the hub the message that ``row`` was raised (same transaction); its message id."""
    message_id = new_message_id()
    await enqueue(
        session,
        tables,
        message_id=message_id,
        kind=KIND_RAISED,
        subject_id=f"{spec.type_name}:{owner}:{row.id}",
        payload=raised_message(spec, row, owner, message_id),
    )
    return message_id


async def enqueue(
    session: AsyncSession,
    tables: FlagTables,
    *,
    message_id: str,
    kind: str,
    subject_id: str,
    payload: dict[str, Any],
) -> None:
    """Owe the hub one message of ``kind`` about ``subject_id`` (in the caller's transaction)."""
    if kind not in ROUTES:
        raise ValueError(f"no route to the hub for outbox messages of kind {kind!r}")
    now = utcnow()
    await session.execute(
        sa.insert(tables.outbox).values(
            message_id=message_id,
            kind=kind,
            flag_id=subject_id,
            payload=payload,
            status=OutboxStatus.PENDING.value,
            created_at=now,
            attempts=0,
            next_attempt_at=now,
        )
    )


class OutboxHooks:
    """``RecordHooks`` of risk flags: write the outbox row, then wake the worker."""

    def __init__(self, tables: FlagTables, owner: str, wake: Callable[[], None]) -> None:
        self.tables = tables
        self.owner = owner
        self.wake = wake

    async def created(self, session: AsyncSession, spec: RecordSpec, row: RowMixin) -> None:
        """Write the flag's outbox row in the transaction that stores the flag."""
        await enqueue_raised(session, self.tables, spec, row, self.owner)

    def committed(self, spec: RecordSpec, row: RowMixin) -> None:
        """Wake the delivery worker: there is something new to send."""
        self.wake()


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One outbox row as the worker and ``flagOutbox`` see it."""

    id: int
    message_id: str
    kind: str
    flag_id: str
    payload: dict[str, Any]
    status: OutboxStatus
    created_at: datetime
    attempts: int
    next_attempt_at: datetime
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None

    @classmethod
    def of(cls, row: sa.Row[Any]) -> OutboxEntry:
        return cls(
            id=row.id,
            message_id=row.message_id,
            kind=row.kind,
            flag_id=row.flag_id,
            payload=row.payload,
            status=OutboxStatus(row.status),
            created_at=row.created_at,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            last_attempt_at=row.last_attempt_at,
            delivered_at=row.delivered_at,
            last_error=row.last_error,
        )


@dataclass(frozen=True, slots=True)
class Claim:
    """The oldest pending row, locked until the transaction ends; or another process has it."""

    entry: OutboxEntry | None  # None: another process holds the head (it is being sent)


async def claim_head(session: AsyncSession, tables: FlagTables) -> Claim | None:
    """Lock the oldest pending row (due or not) for this transaction; None: nothing pending.

    Only the head is ever sent, so the hub gets this node's flags in order.
    """
    outbox = tables.outbox
    pending = outbox.c.status == OutboxStatus.PENDING.value
    head = (
        await session.execute(sa.select(outbox.c.id).where(pending).order_by(outbox.c.id).limit(1))
    ).scalar_one_or_none()
    if head is None:
        return None
    row = (
        await session.execute(
            sa.select(outbox)
            .where(outbox.c.id == head, pending)  # delivered meanwhile: not pending any more
            .with_for_update(skip_locked=True)
        )
    ).first()
    return Claim(OutboxEntry.of(row) if row is not None else None)


async def _set(
    session: AsyncSession, tables: FlagTables, entry: OutboxEntry, **values: Any
) -> bool:
    outbox = tables.outbox
    result = await session.execute(
        sa.update(outbox)
        .where(outbox.c.id == entry.id, outbox.c.status == OutboxStatus.PENDING.value)
        .values(**values)
    )
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


async def mark_delivered(
    session: AsyncSession, tables: FlagTables, entry: OutboxEntry, *, now: datetime
) -> bool:
    """The hub accepted the row (or had it already)."""
    return await _set(
        session,
        tables,
        entry,
        status=OutboxStatus.DELIVERED.value,
        attempts=entry.attempts + 1,
        last_attempt_at=now,
        delivered_at=now,
        last_error=None,
    )


async def mark_failed(
    session: AsyncSession, tables: FlagTables, entry: OutboxEntry, error: str, *, now: datetime
) -> bool:
    """The hub refused the row's content: retrying cannot help, so it stops here."""
    return await _set(
        session,
        tables,
        entry,
        status=OutboxStatus.FAILED.value,
        attempts=entry.attempts + 1,
        last_attempt_at=now,
        last_error=error[:MAX_ERROR],
    )


async def mark_retry(
    session: AsyncSession,
    tables: FlagTables,
    entry: OutboxEntry,
    error: str,
    *,
    now: datetime,
    next_attempt_at: datetime,
) -> bool:
    """The attempt failed for a reason that may pass: try again at ``next_attempt_at``."""
    return await _set(
        session,
        tables,
        entry,
        attempts=entry.attempts + 1,
        last_attempt_at=now,
        next_attempt_at=next_attempt_at,
        last_error=error[:MAX_ERROR],
    )


async def outbox_counts(session: AsyncSession, tables: FlagTables) -> dict[OutboxStatus, int]:
    """How many rows are pending, delivered and failed."""
    outbox = tables.outbox
    rows = await session.execute(
        sa.select(outbox.c.status, sa.func.count()).group_by(outbox.c.status)
    )
    counts = dict.fromkeys(OutboxStatus, 0)
    for status, count in rows.all():
        counts[OutboxStatus(status)] = int(count)
    return counts


async def outbox_entries(
    session: AsyncSession, tables: FlagTables, *, status: OutboxStatus | None, limit: int
) -> list[OutboxEntry]:
    """The newest rows (of one status, if given), newest first."""
    outbox = tables.outbox
    query = sa.select(outbox).order_by(outbox.c.id.desc()).limit(limit)
    if status is not None:
        query = query.where(outbox.c.status == status.value)
    return [OutboxEntry.of(row) for row in (await session.execute(query)).all()]


async def resend_failed(
    session: AsyncSession, tables: FlagTables, entry_id: int, *, now: datetime
) -> OutboxEntry:
    """Put a failed row back in line, due now (it goes before the rows raised after it)."""
    outbox = tables.outbox
    row = (
        await session.execute(sa.select(outbox).where(outbox.c.id == entry_id).with_for_update())
    ).first()
    if row is None:
        raise NotFound(f"no flag outbox entry {entry_id}", id=entry_id)
    status = OutboxStatus(row.status)
    if status is not OutboxStatus.FAILED:
        raise OutboxEntryNotFailed(
            f"flag outbox entry {entry_id} is {status.name}: only a FAILED entry is sent again",
            id=entry_id,
            status=status.name,
        )
    await session.execute(
        sa.update(outbox)
        .where(outbox.c.id == entry_id)
        .values(status=OutboxStatus.PENDING.value, next_attempt_at=now)
    )
    updated = (await session.execute(sa.select(outbox).where(outbox.c.id == entry_id))).one()
    return OutboxEntry.of(updated)
