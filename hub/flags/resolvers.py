"""The GraphQL API of risk flags: cases, transitions, timelines, lag, events, webhooks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Protocol

import strawberry
from strawberry.types import Info

from hub.federation.context import HubContext
from hub.federation.selection import node_selection, print_selection
from hub.flags import below, service, webhooks
from hub.flags.events import FlagEvent, FlagHop, Notifier, follow_events, hops_of, start_cursor
from hub.flags.tables import (
    FlagEventRow,
    FlagRow,
    FlagStep,
    WebhookAttemptRow,
    WebhookDeliveryRow,
    WebhookRow,
)
from hub.settings import HubSettings
from policies.caller import Caller
from schema.api.pagination import Connection, Edge, PageInfo, page_size
from schema.api.types import FlagSourceType, GeoPoint, SensorReadingType
from schema.enums import RiskFlagStatus, SeverityLevel
from schema.errors import Forbidden, NotFound
from schema.runtime.db import Database
from schema.storage import utcnow

__all__ = [
    "FlagCase",
    "FlagEvent",
    "FlagWorkflow",
    "mutation_fields",
    "query_fields",
    "subscription_fields",
]

SUBSCRIBE_SCOPES = frozenset({service.FLAG_SCOPE, service.VERIFY_SCOPE, service.READ_SCOPE})


class FlagWorkflow(Protocol):
    """What the GraphQL fields need of the hub's flag part (``component.HubFlags`` is one)."""

    @property
    def settings(self) -> HubSettings: ...

    @property
    def db(self) -> Database: ...

    @property
    def notifier(self) -> Notifier: ...

    async def transition(
        self, caller: Caller, flag_id: str, to: RiskFlagStatus, note: str, expected_version: int
    ) -> FlagRow:
        """Move a flag (its own transaction)."""
        ...

    async def delivered(self, caller: Caller, event: FlagEventRow) -> None:
        """A subscriber got an event."""
        ...


@strawberry.type(description="One workflow step: who moved the flag where, when and why")
class FlagStepType:
    status: RiskFlagStatus
    at: datetime
    by: str
    org: str
    client_id: str
    note: str
    person: str | None = strawberry.field(
        description="The person who made the step (username, the token's sub), when a person"
        " signed in at the web app made it; null for a machine client"
    )

    @classmethod
    def of(cls, step: FlagStep) -> FlagStepType:
        return cls(
            status=step.status,
            at=step.at,
            by=step.by,
            org=step.org,
            client_id=step.client_id,
            note=step.note,
            person=step.person,
        )


@strawberry.type(description="The service request a confirmed flag was filed as elsewhere")
class FlagExternal:
    system: str = strawberry.field(description="open311:<name of the system in the routing file>")
    id: str | None = strawberry.field(
        description="The service_request_id there (null while the system only gave a token)"
    )
    status: str | None = strawberry.field(description="submitted, then open or closed there")
    at: datetime | None = strawberry.field(description="When it took that status there")

    @classmethod
    def of(cls, row: FlagRow) -> FlagExternal | None:
        if row.external_system is None:
            return None
        return cls(
            system=row.external_system,
            id=row.external_id,
            status=row.external_status,
            at=row.external_status_at,
        )


