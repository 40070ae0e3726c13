"""Risk flags in the node app: outbox hooks, delivery worker, updates, ``flagOutbox``,
``resendFlagOutboxEntry``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx
import strawberry
from fastapi import APIRouter
from strawberry.types import Info

from node.flags import outbox
from node.flags.delivery import FlagDelivery, OutboxMetrics
from node.flags.outbox import OutboxHooks
from node.flags.tables import FlagTables, OutboxStatus
from node.flags.updates import updates_router
from node.settings import NodeSettings
from policies.caller import Caller
from schema.runtime.db import Database
from schema.scopes import Scope
from schema.storage import utcnow
from schema.store.resolvers import RecordHooks
from schema.store.specs import RecordSpec

__all__ = ["FlagOutbox", "FlagOutboxEntry", "NodeFlags", "create_flags"]

log = logging.getLogger("linli.node.flags")

FLAG_SCOPE = Scope.RISK_FLAG
MAX_ENTRIES = 200

Authenticate = Callable[[str | None], Awaitable[Caller]]

strawberry.enum(OutboxStatus, name="FlagOutboxStatus")


@strawberry.type(description="One flag message owed to the hub, and how its delivery went")
class FlagOutboxEntry:
    id: int = strawberry.field(description="Delivery order at this node")
    message_id: str
    flag_id: strawberry.ID
    status: OutboxStatus
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None = strawberry.field(description="Set while pending")
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    last_error: str | None = strawberry.field(description="The hub's error, or why it failed")

    @classmethod
    def of(cls, entry: outbox.OutboxEntry) -> FlagOutboxEntry:
        return cls(
            id=entry.id,
            message_id=entry.message_id,
            flag_id=strawberry.ID(entry.flag_id),
            status=entry.status,
            attempts=entry.attempts,
            created_at=entry.created_at,
            next_attempt_at=entry.next_attempt_at if entry.status is OutboxStatus.PENDING else None,
            last_attempt_at=entry.last_attempt_at,
            delivered_at=entry.delivered_at,
            last_error=entry.last_error,
        )


@strawberry.type(description="The node's outbox of flags to the hub: counts and newest entries")
class FlagOutbox:
    delivering: bool = strawberry.field(description="Whether a hub is configured to deliver to")
    pending: int
    delivered: int
    failed: int = strawberry.field(description="Refused by the hub for good: see lastError")
    entries: list[FlagOutboxEntry]


@dataclass
class NodeFlags:
    """The node's flag flow; ``delivery`` is None when no hub is configured."""

    settings: NodeSettings
    db: Database
    tables: FlagTables
    spec: RecordSpec
    metrics: OutboxMetrics
    delivery: FlagDelivery | None
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def record_hooks(self) -> dict[str, RecordHooks]:
        """For the GraphQL context: write the outbox row with each new flag."""
        return {
            self.spec.type_name: OutboxHooks(self.tables, self.settings.source_id, self.wake.set)
        }

    def router(self, authenticate: Authenticate) -> APIRouter:
        """``POST /flags/updates``."""
        return updates_router(authenticate, self.db, self.tables, self.spec, self.settings)

    async def counts(self) -> dict[OutboxStatus, int]:
        async with self.db.sessions() as session:
            return await outbox.outbox_counts(session, self.tables)

    def query_fields(self) -> dict[str, Any]:
        """``flagOutbox``: own staff (``records:write`` or ``risk:flag``) see the outbox."""

        async def flag_outbox(
            info: Info[Any, None], status: OutboxStatus | None = None, first: int = 20
        ) -> FlagOutbox:
            info.context.require_staff(also=(FLAG_SCOPE,))
            limit = max(0, min(first, MAX_ENTRIES))
            async with self.db.sessions() as session:
                counts = await outbox.outbox_counts(session, self.tables)
                entries = await outbox.outbox_entries(
                    session, self.tables, status=status, limit=limit
                )
            self.metrics.counts(counts)
            return FlagOutbox(
                delivering=self.delivery is not None,
                pending=counts[OutboxStatus.PENDING],
                delivered=counts[OutboxStatus.DELIVERED],
                failed=counts[OutboxStatus.FAILED],
                entries=[FlagOutboxEntry.of(e) for e in entries],
            )

        return {
            "flag_outbox": strawberry.field(
                resolver=flag_outbox,
                description="Flags owed to the hub: pending, delivered and failed, newest first",
            )
        }

    def mutation_fields(self) -> dict[str, Any]:
        """``resendFlagOutboxEntry``: own staff put a failed entry back in line."""

        async def resend_flag_outbox_entry(info: Info[Any, None], id: int) -> FlagOutboxEntry:
            info.context.require_staff(also=(FLAG_SCOPE,))
            async with self.db.transaction() as session:
                entry = await outbox.resend_failed(session, self.tables, id, now=utcnow())
            self.wake.set()
            return FlagOutboxEntry.of(entry)

        return {
            "resend_flag_outbox_entry": strawberry.mutation(
                resolver=resend_flag_outbox_entry,
                description="Send a FAILED flagOutbox entry to the hub again, before the entries "
                "raised after it (own staff, records:write or risk:flag); NOT_FOUND for an "
                "unknown id, OUTBOX_ENTRY_NOT_FAILED for one that is pending or delivered",
            )
        }

    @contextlib.asynccontextmanager
    async def lifecycle(self) -> AsyncIterator[None]:
        """The delivery worker, if a hub is configured."""
        try:
            self.metrics.counts(await self.counts())
        except Exception:  # not fatal: readiness reports the database
            log.exception("could not count the flag outbox at start-up")
        if self.delivery is None:
            yield
            return
        log.info("delivering risk flags to %s", self.delivery.inbox_url)
        async with self.delivery.running():
            yield


def create_flags(
    settings: NodeSettings,
    db: Database,
    tables: FlagTables,
    spec: RecordSpec,
    http: httpx.AsyncClient,
) -> NodeFlags:
    """The flag part of one node process (register ``metrics`` on the node's registry)."""
    metrics = OutboxMetrics()
    wake = asyncio.Event()
    delivery = (
        FlagDelivery(db, tables, settings, http, metrics, wake) if settings.delivers_flags else None
    )
    return NodeFlags(settings, db, tables, spec, metrics, delivery, wake)
