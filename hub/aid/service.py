"""The district's relay of aid steps: check, apply once, record, pass on to the other party.

A node delivers each step it takes to ``POST /aid/inbox`` (through its outbox). The hub
checks that the sender is that party with its scope, applies the step to its own copy of
the case with the same state machine as the nodes (``schema.aid.advance``), numbers an
event for ``aidEvents`` subscribers, and owes the other party's node the step through the
node outbox (``/aid/steps``), all in one transaction. A message id is processed once; a
step that no longer follows (a commit that crossed a cancel) is ``ignored`` everywhere.
The disclosure of a commit is passed on to the requester, never kept in the hub's history.

A request open to the district is passed on to the owners its match found (``receive_step``,
``aid_notified`` remembers each), and is matched again while it stays open: each pass
(``due_for_rematch``, then ``rematch``) notifies only owners not asked before, exactly as
the first time (one ``aid.request`` event each, the request through the node outbox).
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from hub.aid.events import aid_event_json
from hub.aid.tables import (
    AID_SEQUENCE,
    AidCaseRow,
    AidEventRow,
    AidInboxMessageRow,
    AidMatchingRow,
    AidNotifiedRow,
)
from hub.flags.events import announce, next_sequence
from hub.flags.outbox import AID_STEPS_PATH, enqueue_node_message
from hub.flags.webhooks import enqueue_event
from policies.caller import Caller
from schema.aid import (
    OPEN,
    TAKEN,
    AidError,
    AidNotOwner,
    AidNotYourStep,
    AidRole,
    AidStep,
    AidStepKind,
    advance,
)
from schema.enums import AidRequestStatus, OrgKind
from schema.errors import Forbidden, InvalidInput
from schema.scopes import Scope

__all__ = [
    "MATCH_SCOPES",
    "ROLE_SCOPES",
    "AidDistrictFigures",
    "DueMatch",
    "Received",
    "counted_cases",
    "district_figures",
    "due_for_rematch",
    "matching_caller",
    "parse_step",
    "receive_step",
    "rematch",
    "shown_steps",
    "visible_cases",
    "visible_events",
]

ROLE_SCOPES = {AidRole.REQUESTER: Scope.AID_REQUEST, AidRole.PROVIDER: Scope.AID_RESPOND}
MATCH_SCOPES = frozenset({Scope.RESOURCES_READ, Scope.VOLUNTEERS_READ, Scope.AID_REQUEST})
"""What the requester's match reads the district with: no more than matching needs."""


@dataclass(frozen=True, slots=True)
class Received:
    """``applied`` (the case moved), ``ignored`` (no longer follows) or ``duplicate``."""

    status: Literal["applied", "ignored", "duplicate"]
    request_id: str
    case: AidCaseRow | None = None
    hops: dict[str, datetime] | None = None  # the hop times this step set (metrics)


def parse_step(body: Any) -> AidStep:
    """The step in an inbox body; ``InvalidInput`` naming the first bad field."""
    if isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "sent_at"}
    try:
        return AidStep.model_validate(body)
    except ValidationError as exc:
        raise InvalidInput.from_validation(exc) from exc


def _unknown_request(request_id: str) -> InvalidInput:
    """Unknown, or not the sender's to answer: the same refusal, so that a community never
    asked learns nothing of a request, not even that it exists. Permanent (HTTP 400):
    retrying cannot help, and the node's queue must move on."""
    return InvalidInput(
        f"no aid request {request_id} at the hub", code="AID_UNKNOWN_REQUEST", field="request_id"
    )


