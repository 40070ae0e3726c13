"""Mutual aid as one part of the hub app: ``POST /aid/inbox``, ``aidCase(s)``, ``aidDistrict``,
``aidEvents``, the request-to-offer/commit/receipt histograms, and the loop that matches
requests still open to the district again (``LINLI_AID_REMATCH_S``)."""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Annotated, Any

import strawberry
from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Histogram
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from strawberry.scalars import JSON
from strawberry.types import Info

from hub.aid import service
from hub.aid.events import AidEvent
from hub.aid.tables import AID_SEQUENCE, AidCaseRow, AidEventRow
from hub.federation.context import HubContext
from hub.federation.executor import Federation, PageRequest
from hub.flags.events import Notifier, follow_log, start_cursor
from hub.settings import HubSettings
from policies.caller import Caller
from schema.aid import (
    MAX_QUANTITY,
    AidQuantityInvalid,
    AidSkillUnknown,
    AidStep,
    AidStepKind,
)
from schema.api.filters import NearInput
from schema.api.pagination import Page, RecordOrder, decode_id_cursor, encode_id_cursor
from schema.codes import RESOURCE_KINDS, VOLUNTEER_SKILLS, VOLUNTEERS_KIND, has_skill
from schema.enums import AidRequestStatus, VolunteerAvailability
from schema.errors import Forbidden, InvalidInput, PageSizeTooLarge
from schema.geo import distance_km
from schema.runtime.db import Database
from schema.runtime.http import json_body
from schema.runtime.tasks import BackgroundTasks, repeat
from schema.scopes import Scope
from schema.storage import utcnow
from schema.store.specs import SPECS

__all__ = ["AID_SCOPES", "HubAid", "create_aid", "require_view"]

log = logging.getLogger("linli.hub.aid")
Authenticate = Callable[[str | None], Awaitable[Caller]]
AID_SCOPES = frozenset({Scope.AID_REQUEST, Scope.AID_RESPOND})
VIEW_SCOPES = AID_SCOPES | {Scope.RISK_VERIFY, Scope.ADMIN}
MAX_PAGE = 100
MATCH_CANDIDATES = 100
MATCH_SELECTION = (
    "{ id owner version createdAt updatedAt name kind unit available "
    "availableBand { low high label } "
    "location { type coordinates } }"
)
VOLUNTEER_SELECTION = "{ id owner version createdAt updatedAt skills team availability }"
DISTRICT_WINDOW = 10_000
_BUCKETS = (1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400)


class AidMetrics:
    """Seconds from a request to its first offer, its commit and its receipt."""

    def __init__(self) -> None:
        def histogram(hop: str) -> Histogram:
            return Histogram(
                f"linli_hub_aid_request_to_{hop}_seconds",
                f"Seconds from an aid request being raised to its {hop.replace('_', ' ')}",
                registry=None,
                buckets=_BUCKETS,
            )

        self.hops = {
            "first_offer": histogram("first_offer"),
            "committed": histogram("commit"),
            "received": histogram("receipt"),
        }

    def register(self, registry: CollectorRegistry) -> None:
        for metric in self.hops.values():
            registry.register(metric)

    def observe(self, requested_at: datetime, hops: dict[str, datetime]) -> None:
        for hop, at in hops.items():
            self.hops[hop].observe(max(0.0, (at - requested_at).total_seconds()))


