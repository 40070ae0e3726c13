"""The risk-flag workflow at the hub: receive, route, move, escalate (services flush only).

    raised ─▶ routed ─▶ acknowledged ─▶ verifying ─┬▶ confirmed ─▶ resolved
               ▲   │                               └▶ dismissed ─▶ resolved
               └───┘ escalated (deadline passed, not acknowledged)

Only the department a flag is assigned to, with scope ``risk:verify``, moves it.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from hub.flags.errors import InvalidTransition
from hub.flags.events import ADMIN_SCOPE, FlagEvents, FlagEventType
from hub.flags.metrics import HOPS
from hub.flags.routing import RoutingRules
from hub.flags.tables import FlagRow, FlagStep, InboxMessageRow, timeline_of
from policies.caller import Caller
from schema.api.pagination import RecordOrder, decode_cursor, encode_cursor, page_size
from schema.enums import OrgKind, RiskFlagStatus
from schema.errors import Forbidden, InvalidInput, NotFound, StaleVersion
from schema.ids import GlobalId, InvalidGlobalId
from schema.records import FlagSource, FlagTransition, RiskFlagCreate, SensorReading
from schema.scopes import Scope

__all__ = [
    "ALLOWED",
    "CLEARED_HOP",
    "FLAG_SCOPE",
    "VERIFY_SCOPE",
    "ClearedMessage",
    "HopLag",
    "InboxMessage",
    "Received",
    "due_for_escalation",
    "escalate_flag",
    "flag_lag",
    "get_visible_flag",
    "list_flags",
    "mark_delivered",
    "note_condition_cleared",
    "parse_cleared_message",
    "parse_inbox_message",
    "receive_flag",
    "timeline_of",
    "transition_flag",
]

FLAG_SCOPE = Scope.RISK_FLAG
VERIFY_SCOPE = Scope.RISK_VERIFY
READ_SCOPE = Scope.RISK_READ  # read-only: people's viewer role, the wall screen

S = RiskFlagStatus
ALLOWED: dict[RiskFlagStatus, frozenset[RiskFlagStatus]] = {
    S.ROUTED: frozenset({S.ACKNOWLEDGED}),
    S.ACKNOWLEDGED: frozenset({S.VERIFYING}),
    S.VERIFYING: frozenset({S.CONFIRMED, S.DISMISSED}),
    S.CONFIRMED: frozenset({S.RESOLVED}),
    S.DISMISSED: frozenset({S.RESOLVED}),
}
"""The moves a department may make, from each status."""


class InboxMessage(BaseModel):
    """``POST /flags/inbox``: a community node tells the hub about a new flag."""

    model_config = ConfigDict(extra="ignore")

    message_id: uuid.UUID
    kind: Literal["flag.raised"]
    flag: dict[str, Any]
    raised_at: AwareDatetime
    sent_at: AwareDatetime


CLEARED_HOP = "condition_cleared"
MAX_EVIDENCE = 50
MAX_NODE_STEPS = 200
"""The most steps a node's new flag may carry (it sends one: RAISED)."""


class ClearedMessage(BaseModel):
    """``POST /flags/inbox``: the condition behind a flag a sensor raised has ended.

    The flag keeps its status (only its department resolves it); its timeline
    gets the ``condition_cleared`` hop at the event time the condition ended,
    and a ``flag.condition_cleared`` event tells the department.
    """

    model_config = ConfigDict(extra="ignore")

    message_id: uuid.UUID
    kind: Literal["flag.cleared"]
    flag_id: str
    cleared_at: AwareDatetime
    note: str = ""
    sent_at: AwareDatetime


class _NodeFacts(BaseModel):
    """What a flag carries besides its content: a sensor's source and evidence, and the
    node's steps (its RAISED step names the person who raised it, if a person did)."""

    model_config = ConfigDict(extra="ignore")

    source: FlagSource | None = None
    evidence: list[SensorReading] = []
    transitions: list[FlagTransition] = Field(default=[], max_length=MAX_NODE_STEPS)

    @property
    def raised_by(self) -> str | None:
        """The person who raised the flag at the node (None: a machine client or a sensor)."""
        raised = [t for t in self.transitions if t.status is S.RAISED]
        return raised[0].person if raised else None


