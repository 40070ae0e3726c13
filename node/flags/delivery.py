"""Delivering the node's outbox to the hub (``POST /flags/inbox``, ``/aid/inbox``), in order,
at least once.

The worker sends the oldest pending row and nothing after it until the hub
has answered it for good, so the hub receives this node's flags in the order
they were raised:

- 200 ``accepted`` or ``duplicate``: delivered (a duplicate is an earlier
  attempt whose answer was lost);
- 400, 413, 422: the hub refuses the content; retrying cannot help, so the row
  is marked ``failed`` with the hub's error, and the worker moves on;
- anything else (no answer, timeout, 5xx, 401 after a fresh token, 403 of a
  misconfigured client): the row is retried after an exponential backoff with
  jitter, and the rows behind it wait.

It runs when a flag is raised (``wake``) and every ``flag_poll_s``. Each
attempt runs in one transaction that holds the row's lock from the claim to the
recorded outcome (``outbox.claim_head``), which is what lets several node
processes share one PostgreSQL outbox; a process that finds the head locked
looks again after ``flag_poll_s``. A failed row goes back in line only by hand
(``resendFlagOutboxEntry``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncSession

from node.flags import outbox
from node.flags.outbox import OutboxEntry
from node.flags.tables import FlagTables, OutboxStatus
from node.settings import NodeSettings
from policies.hubclient import HubTokens, TokenUnavailable
from schema.runtime.db import Database
from schema.runtime.retry import backoff_s
from schema.runtime.tasks import BackgroundTasks, repeat
from schema.scopes import Scope
from schema.storage import utcnow

__all__ = [
    "Delivered",
    "FlagDelivery",
    "HubTokens",
    "OutboxMetrics",
    "Refused",
    "Retry",
]

log = logging.getLogger("linli.node.flags")

FLAG_SCOPE = Scope.RISK_FLAG
PERMANENT_STATUS = frozenset({400, 413, 422})
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


@dataclass(frozen=True, slots=True)
class Delivered:
    """The hub has the flag: ``accepted`` now or ``duplicate`` (received before)."""

    answer: str


@dataclass(frozen=True, slots=True)
class Refused:
    """The hub refused the message's content for good."""

    error: str


@dataclass(frozen=True, slots=True)
class Retry:
    """The attempt failed for a reason that may pass."""

    error: str


Outcome = Delivered | Refused | Retry


def _hub_error(response: httpx.Response) -> str:
    """``CODE field: message`` of the hub's error document, or the status."""
    try:
        first = response.json()["errors"][0]
        extensions = first.get("extensions", {})
        code, field = extensions.get("code", ""), extensions.get("field")
        where = f" {field}" if field else ""
        return f"HTTP {response.status_code} {code}{where}: {first.get('message', '')}"
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return f"HTTP {response.status_code}: {response.text[:200]}"


class OutboxMetrics:
    """The outbox's Prometheus metrics, on the node's registry."""

    def __init__(self) -> None:
        self.rows = Gauge(
            "linli_node_flag_outbox_rows",
            "Flag outbox rows by status (pending: not yet accepted by the hub)",
            ["status"],
            registry=None,
        )
        self.attempts = Counter(
            "linli_node_flag_delivery_attempts_total",
            "Attempts to deliver a flag to the hub",
            registry=None,
        )
        self.failures = Counter(
            "linli_node_flag_delivery_failures_total",
            "Failed flag deliveries: retry (will be tried again) or refused (marked failed)",
            ["kind"],
            registry=None,
        )
        self.latency = Histogram(
            "linli_node_flag_raise_to_delivered_seconds",
            "Seconds from a flag being raised at this node to the hub accepting it",
            registry=None,
            buckets=_LATENCY_BUCKETS,
        )

    def register(self, registry: CollectorRegistry) -> None:
        """Expose the metrics on ``registry`` (the node's ``/metrics``)."""
        for metric in (self.rows, self.attempts, self.failures, self.latency):
            registry.register(metric)

    def counts(self, counts: dict[OutboxStatus, int]) -> None:
        for status, count in counts.items():
            self.rows.labels(status.value).set(count)