def check_sender(step: AidStep, caller: Caller) -> AidRole:
    """The sender's role, if ``caller`` is that party's community with the role's scope."""
    if caller.org_kind is not OrgKind.COMMUNITY or caller.org != step.sender:
        raise Forbidden(f"only {step.sender}'s own node may send its steps", reason="NOT_SENDER")
    if step.sender not in (step.requester, step.provider):
        raise AidNotYourStep(f"{step.sender} is not a party of {step.request_id}",
                             step=step.kind.value, role="none")  # fmt: skip
    if step.requester == step.provider:
        raise AidNotYourStep("a community cannot request aid from itself", step=step.kind.value,
                             role="requester")  # fmt: skip
    role = step.role()
    scope = ROLE_SCOPES[role]
    if not caller.has_scope(scope):
        raise Forbidden(
            f"the {role.value}'s steps need the scope {scope!r}",
            reason="SCOPE_MISSING",
            scope=scope,
        )
    if role is AidRole.REQUESTER and not step.request_id.startswith(
        f"AidRequest:{step.requester}:"
    ):
        raise Forbidden("a request id names its requester", reason="NOT_SENDER")
    for volunteer_id in step.volunteer_ids or ():
        if not volunteer_id.startswith(f"Volunteer:{step.provider}:"):
            raise AidNotOwner(f"{volunteer_id} is not a volunteer of {step.provider}",
                              resourceId=volunteer_id)  # fmt: skip
    return role


async def _seen(session: AsyncSession, message_id: str) -> bool:
    return await session.get(AidInboxMessageRow, message_id) is not None


def matching_caller(
    requester: str, *, org_kind: OrgKind, client_id: str, subject: str, district: str | None
) -> Caller:
    """The requester's client as the hub reads the district to match its open request.

    The first match and every later pass read as this caller, so the owners' policies show
    each pass what they showed the first, and nothing more.
    """
    return Caller(
        org=requester,
        org_kind=org_kind,
        scopes=MATCH_SCOPES,
        client_id=client_id,
        subject=subject,
        district=district,
    )


async def notified_owners(session: AsyncSession, request_id: str) -> list[str]:
    """The owners an open request was passed on to, first asked first."""
    rows = await session.execute(
        select(AidNotifiedRow.owner)
        .where(col(AidNotifiedRow.request_id) == request_id)
        .order_by(col(AidNotifiedRow.notified_at), col(AidNotifiedRow.owner))
    )
    return list(rows.scalars())


async def _notify_owners(
    session: AsyncSession, step: AidStep, owners: Sequence[str], *, now: datetime
) -> None:
    """Pass an open request on to ``owners``, each as if addressed to it; remember them.

    One ``aid.request`` event (subscription, webhook) and one node message each. An owner
    already asked makes the insert fail (``IntegrityError``): the transaction is dropped.
    """
    for owner in owners:
        session.add(AidNotifiedRow(request_id=step.request_id, owner=owner, notified_at=now))
    await session.flush()
    for owner in owners:
        await _record_event(session, step, AidRequestStatus.REQUESTED, provider=owner, now=now)
    await _pass_on(session, step, nodes=owners, now=now)


def _matching_until(step: AidStep) -> datetime | None:
    """When matching an open request stops: its needed-by time, or the end of its window."""
    ends = [at for at in (step.needed_by, step.window_to) if at is not None]
    return min(ends) if ends else None


async def _lock_case(session: AsyncSession, request_id: str) -> None:
    """A write that changes nothing locks the case first (the row on PostgreSQL, the database
    on SQLite, whose plain reads hold no snapshot), so two writers never act on one status."""
    await session.execute(
        sa.update(AidCaseRow)
        .where(col(AidCaseRow.request_id) == request_id)
        .values(updated_at=col(AidCaseRow.updated_at))
        .execution_options(synchronize_session=False)
    )


def _copy_id(message_id: str, owner: str) -> str:
    """The id of one owner's copy of a hub-made or fanned-out step (stable under retries)."""
    return str(uuid.uuid5(uuid.UUID(message_id), owner))


async def _open_case_step(
    session: AsyncSession, case: AidCaseRow, step: AidStep, role: AidRole
) -> Literal["apply", "ignore"]:
    """Whether a step on a request still open to the district (no provider yet) applies.

    An owner's first offer binds it as the provider; an owner's decline closes only its own
    copy (ignored here: others may still offer); a step of a community that was not
    notified is refused.
    """
    if role is AidRole.REQUESTER:
        return "apply"
    owners = await notified_owners(session, case.request_id)
    if step.provider not in owners:
        raise _unknown_request(case.request_id)  # a stranger learns nothing of the request
    return "apply" if step.kind is AidStepKind.OFFER else "ignore"


