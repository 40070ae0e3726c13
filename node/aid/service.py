"""The aid flow at a node: steps its staff take, steps the hub brings, the atomic commit.

Each function runs inside the caller's transaction and flushes; the caller commits.
A step this node takes is applied to its ``aid_cases`` row and written to the outbox
(kind ``aid.step``) in the same transaction; a step the hub brings is applied once per
message id (``aid_messages``). The provider's node commits when the requester's
``accept`` arrives: the conditional ``UPDATE resources SET available = available - q
WHERE available >= q`` reserves the units in the transaction that records the accept,
the commit step and its outbox row, so two commits can never take more than is
available, and a repeated ``accept`` (same message id) commits nothing more.
A step that no longer follows (the requester cancelled while the commit was on its
way) is recorded as ``ignored`` and changes nothing, so both sides end in the same state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from node.aid.bookings import book_volunteers, check_volunteers, release_volunteers
from node.aid.tables import AidTables
from node.flags import outbox
from node.flags.tables import FlagTables
from policies.audit import AuditEntry, append
from policies.caller import Caller
from schema.aid import (
    AidAboveAvailable,
    AidDisclosure,
    AidError,
    AidKindMismatch,
    AidNotOwner,
    AidNotYourStep,
    AidQuantityInvalid,
    AidRecordRetired,
    AidRole,
    AidStep,
    AidStepKind,
    AidStepOutOfOrder,
    advance,
    check_volunteer_request,
    consumes,
    new_message_id,
    releases,
)
from schema.codes import RESOURCE_KINDS, VOLUNTEERS_KIND
from schema.enums import AidRequestStatus, OrgKind
from schema.errors import Forbidden, NotFound
from schema.ids import GlobalId, InvalidGlobalId
from schema.scopes import Scope
from schema.storage import utcnow

__all__ = [
    "STAFF_STEPS",
    "AidCase",
    "AidParty",
    "Received",
    "commit_units",
    "list_cases",
    "load_case",
    "open_request",
    "receive_step",
    "release_units",
    "take_step",
]

STAFF_STEPS = frozenset(
    {
        AidStepKind.OFFER,
        AidStepKind.ACCEPT,
        AidStepKind.DISPATCH,
        AidStepKind.IN_TRANSIT,
        AidStepKind.RECEIVE,
        AidStepKind.REQUEST_RETURN,
        AidStepKind.RETURN,
        AidStepKind.CANCEL,
        AidStepKind.DECLINE,
    }
)
"""What staff do by hand; ``request`` is the AidRequest record itself, commit/refuse the node's."""

ROLE_SCOPES = {AidRole.REQUESTER: Scope.AID_REQUEST, AidRole.PROVIDER: Scope.AID_RESPOND}


@dataclass(frozen=True, slots=True)
class AidParty:
    """What the service needs to know of this node."""

    org: str
    contact: str
    aid: AidTables
    outbox: FlagTables
    resources: Any  # the Resource table class
    requests: Any  # the AidRequest table class
    volunteers: Any  # the Volunteer table class
    audit_log: sa.Table


@dataclass(frozen=True, slots=True)
class AidCase:
    """One ``aid_cases`` row."""

    request_id: str
    role: AidRole
    requester: str
    provider: str
    resource_id: str | None
    resource_kind: str
    unit: str
    reusable: bool
    requested: int
    offered: int | None
    committed: int
    received: int | None
    status: AidRequestStatus
    disclosure: AidDisclosure | None
    steps: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime
    version: int
    skill: str | None = None  # a request for volunteers: the skill, the window, who is offered
    window_from: datetime | None = None
    window_to: datetime | None = None
    volunteer_ids: list[str] | None = None

    @property
    def for_volunteers(self) -> bool:
        """Whether the request asks for people rather than a resource."""
        return self.resource_kind == VOLUNTEERS_KIND

    @classmethod
    def of(cls, row: Mapping[Any, Any]) -> AidCase:
        disclosure = row["disclosure"]
        return cls(
            request_id=row["request_id"],
            role=AidRole(row["role"]),
            requester=row["requester"],
            provider=row["provider"],
            resource_id=row["resource_id"],
            resource_kind=row["resource_kind"],
            unit=row["unit"],
            reusable=bool(row["reusable"]),
            requested=row["requested"],
            offered=row["offered"],
            committed=row["committed"],
            received=row["received"],
            status=AidRequestStatus(row["status"]),
            disclosure=AidDisclosure.model_validate(disclosure) if disclosure else None,
            steps=list(row["steps"]),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            version=row["version"],
            skill=row["skill"],
            window_from=row["window_from"],
            window_to=row["window_to"],
            volunteer_ids=list(row["volunteer_ids"]) if row["volunteer_ids"] is not None else None,
        )