@strawberry.type(description="A risk flag as the district handles it")
class FlagCase:
    id: strawberry.ID
    community: str
    category: str
    description: str
    location: GeoPoint
    address: str
    severity: SeverityLevel
    evidence_links: list[str]
    source: FlagSourceType | None = strawberry.field(
        description="The sensor rule that raised it by itself (none: a person raised it)"
    )
    evidence: list[SensorReadingType] = strawberry.field(
        description="The readings that raised it, oldest first (a sensor's flag)"
    )
    status: RiskFlagStatus
    assigned_to: str | None
    deadline_at: datetime | None = strawberry.field(
        description="When it escalates unless acknowledged"
    )
    escalation_level: int
    version: int = strawberry.field(description="Send as expectedVersion to move it")
    raised_at: datetime
    received_at: datetime
    updated_at: datetime
    transitions: list[FlagStepType]
    timeline: list[FlagHop]
    external: FlagExternal | None = strawberry.field(
        description="The Open311 service request it was filed as, once confirmed (if routed so)"
    )

    @classmethod
    def of(cls, row: FlagRow) -> FlagCase:
        return cls(
            id=strawberry.ID(row.id),
            community=row.community,
            category=row.category,
            description=row.description,
            location=GeoPoint.from_pydantic(row.location),
            address=row.address,
            severity=SeverityLevel(row.severity),
            evidence_links=list(row.evidence_links),
            source=FlagSourceType.from_pydantic(row.source) if row.source is not None else None,
            evidence=[SensorReadingType.from_pydantic(r) for r in row.evidence],
            status=RiskFlagStatus(row.status),
            assigned_to=row.assigned_to,
            deadline_at=row.deadline_at,
            escalation_level=row.escalation_level,
            version=row.version,
            raised_at=row.raised_at,
            received_at=row.received_at,
            updated_at=row.updated_at,
            transitions=[FlagStepType.of(s) for s in row.transitions],
            timeline=hops_of(service.timeline_of(row)),
            external=FlagExternal.of(row),
        )


@strawberry.type(name="HopLag", description="Milliseconds from raising a flag to one hop")
class HopLagType:
    hop: str
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    count: int


@strawberry.type(description="A department's endpoint for its flag events")
class Webhook:
    id: strawberry.ID
    department: str
    url: str
    created_at: datetime
    active: bool
    created_by: str = strawberry.field(description="The client that registered it")
    created_by_person: str | None = strawberry.field(
        description="The person who registered it, when a person signed in did"
    )

    @classmethod
    def of(cls, row: WebhookRow) -> Webhook:
        return cls(
            id=strawberry.ID(row.id),
            department=row.department,
            url=row.url,
            created_at=row.created_at,
            active=row.active,
            created_by=row.created_by,
            created_by_person=row.created_by_person,
        )


@strawberry.type(description="A new webhook and its signing secret, shown this once")
class WebhookRegistration:
    webhook: Webhook
    secret: str = strawberry.field(description="whsec_<base64>: verify webhook-signature with it")


@strawberry.type(description="One attempt at a webhook delivery")
class WebhookAttempt:
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float

    @classmethod
    def of(cls, row: WebhookAttemptRow) -> WebhookAttempt:
        return cls(
            attempt=row.attempt,
            at=row.at,
            status_code=row.status_code,
            error=row.error,
            duration_ms=row.duration_ms,
        )


@strawberry.type(description="One event for one webhook, and how its delivery went")
class WebhookDelivery:
    id: strawberry.ID = strawberry.field(description="The webhook-id header")
    webhook_id: strawberry.ID
    event_seq: int
    event_type: str
    flag_id: strawberry.ID
    status: str = strawberry.field(description="pending, delivered or failed")
    attempt: int = strawberry.field(description="Attempts made so far")
    status_code: int | None = strawberry.field(description="Of the last attempt")
    error: str | None = strawberry.field(description="Of the last attempt")
    delivered_at: datetime | None
    next_attempt_at: datetime | None
    created_at: datetime
    attempts: list[WebhookAttempt]

    @classmethod
    def of(cls, row: WebhookDeliveryRow, attempts: list[WebhookAttemptRow]) -> WebhookDelivery:
        return cls(
            id=strawberry.ID(row.id),
            webhook_id=strawberry.ID(row.webhook_id),
            event_seq=row.event_seq,
            event_type=row.event_type,
            flag_id=strawberry.ID(row.flag_id),
            status=row.status,
            attempt=row.attempts,
            status_code=row.status_code,
            error=row.error,
            delivered_at=row.delivered_at,
            next_attempt_at=row.next_attempt_at if row.status == "pending" else None,
            created_at=row.created_at,
            attempts=[WebhookAttempt.of(a) for a in attempts],
        )


@strawberry.type(description="A batch of flag events for the hub above, oldest first")
class SuperiorFlagEvents:
    events: list[FlagEvent]
    last_seq: int = strawberry.field(description="The last sequence number given out here")


