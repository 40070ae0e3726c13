"""Messages to community nodes: a durable outbox, delivered in order per node.

It carries flag status updates (``/flags/updates``) and mutual-aid steps
(``/aid/steps``, see ``hub.aid``) alike: ``enqueue_node_message`` writes any of them.

Every change of a flag writes a ``flag_outbox`` row in the same transaction.
``NodeOutbox`` delivers, per node, the oldest undelivered row first and nothing
after it until it is accepted (so a node sees its flags' updates in order),
retrying with exponential backoff and jitter. Delivery is at least once; the
node drops repeats by ``message_id``. Each attempt carries a fresh token the hub
mints for itself (org = the district) with ``aud`` = the node and only the scope of the
row's route (``ROUTE_SCOPES``): ``risk:verify`` for flag updates, ``aid:respond`` for aid
steps; the node checks that scope on each endpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from hub.flags.events import FlagEventType
from hub.flags.tables import FlagEventRow, FlagRow, NodeOutboxRow, timeline_of
from policies.caller import Caller
from schema.enums import OrgKind
from schema.records import FlagTransition
from schema.runtime.db import Database
from schema.runtime.outbound import URL_NOT_ALLOWED, UrlNotAllowed
from schema.runtime.retry import backoff_s
from schema.runtime.tasks import BackgroundTasks, repeat
from schema.scopes import Scope
from schema.storage import utcnow

__all__ = [
    "AID_STEPS_PATH",
    "FLAG_UPDATES_PATH",
    "ROUTE_SCOPES",
    "NodeOutbox",
    "enqueue_node_message",
    "enqueue_node_update",
    "hub_caller",
    "route_caller",
    "update_payload",
]

log = logging.getLogger("linli.hub.flags.outbox")

TokenMinter = Callable[[Caller, str], Awaitable[str]]
NodeUrl = Callable[[str], str | None]

FLAG_UPDATES_PATH = "/flags/updates"
AID_STEPS_PATH = "/aid/steps"
ROUTE_SCOPES: dict[str, str] = {
    FLAG_UPDATES_PATH: Scope.RISK_VERIFY,
    AID_STEPS_PATH: Scope.AID_RESPOND,
}
"""The one scope the hub's token carries on each node route (what the node checks there)."""


def hub_caller(*, hub_id: str, district: str) -> Caller:
    """The hub itself as a caller of nodes: the district, with every route's scope.

    The outbox narrows it to one route's scope per call (``route_caller``).
    """
    return Caller(
        org=district,
        org_kind=OrgKind.HUB,
        scopes=frozenset(ROUTE_SCOPES.values()),
        client_id=hub_id,
        subject=hub_id,
        district=district,
    )


def route_caller(caller: Caller, path: str) -> Caller:
    """``caller`` with only the scope the node route ``path`` needs; ``ValueError`` if unknown."""
    scope = ROUTE_SCOPES.get(path)
    if scope is None:
        raise ValueError(f"no scope is known for the node route {path}")
    if not caller.has_scope(scope):
        raise ValueError(f"the caller lacks the scope {scope} of the node route {path}")
    return dataclasses.replace(caller, scopes=frozenset({scope}))


def update_payload(row: FlagRow, message_id: str) -> dict[str, object]:
    """``POST <node>/flags/updates``: the flag's status, steps (with their persons), assignee
    and hop times."""
    return {
        "message_id": message_id,
        "flag_id": row.id,
        "status": row.status,
        "transitions": [
            FlagTransition(
                status=s.status, at=s.at, by=s.by, note=s.note, person=s.person
            ).model_dump(mode="json")
            for s in row.transitions
        ],
        "assigned_to": row.assigned_to,
        "timeline": {hop: at.isoformat() for hop, at in timeline_of(row).items()},
    }


async def enqueue_node_update(session: AsyncSession, event: FlagEventRow, row: FlagRow, /) -> None:
    """Owe the flag's node an update after every change but its raising (an event listener)."""
    if event.type == FlagEventType.RAISED:
        return  # the node raised it; the update of its routing follows in this transaction
    message_id = str(uuid.uuid4())
    await enqueue_node_message(
        session,
        node=row.community,
        message_id=message_id,
        subject_id=row.id,
        path=FLAG_UPDATES_PATH,
        payload=update_payload(row, message_id),
        now=event.at,
    )


async def enqueue_node_message(
    session: AsyncSession,
    *,
    node: str,
    message_id: str,
    subject_id: str,
    path: str,
    payload: dict[str, Any],
    now: datetime,
) -> None:
    """Owe ``node`` one message at ``path`` (in the caller's transaction); flushes."""
    session.add(
        NodeOutboxRow(
            message_id=message_id,
            node=node,
            flag_id=subject_id,
            path=path,
            payload=payload,
            created_at=now,
            next_attempt_at=now,
        )
    )
    await session.flush()


