"""Situation reports as one part of the hub app: built once in ``create_app``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter

from hub.federation.context import HubContext
from hub.federation.executor import Federation
from hub.federation.superior import SuperiorHub
from hub.flags.events import Notifier
from hub.flags.tables import FlagEventRow
from hub.governance.audit import AUDIT_LOG
from hub.settings import HubSettings
from hub.sitreps import resolvers, service
from hub.sitreps.endpoints import sitrep_router
from hub.sitreps.model import ReportKind
from hub.sitreps.prefill import open_incidents, prefill
from hub.sitreps.superior import ReportForwarder
from hub.sitreps.tables import SitrepRow, SitrepVersionRow
from policies.audit import append_many
from policies.caller import Caller
from schema.enums import OrgKind, SeverityLevel
from schema.runtime.db import Database
from schema.runtime.tasks import BackgroundTasks, repeat
from schema.scopes import Scope
from schema.storage import utcnow

__all__ = ["HubSitreps", "create_sitreps"]

Authenticate = Callable[[str | None], Awaitable[Caller]]


@dataclass
class HubSitreps:
    """The report part: its database, the federation it prefills from, the superior hub."""

    settings: HubSettings
    db: Database
    federation: Federation
    authenticate: Authenticate
    events_changed: Callable[[], None]  # wakes the webhook workers after an escalation
    forwarder: ReportForwarder | None  # to the superior hub, if there is one
    submitted: Notifier

    @property
    def router(self) -> APIRouter:
        return sitrep_router(self.authenticate, self.receive, self.read)

    def query_fields(self) -> dict[str, Any]:
        return resolvers.query_fields(self)

    def mutation_fields(self) -> dict[str, Any]:
        return resolvers.mutation_fields(self)

    async def create(self, context: HubContext, incident_id: str, kind: ReportKind) -> SitrepRow:
        """A draft prefilled through the federation as the caller (policy applies)."""
        caller = service.require(context.caller, Scope.SITREP_WRITE)
        prefilled = await prefill(self.federation, caller, incident_id, context.purpose)
        async with self.db.transaction() as session:
            return await service.create_draft(
                session,
                caller=caller,
                kind=kind,
                prefilled=prefilled,
                hub_id=self.settings.hub_id,
                district=self.settings.district,
                deadlines=self.settings.sitrep_deadlines_s,
                now=utcnow(),
            )

    async def edit(
        self, context: HubContext, report_id: str, expected_revision: int, changes: dict[str, Any]
    ) -> SitrepRow:
        caller = service.require(context.caller, Scope.SITREP_WRITE)
        async with self.db.transaction() as session:
            return await service.update_draft(
                session,
                caller=caller,
                report_id=report_id,
                expected_revision=expected_revision,
                changes=changes,
                hub_id=self.settings.hub_id,
                now=utcnow(),
            )

    async def submit(
        self, context: HubContext, report_id: str, expected_revision: int
    ) -> SitrepRow:
        """The next version, audited in its transaction, owed to the superior hub if any."""
        caller = service.require(context.caller, Scope.SITREP_WRITE)
        async with self.db.transaction() as session:
            row, _ = await service.submit_report(
                session,
                caller=caller,
                report_id=report_id,
                expected_revision=expected_revision,
                hub_id=self.settings.hub_id,
                forward=self.forwarder is not None,
                now=utcnow(),
            )
            await append_many(
                session, AUDIT_LOG, [service.submission_audit(caller, row, "sitrep.submit")]
            )
        self.submitted.notify()
        return row

    async def receive(self, body: Any, caller: Caller) -> service.Received:
        """A version from a hub below: stored and audited in one transaction."""
        relay = self.settings.sitrep_relay_from
        relay_from = None if relay == "off" or self.forwarder is None else SeverityLevel(relay)
        async with self.db.transaction() as session:
            received = await service.receive_report(
                session, caller=caller, body=body, now=utcnow(), relay_from=relay_from
            )
            if received.status == "accepted":
                await append_many(
                    session,
                    AUDIT_LOG,
                    [service.submission_audit(caller, received.report, "sitrep.receive")],
                )
        if received.status == "accepted" and relay_from is not None:
            self.submitted.notify()  # the forwarder relays it if it is severe enough
        return received

    async def report(
        self, context: HubContext, report_id: str
    ) -> tuple[SitrepRow, list[SitrepVersionRow]]:
        row, versions, _ = await self.read(context.caller, report_id)
        return row, versions

    async def read(
        self, caller: Caller, report_id: str
    ) -> tuple[SitrepRow, list[SitrepVersionRow], dict[str, Any]]:
        """A report, its versions and its JSON (sitrep:read)."""
        service.require(caller, Scope.SITREP_READ)
        async with self.db.sessions() as session:
            row = await service.get_report(session, report_id)
            versions = await service.versions_of(session, report_id)
        return row, versions, service.report_json(row)

    async def reports(
        self, context: HubContext, incident_id: str | None, first: int | None, after: str | None
    ) -> tuple[list[tuple[str, SitrepRow, list[SitrepVersionRow]]], bool]:
        service.require(context.caller, Scope.SITREP_READ)
        async with self.db.sessions() as session:
            page, has_next = await service.list_reports(
                session,
                incident_id=incident_id,
                first=first,
                after=after,
                secret=self.settings.cursor_secret.encode(),
            )
            versions = await service.versions_of_many(session, [row.id for _, row in page])
        return [(cursor, row, versions[row.id]) for cursor, row in page], has_next

    async def events(
        self, context: HubContext, after: int | None, first: int | None
    ) -> tuple[list[FlagEventRow], bool]:
        service.require(context.caller, Scope.SITREP_READ)
        async with self.db.sessions() as session:
            return await service.report_events(session, after=after, first=first)

    async def escalate_once(self) -> int:
        """Escalate every overdue report once: an event in the log and its webhooks."""
        now = utcnow()
        to = self.settings.sitrep_escalate_to or self.settings.duty_desk
        async with self.db.sessions() as session:
            due = await service.due_for_escalation(session, hub_id=self.settings.hub_id, now=now)
        escalated = 0
        for report_id in due:
            async with self.db.transaction() as session:
                event = await service.escalate_report(session, report_id, to=to, now=now)
            escalated += event is not None
        if escalated:
            self.events_changed()
        return escalated

    @property
    def watcher(self) -> Caller:
        """The hub itself reading its district's open incidents (the district relation)."""
        settings = self.settings
        return Caller(
            org=settings.district,
            org_kind=OrgKind.HUB,
            scopes=frozenset({Scope.INCIDENTS_READ}),
            client_id=settings.hub_id,
            subject=settings.hub_id,
            district=settings.district,
        )

    async def watch_once(self) -> int:
        """Escalate, once each, open incidents whose initial report was never started in time."""
        incidents = await open_incidents(self.federation, self.watcher)
        now = utcnow()
        to = self.settings.sitrep_escalate_to or self.settings.duty_desk
        async with self.db.sessions() as session:
            missing = await service.missing_initial_reports(
                session,
                incidents,
                hub_id=self.settings.hub_id,
                deadlines=self.settings.sitrep_deadlines_s,
                now=now,
            )
        escalated = 0
        for incident, due in missing:
            async with self.db.transaction() as session:
                event = await service.escalate_missing(session, incident, due=due, to=to, now=now)
            escalated += event is not None
        if escalated:
            self.events_changed()
        return escalated

    @contextlib.asynccontextmanager
    async def lifecycle(self) -> AsyncIterator[None]:
        """The overdue and missing checks, and the forwarder to the superior hub if any."""
        async with contextlib.AsyncExitStack() as stack:
            if self.forwarder is not None:
                await stack.enter_async_context(
                    self.forwarder.running(self.submitted.waiter, self.settings.delivery_poll_s)
                )
            tasks = await stack.enter_async_context(BackgroundTasks("sitrep deadlines"))

            async def check() -> None:
                await self.escalate_once()

            async def watch() -> None:
                await self.watch_once()

            tasks.start(
                repeat("sitrep deadlines", check, interval_s=self.settings.sitrep_check_interval_s)
            )
            tasks.start(
                repeat("sitrep watch", watch, interval_s=self.settings.sitrep_watch_interval_s)
            )
            yield


def create_sitreps(
    settings: HubSettings,
    db: Database,
    *,
    federation: Federation,
    authenticate: Authenticate,
    events_changed: Callable[[], None],
    superior: SuperiorHub | None,
) -> HubSitreps:
    """The report part of one hub process; ``superior`` is the hub reports go up to."""
    forwarder = None
    if superior is not None:
        forwarder = ReportForwarder(
            db,
            superior,
            retry_base_s=settings.delivery_retry_base_s,
            retry_max_s=settings.delivery_retry_max_s,
        )
    return HubSitreps(
        settings=settings,
        db=db,
        federation=federation,
        authenticate=authenticate,
        events_changed=events_changed,
        forwarder=forwarder,
        submitted=Notifier(),
    )