async def _pass_on(
    session: AsyncSession,
    step: AidStep,
    *,
    nodes: Sequence[str],
    now: datetime,
    **changes: Any,
) -> None:
    """Owe each of ``nodes`` its own copy of ``step`` addressed to it (an open request)."""
    for node in nodes:
        copy = step.model_copy(
            update={
                "message_id": uuid.UUID(_copy_id(str(step.message_id), node)),
                "provider": node,
                **changes,
            }
        )
        await enqueue_node_message(
            session,
            node=node,
            message_id=str(copy.message_id),
            subject_id=step.request_id,
            path=AID_STEPS_PATH,
            payload=copy.model_dump(mode="json"),
            now=now,
        )


async def receive_step(
    session: AsyncSession,
    step: AidStep,
    caller: Caller,
    *,
    now: datetime,
    owners: Sequence[str] = (),
    rematch_at: datetime | None = None,
) -> Received:
    """Apply one step from a party's node, once; pass it on to the other party. Flushes.

    ``owners``: for a request open to the district (no provider), the owners of the
    matching resources, in the dispatcher's order; each gets the request as its own.
    ``rematch_at``: when such a request is first matched again (None: never).
    A provider's decline of a request still open makes its next match due now.
    """
    role = check_sender(step, caller)
    message_id = str(step.message_id)
    await _lock_case(session, step.request_id)
    if await _seen(session, message_id):
        return Received("duplicate", step.request_id)
    case = await session.get(AidCaseRow, step.request_id, populate_existing=True)
    if case is None and step.kind is not AidStepKind.REQUEST:
        raise _unknown_request(step.request_id)
    current = AidRequestStatus(case.status) if case is not None else None
    is_open = case is not None and not case.provider
    # Another notified owner's offer (or decline) that crossed the AID_TAKEN cancel is
    # ignored below; a community that was never asked is refused.
    if (
        case is not None
        and not is_open
        and step.provider != case.provider
        and step.provider not in await notified_owners(session, step.request_id)
    ):
        raise _unknown_request(step.request_id)  # a stranger learns nothing of the request
    if case is not None and (
        (is_open and await _open_case_step(session, case, step, role) == "ignore")
        or (not is_open and step.provider != case.provider)
    ):
        session.add(AidInboxMessageRow(message_id=message_id, request_id=step.request_id,
                                       outcome="ignored", received_at=now))  # fmt: skip
        if is_open and step.kind is AidStepKind.DECLINE:
            await _rematch_now(session, step.request_id, now=now)
        await session.flush()
        return Received("ignored", step.request_id, case)
    try:
        after = advance(current, step.kind, role)
    except AidError:
        if step.kind is AidStepKind.REQUEST:
            raise
        session.add(AidInboxMessageRow(message_id=message_id, request_id=step.request_id,
                                       outcome="ignored", received_at=now))  # fmt: skip
        await session.flush()
        return Received("ignored", step.request_id, case)
    hops: dict[str, datetime] = {}
    if case is None:
        case = AidCaseRow(
            request_id=step.request_id,
            requester=step.requester,
            provider=step.provider or "",  # "": open to the district until the first offer
            resource_id=step.resource_id,
            resource_kind=step.resource_kind,
            unit=step.unit,
            requested=step.quantity or 0,
            skill=step.skill,
            window_from=step.window_from,
            window_to=step.window_to,
            status=after.value,
            steps=[],
            requested_at=step.at,
            updated_at=now,
        )
        session.add(case)
    case.status = after.value
    case.steps = [*case.steps, step.history_entry()]
    case.updated_at = now
    others: list[str] = []
    if is_open and step.kind is AidStepKind.OFFER:
        assert step.provider is not None
        case.provider = step.provider
        others = [o for o in await notified_owners(session, step.request_id) if o != step.provider]
    if step.kind is AidStepKind.OFFER:
        case.resource_id = step.resource_id or case.resource_id
        if step.volunteer_ids is not None:
            case.volunteer_ids = list(step.volunteer_ids)
        if case.first_offer_at is None:
            case.first_offer_at = hops["first_offer"] = step.at
    elif step.kind is AidStepKind.COMMIT:
        case.committed = step.quantity or 0
        case.committed_at = hops["committed"] = step.at
    elif step.kind is AidStepKind.RECEIVE:
        case.received = step.quantity
        case.received_at = hops["received"] = step.at
    session.add(AidInboxMessageRow(message_id=message_id, request_id=step.request_id,
                                   outcome="applied", received_at=now))  # fmt: skip
    if step.kind is AidStepKind.REQUEST and step.provider is None:
        # Open to the district: each matching owner is notified as if it were addressed.
        await _notify_owners(session, step, owners, now=now)
        if rematch_at is not None:
            session.add(
                AidMatchingRow(
                    request_id=step.request_id,
                    org_kind=caller.org_kind.value,
                    client_id=caller.client_id,
                    subject=caller.subject,
                    district=caller.district,
                    until=_matching_until(step),
                    due_at=rematch_at,
                )
            )
    elif is_open and step.kind is AidStepKind.CANCEL:
        owners_asked = await notified_owners(session, step.request_id)
        await _record_event(session, step, after, provider=case.provider, now=now)
        await _pass_on(session, step, nodes=owners_asked, now=now)
    else:
        assert case.provider
        await _record_event(session, step, after, provider=case.provider, now=now)
        other = case.provider if role is AidRole.REQUESTER else step.requester
        await enqueue_node_message(
            session,
            node=other,
            message_id=message_id,  # the node drops repeats by the step's own id
            subject_id=step.request_id,
            path=AID_STEPS_PATH,
            payload=step.model_dump(mode="json"),
            now=now,
        )
    if others:  # the request is taken: the other owners' copies are cancelled
        taken = step.model_copy(
            update={"kind": AidStepKind.CANCEL, "sender": step.requester, "reason": TAKEN,
                    "note": "answered by another community", "quantity": None,
                    "resource_id": None}
        )  # fmt: skip
        await _pass_on(session, taken, nodes=others, now=now)
    await announce(session)
    await session.flush()
    return Received("applied", step.request_id, case, hops)


