"""Signed webhooks of flag events to department systems, and of aid events to communities
(Standard Webhooks).

A department (or a community, for its aid requests) registers a URL (``registerWebhook``)
and gets its signing secret
``whsec_<base64>`` once. Each event the department may see becomes a delivery
row in the event's transaction; ``WebhookDispatcher`` POSTs it with

    webhook-id:        the delivery id (the same on every retry and replay)
    webhook-timestamp: Unix seconds of the attempt
    webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">

keyed by the base64-decoded secret, and body ``{"type", "timestamp", "data"}`` whose
``data`` is the event as the GraphQL ``FlagEvent`` gives it (``event_json``).
An endpoint that is down, slower than ``webhook_timeout_s`` or answers non-2xx
is retried with exponential backoff and jitter up to ``webhook_max_attempts``;
an endpoint the outbound check refuses at the time of the attempt (its name now
resolves to a private address, or the allow-list changed) fails at once with
``URL_NOT_ALLOWED`` and is never connected to. Every attempt is logged
(``webhookDeliveries``) and any delivery can be sent again (``replayWebhookDelivery``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Collection
from datetime import datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from hub.flags.events import ADMIN_SCOPE, event_json
from hub.flags.tables import (
    FlagEventRow,
    FlagRow,
    WebhookAttemptRow,
    WebhookDeliveryRow,
    WebhookRow,
)
from hub.sealed import SealedSecretError, Sealer
from policies.caller import Caller
from schema.api.pagination import RecordOrder, decode_cursor, encode_cursor, page_size
from schema.enums import OrgKind
from schema.errors import Forbidden, InvalidInput, NotFound
from schema.runtime.db import Database, lock_table
from schema.runtime.outbound import (
    URL_NOT_ALLOWED,
    OutboundPolicy,
    OutboundTransport,
    UrlNotAllowed,
)
from schema.runtime.retry import backoff_s
from schema.runtime.tasks import BackgroundTasks, repeat
from schema.scopes import Scope
from schema.storage import utcnow

__all__ = [
    "MAX_WEBHOOKS",
    "WebhookDispatcher",
    "enqueue_deliveries",
    "enqueue_event",
    "enqueue_event_deliveries",
    "list_deliveries",
    "list_webhooks",
    "new_secret",
    "register_webhook",
    "replay_delivery",
    "sign",
]

VERIFY_SCOPE = Scope.RISK_VERIFY
AID_SCOPES = frozenset({Scope.AID_RESPOND, Scope.AID_REQUEST})
_ORDER = RecordOrder.CREATED_DESC
MAX_WEBHOOKS = 20
"""Active webhooks of one organisation: each event is queued once per webhook."""


def new_secret() -> str:
    """A signing secret: ``whsec_`` and 32 random bytes in base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header value for one attempt."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def _department(caller: Caller) -> str:
    """The organisation whose webhooks the caller manages: a department (flag events, with
    ``risk:verify``) or a community (its aid requests' events, with ``aid:respond`` or
    ``aid:request``)."""
    if caller.org_kind is OrgKind.DEPARTMENT and caller.has_scope(VERIFY_SCOPE):
        return caller.org
    if caller.org_kind is OrgKind.COMMUNITY and AID_SCOPES & caller.scopes:
        return caller.org
    raise Forbidden(
        f"webhooks are for departments with the scope {VERIFY_SCOPE!r} and communities "
        "with aid:respond or aid:request"
    )


