"""Mutual aid in the node app: the request hook, ``POST /aid/steps``, ``aidStep``, ``aidCases``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import strawberry
from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.scalars import JSON
from strawberry.types import Info

from node.aid import service
from node.aid.service import AidCase, AidParty
from node.flags.updates import check_hub_caller
from node.settings import NodeSettings
from policies.caller import Caller
from schema.aid import AidRole, AidStep, AidStepKind
from schema.api.pagination import Page, decode_id_cursor, encode_id_cursor
from schema.enums import AidRequestStatus
from schema.errors import InvalidInput, PageSizeTooLarge
from schema.runtime.db import Database
from schema.runtime.http import json_body
from schema.scopes import Scope
from schema.store.specs import RecordSpec
from schema.store.tables import RowMixin

__all__ = ["NodeAid"]

Authenticate = Callable[[str | None], Awaitable[Caller]]
MAX_PAGE = 100
HUB_SCOPE = Scope.AID_RESPOND

strawberry.enum(AidStepKind, name="AidStepKind")
strawberry.enum(AidRole, name="AidRole")


@strawberry.type(name="AidPerson", description="A committed volunteer: who, how to reach them")
class AidPersonType:
    volunteer_id: strawberry.ID
    name: str
    phone: str | None


@strawberry.type(description="Where and whom: disclosed to the requester once committed")
class AidDisclosureType:
    resource_id: strawberry.ID | None = strawberry.field(description="Null for volunteers")
    address: str = strawberry.field(description="The pick-up address (empty for volunteers)")
    contact: str
    people: list[AidPersonType] = strawberry.field(description="The volunteers committed")


@strawberry.type(name="AidCase", description="One aid request this community is a party to")
class AidCaseType:
    request_id: strawberry.ID
    role: AidRole
    requester: str
    provider: str
    resource_id: strawberry.ID | None
    resource_kind: str
    unit: str
    requested: int
    offered: int | None
    committed: int = strawberry.field(description="Units reserved at the provider")
    received: int | None
    status: AidRequestStatus
    disclosure: AidDisclosureType | None = strawberry.field(
        description="The pick-up address and contact: the requester's, after the commit"
    )
    steps: JSON = strawberry.field(description="The steps applied here, in order")
    updated_at: datetime
    version: int
    skill: str | None = strawberry.field(description="Volunteers: the skill code asked for")
    window_from: datetime | None = strawberry.field(description="Volunteers: needed from")
    window_to: datetime | None = strawberry.field(description="Volunteers: needed until")
    volunteer_ids: list[strawberry.ID] | None = strawberry.field(
        description="Volunteers: the Volunteer records offered (and committed)"
    )

    @classmethod
    def of(cls, case: AidCase) -> AidCaseType:
        shown = case.disclosure if case.role is AidRole.REQUESTER else None
        return cls(
            request_id=strawberry.ID(case.request_id),
            role=case.role,
            requester=case.requester,
            provider=case.provider,
            resource_id=strawberry.ID(case.resource_id) if case.resource_id else None,
            resource_kind=case.resource_kind,
            unit=case.unit,
            requested=case.requested,
            offered=case.offered,
            committed=case.committed,
            received=case.received,
            status=case.status,
            disclosure=(
                AidDisclosureType(
                    resource_id=strawberry.ID(shown.resource_id) if shown.resource_id else None,
                    address=shown.address,
                    contact=shown.contact,
                    people=[
                        AidPersonType(
                            volunteer_id=strawberry.ID(p.volunteer_id), name=p.name, phone=p.phone
                        )
                        for p in shown.people
                    ],
                )
                if shown is not None
                else None
            ),
            steps=JSON(case.steps),
            updated_at=case.updated_at,
            version=case.version,
            skill=case.skill,
            window_from=case.window_from,
            window_to=case.window_to,
            volunteer_ids=(
                [strawberry.ID(v) for v in case.volunteer_ids]
                if case.volunteer_ids is not None
                else None
            ),
        )


class RequestHooks:
    """``RecordHooks`` of AidRequest: the case and its ``request`` step, with the record."""

    def __init__(self, party: AidParty, wake: Callable[[], None]) -> None:
        self.party = party
        self.wake = wake

    async def created(self, session: AsyncSession, spec: RecordSpec, row: RowMixin) -> None:
        """Open the case and owe the hub the request, in the record's transaction."""
        await service.open_request(session, self.party, row)

    def committed(self, spec: RecordSpec, row: RowMixin) -> None:
        """Wake the outbox worker."""
        self.wake()