async def _record_event(
    session: AsyncSession, step: AidStep, after: AidRequestStatus, *, provider: str, now: datetime
) -> None:
    """Number one event of ``step`` for ``aidEvents``, and queue the parties' webhooks."""
    seq = await next_sequence(session, AID_SEQUENCE)
    event = AidEventRow(
        seq=seq,
        type=f"aid.{step.kind.value}",
        request_id=step.request_id,
        status=after.value,
        requester=step.requester,
        provider=provider,
        resource_kind=step.resource_kind,
        quantity=step.quantity,
        at=now,
    )
    session.add(event)
    await session.flush()
    await enqueue_event(  # the parties' signed webhooks, but the sender's own
        session,
        orgs={step.requester, provider} - {step.sender, ""},
        seq=seq,
        type=event.type,
        subject_id=step.request_id,
        data=aid_event_json(event),
        at=now,
    )


@dataclass(frozen=True, slots=True)
class DueMatch:
    """An open request whose next match is due: its request step, and who matches it."""

    request_id: str
    step: AidStep
    caller: Caller


async def _rematch_now(session: AsyncSession, request_id: str, *, now: datetime) -> None:
    await session.execute(
        sa.update(AidMatchingRow)
        .where(col(AidMatchingRow.request_id) == request_id)
        .values(due_at=now)
        .execution_options(synchronize_session=False)
    )


def _still_open() -> sa.ColumnElement[bool]:
    """A case open to the district: no provider bound, not cancelled."""
    return sa.and_(
        col(AidCaseRow.provider) == "", col(AidCaseRow.status) == AidRequestStatus.REQUESTED.value
    )