async def register_webhook(
    session: AsyncSession,
    caller: Caller,
    url: str,
    *,
    now: datetime,
    outbound: OutboundPolicy,
    sealer: Sealer,
) -> tuple[WebhookRow, str]:
    """Register the department's endpoint; returns it and its secret (shown once). Flushes.

    The secret is stored sealed with ``sealer`` (see ``hub.sealed``).
    """
    department = _department(caller)
    # Before any statement: a name's resolution holds no database lock.
    await outbound.check(url)
    # Two registrations at once must not both count 19: the count holds until commit.
    await lock_table(session, WebhookRow.__table__)  # type: ignore[attr-defined]
    active = (
        await session.execute(
            select(sa.func.count())
            .select_from(WebhookRow)
            .where(col(WebhookRow.department) == department, col(WebhookRow.active))
        )
    ).scalar_one()
    if active >= MAX_WEBHOOKS:
        raise InvalidInput(
            f"{department} has {active} active webhooks; at most {MAX_WEBHOOKS}",
            code="TOO_MANY_WEBHOOKS",
            field="url",
            limit=MAX_WEBHOOKS,
        )
    secret = new_secret()
    row = WebhookRow(
        id=f"wh_{uuid.uuid4().hex}",
        department=department,
        url=url,
        secret=sealer.seal(secret),
        created_by=caller.client_id[:64],
        created_by_person=caller.person,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return row, secret


async def list_webhooks(session: AsyncSession, caller: Caller) -> list[WebhookRow]:
    """The department's webhooks (every one for admin)."""
    query = select(WebhookRow).order_by(col(WebhookRow.created_at), col(WebhookRow.id))
    if not caller.has_scope(ADMIN_SCOPE):
        query = query.where(col(WebhookRow.department) == _department(caller))
    return list((await session.execute(query)).scalars())


async def enqueue_deliveries(session: AsyncSession, event: FlagEventRow, flag: FlagRow, /) -> None:
    """A delivery of ``event`` to every active webhook of a department that may see it."""
    await enqueue_event_deliveries(session, event, event_json(event))


async def enqueue_event_deliveries(
    session: AsyncSession, event: FlagEventRow, data: dict[str, Any]
) -> None:
    """A delivery of any numbered event (``data`` its JSON) to its departments' webhooks.

    The departments are the event's ``assigned_to`` and ``previous_assignee``. Flushes.
    """
    departments = {d for d in (event.assigned_to, event.previous_assignee) if d}
    await enqueue_event(
        session,
        orgs=departments,
        seq=event.seq,
        type=event.type,
        subject_id=event.flag_id,
        data=data,
        at=event.at,
    )


async def enqueue_event(
    session: AsyncSession,
    *,
    orgs: Collection[str],
    seq: int,
    type: str,
    subject_id: str,
    data: dict[str, Any],
    at: datetime,
) -> None:
    """A delivery of one event (a flag's, an aid request's) to every active webhook of ``orgs``.

    ``data`` is the event as its GraphQL type gives it. Flushes.
    """
    if not orgs:
        return
    hooks = (
        await session.execute(
            select(WebhookRow).where(col(WebhookRow.department).in_(orgs), col(WebhookRow.active))
        )
    ).scalars()
    body = json.dumps(
        {"type": type, "timestamp": at.isoformat(), "data": data},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    for hook in hooks:
        session.add(
            WebhookDeliveryRow(
                id=f"msg_{uuid.uuid4().hex}",
                webhook_id=hook.id,
                department=hook.department,
                event_seq=seq,
                event_type=type,
                flag_id=subject_id,
                body=body,
                next_attempt_at=at,
                created_at=at,
            )
        )
    await session.flush()


async def list_deliveries(
    session: AsyncSession,
    caller: Caller,
    *,
    first: int | None,
    after: str | None,
    secret: bytes,
) -> tuple[list[tuple[str, WebhookDeliveryRow, list[WebhookAttemptRow]]], bool]:
    """The department's deliveries, newest first, each with its attempts."""
    size = page_size(first)
    query = select(WebhookDeliveryRow)
    if not caller.has_scope(ADMIN_SCOPE):
        query = query.where(col(WebhookDeliveryRow.department) == _department(caller))
    if after is not None:
        key, last_id = decode_cursor(after, _ORDER, secret=secret)
        query = query.where(
            sa.or_(
                col(WebhookDeliveryRow.created_at) < key,
                sa.and_(
                    col(WebhookDeliveryRow.created_at) == key, col(WebhookDeliveryRow.id) < last_id
                ),
            )
        )
    query = query.order_by(
        col(WebhookDeliveryRow.created_at).desc(), col(WebhookDeliveryRow.id).desc()
    )
    rows = list((await session.execute(query.limit(size + 1))).scalars())
    page = rows[:size]
    attempts: dict[str, list[WebhookAttemptRow]] = {row.id: [] for row in page}
    if page:
        logged = await session.execute(
            select(WebhookAttemptRow)
            .where(col(WebhookAttemptRow.delivery_id).in_(list(attempts)))
            .order_by(col(WebhookAttemptRow.delivery_id), col(WebhookAttemptRow.attempt))
        )
        for attempt in logged.scalars():
            attempts[attempt.delivery_id].append(attempt)
    return [
        (encode_cursor(_ORDER, row.created_at, row.id, secret=secret), row, attempts[row.id])
        for row in page
    ], len(rows) > size


async def replay_delivery(
    session: AsyncSession, caller: Caller, delivery_id: str, *, now: datetime
) -> WebhookDeliveryRow:
    """Send a delivery again now (same ``webhook-id``). Flushes."""
    row = await session.get(WebhookDeliveryRow, delivery_id)
    if row is None or not (caller.has_scope(ADMIN_SCOPE) or row.department == _department(caller)):
        raise NotFound(f"no webhook delivery {delivery_id}")
    row.status = "pending"
    row.next_attempt_at = now
    row.lease_until = None
    await session.flush()
    return row


class WebhookDispatcher:
    """Sends due deliveries, logs each attempt, retries with backoff.

    It owns its HTTP client, which checks every endpoint against ``outbound`` when it
    calls it; ``running`` (or ``aclose``) closes it.
    """

    def __init__(
        self,
        db: Database,
        outbound: OutboundPolicy,
        *,
        timeout_s: float,
        max_attempts: int,
        retry_base_s: float,
        retry_max_s: float,
        sealer: Sealer,
        delivered: Callable[[WebhookDeliveryRow], Awaitable[None]] | None = None,
    ) -> None:
        self.db = db
        self.sealer = sealer
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.retry_base_s = retry_base_s
        self.retry_max_s = retry_max_s
        self.delivered = delivered
        self.http = httpx.AsyncClient(
            transport=OutboundTransport(outbound), follow_redirects=False, timeout=timeout_s
        )

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.http.aclose()

    async def _claim_due(self, now: datetime, limit: int = 50) -> list[WebhookDeliveryRow]:
        async with self.db.sessions() as session:
            due = list(
                (
                    await session.execute(
                        select(WebhookDeliveryRow)
                        .where(
                            col(WebhookDeliveryRow.status) == "pending",
                            col(WebhookDeliveryRow.next_attempt_at) <= now,
                            sa.or_(
                                col(WebhookDeliveryRow.lease_until).is_(None),
                                col(WebhookDeliveryRow.lease_until) < now,
                            ),
                        )
                        .order_by(col(WebhookDeliveryRow.created_at))
                        .limit(limit)
                    )
                ).scalars()
            )
        claimed = []
        lease = now + timedelta(seconds=self.timeout_s + 5)
        for row in due:
            async with self.db.transaction() as session:
                result = await session.execute(
                    sa.update(WebhookDeliveryRow)
                    .where(
                        col(WebhookDeliveryRow.id) == row.id,
                        col(WebhookDeliveryRow.status) == "pending",
                        sa.or_(
                            col(WebhookDeliveryRow.lease_until).is_(None),
                            col(WebhookDeliveryRow.lease_until) < now,
                        ),
                    )
                    .values(lease_until=lease)
                    .execution_options(synchronize_session=False)
                )
                assert isinstance(result, CursorResult)
                if result.rowcount == 1:
                    claimed.append(row)
        return claimed

    async def _attempt(self, row: WebhookDeliveryRow) -> None:
        async with self.db.sessions() as session:
            hook = await session.get(WebhookRow, row.webhook_id)
        status_code: int | None = None
        error: str | None = None
        refused = False  # by the outbound check: not retried, the same check would refuse it
        started = time.perf_counter()
        secret: str | None = None
        if hook is None or not hook.active:
            error = "the webhook was removed"
        else:
            try:
                secret = self.sealer.unseal(hook.secret, what=f"the secret of webhook {hook.id}")
            except SealedSecretError as exc:  # checked at start-up; the key changed since
                error = str(exc)[:500]
        if hook is not None and secret is not None:
            timestamp = int(time.time())
            headers = {
                "content-type": "application/json",
                "webhook-id": row.id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": sign(secret, row.id, timestamp, row.body),
            }
            try:
                response = await self.http.post(
                    hook.url, content=row.body.encode(), headers=headers, timeout=self.timeout_s
                )
                status_code = response.status_code
                if not 200 <= status_code < 300:
                    error = f"HTTP {status_code}"
            except UrlNotAllowed as exc:
                error, refused = f"{URL_NOT_ALLOWED}: {exc.message}"[:500], True
            except httpx.TimeoutException:
                error = f"timed out after {self.timeout_s} s"
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"[:500]
        duration_ms = round((time.perf_counter() - started) * 1000, 1)
        now = utcnow()
        async with self.db.transaction() as session:
            current = await session.get(WebhookDeliveryRow, row.id, populate_existing=True)
            if current is None:
                return
            current.attempts += 1
            current.status_code = status_code
            current.error = error
            current.lease_until = None
            if error is None:
                current.status = "delivered"
                current.delivered_at = now
            elif (
                refused or hook is None or not hook.active or current.attempts >= self.max_attempts
            ):
                current.status = "failed"
            else:
                delay = backoff_s(
                    current.attempts, base_s=self.retry_base_s, max_s=self.retry_max_s
                )
                current.next_attempt_at = now + timedelta(seconds=delay)
            session.add(
                WebhookAttemptRow(
                    delivery_id=row.id,
                    attempt=current.attempts,
                    at=now,
                    status_code=status_code,
                    error=error,
                    duration_ms=duration_ms,
                )
            )
        if error is None and self.delivered is not None:
            await self.delivered(row)

    async def run_once(self) -> int:
        """Attempt every due delivery once, concurrently; the number attempted."""
        claimed = await self._claim_due(utcnow())
        await asyncio.gather(*(self._attempt(row) for row in claimed))
        return len(claimed)

    @contextlib.asynccontextmanager
    async def running(
        self, wake: Callable[[], asyncio.Event], poll_s: float
    ) -> AsyncIterator[WebhookDispatcher]:
        """Deliver in the background: after each commit (``wake``) and every ``poll_s``."""
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(self.aclose)  # after every attempt has stopped
            tasks = await stack.enter_async_context(BackgroundTasks("webhook"))

            async def dispatch() -> None:
                # Each attempt runs on its own: a slow endpoint holds up no other.
                for row in await self._claim_due(utcnow()):
                    tasks.start(self._attempt(row))

            tasks.start(repeat("webhook", dispatch, interval_s=poll_s, wake=wake))
            yield self
