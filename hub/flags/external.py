"""Confirmed flags out to municipal Open311 systems, and their status there back in.

When a flag is confirmed by the department its route names, and that route names
an ``open311`` system (see ``routing``), the event listener ``push_owed`` writes a
``flag_external_pushes`` row in the transaction of the move. ``ExternalPushes``
then, in the background, through the ``FlagSink`` protocol (``adapters.base``) of
the adapter that the entry-point group ``linli.adapters`` names ``open311``:

- files it as a service request (``FlagSink.push``), retried with
  exponential backoff and jitter under a lease (two hub replicas never file the
  same row at once) until ``external_max_attempts``; a server that answers a
  token instead of an id is followed up by the poller (``token:<t>``);
- reads the request's status back (``status_changes``) every ``external_poll_s``
  until it is closed.

Each outcome is a change of the flag, in one transaction: its ``external_*``
columns, a timeline hop ``external:open311:<submitted|open|closed>`` at the time
it happened there, a ``flag.external_status`` event (subscribers, webhooks) and an
update owed to the community node.

GeoReport v2 has no idempotency key: a POST that timed out may have created the
request and is sent again, so a timeout can (rarely) file a flag twice. Answers
with a server error (5xx) are taken as "not created".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime, timedelta
from importlib.metadata import entry_points
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from adapters.base import ADAPTER_ENTRY_POINTS, PENDING_PREFIX, FlagSink, FlagSinkFactory
from adapters.errors import UpstreamPending
from hub.flags.errors import RoutingConfigError
from hub.flags.events import EventListener, FlagEvents, FlagEventType
from hub.flags.routing import Open311Target, RoutingRules
from hub.flags.tables import ExternalPushRow, FlagEventRow, FlagRow
from schema.enums import RiskFlagStatus
from schema.errors import LinliError
from schema.records import RiskFlagBase
from schema.runtime.db import Database
from schema.runtime.retry import backoff_s
from schema.runtime.tasks import BackgroundTasks, repeat
from schema.storage import utcnow

__all__ = [
    "HOP_PREFIX",
    "SYSTEM",
    "ExternalPushes",
    "enqueue_external_push",
    "flag_content",
    "flag_sinks",
    "push_owed",
    "record_external",
]

log = logging.getLogger("linli.hub.flags.external")

SYSTEM = "open311"
HOP_PREFIX = f"external:{SYSTEM}:"
SUBMITTED = "submitted"

Changed = Callable[[list[tuple[FlagRow, dict[str, datetime]]]], None]


async def enqueue_external_push(
    session: AsyncSession, row: FlagRow, routing: RoutingRules, *, now: datetime
) -> ExternalPushRow | None:
    """Owe the flag's Open311 system a service request, if its route names one. Flushes."""
    target = routing.open311_target(row.category, row.community, row.assigned_to, row.severity)
    if target is None:
        return None
    push = ExternalPushRow(
        flag_id=row.id, system=SYSTEM, target=target, created_at=now, next_attempt_at=now
    )
    session.add(push)
    await session.flush()
    return push


def push_owed(routing: RoutingRules) -> EventListener:
    """The event listener that owes a confirmed flag's Open311 system a service request."""

    async def owe(session: AsyncSession, event: FlagEventRow, flag: FlagRow, /) -> None:
        confirmed = flag.status == RiskFlagStatus.CONFIRMED.value
        if event.type == FlagEventType.STATUS_CHANGED and confirmed:
            await enqueue_external_push(session, flag, routing, now=event.at)

    return owe


def flag_content(row: FlagRow) -> RiskFlagBase:
    """What the community wrote, as the adapter takes it."""
    return RiskFlagBase.model_validate(
        {
            "category": row.category,
            "description": row.description,
            "location": row.location,
            "address": row.address,
            "estimated_severity": row.severity,
            "evidence_links": row.evidence_links,
        }
    )