async def due_for_rematch(
    session: AsyncSession, *, now: datetime, limit: int, interval_s: float
) -> list[DueMatch]:
    """Claim up to ``limit`` open requests whose match is due, longest waiting first. Flushes.

    Each claimed request is next due ``interval_s`` from now (another replica's pass skips
    it meanwhile). Requests taken, cancelled or past their needed-by time stop being matched.
    """
    closed = select(AidCaseRow.request_id).where(sa.not_(_still_open()))
    await session.execute(
        sa.delete(AidMatchingRow)
        .where(
            sa.or_(
                col(AidMatchingRow.request_id).in_(closed),
                col(AidMatchingRow.until) <= now,
            )
        )
        .execution_options(synchronize_session=False)
    )
    rows = (
        await session.execute(
            select(AidMatchingRow, AidCaseRow)
            .join(AidCaseRow, col(AidCaseRow.request_id) == col(AidMatchingRow.request_id))
            .where(col(AidMatchingRow.due_at) <= now)
            .order_by(col(AidMatchingRow.due_at), col(AidMatchingRow.request_id))
            .limit(limit)
        )
    ).all()
    due: list[DueMatch] = []
    for matching, case in rows:
        matching.due_at = now + timedelta(seconds=interval_s)
        matching.passes += 1
        caller = matching_caller(
            case.requester,
            org_kind=OrgKind(matching.org_kind),
            client_id=matching.client_id,
            subject=matching.subject,
            district=matching.district,
        )
        due.append(DueMatch(case.request_id, AidStep.model_validate(case.steps[0]), caller))
    await session.flush()
    return due


async def rematch(
    session: AsyncSession, request_id: str, owners: Sequence[str], *, now: datetime, limit: int
) -> list[str]:
    """Pass a request still open on to up to ``limit`` of ``owners`` not asked before. Flushes.

    ``owners``: what its match found just now, best first. Returns the owners notified.
    """
    await _lock_case(session, request_id)
    case = await session.get(AidCaseRow, request_id, populate_existing=True)
    if case is None or case.provider or case.status != AidRequestStatus.REQUESTED.value:
        return []  # taken or cancelled since the pass claimed it
    step = AidStep.model_validate(case.steps[0])
    until = _matching_until(step)
    if until is not None and until <= now:
        return []
    asked = set(await notified_owners(session, request_id))
    new = [owner for owner in dict.fromkeys(owners) if owner not in asked][:limit]
    if new:
        await _notify_owners(session, step, new, now=now)
        await announce(session)
    return new


def _of_district(caller: Caller, requester: Any) -> sa.ColumnElement[bool]:
    """Requests of the caller's own county (a community code begins with its GB/T 2260 code).

    A department of another county, or of a city or province above (``superior``: aggregates
    only, ``aidDistrict``), sees no case.
    """
    district = caller.district or ""
    if len(district) != 6 or not district.isdigit() or district.endswith("00"):
        return sa.false()
    return sa.func.substr(requester, 1, 6) == district


def counted_cases(caller: Caller) -> sa.ColumnElement[bool]:
    """Cases ``aidDistrict`` counts for the caller: its county's, or under its city or
    province (``superior``: aggregates); admin, all; anyone else, none."""
    if caller.has_scope(Scope.ADMIN):
        return sa.true()
    district = caller.district or ""
    if len(district) != 6 or not district.isdigit():
        return sa.false()
    prefix = district[:2] if district.endswith("0000") else district.removesuffix("00")
    requester = col(AidCaseRow.requester)
    return sa.func.substr(requester, 1, len(prefix)) == prefix


PARTY_FIELDS = ("place", "note")
"""What only the parties see of a step at the hub: where it is needed, the purpose and notes.

The hub relays them without the requester's policy for ``AidRequest`` (location exact,
description); a department reads them from the requester's node, as that policy allows.
"""