class FlagDelivery:
    """Sends the outbox to the hub in ``id`` order; see the module docstring."""

    def __init__(
        self,
        db: Database,
        tables: FlagTables,
        settings: NodeSettings,
        http: httpx.AsyncClient,
        metrics: OutboxMetrics,
        wake: asyncio.Event,
    ) -> None:
        assert settings.hub_url is not None
        assert settings.hub_client_id is not None
        assert settings.hub_client_secret is not None
        base = settings.hub_url.rstrip("/")
        self.db = db
        self.tables = tables
        self.http = http
        self.metrics = metrics
        self.wake = wake
        self.inbox_url = f"{base}/flags/inbox"
        self.timeout_s = settings.flag_timeout_s
        self.retry_base_s = settings.flag_retry_base_s
        self.retry_max_s = settings.flag_retry_max_s
        self.poll_s = settings.flag_poll_s
        self.base_url = base

        def tokens(scope: str | None) -> HubTokens:
            assert settings.hub_client_id is not None
            assert settings.hub_client_secret is not None
            return HubTokens(
                http,
                token_url=f"{base}/oauth/token",
                client_id=settings.hub_client_id,
                client_secret=settings.hub_client_secret,
                audience=settings.hub_audience,
                timeout_s=settings.flag_timeout_s,
                scope=scope,
            )

        # One token cache per scope asked for (the flag scope; all the client's for aid).
        by_scope = {route.scope: tokens(route.scope) for route in outbox.ROUTES.values()}
        self.tokens = by_scope[FLAG_SCOPE]
        self.routes = {
            kind: (f"{base}{route.path}", by_scope[route.scope])
            for kind, route in outbox.ROUTES.items()
        }

    async def _send(self, kind: str, payload: dict[str, Any]) -> Outcome:
        url, tokens = self.routes[kind]
        body = {**payload, "sent_at": utcnow().isoformat()}
        for fresh in (False, True):
            try:
                token = await tokens.get()
            except TokenUnavailable as exc:
                return Retry(str(exc))
            try:
                response = await self.http.post(
                    url,
                    json=body,
                    headers={"Authorization": f"Bearer {token}"},
                    timeout=self.timeout_s,
                    follow_redirects=False,
                )
            except httpx.TimeoutException:
                return Retry(f"timed out after {self.timeout_s} s")
            except httpx.HTTPError as exc:
                return Retry(f"{type(exc).__name__}: {exc}"[:300])
            if response.status_code == 401 and not fresh:
                tokens.forget()  # expired or revoked early: one more try with a new one
                continue
            break
        status = response.status_code
        if status == 200:
            try:
                answer = response.json().get("status")
            except (ValueError, AttributeError):
                answer = None
            if answer in ("accepted", "duplicate"):
                return Delivered(str(answer))
            return Retry(f"HTTP 200 with an unexpected answer: {response.text[:200]}")
        if status in PERMANENT_STATUS:
            return Refused(_hub_error(response))
        return Retry(_hub_error(response))

    async def _attempt(self, session: AsyncSession, entry: OutboxEntry) -> Outcome:
        """Send ``entry`` (locked by ``session``'s transaction) and record how it went there."""
        self.metrics.attempts.inc()
        outcome = await self._send(entry.kind, entry.payload)
        now = utcnow()
        if isinstance(outcome, Delivered):
            await outbox.mark_delivered(session, self.tables, entry, now=now)
        elif isinstance(outcome, Refused):
            await outbox.mark_failed(session, self.tables, entry, outcome.error, now=now)
        else:
            delay = backoff_s(entry.attempts + 1, base_s=self.retry_base_s, max_s=self.retry_max_s)
            await outbox.mark_retry(
                session,
                self.tables,
                entry,
                outcome.error,
                now=now,
                next_attempt_at=now + timedelta(seconds=delay),
            )
        return outcome

    def _observe(self, entry: OutboxEntry, outcome: Outcome) -> None:
        """Metrics and logs of one attempt, once its outcome is committed."""
        if isinstance(outcome, Delivered):
            now = utcnow()
            self.metrics.latency.observe(max(0.0, (now - entry.created_at).total_seconds()))
        elif isinstance(outcome, Refused):
            self.metrics.failures.labels("refused").inc()
            log.error(
                "the hub refused flag %s (message %s) for good: %s",
                entry.flag_id,
                entry.message_id,
                outcome.error,
            )
        else:
            self.metrics.failures.labels("retry").inc()
            attempts = entry.attempts + 1
            if attempts & (attempts - 1) == 0:  # 1st, 2nd, 4th, 8th ... failure: not a flood
                log.warning(
                    "delivering flag %s failed (attempt %d), retrying: %s",
                    entry.flag_id,
                    attempts,
                    outcome.error,
                )

    async def run_once(self) -> float | None:
        """Send due rows in order until one must wait; seconds until it is due (None: empty)."""
        try:
            while True:
                async with self.db.transaction() as session:
                    claim = await outbox.claim_head(session, self.tables)
                    if claim is None:
                        return None
                    head = claim.entry
                    if head is None:  # another process is sending it
                        return self.poll_s
                    wait_s = (head.next_attempt_at - utcnow()).total_seconds()
                    if wait_s > 0:
                        return wait_s
                    # After a retry the head is not due any more: the next pass says how long.
                    outcome = await self._attempt(session, head)
                self._observe(head, outcome)
        finally:
            await self._count()

    async def _count(self) -> None:
        with contextlib.suppress(Exception):  # metrics must never stop delivery
            async with self.db.sessions() as session:
                self.metrics.counts(await outbox.outbox_counts(session, self.tables))

    def _armed(self) -> asyncio.Event:
        self.wake.clear()
        return self.wake

    async def _round(self) -> float:
        wait_s = await self.run_once()
        return self.poll_s if wait_s is None or wait_s <= 0 else min(wait_s, self.poll_s)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FlagDelivery]:
        """Deliver in the background until the node stops."""
        async with BackgroundTasks("flag delivery") as tasks:
            tasks.start(
                repeat("flag delivery", self._round, interval_s=self.poll_s, wake=self._armed)
            )
            yield self
