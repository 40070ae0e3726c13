"""The flag event log: numbered, persisted with each change, followed by subscribers.

Every change of a flag (``flag.raised``, ``flag.routed``, ``flag.status_changed``,
``flag.escalated``, ``flag.external_status``) is written by ``FlagEvents.append`` in the
transaction that makes the change, which then hands it to the ``EventListener``s the
hub wired (webhook deliveries, node updates, external pushes) in that transaction.
Its sequence number comes from the one ``flag_event_sequence`` row; updating that row
locks it until commit, so events commit in sequence order and a reader that has seen
``seq = n`` committed has seen every event before it.

Subscribers read the table, never an in-memory queue: a resume (``after``) and
live delivery are the same loop (read after the cursor, then wait for a wake-up),
so there is no gap and no duplicate between replay and live. ``Notifier`` is the
wake-up of one process; it is rung

- after a commit of this process (``HubFlags._changed``);
- on PostgreSQL, when another replica commits an event: ``append`` sends
  ``NOTIFY linli_flag_events`` in the event's transaction (delivered at commit,
  never for a rollback), and each replica's ``EventChannel`` listens on its own
  connection and rings its notifier;
- by the ``EventChannel`` right after it (re)connects, and every ``event_poll_s``
  while it cannot: notifications sent while nobody listened are lost, so the
  subscribers re-read the table after their cursor, which is the catch-up. This
  is the only polling left; a connected replica never re-reads on a timer.

SQLite serves one hub process, so its in-process wake-up is all there is.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

import asyncpg
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
from schema.runtime.retry import backoff_s
from schema.runtime.tasks import BackgroundTasks
from schema.scopes import Scope

__all__ = [
    "CHANNEL",
    "LISTENER_NAME",
    "EventChannel",
    "EventListener",
    "FlagEvent",
    "FlagEventType",
    "FlagEvents",
    "FlagHop",
    "Notifier",
    "announce",
    "event_json",
    "follow_events",
    "follow_log",
    "hops_of",
    "next_sequence",
    "number_event",
    "prune_events",
    "sequence_bounds",
    "start_cursor",
    "visible_events",
]

log = logging.getLogger("linli.hub.flags")

_Row = TypeVar("_Row")

ADMIN_SCOPE = Scope.ADMIN
CHANNEL = "linli_flag_events"
"""The PostgreSQL notification channel every event's transaction notifies."""
FLAG_EVENT_PREFIX = "flag."
"""Flags' event types; the log also numbers other parts' events (``report.overdue``)."""
LISTENER_NAME = "linli-hub-events"
"""The ``application_name`` of each replica's listening connection (``pg_stat_activity``)."""


class FlagEventType(enum.StrEnum):
    RAISED = "flag.raised"
    ROUTED = "flag.routed"
    STATUS_CHANGED = "flag.status_changed"
    ESCALATED = "flag.escalated"
    EXTERNAL_STATUS = "flag.external_status"  # filed with / status read back from Open311
    CONDITION_CLEARED = "flag.condition_cleared"  # a sensor's condition behind the flag ended


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

    async def wait(self, waiter: asyncio.Event, timeout_s: float | None) -> None:
        """Until ``waiter`` is set or ``timeout_s`` (None: no limit) passes."""
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
        event = FlagEventRow(
            seq=0,
            type=type.value,
            flag_id=flag.id,
            status=flag.status,
            community=flag.community,
            assigned_to=flag.assigned_to,
            previous_assignee=previous_assignee,
            at=at,
            timeline=dict(timeline),
        )
        await number_event(session, event)
        for listener in self.listeners:
            await listener(session, event, flag)
        return event


async def number_event(session: AsyncSession, event: FlagEventRow) -> FlagEventRow:
    """Give ``event`` the next sequence number of the hub's event log and store it; flushes.

    Flags' events and other parts' (``report.overdue`` of situation reports: ``flag_id``
    holds the subject's id) share the one numbered log, its retention and its webhooks;
    ``flagEvents`` follows only ``flag.*`` events.
    """
    event.seq = await next_sequence(session, EVENT_SEQUENCE)
    session.add(event)
    await session.flush()
    await announce(session)
    return event