def shown_steps(case: AidCaseRow, caller: Caller) -> list[dict[str, Any]]:
    """The case's history as ``caller`` may see it: in full to a party, else without
    ``PARTY_FIELDS``."""
    if caller.org_kind is OrgKind.COMMUNITY and caller.org in (case.requester, case.provider):
        return list(case.steps)
    return [{k: v for k, v in step.items() if k not in PARTY_FIELDS} for step in case.steps]


def visible_cases(caller: Caller) -> sa.ColumnElement[bool]:
    """Cases the caller may see: its own as a party; a department of the district, the
    district's; admin, all."""
    if caller.has_scope(Scope.ADMIN):
        return sa.true()
    if caller.org_kind in (OrgKind.DEPARTMENT, OrgKind.HUB):
        return _of_district(caller, col(AidCaseRow.requester))
    if caller.org_kind is OrgKind.COMMUNITY:
        return sa.or_(
            col(AidCaseRow.requester) == caller.org, col(AidCaseRow.provider) == caller.org
        )
    return sa.false()


def visible_events(caller: Caller) -> sa.ColumnElement[bool]:
    """Events the caller may see, as ``visible_cases``."""
    if caller.has_scope(Scope.ADMIN):
        return sa.true()
    if caller.org_kind in (OrgKind.DEPARTMENT, OrgKind.HUB):
        return _of_district(caller, col(AidEventRow.requester))
    if caller.org_kind is OrgKind.COMMUNITY:
        return sa.or_(
            col(AidEventRow.requester) == caller.org, col(AidEventRow.provider) == caller.org
        )
    return sa.false()


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (nearest rank) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True, slots=True)
class OpenNeed:
    area: str
    resource_kind: str
    requests: int
    quantity: int


@dataclass(frozen=True, slots=True)
class AidDistrictFigures:
    """The district view: what is open where, what is unmet, and how fast requests move."""

    open_needs: list[OpenNeed]  # by requester (area) and kind
    unmet: list[OpenNeed]  # by kind, area "*": not committed yet
    to_first_offer_s: tuple[float | None, float | None]  # p50, p90
    to_commit_s: tuple[float | None, float | None]
    to_receipt_s: tuple[float | None, float | None]
    cases: int


async def district_figures(
    session: AsyncSession, caller: Caller, *, limit: int
) -> AidDistrictFigures:
    """The district view over the newest ``limit`` requests the caller may count."""
    rows = list(
        (
            await session.execute(
                select(AidCaseRow)
                .where(counted_cases(caller))
                .order_by(col(AidCaseRow.requested_at).desc())
                .limit(limit)
            )
        ).scalars()
    )
    by_area: dict[tuple[str, str], list[int]] = defaultdict(list)
    by_kind: dict[str, list[int]] = defaultdict(list)
    offer: list[float] = []
    commit: list[float] = []
    receipt: list[float] = []
    for row in rows:
        if AidRequestStatus(row.status) in OPEN:
            by_area[(row.requester, row.resource_kind)].append(row.requested)
            by_kind[row.resource_kind].append(row.requested)
        for hop, into in (
            (row.first_offer_at, offer),
            (row.committed_at, commit),
            (row.received_at, receipt),
        ):
            if hop is not None:
                into.append((hop - row.requested_at).total_seconds())

    def needs(groups: dict[Any, list[int]], area: Any) -> list[OpenNeed]:
        return [
            OpenNeed(area(key), key[1] if isinstance(key, tuple) else key, len(q), sum(q))
            for key, q in sorted(groups.items())
        ]

    return AidDistrictFigures(
        open_needs=needs(by_area, lambda key: key[0]),
        unmet=needs(by_kind, lambda key: "*"),
        to_first_offer_s=(percentile(offer, 0.5), percentile(offer, 0.9)),
        to_commit_s=(percentile(commit, 0.5), percentile(commit, 0.9)),
        to_receipt_s=(percentile(receipt, 0.5), percentile(receipt, 0.9)),
        cases=len(rows),
    )


__all__ += ["OpenNeed", "percentile"]