@dataclass
class NodeAid:
    """The aid flow of one node process."""

    settings: NodeSettings
    db: Database
    party: AidParty
    wake: asyncio.Event

    @property
    def record_hooks(self) -> dict[str, Any]:
        return {"AidRequest": RequestHooks(self.party, self.wake.set)}

    def router(self, authenticate: Authenticate) -> APIRouter:
        """``POST /aid/steps``: the hub brings the other party's steps."""
        router = APIRouter()

        @router.post("/aid/steps")
        async def aid_steps(
            request: Request, authorization: Annotated[str | None, Header()] = None
        ) -> JSONResponse:
            caller = await authenticate(authorization)
            check_hub_caller(caller, self.settings, HUB_SCOPE)
            body = await json_body(request)
            try:
                step = AidStep.model_validate(body)
            except ValidationError as exc:
                raise InvalidInput.from_validation(exc) from exc
            try:
                async with self.db.transaction() as session:
                    received = await service.receive_step(session, self.party, step)
            except IntegrityError:
                return JSONResponse({"status": "duplicate", "request_id": step.request_id})
            if received.status == "applied":
                self.wake.set()  # a commit or refusal may be owed to the hub
            status = received.case.status.value if received.case is not None else None
            return JSONResponse(
                {"status": received.status, "request_id": step.request_id, "state": status}
            )

        return router

    def query_fields(self) -> dict[str, Any]:
        async def aid_case(info: Info[Any, None], request_id: strawberry.ID) -> AidCaseType | None:
            info.context.require_staff(also=(Scope.AID_REQUEST, Scope.AID_RESPOND))
            async with self.db.sessions() as session:
                case = await service.load_case(session, self.party, str(request_id))
            return AidCaseType.of(case) if case is not None else None

        async def aid_cases(
            info: Info[Any, None],
            statuses: list[AidRequestStatus] | None = None,
            first: int = 20,
            after: str | None = None,
        ) -> Page[AidCaseType]:
            info.context.require_staff(also=(Scope.AID_REQUEST, Scope.AID_RESPOND))
            if first > MAX_PAGE or first < 0:
                raise PageSizeTooLarge(f"first must be 0..{MAX_PAGE}", max=MAX_PAGE)
            secret = self.settings.cursor_secret.encode()
            after_id = decode_id_cursor(after, "aid_cases", secret=secret) if after else None
            async with self.db.sessions() as session:
                cases = await service.list_cases(
                    session, self.party, statuses=statuses, after=after_id, limit=first + 1
                )
            page = cases[:first]
            return Page(
                items=[AidCaseType.of(c) for c in page],
                end_cursor=(
                    encode_id_cursor("aid_cases", page[-1].request_id, secret=secret)
                    if page
                    else after
                ),
                has_next_page=len(cases) > first,
            )

        return {
            "aid_case": strawberry.field(
                resolver=aid_case, description="One aid request this community is a party to"
            ),
            "aid_cases": strawberry.field(
                resolver=aid_cases,
                description="The aid requests this community is a party to, by request id",
            ),
        }

    def mutation_fields(self) -> dict[str, Any]:
        async def aid_step(
            info: Info[Any, None],
            request_id: strawberry.ID,
            kind: AidStepKind,
            quantity: int | None = None,
            resource_id: strawberry.ID | None = None,
            note: str = "",
            volunteer_ids: list[strawberry.ID] | None = None,
        ) -> AidCaseType:
            context = info.context
            context.require_staff(also=(Scope.AID_REQUEST, Scope.AID_RESPOND))
            if len(note) > 1000:
                raise InvalidInput("note is over 1000 characters", code="STRING_TOO_LONG",
                                   field="note")  # fmt: skip
            async with self.db.transaction() as session:
                case = await service.take_step(
                    session,
                    self.party,
                    context.caller,
                    request_id=str(request_id),
                    kind=kind,
                    quantity=quantity,
                    resource_id=str(resource_id) if resource_id is not None else None,
                    note=note,
                    volunteer_ids=[str(v) for v in volunteer_ids]
                    if volunteer_ids is not None
                    else None,
                )
            self.wake.set()
            return AidCaseType.of(case)

        return {
            "aid_step": strawberry.mutation(
                resolver=aid_step,
                description="Take a step of an aid request: offer, decline, dispatch, in_transit, "
                "request_return (provider, aid:respond); accept, receive, return, cancel "
                "(requester, aid:request). An offer for a request of volunteers names them in "
                "volunteerIds (in_transit does not apply). Refused with AID_STEP_OUT_OF_ORDER, "
                "AID_NOT_YOUR_STEP, AID_QUANTITY_INVALID, AID_ABOVE_AVAILABLE, AID_NOT_OWNER, "
                "AID_RECORD_RETIRED, AID_KIND_MISMATCH, AID_VOLUNTEER_BOOKED or "
                "AID_VOLUNTEER_UNAVAILABLE",
            )
        }


def create_aid(
    settings: NodeSettings,
    db: Database,
    party: AidParty,
    wake: asyncio.Event,
) -> NodeAid:
    """The aid part of one node process; ``wake`` is the outbox worker's."""
    return NodeAid(settings, db, party, wake)


__all__ += ["create_aid"]