def _selection(info: Info[HubContext, None]) -> str:
    """The caller's selection of a ``FlagCase`` field, to ask of the hub below."""
    return print_selection(info.selected_fields[0].selections, ("id",))


def query_fields(flags: FlagWorkflow) -> dict[str, Any]:
    """``flag``, ``flags``, ``flagTimeline``, ``flagLag``, ``webhooks``, ``webhookDeliveries``.

    Each is nullable: one the caller may not read is null with its error, and the
    other fields of the request still answer.
    """

    async def flag(info: Info[HubContext, None], id: strawberry.ID) -> FlagCase | None:
        try:
            async with flags.db.sessions() as session:
                row = await service.get_visible_flag(session, info.context.caller, str(id))
        except NotFound:
            # Not here: a hub below may hold it, assigned to the caller (a city department).
            found: FlagCase = await below.flag_below(
                info.context, str(id), _selection(info), FlagCase, info.path.as_list()
            )
            return found
        return FlagCase.of(row)

    async def flags_page(
        info: Info[HubContext, None],
        status: RiskFlagStatus | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[FlagCase] | None:
        context = info.context
        hubs = below.hubs_below(context)
        if hubs:  # a city (or province) hub: its own flags and those the hubs below assigned
            merged = await below.list_flags(
                context,
                hubs,
                local_part=flags.settings.hub_id,
                status=status,
                size=page_size(first),
                after=after,
                selection=node_selection(info.selected_fields[0], below.FLAG_ENVELOPE),
                gql_type=FlagCase,
                of_row=FlagCase.of,
                secret=flags.settings.cursor_secret.encode(),
                path=info.path.as_list(),
            )
            return Connection(
                edges=[Edge(cursor=c, node=n) for c, n in merged.edges],
                page_info=PageInfo(has_next_page=merged.has_next, end_cursor=merged.end_cursor),
            )
        async with flags.db.sessions() as session:
            page, has_next = await service.list_flags(
                session,
                info.context.caller,
                status=status,
                first=first,
                after=after,
                secret=flags.settings.cursor_secret.encode(),
            )
        return Connection(
            edges=[Edge(cursor=c, node=FlagCase.of(r)) for c, r in page],
            page_info=PageInfo(has_next_page=has_next, end_cursor=page[-1][0] if page else None),
        )

    async def flag_timeline(
        info: Info[HubContext, None],
        id: strawberry.ID,
    ) -> list[FlagHop] | None:
        async with flags.db.sessions() as session:
            row = await service.get_visible_flag(session, info.context.caller, str(id))
        return hops_of(service.timeline_of(row))

    async def flag_lag(
        info: Info[HubContext, None],
        since: datetime | None = None,
        department: str | None = None,
    ) -> list[HopLagType] | None:
        async with flags.db.sessions() as session:
            lags = await service.flag_lag(
                session, info.context.caller, since=since, department=department
            )
        return [
            HopLagType(hop=x.hop, p50_ms=x.p50_ms, p90_ms=x.p90_ms, p99_ms=x.p99_ms, count=x.count)
            for x in lags
        ]

    async def superior_flag_events(
        info: Info[HubContext, None], after: int, first: int = 200
    ) -> SuperiorFlagEvents | None:
        rows, last = await below.superior_events(
            flags.db, info.context.caller, district=flags.settings.district, after=after,
            first=first,
        )  # fmt: skip
        return SuperiorFlagEvents(events=[FlagEvent.of(r) for r in rows], last_seq=last)

    async def webhook_list(info: Info[HubContext, None]) -> list[Webhook] | None:
        async with flags.db.sessions() as session:
            rows = await webhooks.list_webhooks(session, info.context.caller)
        return [Webhook.of(r) for r in rows]

    async def webhook_deliveries(
        info: Info[HubContext, None], first: int | None = None, after: str | None = None
    ) -> Connection[WebhookDelivery] | None:
        async with flags.db.sessions() as session:
            page, has_next = await webhooks.list_deliveries(
                session,
                info.context.caller,
                first=first,
                after=after,
                secret=flags.settings.cursor_secret.encode(),
            )
        return Connection(
            edges=[Edge(cursor=c, node=WebhookDelivery.of(r, a)) for c, r, a in page],
            page_info=PageInfo(has_next_page=has_next, end_cursor=page[-1][0] if page else None),
        )

    return {
        "flag": strawberry.field(resolver=flag, description="A flag the caller may see"),
        "flags": strawberry.field(
            resolver=flags_page,
            description="Flags newest first: a department's assigned ones, a community's own",
        ),
        "flag_timeline": strawberry.field(
            resolver=flag_timeline, description="Every hop of a flag and when"
        ),
        "flag_lag": strawberry.field(
            resolver=flag_lag, description="Lag percentiles per hop (ms from raising)"
        ),
        "superior_flag_events": strawberry.field(
            resolver=superior_flag_events,
            description="For the hub above (a hub token of a higher division, risk:verify): "
            "events after seq `after` of the flags assigned here to its departments",
        ),
        "webhooks": strawberry.field(resolver=webhook_list, description="The caller's webhooks"),
        "webhook_deliveries": strawberry.field(
            resolver=webhook_deliveries, description="The caller's webhook deliveries, newest first"
        ),
    }


def mutation_fields(flags: FlagWorkflow) -> dict[str, Any]:
    """``transitionFlag``, ``registerWebhook``, ``replayWebhookDelivery``."""

    async def transition_flag(
        info: Info[HubContext, None],
        id: strawberry.ID,
        to: RiskFlagStatus,
        expected_version: int,
        note: str | None = None,
    ) -> FlagCase:
        note = (note or "")[:1000]
        try:
            row = await flags.transition(info.context.caller, str(id), to, note, expected_version)
        except NotFound:
            # Not here: the hub below that holds it moves it, as the caller (nothing written here).
            moved: FlagCase = await below.transition_below(
                info.context, str(id), to=to, note=note, expected_version=expected_version,
                selection=_selection(info), gql_type=FlagCase, path=info.path.as_list(),
            )  # fmt: skip
            return moved
        return FlagCase.of(row)

    async def register_webhook(info: Info[HubContext, None], url: str) -> WebhookRegistration:
        async with flags.db.transaction() as session:
            row, secret = await webhooks.register_webhook(
                session,
                info.context.caller,
                url,
                now=utcnow(),
                outbound=flags.settings.outbound_policy(),
                sealer=flags.settings.sealer(),
            )
        return WebhookRegistration(webhook=Webhook.of(row), secret=secret)

    async def replay_webhook_delivery(
        info: Info[HubContext, None],
        id: strawberry.ID,
    ) -> WebhookDelivery:
        async with flags.db.transaction() as session:
            row = await webhooks.replay_delivery(
                session, info.context.caller, str(id), now=utcnow()
            )
        flags.notifier.notify()
        return WebhookDelivery.of(row, [])

    return {
        "transition_flag": strawberry.mutation(
            resolver=transition_flag,
            description="Move a flag one step (its assigned department, scope risk:verify)",
        ),
        "register_webhook": strawberry.mutation(
            resolver=register_webhook,
            description="Register a signed webhook for the department's flag events",
        ),
        "replay_webhook_delivery": strawberry.mutation(
            resolver=replay_webhook_delivery, description="Send a webhook delivery again"
        ),
    }


def subscription_fields(flags: FlagWorkflow) -> dict[str, Any]:
    """``flagEvents(after)``: replay from the log after ``after``, then live."""

    async def flag_events(
        info: Info[HubContext, None], after: int | None = None
    ) -> AsyncIterator[FlagEvent]:
        caller = info.context.caller
        if not SUBSCRIBE_SCOPES & caller.scopes:
            raise Forbidden("flag events need the scope risk:verify, risk:flag or risk:read")
        cursor = await start_cursor(flags.db, after)

        async def stream() -> AsyncIterator[FlagEvent]:
            async for row in follow_events(
                flags.db,
                flags.notifier,
                caller,
                cursor,
                delivered=lambda event: flags.delivered(caller, event),
            ):
                yield FlagEvent.of(row)

        return stream()

    return {
        "flag_events": strawberry.subscription(
            resolver=flag_events,
            description="Events of the caller's flags, numbered; resume with after: <last seq>",
        )
    }