@dataclass(frozen=True, slots=True)
class Received:
    """What the inbox did with a message: ``accepted`` or ``duplicate``, and the flag's hops."""

    status: Literal["accepted", "duplicate"]
    flag_id: str
    flag: FlagRow | None = None
    hops: dict[str, datetime] | None = None


def parse_inbox_message(body: Any, caller: Caller) -> tuple[InboxMessage, RiskFlagCreate, str]:
    """The message, the flag's content and its id; raises ``InvalidInput`` or ``Forbidden``."""
    if not caller.has_scope(FLAG_SCOPE):
        raise Forbidden(f"sending flags needs the scope {FLAG_SCOPE!r}", scope=FLAG_SCOPE)
    try:
        message = InboxMessage.model_validate(body)
    except ValidationError as exc:
        raise InvalidInput.from_validation(exc) from exc
    flag = message.flag
    raw_id, owner = flag.get("id"), flag.get("owner")
    if not isinstance(raw_id, str) or not isinstance(owner, str):
        field = "flag.id" if not isinstance(raw_id, str) else "flag.owner"
        raise InvalidInput(f"{field}: Field required", code="MISSING_FIELD", field=field)
    try:
        global_id = GlobalId.parse(raw_id)
    except InvalidGlobalId as exc:
        raise InvalidInput(str(exc), code="INVALID_ID", field="flag.id") from exc
    if global_id.type != "RiskFlag" or global_id.owner != owner:
        raise InvalidInput(
            "flag.id must be RiskFlag:<owner>:<local> of the flag's owner",
            code="INVALID_ID",
            field="flag.id",
        )
    if caller.org != owner:
        raise Forbidden(
            f"organisation {caller.org} may not send flags owned by {owner}", owner=owner
        )
    content = {name: flag[name] for name in RiskFlagCreate.model_fields if name in flag}
    try:
        created = RiskFlagCreate.model_validate(content)
    except ValidationError as exc:
        raise InvalidInput.from_validation(exc, prefix="flag") from exc
    return message, created, raw_id


def _step(
    status: RiskFlagStatus,
    at: datetime,
    *,
    org: str,
    client_id: str,
    note: str = "",
    person: str | None = None,
) -> FlagStep:
    return FlagStep(
        status=status, at=at, by=org, org=org, client_id=client_id, note=note, person=person
    )


async def receive_flag(
    session: AsyncSession,
    *,
    message: InboxMessage,
    content: RiskFlagCreate,
    flag_id: str,
    caller: Caller,
    routing: RoutingRules,
    events: FlagEvents,
    hub_id: str,
    now: datetime,
) -> Received:
    """Store a new flag once (by message id and by flag id), then route it. Flushes."""
    if await session.get(InboxMessageRow, str(message.message_id)) is not None:
        return Received("duplicate", flag_id)
    if await session.get(FlagRow, flag_id) is not None:
        return Received("duplicate", flag_id)
    community = caller.org
    raised_at = message.raised_at
    timeline = {"raised_at_node": raised_at, "received_at_hub": now}
    version = message.flag.get("version")
    try:
        facts = _NodeFacts.model_validate(message.flag)
    except ValidationError as exc:
        raise InvalidInput.from_validation(exc, prefix="flag") from exc
    row = FlagRow(
        id=flag_id,
        community=community,
        category=content.category,
        description=content.description,
        location=content.location,
        address=content.address,
        severity=content.estimated_severity.value,
        evidence_links=[str(link) for link in content.evidence_links],
        source=facts.source,
        evidence=facts.evidence[-MAX_EVIDENCE:],
        status=S.RAISED.value,
        transitions=[
            _step(
                S.RAISED,
                raised_at,
                org=community,
                client_id=caller.client_id,
                person=facts.raised_by,
            )
        ],
        timeline=timeline,
        node_version=version if isinstance(version, int) and version > 0 else 1,
        raised_at=raised_at,
        received_at=now,
        updated_at=now,
    )
    session.add(
        InboxMessageRow(message_id=str(message.message_id), flag_id=flag_id, received_at=now)
    )
    session.add(row)
    await session.flush()
    await events.append(session, type=FlagEventType.RAISED, flag=row, at=now, timeline=timeline)
    route = routing.route(content.category, community, content.estimated_severity.value)
    row.status = S.ROUTED.value
    row.assigned_to = route.department
    row.escalate_to = route.escalate_to
    row.ack_deadline_s = route.ack_deadline_s
    row.deadline_at = now + timedelta(seconds=route.ack_deadline_s)
    row.timeline = {**timeline, "routed": now}
    row.transitions = [
        *row.transitions,
        _step(
            S.ROUTED,
            now,
            org=hub_id,
            client_id=hub_id,
            note=f"to {route.department} by {route.rule}",
        ),
    ]
    await session.flush()
    await events.append(session, type=FlagEventType.ROUTED, flag=row, at=now, timeline=row.timeline)
    return Received("accepted", flag_id, row, row.timeline)


