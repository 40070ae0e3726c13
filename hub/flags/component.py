"""Risk flags as one part of the hub app: built once in ``create_app``.

This is the flag part's composition root: it owns the pooled HTTP client of the
external sinks (configured by the operator) and wires the event log's listeners
(webhook deliveries, node updates, external pushes). URLs registered by someone
are checked at every call: the node outbox posts through the federation's client
to the sources, webhooks through their own.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import APIRouter
from sqlalchemy.exc import IntegrityError

from hub.federation.executor import Federation
from hub.flags import resolvers, service
from hub.flags.below import EventRelay
from hub.flags.endpoints import inbox_router
from hub.flags.events import EventChannel, FlagEvents, Notifier, prune_events
from hub.flags.external import ExternalPushes, flag_sinks, push_owed
from hub.flags.metrics import FlagMetrics
from hub.flags.outbox import NodeOutbox, NodeUrl, TokenMinter, enqueue_node_update, hub_caller
from hub.flags.routing import RoutingRules, load_routing
from hub.flags.tables import FlagEventRow, FlagRow, WebhookDeliveryRow
from hub.flags.webhooks import WebhookDispatcher, enqueue_deliveries
from hub.settings import HubSettings
from policies.caller import Caller
from schema.enums import OrgKind, RiskFlagStatus
from schema.runtime.db import Database
from schema.runtime.tasks import BackgroundTasks, repeat
from schema.storage import utcnow

__all__ = ["HubFlags", "create_flags"]

log = logging.getLogger("linli.hub.flags")

Authenticate = Callable[[str | None], Awaitable[Caller]]

HTTP_TIMEOUT_S = 30.0
"""A backstop: every call of the workers passes its own, shorter timeout."""


@dataclass
class HubFlags:
    """The flag workflow's objects: routing, events, workers, their HTTP client, metrics, inbox."""

    settings: HubSettings
    db: Database
    routing: RoutingRules
    authenticate: Authenticate
    http: httpx.AsyncClient
    events: FlagEvents
    outbox: NodeOutbox
    webhooks: WebhookDispatcher
    notifier: Notifier
    channel: EventChannel  # other replicas' events ring ``notifier`` (PostgreSQL)
    metrics: FlagMetrics = field(default_factory=FlagMetrics)
    external: ExternalPushes | None = None  # set by create_flags
    # The departments with an active client or person that may verify flags (routing warnings).
    staffed: Callable[[], Awaitable[set[str]]] | None = None
    # Copies the hubs below's events of this hub's departments' flags (a city hub).
    relay: EventRelay | None = None

    @property
    def router(self) -> APIRouter:
        """``POST /flags/inbox``."""
        return inbox_router(self.authenticate, self.receive)

    def query_fields(self) -> dict[str, Any]:
        return resolvers.query_fields(self)

    def mutation_fields(self) -> dict[str, Any]:
        return resolvers.mutation_fields(self)

    def subscription_fields(self) -> dict[str, Any]:
        return resolvers.subscription_fields(self)

    def _changed(self, changes: list[tuple[FlagRow, dict[str, Any]]]) -> None:
        # After commit: wake subscribers and workers, and measure the hops just recorded.
        self.notifier.notify()
        for row, hops in changes:
            self.metrics.observe(row.raised_at, hops)

    async def receive(self, body: Any, caller: Caller) -> service.Received:
        """Take in one inbox message (its own transaction)."""
        if isinstance(body, dict) and body.get("kind") == "flag.cleared":
            return await self.receive_cleared(body, caller)
        message, content, flag_id = service.parse_inbox_message(body, caller)
        try:
            async with self.db.transaction() as session:
                received = await service.receive_flag(
                    session,
                    message=message,
                    content=content,
                    flag_id=flag_id,
                    caller=caller,
                    routing=self.routing,
                    events=self.events,
                    hub_id=self.settings.hub_id,
                    now=utcnow(),
                )
        except IntegrityError:
            # The same message (or flag) delivered twice at once: the other one won.
            return service.Received("duplicate", flag_id)
        if received.flag is not None and received.hops is not None:
            self._changed([(received.flag, received.hops)])
        return received

    async def receive_cleared(self, body: Any, caller: Caller) -> service.Received:
        """A node says the condition behind one of its flags ended (its own transaction)."""
        message = service.parse_cleared_message(body, caller)
        try:
            async with self.db.transaction() as session:
                received = await service.note_condition_cleared(
                    session, message=message, events=self.events, now=utcnow()
                )
        except IntegrityError:
            return service.Received("duplicate", message.flag_id)
        if received.flag is not None:
            self.notifier.notify()
        return received

    async def transition(
        self, caller: Caller, flag_id: str, to: RiskFlagStatus, note: str, expected_version: int
    ) -> FlagRow:
        """Move a flag (its own transaction)."""
        async with self.db.transaction() as session:
            row, hops = await service.transition_flag(
                session,
                caller=caller,
                flag_id=flag_id,
                to=to,
                note=note,
                expected_version=expected_version,
                now=utcnow(),
                events=self.events,
            )
        self._changed([(row, hops)])
        return row

    async def delivered(self, caller: Caller, event: FlagEventRow) -> None:
        """A subscriber got an event: the first one of its assigned department is a hop."""
        if caller.org_kind is not OrgKind.DEPARTMENT or event.assigned_to != caller.org:
            return
        await self._mark_delivered(event.flag_id, caller.org)

    async def _webhook_delivered(self, delivery: WebhookDeliveryRow) -> None:
        await self._mark_delivered(delivery.flag_id, delivery.department)

    async def _mark_delivered(self, flag_id: str, department: str) -> None:
        now = utcnow()
        async with self.db.transaction() as session:
            row = await service.mark_delivered(
                session, flag_id=flag_id, department=department, now=now
            )
        if row is not None:
            self.metrics.observe(row.raised_at, {"delivered": now})

    async def maintain_once(self) -> None:
        """Escalate flags past their deadline; prune events past the retention window."""
        now = utcnow()
        async with self.db.sessions() as session:
            due = await service.due_for_escalation(session, now=now)
        for flag_id in due:
            # One transaction per flag: it locks the flag, then the event sequence, as moves do.
            async with self.db.transaction() as session:
                escalated = await service.escalate_flag(
                    session,
                    flag_id,
                    now=now,
                    duty_desk=self.settings.duty_desk,
                    hub_id=self.settings.hub_id,
                    events=self.events,
                )
            if escalated is not None:
                self._changed([escalated])
        async with self.db.transaction() as session:
            await prune_events(session, now=now, retention_s=self.settings.event_retention_s)

    @contextlib.asynccontextmanager
    async def lifecycle(self) -> AsyncIterator[None]:
        """The event listener, the escalation and pruning loop, node outbox, webhooks, Open311."""
        if self.staffed is not None:
            staffed = await self.staffed()
            for warning in self.routing.warnings(district=self.settings.district, staffed=staffed):
                log.warning(warning)
        poll_s = self.settings.delivery_poll_s
        wake = self.notifier.waiter
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(self.http.aclose)  # after every worker has stopped
            await stack.enter_async_context(self.channel.running())
            await stack.enter_async_context(self.outbox.running(wake, poll_s))
            await stack.enter_async_context(self.webhooks.running(wake, poll_s))
            if self.external is not None:
                await stack.enter_async_context(self.external.running(wake, poll_s))
            tasks = await stack.enter_async_context(BackgroundTasks("flag escalation"))
            interval_s = self.settings.escalation_interval_s
            tasks.start(repeat("flag escalation", self.maintain_once, interval_s=interval_s))
            if self.relay is not None:
                tasks.start(repeat("flag event relay", self.relay_once, interval_s=poll_s))
            yield

    async def relay_once(self) -> None:
        """Copy the hubs below's new events of this hub's departments' flags, if any."""
        if self.relay is not None and await self.relay.relay_once():
            self.notifier.notify()