def _hop(timeline: dict[str, datetime], status: str) -> str:
    hop = f"{HOP_PREFIX}{status}"
    if hop not in timeline:
        return hop
    n = 2
    while f"{hop}_{n}" in timeline:  # reopened and closed again: keep every change
        n += 1
    return f"{hop}_{n}"


async def record_external(
    session: AsyncSession,
    flag_id: str,
    *,
    events: FlagEvents,
    system: str,
    external_id: str | None,
    status: str | None,
    at: datetime,
    now: datetime,
) -> tuple[FlagRow, dict[str, datetime]] | None:
    """Record what the external system did with a flag (a hop unless ``status`` is None).

    A change of the flag like any other: the version moves, an event (and what its
    listeners owe, such as a node update) is written in this transaction. Flushes.
    """
    for _ in range(5):  # a department's move may win the race for the version: read again
        row = await session.get(FlagRow, flag_id, populate_existing=True)
        if row is None:
            return None
        hops = {} if status is None else {_hop(row.timeline, status): at}
        timeline = {**row.timeline, **hops}
        values: dict[str, Any] = {
            "external_system": system,
            "external_id": external_id or row.external_id,
            "timeline": timeline,
            "updated_at": now,
            "version": row.version + 1,
        }
        if status is not None:
            values["external_status"] = status
            values["external_status_at"] = at
        result = await session.execute(
            sa.update(FlagRow)
            .where(col(FlagRow.id) == flag_id, col(FlagRow.version) == row.version)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        assert isinstance(result, CursorResult)
        if result.rowcount == 1:
            break
    else:
        raise RuntimeError(f"flag {flag_id} kept changing; its external status is read again")
    await session.refresh(row)
    await events.append(
        session, type=FlagEventType.EXTERNAL_STATUS, flag=row, at=now, timeline=timeline
    )
    return row, hops


def flag_sinks(
    http: httpx.AsyncClient, targets: Mapping[str, Open311Target]
) -> dict[str, FlagSink]:
    """A ``FlagSink`` per routing target, built by the adapter named ``open311`` (entry point)."""
    if not targets:
        return {}
    found = entry_points(group=ADAPTER_ENTRY_POINTS, name=SYSTEM)
    if not found:
        raise RoutingConfigError(
            f"the routing rules name {SYSTEM} systems, but no adapter {SYSTEM!r} is installed "
            f"(entry-point group {ADAPTER_ENTRY_POINTS})"
        )
    factory: FlagSinkFactory = next(iter(found)).load()
    return {name: factory(http, target.sink_options()) for name, target in targets.items()}


def _reason(error: BaseException, target: Open311Target) -> str:
    if isinstance(error, LinliError):
        text = f"{error.extensions['code']}: {error.message}"
    elif isinstance(error, TimeoutError):
        text = "UPSTREAM_TIMEOUT: no answer in time"
    else:
        text = f"{type(error).__name__}: {error}"
    secret = target.api_key.get_secret_value()
    return text.replace(secret, "***")[:500] if secret else text[:500]


class ExternalPushes:
    """Files confirmed flags with their Open311 systems and follows the requests there."""

    def __init__(
        self,
        db: Database,
        routing: RoutingRules,
        sinks: Mapping[str, FlagSink],
        *,
        events: FlagEvents,
        max_attempts: int,
        retry_base_s: float,
        retry_max_s: float,
        poll_s: float,
        changed: Changed,
    ) -> None:
        self.db = db
        self.targets = routing.open311
        self.max_attempts = max_attempts
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.poll_s = poll_s
        self.changed = changed
        self.events = events
        self.sinks = dict(sinks)

    def _budget_s(self, target: Open311Target) -> float:
        # The POST, then up to token_attempts reads of tokens/{token} with pauses between.
        attempts = target.token_attempts
        return target.timeout_s * (attempts + 1) + target.token_wait_s * attempts

    async def _claim(self, push: ExternalPushRow, lease_s: float, now: datetime) -> bool:
        async with self.db.transaction() as session:
            result = await session.execute(
                sa.update(ExternalPushRow)
                .where(
                    col(ExternalPushRow.id) == push.id,
                    col(ExternalPushRow.pushed_at).is_(None),
                    col(ExternalPushRow.failed_at).is_(None),
                    sa.or_(
                        col(ExternalPushRow.lease_until).is_(None),
                        col(ExternalPushRow.lease_until) < now,
                    ),
                )
                .values(lease_until=now + timedelta(seconds=lease_s))
                .execution_options(synchronize_session=False)
            )
            assert isinstance(result, CursorResult)
            return result.rowcount == 1

    async def _update_push(self, session: AsyncSession, push_id: int | None, **values: Any) -> None:
        await session.execute(
            sa.update(ExternalPushRow)
            .where(col(ExternalPushRow.id) == push_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def _push(self, push: ExternalPushRow) -> bool:
        target = self.targets.get(push.target)
        budget_s = self._budget_s(target) if target is not None else 0.0
        if not await self._claim(push, budget_s + 5, utcnow()):
            return False
        error: str | None = None
        external_id = ""
        if target is None:
            error = f"the routing rules no longer name the Open311 system {push.target!r}"
        else:
            async with self.db.sessions() as session:
                flag = await session.get(FlagRow, push.flag_id)
            if flag is None:
                error = f"flag {push.flag_id} is gone"
            else:
                try:
                    async with asyncio.timeout(budget_s):
                        external_id = await self.sinks[push.target].push(
                            flag.id, flag_content(flag)
                        )
                except Exception as exc:  # every failure is retried with backoff
                    error = _reason(exc, target)
        now = utcnow()
        attempts = push.attempts + 1
        if error is None:
            # First make the filing durable (never POSTed again), then tell the flag: should
            # that fail, the poller's first status read records the system and the id.
            async with self.db.transaction() as session:
                await self._update_push(
                    session,
                    push.id,
                    attempts=attempts,
                    lease_until=None,
                    last_error=None,
                    pushed_at=now,
                    external_id=external_id,
                    status=SUBMITTED,
                    next_poll_at=now,
                )
            pending = external_id.startswith(PENDING_PREFIX)
            async with self.db.transaction() as session:
                recorded = await record_external(
                    session,
                    push.flag_id,
                    events=self.events,
                    system=f"{push.system}:{push.target}",
                    external_id=None if pending else external_id,
                    status=SUBMITTED,
                    at=now,
                    now=now,
                )
            if recorded is not None:
                self.changed([recorded])
            return True
        values: dict[str, Any] = {"attempts": attempts, "lease_until": None, "last_error": error}
        if attempts >= self.max_attempts:
            values["failed_at"] = now
            log.error(
                "gave up filing flag %s with Open311 %s after %d attempts: %s",
                push.flag_id,
                push.target,
                attempts,
                error,
            )
        else:
            delay = backoff_s(attempts, base_s=self.retry_base_s, max_s=self.retry_max_s)
            values["next_attempt_at"] = now + timedelta(seconds=delay)
            if attempts & (attempts - 1) == 0:  # 1st, 2nd, 4th, 8th ... failure: not a flood
                log.warning(
                    "filing flag %s with Open311 %s failed (attempt %d): %s",
                    push.flag_id,
                    push.target,
                    attempts,
                    error,
                )
        async with self.db.transaction() as session:
            await self._update_push(session, push.id, **values)
        return False

    async def _poll(self, push: ExternalPushRow) -> int:
        target = self.targets.get(push.target)
        if target is None or push.external_id is None:
            return 0
        sink = self.sinks[push.target]
        external_id = push.external_id
        try:
            async with asyncio.timeout(self._budget_s(target)):
                if external_id.startswith(PENDING_PREFIX):
                    external_id = await sink.resolve(external_id)
                # A second back: GeoReport times have whole seconds, and a change in the
                # second of the last one read must not be missed (repeats are dropped below).
                since = None if push.status_at is None else push.status_at - timedelta(seconds=1)
                changes = await sink.status_changes([external_id], since)
        except UpstreamPending:
            changes = []
        except Exception as exc:  # read again next round
            reason = _reason(exc, target)
            log.info("reading Open311 %s for flag %s failed: %s", push.target, push.flag_id, reason)
            async with self.db.transaction() as session:
                await self._update_push(
                    session,
                    push.id,
                    last_error=reason,
                    next_poll_at=utcnow() + timedelta(seconds=self.poll_s),
                )
            return 0
        now = utcnow()
        resolved = None if external_id.startswith(PENDING_PREFIX) else external_id
        recorded: list[tuple[FlagRow, dict[str, datetime]]] = []
        system = f"{push.system}:{push.target}"
        async with self.db.transaction() as session:
            current = await session.get(ExternalPushRow, push.id, populate_existing=True)
            if current is None:
                return 0
            status, status_at = current.status, current.status_at
            closed = False  # the request is done with (its flag resolved there): stop reading it
            for change in changes:
                if status_at is not None and change.at < status_at:
                    continue  # older than what is recorded (another replica was first)
                # The timeline shows the system's own word for the status.
                raw = change.upstream_status or change.status
                if raw != status:
                    done = await record_external(
                        session,
                        push.flag_id,
                        events=self.events,
                        system=system,
                        external_id=resolved,
                        status=raw,
                        at=change.at,
                        now=now,
                    )
                    if done is not None:
                        recorded.append(done)
                status, status_at = raw, change.at
                closed = change.status == RiskFlagStatus.RESOLVED.value
            if resolved is not None and current.external_id != resolved and not recorded:
                done = await record_external(
                    session,
                    push.flag_id,
                    events=self.events,
                    system=system,
                    external_id=resolved,
                    status=None,
                    at=now,
                    now=now,
                )
                if done is not None:
                    recorded.append(done)
            await self._update_push(
                session,
                push.id,
                external_id=resolved or current.external_id,
                status=status,
                status_at=status_at,
                last_error=None,
                next_poll_at=None if closed else now + timedelta(seconds=self.poll_s),
            )
        if recorded:
            self.changed(recorded)
        return len(recorded)

    async def push_once(self, limit: int = 20) -> int:
        """File each due push once; the number filed."""
        now = utcnow()
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(ExternalPushRow)
                .where(
                    col(ExternalPushRow.pushed_at).is_(None),
                    col(ExternalPushRow.failed_at).is_(None),
                    col(ExternalPushRow.next_attempt_at) <= now,
                )
                .order_by(col(ExternalPushRow.id))
                .limit(limit)
            )
            due = list(rows.scalars())
        return sum(await asyncio.gather(*(self._push(p) for p in due)))

    async def poll_once(self, limit: int = 50) -> int:
        """Read back the status of each filed request that is due; the changes recorded."""
        now = utcnow()
        async with self.db.sessions() as session:
            rows = await session.execute(
                select(ExternalPushRow)
                .where(
                    col(ExternalPushRow.pushed_at).is_not(None),
                    col(ExternalPushRow.next_poll_at) <= now,  # none once the request is closed
                )
                .order_by(col(ExternalPushRow.next_poll_at))
                .limit(limit)
            )
            due = list(rows.scalars())
        return sum(await asyncio.gather(*(self._poll(p) for p in due)))

    @contextlib.asynccontextmanager
    async def running(
        self, wake: Callable[[], asyncio.Event], poll_s: float
    ) -> AsyncIterator[ExternalPushes]:
        """File and follow in the background: after each commit (``wake``) and every ``poll_s``."""
        async with BackgroundTasks("Open311") as tasks:
            if self.sinks:
                tasks.start(repeat("Open311", self.run_once, interval_s=poll_s, wake=wake))
            yield self

    async def run_once(self) -> None:
        """File every due push, then read back the status of every due request."""
        while await self.push_once():
            pass
        await self.poll_once()