async def next_sequence(session: AsyncSession, name: str) -> int:
    """The next number of the event log ``name`` (flags, aid, ...), locked until commit."""
    result = await session.execute(
        sa.update(EventSequenceRow)
        .where(col(EventSequenceRow.name) == name)
        .values(last_seq=col(EventSequenceRow.last_seq) + 1)
        .returning(col(EventSequenceRow.last_seq))
        .execution_options(synchronize_session=False)
    )
    seq = result.scalar_one_or_none()
    if seq is None:  # a database whose sequence row was removed by hand
        session.add(EventSequenceRow(name=name, last_seq=1, pruned_through=0))
        seq = 1
    return int(seq)


async def announce(session: AsyncSession) -> None:
    """Tell the other replicas at commit that events were written (PostgreSQL; else nothing).

    The payload is empty, so PostgreSQL folds the notifications of one transaction into one.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(sa.select(sa.func.pg_notify(CHANNEL, "")))


class EventChannel:
    """One replica's ear for the others: ``LISTEN`` on its own connection, rings the notifier.

    The connection is not from the pool (a pooled one is reset and shared); it
    reconnects by itself when PostgreSQL restarts or the connection is cut, and
    rings the notifier after every (re)connection, so subscribers catch up from
    the table on what was committed meanwhile. A connection that died without a
    word (a network gone quiet) is found by a ``SELECT 1`` every ``check_s``.
    """

    def __init__(
        self,
        db: Database,
        notifier: Notifier,
        *,
        catch_up_s: float,
        check_s: float = 10.0,
        retry_base_s: float = 0.1,
    ) -> None:
        self.db = db
        self.notifier = notifier
        self.catch_up_s = catch_up_s
        self.check_s = check_s
        self.retry_base_s = retry_base_s
        self.connections = 0  # how many times it has connected and listened

    @property
    def enabled(self) -> bool:
        """Only PostgreSQL has ``LISTEN/NOTIFY``; SQLite serves one hub process."""
        return self.db.engine.dialect.name == "postgresql"

    async def _connect(self) -> asyncpg.Connection:
        engine = self.db.engine
        _, options = engine.dialect.create_connect_args(engine.url)
        for sqlalchemy_only in (
            "prepared_statement_cache_size",
            "prepared_statement_name_func",
            "async_creator_fn",
        ):
            options.pop(sqlalchemy_only, None)
        settings = {**options.pop("server_settings", {}), "application_name": LISTENER_NAME}
        connection: asyncpg.Connection = await asyncpg.connect(
            **options, server_settings=settings, timeout=self.check_s
        )
        return connection

    def _notified(self, *_: object) -> None:
        self.notifier.notify()

    async def _listen_once(self) -> None:
        """Connect, listen, catch up, then keep listening until the connection is lost."""
        connection = await self._connect()
        lost = asyncio.Event()
        connection.add_termination_listener(lambda _: lost.set())
        try:
            await connection.add_listener(CHANNEL, self._notified)
            self.connections += 1
            if self.connections > 1:
                log.info("listening for flag events again")
            self.notifier.notify()  # catch up: what was committed while nobody listened
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.check_s):
                        await lost.wait()
                if not lost.is_set():
                    async with asyncio.timeout(self.check_s):
                        await connection.fetchval("SELECT 1")
        finally:
            connection.terminate()

    async def listen(self) -> None:
        """Listen for as long as the replica runs, reconnecting with backoff."""
        failures = 0
        while True:
            try:
                await self._listen_once()
                failures = 0
                log.warning("the flag event listener lost its connection; reconnecting")
            except Exception as exc:  # the listener must outlive any one failure
                failures += 1
                if failures & (failures - 1) == 0:  # 1st, 2nd, 4th ... failure: not a flood
                    log.warning(
                        "the flag event listener failed (attempt %d), reconnecting: %s: %s",
                        failures,
                        type(exc).__name__,
                        exc,
                    )
            # Not listening: subscribers re-read the table until the channel is back.
            self.notifier.notify()
            await asyncio.sleep(
                backoff_s(failures, base_s=self.retry_base_s, max_s=self.catch_up_s)
            )

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Listen in the background while the block runs (nothing to do on SQLite)."""
        if not self.enabled:
            yield
            return
        async with BackgroundTasks("flag event listener") as tasks:
            tasks.start(self.listen())
            yield