def parse_cleared_message(body: Any, caller: Caller) -> ClearedMessage:
    """The message; ``InvalidInput`` or ``Forbidden`` (a flag of another community)."""
    if not caller.has_scope(FLAG_SCOPE):
        raise Forbidden(f"sending flags needs the scope {FLAG_SCOPE!r}", scope=FLAG_SCOPE)
    try:
        message = ClearedMessage.model_validate(body)
    except ValidationError as exc:
        raise InvalidInput.from_validation(exc) from exc
    try:
        global_id = GlobalId.parse(message.flag_id)
    except InvalidGlobalId as exc:
        raise InvalidInput(str(exc), code="INVALID_ID", field="flag_id") from exc
    if global_id.type != "RiskFlag":
        raise InvalidInput("flag_id must name a RiskFlag", code="INVALID_ID", field="flag_id")
    if caller.org != global_id.owner:
        raise Forbidden(
            f"organisation {caller.org} may not report on flags owned by {global_id.owner}",
            owner=global_id.owner,
        )
    return message


async def note_condition_cleared(
    session: AsyncSession,
    *,
    message: ClearedMessage,
    events: FlagEvents,
    now: datetime,
) -> Received:
    """Record once (by message id) that a flag's condition ended; its status stays. Flushes."""
    flag_id = message.flag_id
    if await session.get(InboxMessageRow, str(message.message_id)) is not None:
        return Received("duplicate", flag_id)
    row = await session.get(FlagRow, flag_id, populate_existing=True)
    if row is None:
        # The node sends a flag's raising before its clearing, in order: an unknown flag
        # was refused here (or is not this hub's). A 4xx the node marks failed, rather
        # than a retry that would hold up the flags behind it.
        raise InvalidInput(f"no flag {flag_id} at this hub", code="UNKNOWN_FLAG", field="flag_id")
    session.add(
        InboxMessageRow(message_id=str(message.message_id), flag_id=flag_id, received_at=now)
    )
    timeline = {**row.timeline, CLEARED_HOP: message.cleared_at}
    values = {"timeline": timeline, "updated_at": now}
    if not await _conditional_update(session, flag_id, row.version, [], values):
        raise StaleVersion(
            "the flag changed meanwhile; send the message again",
            currentVersion=row.version + 1,
        )
    await session.refresh(row)
    await events.append(
        session, type=FlagEventType.CONDITION_CLEARED, flag=row, at=now, timeline=timeline
    )
    return Received("accepted", flag_id, row, {CLEARED_HOP: message.cleared_at})


