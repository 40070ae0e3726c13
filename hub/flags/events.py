"""The flag event log: numbered, persisted with each change, followed by subscribers.

Every change of a flag (``flag.raised``, ``flag.routed``, ``flag.status_changed``,
``flag.escalated``, ``flag.external_status``) is written by ``FlagEvents.append`` in the
transaction that makes the change, which then hands it to the ``EventListener``s the
hub wired (webhook deliveries, node updates, external pushes) in that transaction.
Its sequence number comes from the one ``flag_event_sequence`` row; updating that row
locks it until commit, so events commit in sequence order and a reader that has seen
``seq = n`` committed has seen every event before it.

Subscribers read the table, never an in-memory queue: a resume (``after``) and
live delivery are the same loop (read after the cursor, then wait), so there is
no gap and no duplicate between replay and live. ``Notifier`` wakes the loops
of this process after a commit; they also re-read every ``event_poll_s``, which
is how several hub replicas converge. PostgreSQL ``LISTEN/NOTIFY`` (or Redis)
in place of that poll is the next step.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from hub.flags.errors import EventsExpired, InvalidSequence
from hub.flags.tables import EVENT_SEQUENCE, EventSequenceRow, FlagEventRow, FlagRow
from policies.caller import Caller
from schema.enums import OrgKind, RiskFlagStatus
from schema.runtime.db import Database
from schema.runtime.graphql import graphql_json
from schema.scopes import Scope

__all__ = [
    "EventListener",
    "FlagEvent",
    "FlagEventType",
    "FlagEvents",
    "FlagHop",
    "Notifier",
    "event_json",
    "follow_events",
    "hops_of",
    "prune_events",
    "sequence_bounds",
    "start_cursor",
    "visible_events",
]

ADMIN_SCOPE = Scope.ADMIN


class FlagEventType(enum.StrEnum):
    RAISED = "flag.raised"
    ROUTED = "flag.routed"
    STATUS_CHANGED = "flag.status_changed"
    ESCALATED = "flag.escalated"
    EXTERNAL_STATUS = "flag.external_status"  # filed with / status read back from Open311


class Notifier:
    """Wakes this process's subscribers and workers after a commit (asyncio, in-process)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def waiter(self) -> asyncio.Event:
        """Take this before reading; it is set by the next ``notify``, so no wake-up is lost."""
        return self._event

    def notify(self) -> None:
        """Wake everyone waiting now."""
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def wait(self, waiter: asyncio.Event, timeout_s: float) -> None:
        """Until ``waiter`` is set or ``timeout_s`` passes."""
        with contextlib.suppress(TimeoutError):  # not wait_for: it can swallow a cancel on 3.11
            async with asyncio.timeout(timeout_s):
                await waiter.wait()


class EventListener(Protocol):
    """Acts on a new event in the transaction that wrote it (webhooks, node updates, ...)."""

    async def __call__(self, session: AsyncSession, event: FlagEventRow, flag: FlagRow, /) -> None:
        """Write what the event owes (rows of the same transaction); flushes."""
        ...


class FlagEvents:
    """Numbers and stores the events of flags, and hands each to the wired listeners."""

    def __init__(self, listeners: Sequence[EventListener] = ()) -> None:
        self.listeners = tuple(listeners)

    async def append(
        self,
        session: AsyncSession,
        *,
        type: FlagEventType,
        flag: FlagRow,
        at: datetime,
        timeline: dict[str, datetime],
        previous_assignee: str | None = None,
    ) -> FlagEventRow:
        """Number and store one event of ``flag``, then run the listeners; flushes."""
        result = await session.execute(
            sa.update(EventSequenceRow)
            .where(col(EventSequenceRow.name) == EVENT_SEQUENCE)
            .values(last_seq=col(EventSequenceRow.last_seq) + 1)
            .returning(col(EventSequenceRow.last_seq))
            .execution_options(synchronize_session=False)
        )
        seq = result.scalar_one_or_none()
        if seq is None:  # a database whose sequence row was removed by hand
            session.add(EventSequenceRow(name=EVENT_SEQUENCE, last_seq=1, pruned_through=0))
            seq = 1
        event = FlagEventRow(
            seq=seq,
            type=type.value,
            flag_id=flag.id,
            status=flag.status,
            community=flag.community,
            assigned_to=flag.assigned_to,
            previous_assignee=previous_assignee,
            at=at,
            timeline=dict(timeline),
        )
        session.add(event)
        await session.flush()
        for listener in self.listeners:
            await listener(session, event, flag)
        return event


@strawberry.type(description="One hop of a flag's journey and when it happened")
class FlagHop:
    hop: str = strawberry.field(
        description="raised_at_node, received_at_hub, routed, delivered, acknowledged, "
        "verifying, confirmed, dismissed, resolved, escalated[_n], "
        "external:open311:<submitted|open|closed>[_n]"
    )
    at: datetime


def hops_of(timeline: dict[str, datetime]) -> list[FlagHop]:
    """The hops of a timeline, in the order they happened."""
    return [FlagHop(hop=h, at=t) for h, t in sorted(timeline.items(), key=lambda i: i[1])]