@strawberry.type(name="AidCaseAtHub", description="An aid request as the district relays it")
class AidCaseAtHub:
    request_id: strawberry.ID
    requester: str
    provider: str
    resource_id: strawberry.ID | None
    resource_kind: str
    unit: str
    requested: int
    committed: int
    received: int | None
    status: AidRequestStatus
    steps: JSON = strawberry.field(
        description="Every step applied, in order (no disclosure; place and note to the "
        "parties only)"
    )
    skill: str | None = strawberry.field(description="Volunteers: the skill code asked for")
    window_from: datetime | None = strawberry.field(description="Volunteers: needed from")
    window_to: datetime | None = strawberry.field(description="Volunteers: needed until")
    volunteer_ids: list[strawberry.ID] | None = strawberry.field(
        description="Volunteers: the Volunteer records offered"
    )
    requested_at: datetime
    first_offer_at: datetime | None
    committed_at: datetime | None
    received_at: datetime | None

    @classmethod
    def of(cls, row: AidCaseRow, caller: Caller) -> AidCaseAtHub:
        return cls(
            request_id=strawberry.ID(row.request_id),
            requester=row.requester,
            provider=row.provider,
            resource_id=strawberry.ID(row.resource_id) if row.resource_id else None,
            resource_kind=row.resource_kind,
            unit=row.unit,
            requested=row.requested,
            committed=row.committed,
            received=row.received,
            status=AidRequestStatus(row.status),
            steps=JSON(service.shown_steps(row, caller)),
            skill=row.skill,
            window_from=row.window_from,
            window_to=row.window_to,
            volunteer_ids=(
                [strawberry.ID(v) for v in row.volunteer_ids]
                if row.volunteer_ids is not None
                else None
            ),
            requested_at=row.requested_at,
            first_offer_at=row.first_offer_at,
            committed_at=row.committed_at,
            received_at=row.received_at,
        )


@strawberry.type(description="Open aid requests of one area (requester) and kind")
class AidNeed:
    area: str
    resource_kind: str
    requests: int
    quantity: int


@strawberry.type(description="A resource that could answer a request, as the caller may see it")
class AidMatch:
    resource_id: strawberry.ID
    owner: str
    name: str
    unit: str
    available: int | None = strawberry.field(description="Exact, if the owner shows it")
    available_band: str | None = strawberry.field(description="The band's label otherwise")
    enough: bool | None = strawberry.field(
        description="Whether what is shown covers the quantity (null: the band leaves it open)"
    )
    distance_km: float | None = strawberry.field(description="From near, as the location shows")


@strawberry.type(
    description="A volunteer who could answer a request for people, as the caller may see them "
    "(never who they are: their community is asked, not them)"
)
class AidVolunteerMatch:
    volunteer_id: strawberry.ID
    owner: str = strawberry.field(description="The volunteer's community: the one to ask")
    skills: list[str]
    team: str | None
    availability: VolunteerAvailability


@strawberry.type(description="p50 and p90 in seconds (null: no request got there yet)")
class AidTimes:
    p50: float | None
    p90: float | None


@strawberry.type(description="The district's mutual aid: open and unmet needs, and speed")
class AidDistrict:
    open_needs: list[AidNeed] = strawberry.field(description="Open requests by area and kind")
    unmet_needs: list[AidNeed] = strawberry.field(description="Not yet committed, by kind")
    to_first_offer: AidTimes
    to_commit: AidTimes
    to_receipt: AidTimes
    requests: int = strawberry.field(description="Requests counted (the newest 10,000)")


def _match(
    resource: Any, quantity: int, origin: tuple[float, float] | None, own: str
) -> AidMatch | None:
    """A candidate as the caller may see it (None: the caller's own)."""
    if resource.owner == own:
        return None
    band = resource.available_band
    enough: bool | None
    if resource.available is not None:
        enough = resource.available >= quantity
    elif band is not None:  # a band: surely (low covers it), surely not, or maybe
        high = band.high
        enough = (
            True
            if band.low >= quantity
            else (False if high is not None and high < quantity else None)
        )
    else:
        enough = False
    location = resource.location
    distance = (
        distance_km(origin, (location.lon, location.lat))
        if origin is not None and location is not None
        else None
    )
    return AidMatch(
        resource_id=strawberry.ID(resource.id),
        owner=resource.owner,
        name=resource.name,
        unit=resource.unit,
        available=resource.available,
        available_band=band.label if band is not None else None,
        enough=enough,
        distance_km=round(distance, 3) if distance is not None else None,
    )


def _dispatch_order(match: AidMatch) -> tuple[int, float, int]:
    covers = {True: 0, None: 1, False: 2}[match.enough]
    distance = match.distance_km if match.distance_km is not None else math.inf
    shown = match.available if match.available is not None else 0
    return (covers, distance, -shown)


_AVAILABILITY_RANK = {
    VolunteerAvailability.AVAILABLE: 0,
    VolunteerAvailability.ON_DUTY: 1,
    VolunteerAvailability.UNAVAILABLE: 2,
}