@dataclass(frozen=True, slots=True)
class Received:
    """How a step from the hub went: ``applied``, ``ignored`` (no longer follows), ``duplicate``."""

    status: Literal["applied", "ignored", "duplicate"]
    case: AidCase | None


def _reusable(kind: str) -> bool:
    if kind == VOLUNTEERS_KIND:
        return True  # people come back: ``return`` releases their booking
    known = RESOURCE_KINDS.get(kind)
    return known.reusable if known is not None else False


def _resource_local(party: AidParty, resource_id: str) -> str:
    """The local id of ``resource_id`` if it is one of this node's resources; else refused."""
    try:
        parsed = GlobalId.parse(resource_id)
    except InvalidGlobalId as exc:
        raise AidNotOwner(str(exc), resourceId=resource_id) from exc
    if parsed.type != "Resource" or parsed.owner != party.org:
        raise AidNotOwner(f"{resource_id} is not a resource of {party.org}", resourceId=resource_id)
    return parsed.local


async def load_case(
    session: AsyncSession, party: AidParty, request_id: str, *, lock: bool = False
) -> AidCase | None:
    """The case of ``request_id`` at this node (locked for the transaction if ``lock``).

    The lock is a write that changes nothing: on PostgreSQL it locks the row, on SQLite it
    takes the database's write lock before the read (a plain SQLite read holds no snapshot,
    so without it two steps could both act on the same old status).
    """
    cases = party.aid.cases
    query = sa.select(cases).where(cases.c.request_id == request_id)
    if lock:
        await session.execute(
            sa.update(cases).where(cases.c.request_id == request_id).values(version=cases.c.version)
        )
    row = (await session.execute(query)).mappings().first()
    return AidCase.of(row) if row is not None else None


async def list_cases(
    session: AsyncSession,
    party: AidParty,
    *,
    statuses: list[AidRequestStatus] | None,
    after: str | None,
    limit: int,
) -> list[AidCase]:
    """Cases in request-id order after ``after`` (a keyset page)."""
    cases = party.aid.cases
    query = sa.select(cases).order_by(cases.c.request_id).limit(limit)
    if statuses:
        query = query.where(cases.c.status.in_([s.value for s in statuses]))
    if after is not None:
        query = query.where(cases.c.request_id > after)
    return [AidCase.of(row) for row in (await session.execute(query)).mappings()]