class NodeOutbox:
    """Delivers the outbox to the nodes, in order per node, until each row is accepted."""

    def __init__(
        self,
        db: Database,
        http: httpx.AsyncClient,
        *,
        node_url: NodeUrl,
        mint: TokenMinter,
        caller: Caller,
        timeout_s: float,
        retry_base_s: float,
        retry_max_s: float,
    ) -> None:
        self.db = db
        self.node_url = node_url
        self.mint = mint
        self.caller = caller
        self.timeout_s = timeout_s
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.http = http

    async def _heads(self, now: datetime) -> list[NodeOutboxRow]:
        async with self.db.sessions() as session:
            first = (
                select(NodeOutboxRow.node, sa.func.min(col(NodeOutboxRow.id)).label("head"))
                .where(col(NodeOutboxRow.delivered_at).is_(None))
                .group_by(col(NodeOutboxRow.node))
                .subquery()
            )
            rows = await session.execute(
                select(NodeOutboxRow)
                .join(first, col(NodeOutboxRow.id) == first.c.head)
                .where(col(NodeOutboxRow.next_attempt_at) <= now)
            )
            return list(rows.scalars())

    async def _claim(self, row: NodeOutboxRow, now: datetime) -> bool:
        # A lease, so that two hub replicas do not send the same row at once.
        async with self.db.transaction() as session:
            result = await session.execute(
                sa.update(NodeOutboxRow)
                .where(
                    col(NodeOutboxRow.id) == row.id,
                    col(NodeOutboxRow.delivered_at).is_(None),
                    sa.or_(
                        col(NodeOutboxRow.lease_until).is_(None),
                        col(NodeOutboxRow.lease_until) < now,
                    ),
                )
                .values(lease_until=now + timedelta(seconds=self.timeout_s + 5))
                .execution_options(synchronize_session=False)
            )
            assert isinstance(result, CursorResult)
            return result.rowcount == 1

    async def _send(self, row: NodeOutboxRow) -> str | None:
        url = self.node_url(row.node)
        if url is None:
            return f"node {row.node} is not a registered source"
        try:
            token = await self.mint(route_caller(self.caller, row.path), row.node)
            response = await self.http.post(
                f"{url.rstrip('/')}{row.path}",
                json=row.payload,
                headers={"Authorization": f"Bearer {token}"},
                timeout=self.timeout_s,
            )
        except UrlNotAllowed as exc:  # the source's name resolves elsewhere now
            return f"{URL_NOT_ALLOWED}: {exc.message}"
        except httpx.TimeoutException:
            return f"timed out after {self.timeout_s} s"
        except (httpx.HTTPError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}"[:500]
        if 200 <= response.status_code < 300:
            return None
        return f"HTTP {response.status_code}: {response.text[:200]}"

    async def _deliver(self, row: NodeOutboxRow) -> bool:
        if not await self._claim(row, utcnow()):
            return False
        error = await self._send(row)
        now = utcnow()
        async with self.db.transaction() as session:
            attempts = row.attempts + 1
            values: dict[str, object] = {"attempts": attempts, "lease_until": None}
            if error is None:
                values["delivered_at"] = now
                values["last_error"] = None
            else:
                delay = backoff_s(attempts, base_s=self.retry_base_s, max_s=self.retry_max_s)
                values["next_attempt_at"] = now + timedelta(seconds=delay)
                values["last_error"] = error[:500]
                if attempts & (attempts - 1) == 0:  # 1st, 2nd, 4th, 8th ... failure: not a flood
                    log.warning(
                        "update %s to node %s failed (attempt %d): %s",
                        row.message_id,
                        row.node,
                        attempts,
                        error,
                    )
            await session.execute(
                sa.update(NodeOutboxRow)
                .where(col(NodeOutboxRow.id) == row.id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
        return error is None

    async def run_once(self) -> int:
        """Try the head of each node's queue once; the number delivered."""
        heads = await self._heads(utcnow())
        results = await asyncio.gather(*(self._deliver(row) for row in heads))
        return sum(results)

    async def run_until_idle(self) -> None:
        """Deliver until no node has a head that is due (a node that accepts drains at once)."""
        while await self.run_once():
            pass

    @contextlib.asynccontextmanager
    async def running(
        self, wake: Callable[[], asyncio.Event], poll_s: float
    ) -> AsyncIterator[NodeOutbox]:
        """Deliver in the background: after each commit (``wake``) and every ``poll_s``."""
        async with BackgroundTasks("node outbox") as tasks:
            tasks.start(repeat("node outbox", self.run_until_idle, interval_s=poll_s, wake=wake))
            yield self