@strawberry.type(description="A change of a flag, numbered; resume with after: seq")
class FlagEvent:
    seq: int
    type: str = strawberry.field(
        description="flag.raised, flag.routed, flag.status_changed, flag.escalated "
        "or flag.external_status"
    )
    flag_id: strawberry.ID
    status: RiskFlagStatus
    community: str
    assigned_to: str | None
    previous_assignee: str | None = strawberry.field(description="Set on flag.escalated")
    at: datetime
    timeline: list[FlagHop]

    @classmethod
    def of(cls, row: FlagEventRow) -> FlagEvent:
        """The GraphQL object of a stored event."""
        return cls(
            seq=row.seq,
            type=row.type,
            flag_id=strawberry.ID(row.flag_id),
            status=RiskFlagStatus(row.status),
            community=row.community,
            assigned_to=row.assigned_to,
            previous_assignee=row.previous_assignee,
            at=row.at,
            timeline=hops_of(row.timeline),
        )


def event_json(event: FlagEventRow) -> dict[str, Any]:
    """The JSON form of an event (webhook ``data``): exactly the GraphQL ``FlagEvent``."""
    body: dict[str, Any] = graphql_json(FlagEvent.of(event))
    return body


def visible_events(caller: Caller) -> sa.ColumnElement[bool]:
    """Events the caller may see: a department its flags, a community its own, admin all."""
    if caller.has_scope(ADMIN_SCOPE):
        return sa.true()
    if caller.org_kind is OrgKind.DEPARTMENT:
        return sa.or_(
            col(FlagEventRow.assigned_to) == caller.org,
            col(FlagEventRow.previous_assignee) == caller.org,
        )
    if caller.org_kind is OrgKind.COMMUNITY:
        return col(FlagEventRow.community) == caller.org
    return sa.false()


async def sequence_bounds(session: AsyncSession) -> tuple[int, int]:
    """(last sequence number given out, newest one pruned)."""
    row = await session.get(EventSequenceRow, EVENT_SEQUENCE, populate_existing=True)
    return (row.last_seq, row.pruned_through) if row is not None else (0, 0)


async def start_cursor(db: Database, after: int | None) -> int:
    """Where a subscription starts: ``after``, or now; refuses future and expired positions."""
    async with db.sessions() as session:
        last, pruned = await sequence_bounds(session)
    if after is None:
        return last
    if after < 0 or after > last:
        raise InvalidSequence(
            f"after={after} is not a sequence number of this hub (the last is {last})",
            after=after,
            lastSeq=last,
        )
    if after < pruned:
        raise EventsExpired(
            f"events up to {pruned} are past the retention window; resume from {pruned} or later",
            after=after,
            oldestSeq=pruned + 1,
        )
    return after


async def follow_events(
    db: Database,
    notifier: Notifier,
    caller: Caller,
    cursor: int,
    *,
    poll_s: float,
    batch: int = 200,
    delivered: Callable[[FlagEventRow], Awaitable[None]] | None = None,
) -> AsyncIterator[FlagEventRow]:
    """The caller's events after ``cursor``, replayed from the table, then live, forever."""
    visible = visible_events(caller)
    while True:
        waiter = notifier.waiter()
        async with db.sessions() as session:
            last, _ = await sequence_bounds(session)
            rows = list(
                (
                    await session.execute(
                        select(FlagEventRow)
                        .where(
                            col(FlagEventRow.seq) > cursor, col(FlagEventRow.seq) <= last, visible
                        )
                        .order_by(col(FlagEventRow.seq))
                        .limit(batch)
                    )
                ).scalars()
            )
            _, pruned = await sequence_bounds(session)
        if pruned > cursor:
            raise EventsExpired(
                f"events after {cursor} were pruned before they could be sent",
                after=cursor,
                oldestSeq=pruned + 1,
            )
        for row in rows:
            yield row
            if delivered is not None:
                await delivered(row)
        if len(rows) == batch:
            cursor = rows[-1].seq
            continue
        cursor = max(cursor, last)
        await notifier.wait(waiter, poll_s)


async def prune_events(session: AsyncSession, *, now: datetime, retention_s: float) -> int:
    """Delete events older than the retention window; remember the newest deleted. Flushes."""
    cutoff = now - timedelta(seconds=retention_s)
    newest = (
        await session.execute(
            select(sa.func.max(col(FlagEventRow.seq))).where(col(FlagEventRow.at) < cutoff)
        )
    ).scalar_one_or_none()
    if newest is None:
        return 0
    deleted = await session.execute(
        sa.delete(FlagEventRow)
        .where(col(FlagEventRow.seq) <= newest)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        sa.update(EventSequenceRow)
        .where(
            col(EventSequenceRow.name) == EVENT_SEQUENCE,
            col(EventSequenceRow.pruned_through) < newest,
        )
        .values(pruned_through=newest)
        .execution_options(synchronize_session=False)
    )
    count: int = getattr(deleted, "rowcount", 0) or 0
    return count