@strawberry.type(description="One hop of a flag's journey and when it happened")
class FlagHop:
    hop: str = strawberry.field(
        description="raised_at_node, received_at_hub, routed, delivered, acknowledged, "
        "verifying, confirmed, dismissed, resolved, escalated[_n], "
        "external:open311:<submitted|open|closed>[_n], condition_cleared"
    )
    at: datetime


def hops_of(timeline: dict[str, datetime]) -> list[FlagHop]:
    """The hops of a timeline, in the order they happened."""
    return [FlagHop(hop=h, at=t) for h, t in sorted(timeline.items(), key=lambda i: i[1])]


@strawberry.type(description="A change of a flag, numbered; resume with after: seq")
class FlagEvent:
    seq: int
    type: str = strawberry.field(
        description="flag.raised, flag.routed, flag.status_changed, flag.escalated, "
        "flag.external_status or flag.condition_cleared"
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


async def sequence_bounds(session: AsyncSession, name: str = EVENT_SEQUENCE) -> tuple[int, int]:
    """(last sequence number given out, newest one pruned) of the event log ``name``."""
    row = await session.get(EventSequenceRow, name, populate_existing=True)
    return (row.last_seq, row.pruned_through) if row is not None else (0, 0)


async def start_cursor(db: Database, after: int | None, name: str = EVENT_SEQUENCE) -> int:
    """Where a subscription starts: ``after``, or now; refuses future and expired positions."""
    async with db.sessions() as session:
        last, pruned = await sequence_bounds(session, name)
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
    batch: int = 200,
    delivered: Callable[[FlagEventRow], Awaitable[None]] | None = None,
) -> AsyncIterator[FlagEventRow]:
    """The caller's flag events after ``cursor``, replayed from the table, then live, forever."""
    async for row in follow_log(
        db,
        notifier,
        FlagEventRow,
        # The log numbers other parts' events too (report.overdue): flags' only here.
        sa.and_(col(FlagEventRow.type).startswith(FLAG_EVENT_PREFIX), visible_events(caller)),
        cursor,
        sequence=EVENT_SEQUENCE,
        batch=batch,
        delivered=delivered,
    ):
        yield row


async def follow_log(
    db: Database,
    notifier: Notifier,
    table: type[_Row],
    visible: sa.ColumnElement[bool],
    cursor: int,
    *,
    sequence: str,
    batch: int = 200,
    delivered: Callable[[_Row], Awaitable[None]] | None = None,
) -> AsyncIterator[_Row]:
    """Rows of the event log ``table`` (numbered by ``sequence``) after ``cursor``, forever.

    Between reads it waits for ``notifier`` alone: this process's commits, other
    replicas' notifications and the channel's catch-up all ring it.
    """
    seq_column: Any = table.seq  # type: ignore[attr-defined]
    while True:
        waiter = notifier.waiter()
        async with db.sessions() as session:
            last, _ = await sequence_bounds(session, sequence)
            rows = list(
                (
                    await session.execute(
                        select(table)
                        .where(seq_column > cursor, seq_column <= last, visible)
                        .order_by(seq_column)
                        .limit(batch)
                    )
                ).scalars()
            )
            _, pruned = await sequence_bounds(session, sequence)
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
            cursor = getattr(rows[-1], "seq")  # noqa: B009
            continue
        cursor = max(cursor, last)
        await notifier.wait(waiter, None)


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