def create_flags(
    settings: HubSettings,
    db: Database,
    *,
    authenticate: Authenticate,
    mint: TokenMinter,
    node_url: NodeUrl,
    node_http: httpx.AsyncClient,
    staffed: Callable[[], Awaitable[set[str]]] | None = None,
    federation: Federation | None = None,
) -> HubFlags:
    """The flag part of one hub process; a bad routing file stops the hub here.

    ``node_http`` is the federation's client to the sources (it checks each call's URL and
    outlives the flag workers).
    """
    routing = load_routing(
        settings.routing_file,
        duty_desk=settings.duty_desk,
        default_deadline_s=settings.ack_deadline_s,
    )
    http = httpx.AsyncClient(follow_redirects=False, timeout=HTTP_TIMEOUT_S)
    events = FlagEvents([enqueue_deliveries, enqueue_node_update, push_owed(routing)])
    outbox = NodeOutbox(
        db,
        node_http,
        node_url=node_url,
        mint=mint,
        caller=hub_caller(hub_id=settings.hub_id, district=settings.district),
        timeout_s=settings.node_timeout_s,
        retry_base_s=settings.delivery_retry_base_s,
        retry_max_s=settings.delivery_retry_max_s,
    )
    notifier = Notifier()
    flags = HubFlags(
        settings=settings,
        db=db,
        routing=routing,
        authenticate=authenticate,
        http=http,
        events=events,
        outbox=outbox,
        staffed=staffed,
        notifier=notifier,
        channel=EventChannel(db, notifier, catch_up_s=settings.event_poll_s),
        webhooks=WebhookDispatcher(
            db,
            settings.outbound_policy(),
            timeout_s=settings.webhook_timeout_s,
            max_attempts=settings.webhook_max_attempts,
            retry_base_s=settings.delivery_retry_base_s,
            retry_max_s=settings.delivery_retry_max_s,
            sealer=settings.sealer(),
        ),
    )
    flags.webhooks.delivered = flags._webhook_delivered
    if federation is not None:
        caller = hub_caller(hub_id=settings.hub_id, district=settings.district)
        flags.relay = EventRelay(db, federation, caller)
    flags.external = ExternalPushes(
        db,
        routing,
        flag_sinks(http, routing.open311),
        events=events,
        max_attempts=settings.external_max_attempts,
        retry_base_s=settings.delivery_retry_base_s,
        retry_max_s=settings.delivery_retry_max_s,
        poll_s=settings.external_poll_s,
        changed=flags._changed,
    )
    return flags