async def commit_units(session: AsyncSession, resources: Any, local_id: str, quantity: int) -> None:
    """Reserve ``quantity`` of a resource: ``available`` drops in this transaction, or refused.

    One conditional UPDATE: concurrent commits serialise on the row, and the one
    that would take ``available`` below zero matches nothing.
    """
    if quantity <= 0:
        raise AidQuantityInvalid(f"cannot commit {quantity} units", quantity=quantity, limit=1)
    result = await session.execute(
        sa.update(resources)
        .where(
            resources.id == local_id,
            resources.retired_at.is_(None),
            resources.available >= quantity,
        )
        .values(
            available=resources.available - quantity,
            version=resources.version + 1,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)
    if result.rowcount == 1:
        return
    row = (
        await session.execute(
            sa.select(resources.available, resources.retired_at).where(resources.id == local_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"no Resource {local_id} here", type="Resource")
    if row.retired_at is not None:
        raise AidRecordRetired(f"Resource {local_id} is retired", resourceId=local_id)
    raise AidAboveAvailable(
        f"{quantity} units asked, {row.available} available",
        quantity=quantity,
        available=row.available,
    )


async def release_units(
    session: AsyncSession, resources: Any, local_id: str, quantity: int, *, consumed: bool = False
) -> None:
    """Give reserved units back (``consumed``: they left the stock, so ``quantity`` drops)."""
    values: dict[str, Any] = {"version": resources.version + 1, "updated_at": utcnow()}
    if consumed:
        values["quantity"] = resources.quantity - quantity
    else:
        values["available"] = resources.available + quantity
    await session.execute(
        sa.update(resources)
        .where(resources.id == local_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


async def _record_message(
    session: AsyncSession, party: AidParty, step: AidStep, outcome: str
) -> None:
    await session.execute(
        sa.insert(party.aid.messages).values(
            message_id=str(step.message_id),
            request_id=step.request_id,
            kind=step.kind.value,
            outcome=outcome,
            received_at=utcnow(),
        )
    )


async def _send(session: AsyncSession, party: AidParty, step: AidStep) -> None:
    """Owe the hub ``step`` (it relays it to the other party); recorded as seen here."""
    await _record_message(session, party, step, "applied")
    await outbox.enqueue(
        session,
        party.outbox,
        message_id=str(step.message_id),
        kind=outbox.KIND_AID_STEP,
        subject_id=step.request_id,
        payload=step.model_dump(mode="json"),
    )


async def _store(
    session: AsyncSession,
    party: AidParty,
    case: AidCase,
    step: AidStep,
    after: AidRequestStatus,
    **changes: Any,
) -> AidCase:
    """Move the case to ``after`` with ``step`` in its history; the requester's record too."""
    cases = party.aid.cases
    now = utcnow()
    values = {
        "status": after.value,
        "steps": [*case.steps, step.history_entry()],
        "updated_at": now,
        "version": case.version + 1,
        **changes,
    }
    await session.execute(
        sa.update(cases).where(cases.c.request_id == case.request_id).values(**values)
    )
    if case.role is AidRole.REQUESTER:
        requests = party.requests
        local = GlobalId.parse(case.request_id).local
        record: dict[str, Any] = {"provider": changes["provider"]} if "provider" in changes else {}
        await session.execute(
            sa.update(requests)
            .where(requests.id == local)
            .values(status=after, version=requests.version + 1, updated_at=now, **record)
            .execution_options(synchronize_session=False)
        )
    updated = await load_case(session, party, case.request_id)
    assert updated is not None
    return updated


async def _apply(
    session: AsyncSession, party: AidParty, case: AidCase, step: AidStep, after: AidRequestStatus
) -> AidCase:
    """Apply a step that follows: the case, and at the provider the units it moves."""
    changes: dict[str, Any] = {}
    kind = step.kind
    if kind in (AidStepKind.OFFER, AidStepKind.ACCEPT):
        changes["offered"] = step.quantity
        if not case.provider and step.provider:  # an open request: its first offer binds
            changes["provider"] = step.provider
        if step.resource_id is not None:
            changes["resource_id"] = step.resource_id
        if step.volunteer_ids is not None:
            changes["volunteer_ids"] = step.volunteer_ids
    elif kind is AidStepKind.COMMIT:
        changes["committed"] = step.quantity
        if case.role is AidRole.REQUESTER and step.disclosure is not None:
            changes["disclosure"] = step.disclosure.model_dump(mode="json")
    elif kind is AidStepKind.RECEIVE:
        changes["received"] = step.quantity
    if case.role is AidRole.PROVIDER and case.resource_id is not None and case.committed > 0:
        local = _resource_local(party, case.resource_id)
        if releases(case.status, after, reusable=case.reusable):
            await release_units(session, party.resources, local, case.committed)
            changes["committed"] = 0
        elif consumes(after, reusable=case.reusable):
            await release_units(session, party.resources, local, case.committed, consumed=True)
    elif (
        case.role is AidRole.PROVIDER
        and case.for_volunteers
        and case.committed > 0
        and releases(case.status, after, reusable=True)
    ):
        await release_volunteers(session, party.aid.bookings, case.request_id)
        changes["committed"] = 0
    return await _store(session, party, case, step, after, **changes)


def _step(case: AidCase, kind: AidStepKind, sender: str, **fields: Any) -> AidStep:
    return AidStep(
        message_id=new_message_id(),
        kind=kind,
        request_id=case.request_id,
        requester=case.requester,
        provider=case.provider or None,
        sender=sender,
        resource_id=fields.pop("resource_id", case.resource_id),
        resource_kind=case.resource_kind,
        volunteer_ids=fields.pop("volunteer_ids", None),
        unit=case.unit,
        at=utcnow(),
        **fields,
    )


async def open_request(session: AsyncSession, party: AidParty, request: Any) -> AidCase:
    """The requester's case of a new AidRequest row, and its ``request`` step to the hub."""
    check_volunteer_request(
        request.resource_kind, request.quantity, request.skill, request.window_from,
        request.window_to,
    )  # fmt: skip
    if request.requester != party.org:
        raise Forbidden(
            f"this node requests for {party.org} only, not {request.requester}",
            reason="NOT_REQUESTER",
        )
    if request.provider == party.org:
        raise AidNotYourStep("a community cannot request aid from itself", step="request")
    if request.provider is None and request.resource_id is not None:
        raise AidNotOwner(
            "a request open to the district names no resource (the offer does)",
            resourceId=request.resource_id,
        )
    if request.resource_id is not None:
        try:
            parsed = GlobalId.parse(request.resource_id)
        except InvalidGlobalId as exc:
            raise AidNotOwner(str(exc), resourceId=request.resource_id) from exc
        if parsed.type != "Resource" or parsed.owner != request.provider:
            raise AidNotOwner(
                f"{request.resource_id} is not a resource of {request.provider}",
                resourceId=request.resource_id,
            )
    request_id = f"AidRequest:{party.org}:{request.id}"
    now = utcnow()
    step = AidStep(
        message_id=new_message_id(),
        kind=AidStepKind.REQUEST,
        request_id=request_id,
        requester=request.requester,
        provider=request.provider,
        sender=party.org,
        resource_id=request.resource_id,
        resource_kind=request.resource_kind,
        quantity=request.quantity,
        unit=request.unit,
        note=request.purpose,
        needed_by=request.needed_by,
        place=request.location,
        skill=request.skill,
        window_from=request.window_from,
        window_to=request.window_to,
        at=now,
    )
    await _insert_case(session, party, step, AidRole.REQUESTER)
    await _send(session, party, step)
    case = await load_case(session, party, request_id)
    assert case is not None
    return case


async def _insert_case(
    session: AsyncSession, party: AidParty, step: AidStep, role: AidRole
) -> None:
    now = utcnow()
    await session.execute(
        sa.insert(party.aid.cases).values(
            request_id=step.request_id,
            role=role.value,
            requester=step.requester,
            provider=step.provider or "",  # "": open to the district, until the first offer
            resource_id=step.resource_id,
            resource_kind=step.resource_kind,
            unit=step.unit,
            reusable=_reusable(step.resource_kind),
            requested=step.quantity or 0,
            offered=None,
            committed=0,
            received=None,
            status=AidRequestStatus.REQUESTED.value,
            disclosure=None,
            steps=[step.history_entry()],
            created_at=now,
            updated_at=now,
            version=1,
            skill=step.skill,
            window_from=step.window_from,
            window_to=step.window_to,
            volunteer_ids=None,
        )
    )


async def _check_offer(
    session: AsyncSession, party: AidParty, case: AidCase, resource_id: str | None, quantity: int
) -> str:
    """The offered resource's global id, if it is this node's, live and of the asked kind."""
    chosen = resource_id or case.resource_id
    if chosen is None:
        raise AidNotOwner("an offer names the resource it comes from", resourceId=None)
    local = _resource_local(party, chosen)
    resources = party.resources
    row = (
        await session.execute(
            sa.select(resources.kind, resources.available, resources.retired_at).where(
                resources.id == local
            )
        )
    ).first()
    if row is None:
        raise AidNotOwner(f"{chosen} is not a resource of {party.org}", resourceId=chosen)
    if row.retired_at is not None:
        raise AidRecordRetired(f"{chosen} is retired", resourceId=chosen)
    if row.kind != case.resource_kind:
        raise AidKindMismatch(
            f"{chosen} is {row.kind}, the request asks for {case.resource_kind}",
            kind=case.resource_kind,
            resourceKind=row.kind,
        )
    if quantity > row.available:
        raise AidAboveAvailable(
            f"{quantity} units offered, {row.available} available",
            quantity=quantity,
            available=row.available,
        )
    return chosen


def _check_quantity(case: AidCase, kind: AidStepKind, quantity: int | None) -> int | None:
    """The step's quantity, within what it may be; ``AID_QUANTITY_INVALID`` otherwise."""
    if kind in (AidStepKind.OFFER,):
        limit = case.requested
    elif kind is AidStepKind.RECEIVE:
        limit = case.committed
    else:
        return None if quantity is None else _refuse_quantity(quantity)
    if quantity is None or quantity <= 0 or quantity > limit:
        raise AidQuantityInvalid(
            f"the {kind.value} quantity must be between 1 and {limit}, not {quantity}",
            quantity=quantity,
            limit=limit,
        )
    return quantity


def _refuse_quantity(quantity: int) -> int:
    raise AidQuantityInvalid("this step takes no quantity", quantity=quantity, limit=0)


async def take_step(
    session: AsyncSession,
    party: AidParty,
    caller: Caller,
    *,
    request_id: str,
    kind: AidStepKind,
    quantity: int | None,
    resource_id: str | None,
    note: str,
    volunteer_ids: list[str] | None = None,
) -> AidCase:
    """A step this community's staff take; applied here and owed to the hub."""
    if kind not in STAFF_STEPS:
        raise AidStepOutOfOrder(
            f"{kind.value!r} is taken by the nodes themselves, not by hand",
            status="(any)",
            step=kind.value,
        )
    case = await load_case(session, party, request_id, lock=True)
    if case is None:
        raise NotFound(f"no aid request {request_id} at this node", type="AidRequest")
    scope = ROLE_SCOPES[case.role]
    if not caller.has_scope(scope):
        raise Forbidden(
            f"the {case.role.value}'s steps need the scope {scope!r}",
            reason="SCOPE_MISSING",
            scope=scope,
        )
    after = advance(case.status, kind, case.role)
    if case.for_volunteers:
        if kind is AidStepKind.IN_TRANSIT:
            raise AidStepOutOfOrder("volunteers are dispatched, then received: no in_transit",
                                    status=case.status.value, step=kind.value)  # fmt: skip
        if resource_id is not None:
            raise AidNotOwner("a request for volunteers names no resource", resourceId=resource_id)
        if kind is AidStepKind.OFFER:
            offered = volunteer_ids or []
            quantity = _check_quantity(case, kind, len(offered) if quantity is None else quantity)
            if quantity != len(offered):
                raise AidQuantityInvalid(
                    f"{len(offered)} volunteers named for {quantity}",
                    quantity=quantity,
                    limit=len(offered),
                )
            await _check_volunteers(session, party, case, offered, lock=False)
    if volunteer_ids is not None and not (case.for_volunteers and kind is AidStepKind.OFFER):
        raise AidNotOwner("only an offer of volunteers names volunteers", resourceId=None)
    if kind is AidStepKind.ACCEPT:
        quantity, volunteer_ids = case.offered, case.volunteer_ids
    elif not (case.for_volunteers and kind is AidStepKind.OFFER):
        quantity = _check_quantity(case, kind, quantity)
    if kind is AidStepKind.OFFER and not case.for_volunteers:
        assert quantity is not None
        resource_id = await _check_offer(session, party, case, resource_id, quantity)
    elif resource_id is not None and resource_id != case.resource_id:
        raise AidNotOwner("only an offer names a resource", resourceId=resource_id)
    step = _step(
        case,
        kind,
        party.org,
        resource_id=resource_id or case.resource_id,
        quantity=quantity,
        note=note,
        volunteer_ids=volunteer_ids,
    )
    updated = await _apply(session, party, case, step, after)
    await _send(session, party, step)
    return updated


async def _check_volunteers(
    session: AsyncSession, party: AidParty, case: AidCase, volunteer_ids: list[str], *, lock: bool
) -> list[Any]:
    """The offered volunteers, if each may be committed to the case (``book`` books them)."""
    assert case.skill is not None
    assert case.window_from is not None
    assert case.window_to is not None
    book = book_volunteers if lock else check_volunteers
    return await book(
        session,
        org=party.org,
        volunteers=party.volunteers,
        bookings=party.aid.bookings,
        request_id=case.request_id,
        volunteer_ids=volunteer_ids,
        skill=case.skill,
        window=(case.window_from, case.window_to),
    )


async def _commit(
    session: AsyncSession, party: AidParty, case: AidCase, accept: AidStep
) -> AidCase:
    """The provider's answer to ``accept``: reserve and disclose, or refuse with the reason."""
    quantity = accept.quantity or 0
    people: list[Any] = []
    local = ""
    try:
        if case.for_volunteers:  # writes nothing if refused
            people = await _check_volunteers(session, party, case, case.volunteer_ids or [],
                                             lock=True)  # fmt: skip
        else:
            assert case.resource_id is not None
            local = _resource_local(party, case.resource_id)
            await commit_units(session, party.resources, local, quantity)  # nothing if refused
    except AidError as exc:
        refusal = _step(case, AidStepKind.REFUSE, party.org, reason=exc.code, note=exc.message)
        refused = await _apply(session, party, case, refusal, AidRequestStatus.DECLINED)
        await _send(session, party, refusal)
        return refused
    except NotFound:
        refusal = _step(
            case, AidStepKind.REFUSE, party.org, reason="NOT_FOUND", note="the resource is gone"
        )
        refused = await _apply(session, party, case, refusal, AidRequestStatus.DECLINED)
        await _send(session, party, refusal)
        return refused
    disclosed: tuple[str, int, list[str], object]
    if case.for_volunteers:
        disclosure = AidDisclosure(contact=party.contact, people=people)
        disclosed = ("Volunteer", len(people), ["name", "phone", "contact"],
                     [p.volunteer_id for p in people])  # fmt: skip
    else:
        resources = party.resources
        address = (
            await session.execute(sa.select(resources.address).where(resources.id == local))
        ).scalar_one()
        disclosure = AidDisclosure(resource_id=case.resource_id, address=address,
                                   contact=party.contact)  # fmt: skip
        disclosed = ("Resource", 1, ["address", "contact"], case.resource_id)
    record_type, count, fields, record = disclosed
    commit = _step(case, AidStepKind.COMMIT, party.org, quantity=quantity, disclosure=disclosure,
                   volunteer_ids=case.volunteer_ids)  # fmt: skip
    committed = await _apply(session, party, case, commit, AidRequestStatus.COMMITTED)
    await append(
        session,
        party.audit_log,
        AuditEntry(
            action="disclose",
            owner=party.org,
            caller=Caller(
                org=case.requester,
                org_kind=OrgKind.COMMUNITY,
                scopes=frozenset({Scope.AID_REQUEST}),
                client_id="aid-commit",
                subject=case.requester,
            ),
            record_type=record_type,
            count=count,
            decision={
                "effect": "allow_exact",
                "fields": fields,
                "record": record,
                "request": case.request_id,
                "reason": "committed",
            },
            purpose=f"aid:{case.request_id}",
        ),
    )
    await _send(session, party, commit)
    return committed


async def receive_step(session: AsyncSession, party: AidParty, step: AidStep) -> Received:
    """A step of the other party, brought by the hub: applied once, never backwards."""
    if party.org not in (step.requester, step.provider) or step.sender == party.org:
        raise Forbidden(f"step {step.message_id} is not for {party.org}", reason="NOT_A_PARTY")
    case = await load_case(session, party, step.request_id, lock=True)  # before the check
    seen = await session.execute(
        sa.select(party.aid.messages.c.message_id).where(
            party.aid.messages.c.message_id == str(step.message_id)
        )
    )
    if seen.first() is not None:
        return Received("duplicate", case)
    if case is None:
        if step.kind is not AidStepKind.REQUEST:
            # Nothing to apply it to (a database restored from before the request): ignored,
            # so the hub's queue to this node moves on.
            await _record_message(session, party, step, "ignored")
            return Received("ignored", None)
        await _insert_case(session, party, step, AidRole.PROVIDER)
        await _record_message(session, party, step, "applied")
        return Received("applied", await load_case(session, party, step.request_id))
    try:
        after = advance(case.status, step.kind, step.role())
    except AidError:
        await _record_message(session, party, step, "ignored")
        return Received("ignored", case)
    await _record_message(session, party, step, "applied")
    applied = await _apply(session, party, case, step, after)
    if step.kind is AidStepKind.ACCEPT and case.role is AidRole.PROVIDER:
        applied = await _commit(session, party, applied, step)
    return Received("applied", applied)