def _volunteer_order(match: AidVolunteerMatch) -> tuple[int, str, str]:
    """Available first; Volunteer records carry no location, so then by community."""
    return (_AVAILABILITY_RANK[match.availability], match.owner, str(match.volunteer_id))


def _owners(owners: list[str]) -> list[str]:
    """The distinct owners in order."""
    return list(dict.fromkeys(owners))


def _times(p50_p90: tuple[float | None, float | None]) -> AidTimes:
    return AidTimes(p50=p50_p90[0], p90=p50_p90[1])


def _need(need: service.OpenNeed) -> AidNeed:
    return AidNeed(
        area=need.area,
        resource_kind=need.resource_kind,
        requests=need.requests,
        quantity=need.quantity,
    )


def require_view(caller: Caller) -> None:
    if not VIEW_SCOPES & caller.scopes:
        raise Forbidden(
            "aid requests need the scope aid:request, aid:respond, risk:verify or admin",
            scope=sorted(VIEW_SCOPES),
        )


@dataclass
class HubAid:
    """The aid relay's objects."""

    db: Database
    authenticate: Authenticate
    notifier: Notifier
    settings: HubSettings
    metrics: AidMetrics = field(default_factory=AidMetrics)
    federation: Federation | None = None  # matches requests open to the district
    rematch_wake: Notifier = field(default_factory=Notifier)  # a decline: match again now

    async def match_owners(self, step: AidStep, asking: Caller) -> list[str]:
        """The owners of the shareable resources matching an open request, best first, all.

        The district is asked as ``asking`` (``service.matching_caller``: the requester's
        client with ``resources:read``, ``aid:request``) sees it; owners whose shown
        availability surely cannot cover the quantity are left out.
        """
        if self.federation is None or step.kind is not AidStepKind.REQUEST or step.provider:
            return []
        if step.resource_kind == VOLUNTEERS_KIND:
            found, _ = await self.volunteer_matches(asking, step.skill or "", purpose=None)
            return _owners([m.owner for m in found])
        page = await self.federation.list_page(
            SPECS["Resource"],
            PageRequest(
                caller=asking,
                where={"kinds": [step.resource_kind], "shareable": True},
                first=MATCH_CANDIDATES,
                after=None,
                order=RecordOrder.UPDATED_DESC,
                selection=MATCH_SELECTION,
                purpose=None,  # the request is its purpose; no query purpose of the list
            ),
        )
        for report in page.reports:
            if report.status.value not in ("ok", "stale"):
                log.warning("aid: matching %s: source %s %s: %s", step.request_id,
                            report.source, report.status.value, report.message)  # fmt: skip
        origin = (step.place.lon, step.place.lat) if step.place is not None else None
        matches = [
            match
            for _, node in page.edges
            if (match := _match(node.to_pydantic(), step.quantity or 1, origin, step.requester))
            is not None
            and match.enough is not False
        ]
        matches.sort(key=_dispatch_order)
        return _owners([match.owner for match in matches])

    async def volunteer_matches(
        self, caller: Caller, skill: str, *, purpose: str | None
    ) -> tuple[list[AidVolunteerMatch], list[Any]]:
        """Available volunteers with ``skill`` of other communities, as ``caller`` sees them.

        In the dispatcher's order (``_volunteer_order``), with the sources' reports.
        """
        known = VOLUNTEER_SKILLS.get(skill)
        if known is None:
            raise AidSkillUnknown(f"{skill[:40]!r} is not in the volunteer skill code list",
                                  skill=skill[:40])  # fmt: skip
        assert self.federation is not None
        page = await self.federation.list_page(
            SPECS["Volunteer"],
            PageRequest(
                caller=caller,
                where={
                    "skills": list(known.labels),
                    "availabilities": [VolunteerAvailability.AVAILABLE.name],
                },
                first=MATCH_CANDIDATES,
                after=None,
                order=RecordOrder.UPDATED_DESC,
                selection=VOLUNTEER_SELECTION,
                purpose=purpose,
            ),
        )
        for report in page.reports:
            if report.status.value not in ("ok", "stale"):
                log.warning("aid: volunteers with %s: source %s %s: %s", skill, report.source,
                            report.status.value, report.message)  # fmt: skip
        matches = []
        for _, node in page.edges:
            volunteer = node.to_pydantic()
            if (
                volunteer.owner == caller.org
                or volunteer.availability is not VolunteerAvailability.AVAILABLE
                or not has_skill(list(volunteer.skills or []), skill)
            ):
                continue
            matches.append(
                AidVolunteerMatch(
                    volunteer_id=strawberry.ID(volunteer.id),
                    owner=volunteer.owner,
                    skills=list(volunteer.skills or []),
                    team=volunteer.team,
                    availability=volunteer.availability,
                )
            )
        matches.sort(key=_volunteer_order)
        return matches, list(page.reports)

    async def deliver(self, step: AidStep, caller: Caller) -> dict[str, str]:
        """Apply one step sent by ``caller``, once, and pass it on: the inbox's answer.

        ``POST /aid/inbox`` (JSON) and ``POST /aid/inbox/edxl-rm`` (EDXL-RM) both end here.
        """
        owners: list[str] = []
        if step.provider is None and step.kind is AidStepKind.REQUEST:
            asking = service.matching_caller(step.requester, org_kind=caller.org_kind,
                                             client_id=caller.client_id, subject=caller.subject,
                                             district=caller.district)  # fmt: skip
            owners = (await self.match_owners(step, asking))[: self.settings.aid_match_owners]
        now = utcnow()
        try:
            async with self.db.transaction() as session:
                received = await service.receive_step(
                    session,
                    step,
                    caller,
                    now=now,
                    owners=owners,
                    rematch_at=now + timedelta(seconds=self.settings.aid_rematch_s),
                )
        except IntegrityError:
            return {"status": "duplicate", "request_id": step.request_id}
        if received.status == "applied":
            self.notifier.notify()  # subscribers and the node outbox
            if received.case is not None and received.hops:
                self.metrics.observe(received.case.requested_at, received.hops)
        elif (
            step.kind is AidStepKind.DECLINE
            and received.case is not None
            and not received.case.provider
        ):
            self.rematch_wake.notify()  # an owner said no to an open request: look for others
        # ``accepted`` is what the node's outbox takes for a delivered message.
        answer = "duplicate" if received.status == "duplicate" else "accepted"
        return {"status": answer, "outcome": received.status, "request_id": step.request_id}

    async def rematch_once(self) -> int:
        """Match the due open requests again; notify owners not asked before. Returns how many.

        The federated reads run outside any transaction; each request's notifications are
        one transaction, which a replica that notified the same owner first makes fail.
        """
        settings = self.settings
        async with self.db.transaction() as session:
            due = await service.due_for_rematch(
                session,
                now=utcnow(),
                limit=settings.aid_rematch_requests,
                interval_s=settings.aid_rematch_s,
            )
        notified = 0
        for match in due:
            try:
                owners = await self.match_owners(match.step, match.caller)
                if not owners:
                    continue
                async with self.db.transaction() as session:
                    new = await service.rematch(
                        session,
                        match.request_id,
                        owners,
                        now=utcnow(),
                        limit=settings.aid_match_owners,
                    )
            except IntegrityError:
                log.info("aid: %s was matched by another replica meanwhile", match.request_id)
                continue
            except Exception:  # one request's failure must not stop the others' pass
                log.exception("aid: matching %s again failed", match.request_id)
                continue
            if new:
                log.info("aid: %s passed on to %s", match.request_id, ", ".join(new))
            notified += len(new)
        if notified:
            self.notifier.notify()  # subscribers and the node outbox
        return notified

    @contextlib.asynccontextmanager
    async def lifecycle(self) -> AsyncIterator[None]:
        """The pass that matches open requests again, every ``aid_rematch_s`` or on a decline."""
        async with BackgroundTasks("aid rematch") as tasks:

            async def rematch() -> None:
                await self.rematch_once()

            tasks.start(
                repeat(
                    "aid rematch",
                    rematch,
                    interval_s=self.settings.aid_rematch_s,
                    wake=self.rematch_wake.waiter,
                )
            )
            yield

    @property
    def router(self) -> APIRouter:
        router = APIRouter()

        @router.post("/aid/inbox")
        async def aid_inbox(
            request: Request, authorization: Annotated[str | None, Header()] = None
        ) -> JSONResponse:
            caller = await self.authenticate(authorization)
            body = await json_body(request)
            return JSONResponse(await self.deliver(service.parse_step(body), caller))

        return router

    def query_fields(self) -> dict[str, Any]:
        async def aid_case(
            info: Info[HubContext, None], request_id: strawberry.ID
        ) -> AidCaseAtHub | None:
            caller = info.context.caller
            require_view(caller)
            async with self.db.sessions() as session:
                row = (
                    await session.execute(
                        select(AidCaseRow).where(
                            col(AidCaseRow.request_id) == str(request_id),
                            service.visible_cases(caller),
                        )
                    )
                ).scalar_one_or_none()
            return AidCaseAtHub.of(row, caller) if row is not None else None

        async def aid_cases(
            info: Info[HubContext, None],
            statuses: list[AidRequestStatus] | None = None,
            first: int = 20,
            after: str | None = None,
        ) -> Page[AidCaseAtHub]:
            caller = info.context.caller
            require_view(caller)
            if first > MAX_PAGE or first < 0:
                raise PageSizeTooLarge(f"first must be 0..{MAX_PAGE}", max=MAX_PAGE)
            query = (
                select(AidCaseRow)
                .where(service.visible_cases(caller))
                .order_by(col(AidCaseRow.request_id))
                .limit(first + 1)
            )
            if statuses:
                query = query.where(col(AidCaseRow.status).in_([s.value for s in statuses]))
            secret = self.settings.cursor_secret.encode()
            if after is not None:
                after_id = decode_id_cursor(after, "aid_cases", secret=secret)
                query = query.where(col(AidCaseRow.request_id) > after_id)
            async with self.db.sessions() as session:
                rows = list((await session.execute(query)).scalars())
            page = rows[:first]
            return Page(
                items=[AidCaseAtHub.of(r, caller) for r in page],
                end_cursor=(
                    encode_id_cursor("aid_cases", page[-1].request_id, secret=secret)
                    if page
                    else after
                ),
                has_next_page=len(rows) > first,
            )

        async def aid_matches(
            info: Info[HubContext, None],
            resource_kind: str,
            quantity: int,
            near: NearInput | None = None,
            first: int = 10,
        ) -> list[AidMatch]:
            context = info.context
            caller = context.caller
            if not caller.has_scope(Scope.RESOURCES_READ) or not (
                caller.has_scope(Scope.AID_REQUEST) or caller.has_scope(Scope.RISK_VERIFY)
            ):
                raise Forbidden(
                    "matching needs resources:read and aid:request (or risk:verify)",
                    scope=[Scope.RESOURCES_READ, Scope.AID_REQUEST],
                )
            if resource_kind not in RESOURCE_KINDS:
                raise InvalidInput(
                    f"{resource_kind[:40]!r} is not in the resource-kind code list",
                    code="UNKNOWN_RESOURCE_KIND",
                    field="resourceKind",
                )
            if quantity <= 0 or quantity > MAX_QUANTITY:
                raise AidQuantityInvalid(
                    f"quantity must be 1..{MAX_QUANTITY}", quantity=quantity, limit=MAX_QUANTITY
                )
            if first > MAX_PAGE or first < 0:
                raise PageSizeTooLarge(f"first must be 0..{MAX_PAGE}", max=MAX_PAGE)
            where: dict[str, Any] = {"kinds": [resource_kind], "shareable": True}
            if near is not None:
                where["near"] = {"lat": near.lat, "lon": near.lon, "radiusKm": near.radius_km}
            page = await context.federation.list_page(
                SPECS["Resource"],
                PageRequest(
                    caller=caller,
                    where=where,
                    first=MATCH_CANDIDATES,
                    after=None,
                    order=RecordOrder.UPDATED_DESC,
                    selection=MATCH_SELECTION,
                    purpose=context.purpose,
                ),
            )
            context.add_reports(page.reports, info.path.as_list())
            origin = (near.lon, near.lat) if near is not None else None
            matches = [
                match
                for _, node in page.edges
                if (match := _match(node.to_pydantic(), quantity, origin, caller.org)) is not None
            ]
            matches.sort(key=_dispatch_order)
            return matches[:first]

        async def aid_volunteer_matches(
            info: Info[HubContext, None], skill: str, first: int = 20
        ) -> list[AidVolunteerMatch]:
            context = info.context
            caller = context.caller
            if not caller.has_scope(Scope.VOLUNTEERS_READ) or not (
                caller.has_scope(Scope.AID_REQUEST) or caller.has_scope(Scope.RISK_VERIFY)
            ):
                raise Forbidden(
                    "matching volunteers needs volunteers:read and aid:request (or risk:verify)",
                    scope=[Scope.VOLUNTEERS_READ, Scope.AID_REQUEST],
                )
            if first > MAX_PAGE or first < 0:
                raise PageSizeTooLarge(f"first must be 0..{MAX_PAGE}", max=MAX_PAGE)
            matches, reports = await self.volunteer_matches(caller, skill, purpose=context.purpose)
            context.add_reports(reports, info.path.as_list())
            return matches[:first]

        async def aid_district(info: Info[HubContext, None]) -> AidDistrict:
            caller = info.context.caller
            if not (caller.has_scope(Scope.RISK_VERIFY) or caller.has_scope(Scope.ADMIN)):
                raise Forbidden(
                    "the district's aid view is for departments (risk:verify) and admin",
                    scope=[Scope.RISK_VERIFY, Scope.ADMIN],
                )
            async with self.db.sessions() as session:
                figures = await service.district_figures(session, caller, limit=DISTRICT_WINDOW)
            return AidDistrict(
                open_needs=[_need(n) for n in figures.open_needs],
                unmet_needs=[_need(n) for n in figures.unmet],
                to_first_offer=_times(figures.to_first_offer_s),
                to_commit=_times(figures.to_commit_s),
                to_receipt=_times(figures.to_receipt_s),
                requests=figures.cases,
            )

        return {
            "aid_case": strawberry.field(
                resolver=aid_case, description="One aid request (its parties, departments)"
            ),
            "aid_cases": strawberry.field(
                resolver=aid_cases, description="Aid requests the caller may see, by request id"
            ),
            "aid_matches": strawberry.field(
                resolver=aid_matches,
                description="Shareable resources of a kind across the district, in the order a "
                "dispatcher would ask them: those whose shown availability (exact or band) surely "
                "covers the quantity, then those that may, then the rest; nearer first within "
                "each; the caller's own left out",
            ),
            "aid_volunteer_matches": strawberry.field(
                resolver=aid_volunteer_matches,
                description="Available volunteers with a skill (a code of the volunteer skill "
                "list) in other communities, as the caller may see them (skills, team, "
                "availability; never who they are), in the order a dispatcher would ask their "
                "communities: available first, then by community (volunteers carry no location). "
                "Refused with AID_SKILL_UNKNOWN",
            ),
            "aid_district": strawberry.field(
                resolver=aid_district,
                description="Open requests by area and kind, unmet needs, and p50/p90 seconds "
                "from request to first offer, commit and receipt",
            ),
        }

    def subscription_fields(self) -> dict[str, Any]:
        async def aid_events(
            info: Info[HubContext, None], after: int | None = None
        ) -> AsyncIterator[AidEvent]:
            caller = info.context.caller
            require_view(caller)
            cursor = await start_cursor(self.db, after, AID_SEQUENCE)

            async def stream() -> AsyncIterator[AidEvent]:
                async for row in follow_log(
                    self.db,
                    self.notifier,
                    AidEventRow,
                    service.visible_events(caller),
                    cursor,
                    sequence=AID_SEQUENCE,
                ):
                    yield AidEvent.of(row)

            return stream()

        return {
            "aid_events": strawberry.subscription(
                resolver=aid_events,
                description="Steps of the aid requests the caller may see (a provider is "
                "notified of requests addressed to it); resume with after: <last seq>",
            )
        }


def create_aid(
    settings: HubSettings,
    db: Database,
    *,
    authenticate: Authenticate,
    notifier: Notifier,
    federation: Federation | None = None,
) -> HubAid:
    """The aid part of one hub process; it shares the flags' notifier and node outbox."""
    return HubAid(db, authenticate, notifier, settings, federation=federation)