async def _conditional_update(
    session: AsyncSession, flag_id: str, version: int, where: list[Any], values: dict[str, Any]
) -> bool:
    result = await session.execute(
        sa.update(FlagRow)
        .where(col(FlagRow.id) == flag_id, col(FlagRow.version) == version, *where)
        .values(**values, version=version + 1)
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


async def transition_flag(
    session: AsyncSession,
    *,
    caller: Caller,
    flag_id: str,
    to: RiskFlagStatus,
    note: str,
    expected_version: int,
    now: datetime,
    events: FlagEvents,
) -> tuple[FlagRow, dict[str, datetime]]:
    """Move a flag one allowed step as its assigned department; records who, when and why.

    The event's listeners write what the move owes in this transaction (a node
    update; a service request when a flag of an Open311 route is confirmed).
    """
    row = await session.get(FlagRow, flag_id, populate_existing=True)
    if row is None:
        raise NotFound(f"no flag {flag_id}")
    if not (
        caller.org_kind is OrgKind.DEPARTMENT
        and caller.has_scope(VERIFY_SCOPE)
        and caller.org == row.assigned_to
    ):
        raise Forbidden(
            f"only the assigned department ({row.assigned_to}) with scope {VERIFY_SCOPE!r} "
            "may move this flag"
        )
    if row.version != expected_version:
        raise StaleVersion(
            f"the flag is at version {row.version}, not {expected_version}",
            expectedVersion=expected_version,
            currentVersion=row.version,
        )
    current = RiskFlagStatus(row.status)
    if to not in ALLOWED.get(current, frozenset()):
        raise InvalidTransition(
            f"a flag cannot move from {current.value} to {to.value}",
            **{"from": current.value, "to": to.value},
        )
    hops = {to.value: now}
    timeline = {**row.timeline, **hops}
    values = {
        "status": to.value,
        "transitions": [
            *row.transitions,
            _step(
                to, now, org=caller.org, client_id=caller.client_id, note=note, person=caller.person
            ),
        ],
        "timeline": timeline,
        "updated_at": now,
        "deadline_at": None,  # acknowledged: nothing left to escalate
    }
    if not await _conditional_update(session, flag_id, expected_version, [], values):
        raise StaleVersion(
            "the flag changed meanwhile",
            expectedVersion=expected_version,
            currentVersion=expected_version + 1,
        )
    await session.refresh(row)
    await events.append(
        session, type=FlagEventType.STATUS_CHANGED, flag=row, at=now, timeline=timeline
    )
    return row, hops


async def due_for_escalation(
    session: AsyncSession, *, now: datetime, limit: int = 100
) -> list[str]:
    """Ids of routed flags past their acknowledgement deadline, oldest deadline first."""
    rows = await session.execute(
        select(FlagRow.id)
        .where(col(FlagRow.status) == S.ROUTED.value, col(FlagRow.deadline_at) <= now)
        .order_by(col(FlagRow.deadline_at))
        .limit(limit)
    )
    return list(rows.scalars())


async def escalate_flag(
    session: AsyncSession,
    flag_id: str,
    *,
    now: datetime,
    duty_desk: str,
    hub_id: str,
    events: FlagEvents,
) -> tuple[FlagRow, dict[str, datetime]] | None:
    """Reassign one overdue flag to its escalation target (one flag per transaction). Flushes."""
    row = await session.get(FlagRow, flag_id, populate_existing=True)
    if (
        row is None
        or row.status != S.ROUTED.value
        or row.deadline_at is None
        or row.deadline_at > now
    ):
        return None
    previous = row.assigned_to
    target = row.escalate_to or duty_desk
    level = row.escalation_level + 1
    hop = "escalated" if level == 1 else f"escalated_{level}"
    timeline = {**row.timeline, hop: now}
    note = (
        f"escalated to {target} (level {level}): not acknowledged by {previous} "
        f"within {row.ack_deadline_s} s"
    )
    values = {
        "assigned_to": target,
        "escalate_to": duty_desk,
        "escalation_level": level,
        "deadline_at": now + timedelta(seconds=row.ack_deadline_s),
        "timeline": timeline,
        "transitions": [
            *row.transitions,
            _step(S.ROUTED, now, org=hub_id, client_id=hub_id, note=note),
        ],
        "updated_at": now,
    }
    where = [col(FlagRow.status) == S.ROUTED.value]
    if not await _conditional_update(session, row.id, row.version, where, values):
        return None  # acknowledged (or escalated by another replica) meanwhile
    await session.refresh(row)
    await events.append(
        session,
        type=FlagEventType.ESCALATED,
        flag=row,
        at=now,
        timeline=timeline,
        previous_assignee=previous,
    )
    return row, {hop: now}


async def mark_delivered(
    session: AsyncSession, *, flag_id: str, department: str, now: datetime
) -> FlagRow | None:
    """Record the first delivery of a flag to its assigned department (subscriber or webhook)."""
    result = await session.execute(
        sa.update(FlagRow)
        .where(
            col(FlagRow.id) == flag_id,
            col(FlagRow.assigned_to) == department,
            col(FlagRow.delivered_at).is_(None),
        )
        .values(delivered_at=now)
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)
    if result.rowcount != 1:
        return None
    return await session.get(FlagRow, flag_id, populate_existing=True)


def _visible_flags(caller: Caller) -> sa.ColumnElement[bool]:
    if not ({FLAG_SCOPE, VERIFY_SCOPE, READ_SCOPE, ADMIN_SCOPE} & caller.scopes):
        raise Forbidden("reading flags needs the scope risk:read, risk:flag, risk:verify or admin")
    if caller.has_scope(ADMIN_SCOPE):
        return sa.true()
    if caller.org_kind is OrgKind.DEPARTMENT:
        return col(FlagRow.assigned_to) == caller.org
    if caller.org_kind is OrgKind.COMMUNITY:
        return col(FlagRow.community) == caller.org
    return sa.false()


async def get_visible_flag(session: AsyncSession, caller: Caller, flag_id: str) -> FlagRow:
    """The flag if the caller may see it, else ``NotFound``."""
    row = (
        await session.execute(
            select(FlagRow).where(col(FlagRow.id) == flag_id, _visible_flags(caller))
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no flag {flag_id}")
    return row


_ORDER = RecordOrder.CREATED_DESC


async def list_flags(
    session: AsyncSession,
    caller: Caller,
    *,
    status: RiskFlagStatus | None,
    first: int | None,
    after: str | None,
    secret: bytes,
) -> tuple[list[tuple[str, FlagRow]], bool]:
    """A page of the caller's flags, newest first, with cursors; and whether more follow."""
    size = page_size(first)
    query = select(FlagRow).where(_visible_flags(caller))
    if status is not None:
        query = query.where(col(FlagRow.status) == status.value)
    if after is not None:
        key, last_id = decode_cursor(after, _ORDER, secret=secret)
        query = query.where(
            sa.or_(
                col(FlagRow.received_at) < key,
                sa.and_(col(FlagRow.received_at) == key, col(FlagRow.id) < last_id),
            )
        )
    query = query.order_by(col(FlagRow.received_at).desc(), col(FlagRow.id).desc())
    rows = list((await session.execute(query.limit(size + 1))).scalars())
    page = rows[:size]
    cursors = [encode_cursor(_ORDER, r.received_at, r.id, secret=secret) for r in page]
    return list(zip(cursors, page, strict=True)), len(rows) > size


@dataclass(frozen=True, slots=True)
class HopLag:
    """Percentiles of the time from raising to one hop, over the flags asked about."""

    hop: str
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    count: int


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))  # nearest rank
    return round(ordered[rank - 1], 1)


async def flag_lag(
    session: AsyncSession, caller: Caller, *, since: datetime | None, department: str | None
) -> list[HopLag]:
    """Lag per hop (ms from ``raised_at_node``) of flags received since ``since``."""
    if not caller.has_scope(ADMIN_SCOPE):
        if not (caller.org_kind is OrgKind.DEPARTMENT and caller.has_scope(VERIFY_SCOPE)):
            raise Forbidden("flag lag is for departments (risk:verify) and admin")
        if department not in (None, caller.org):
            raise Forbidden("a department sees the lag of its own flags only")
        department = caller.org
    query = select(FlagRow)
    if since is not None:
        if since.tzinfo is None:
            raise InvalidInput("since needs a time zone", code="INVALID_DATETIME", field="since")
        query = query.where(col(FlagRow.received_at) >= since)
    if department is not None:
        query = query.where(col(FlagRow.assigned_to) == department)
    samples: dict[str, list[float]] = {}
    for row in (await session.execute(query)).scalars():
        for hop, at in timeline_of(row).items():
            name = "escalated" if hop.startswith("escalated") else hop
            lag_ms = max(0.0, (at - row.raised_at).total_seconds() * 1000)
            samples.setdefault(name, []).append(lag_ms)
    return [
        HopLag(
            hop,
            _percentile(samples[hop], 0.5),
            _percentile(samples[hop], 0.9),
            _percentile(samples[hop], 0.99),
            len(samples[hop]),
        )
        for hop in HOPS
        if hop in samples
    ]
