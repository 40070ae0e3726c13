"""Flags held by the hubs below: a city department lists and works them at its own hub.

A district hub's routing rules may assign a flag to a department of the city (by
severity, or on a missed deadline). The flag stays at the district hub, whose inbox,
workflow and outbox own it. The city hub answers for it through the federation: its
``flags`` field asks every hub source that serves ``flags`` (each answers with the
flags assigned to the caller's organisation) and merges their pages with its own;
``flag(id)`` and ``transitionFlag`` go to the hub that holds the flag (its area holds
the flag's community). Each call carries a token the city hub mints for that hub on
the caller's behalf (the act chain); no token passes through. A refusal of the hub
below (a stale version, a flag not assigned to the caller, a move the workflow does
not allow) reaches the caller with that hub's code; a hub below that does not answer
is ``SOURCE_UNAVAILABLE`` (or ``SOURCE_TIMEOUT``), and nothing is written anywhere.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from hub.federation.codec import DecodeError, decode
from hub.federation.context import HubContext
from hub.federation.cursor import FederatedPosition
from hub.federation.executor import Federation, SourceFailed, SourceReply
from hub.federation.registry import Source
from hub.federation.reports import SourceReport, SourceStatus
from hub.flags import service
from hub.flags.events import FLAG_EVENT_PREFIX, event_json, number_event, sequence_bounds
from hub.flags.tables import FlagEventRow, FlagRelayCursorRow, FlagRow
from hub.flags.webhooks import enqueue_event_deliveries
from policies.caller import Caller, is_superior_division
from schema.enums import OrgKind, RiskFlagStatus
from schema.errors import Forbidden, InvalidInput, LinliError, NotFound
from schema.ids import GlobalId, InvalidGlobalId
from schema.runtime.db import Database
from schema.runtime.wellknown import SourceKind
from schema.storage import utcnow

__all__ = [
    "FLAGS_CAPABILITY",
    "FLAG_ENVELOPE",
    "SUPERIOR_EVENTS_FIELD",
    "EventRelay",
    "RefusedBelow",
    "flag_below",
    "hubs_below",
    "list_flags",
    "superior_events",
    "transition_below",
]

log = logging.getLogger("linli.hub.flags")

FLAGS_CAPABILITY = "flags"
"""What a hub's ``/.well-known/linli-node`` lists when it answers ``flags`` for the hub above."""

FLAG_ENVELOPE = ("id", "receivedAt")
"""Asked of every hub below whatever the caller selected: the merge orders by them."""

# The codes of a hub below that reach the caller as they are: they say why the move or
# the read was refused, and the caller acts on them (reload, ask the assignee ...).
_PASSED_ON = frozenset(
    {"STALE_VERSION", "FORBIDDEN", "NOT_FOUND", "INVALID_TRANSITION", "INVALID_INPUT"}
)


class RefusedBelow(LinliError):
    """The hub below refused: its code and details, and ``source``, the hub that said so."""

    def __init__(self, report: SourceReport, refusal: dict[str, Any]) -> None:
        details = {k: v for k, v in refusal.items() if k not in ("code", "source")}
        super().__init__(f"hub {report.source}: {report.message}", **details, source=report.source)
        self._code = str(refusal["code"])

    @property
    def extensions(self) -> dict[str, Any]:
        return {"code": self._code, **self.details}


def hubs_below(context: HubContext) -> list[Source]:
    """The hub sources that answer ``flags`` (none at a district hub: its sources are nodes)."""
    return [
        s
        for s in context.federation.plan(FLAGS_CAPABILITY, None)
        if s.kind == SourceKind.HUB and s.described
    ]


def _failed(report: SourceReport) -> LinliError:
    """The error of a call that gave no answer: the hub below's own refusal, if it refused.

    A refusal passed on is the field's one error: the hub below answered, so its report
    says ``ok`` (no second error naming it).
    """
    refusal = report.refusal
    if refusal is not None and refusal.get("code") in _PASSED_ON:
        report.status = SourceStatus.OK
        return RefusedBelow(report, refusal)
    return SourceFailed(report)


def _owner_hub(context: HubContext, flag_id: str) -> Source | None:
    """The hub below whose area holds the flag's community, if any."""
    try:
        owner = GlobalId.parse(flag_id).owner
    except InvalidGlobalId:
        return None
    source = context.federation.owning_source(owner)
    if source is None or source.kind != SourceKind.HUB or not source.serves(FLAGS_CAPABILITY):
        return None
    return source


async def _one(
    context: HubContext,
    source: Source,
    document: str,
    variables: dict[str, Any],
    field_name: str,
    gql_type: Any,
    path: Sequence[str | int],
) -> Any:
    reply = await context.call_source(source.id, document, variables, field_name=field_name)
    if reply.payload is None:
        error = _failed(reply.report)
        context.add_reports([reply.report], path)
        raise error
    context.add_reports([reply.report], path)
    try:
        found = decode(gql_type, reply.payload)
    except DecodeError as exc:
        reply.report.status = SourceStatus.ERROR
        reply.report.message = f"answer does not fit the schema: {exc}"
        raise SourceFailed(reply.report) from exc
    reply.report.count = 1
    return found


async def flag_below(
    context: HubContext, flag_id: str, selection: str, gql_type: Any, path: Sequence[str | int]
) -> Any:
    """``flag(id)`` of the hub below that holds it; ``NotFound`` if no hub below may hold it."""
    source = _owner_hub(context, flag_id)
    if source is None:
        raise NotFound(f"no flag {flag_id}")
    document = f"query($id: ID!) {{ flag(id: $id) {selection} }}"
    return await _one(context, source, document, {"id": flag_id}, "flag", gql_type, path)


_TRANSITION = (
    "mutation($id: ID!, $to: RiskFlagStatus!, $v: Int!, $note: String) {{"
    " transitionFlag(id: $id, to: $to, expectedVersion: $v, note: $note) {selection} }}"
)


async def transition_below(
    context: HubContext,
    flag_id: str,
    *,
    to: RiskFlagStatus,
    note: str,
    expected_version: int,
    selection: str,
    gql_type: Any,
    path: Sequence[str | int],
) -> Any:
    """Move a flag the hub below holds, there, as the caller; ``NotFound`` if none may hold it.

    The hub below applies it through its own workflow and version check, and sends the
    node its update; this hub writes nothing. No retry: a move is not idempotent.
    """
    source = _owner_hub(context, flag_id)
    if source is None:
        raise NotFound(f"no flag {flag_id}")
    document = _TRANSITION.format(selection=selection)
    variables = {"id": flag_id, "to": to.name, "v": expected_version, "note": note}
    return await _one(context, source, document, variables, "transitionFlag", gql_type, path)


_LIST = (
    "query($status: RiskFlagStatus, $first: Int, $after: String) {{"
    " flags(status: $status, first: $first, after: $after) {{"
    " edges {{ cursor node {selection} }} pageInfo {{ hasNextPage endCursor }} }} }}"
)

_Key = tuple[datetime, str]


@dataclass
class _Stream:
    """One part's page in order: this hub's own rows or one hub's edges."""

    part: str
    items: list[tuple[_Key, str, Any]]  # (order key, the part's cursor, the object)
    has_next: bool


@dataclass(frozen=True)
class FlagsPage:
    edges: list[tuple[str, Any]]
    has_next: bool
    end_cursor: str | None


async def list_flags(
    context: HubContext,
    below: list[Source],
    *,
    local_part: str,
    status: RiskFlagStatus | None,
    size: int,
    after: str | None,
    selection: str,
    gql_type: Any,
    of_row: Callable[[FlagRow], Any],
    secret: bytes,
    path: Sequence[str | int],
) -> FlagsPage:
    """The caller's flags here and at the hubs ``below``, newest first, paged as one list.

    The cursor holds each part's own cursor (this hub's as ``local_part``); a part that
    has given everything is not asked again. Each hub below gets a report.
    """
    codec = context.federation.cursors
    query = f"flags:{status.value if status is not None else ''}"
    position = codec.decode(after, query) if after else FederatedPosition(query)
    streams: list[_Stream] = []
    if local_part not in position.done:
        async with context.db.sessions() as session:
            page, has_next = await service.list_flags(
                session,
                context.caller,
                status=status,
                first=size,
                after=position.after.get(local_part),
                secret=secret,
            )
        streams.append(
            _Stream(
                local_part,
                [((row.received_at, row.id), cursor, of_row(row)) for cursor, row in page],
                has_next,
            )
        )
    document = _LIST.format(selection=selection)
    deadline = time.monotonic() + context.federation.deadline_s
    asked = [s for s in below if s.id not in position.done]

    async def ask(source: Source) -> SourceReply:
        variables = {
            "status": status.name if status is not None else None,
            "first": size,
            "after": position.after.get(source.id),
        }
        return await context.federation.call(
            source, context.caller, document, variables, deadline, context.purpose,
            stale_key=None, field_name="flags",
        )  # fmt: skip

    reports: dict[str, SourceReport] = {}
    for source, reply in zip(asked, await asyncio.gather(*(ask(s) for s in asked)), strict=True):
        reports[source.id] = reply.report
        if reply.payload is None:
            continue
        try:
            streams.append(_remote_stream(source.id, reply.payload, gql_type))
        except (DecodeError, KeyError, TypeError, ValueError) as exc:
            reply.report.status = SourceStatus.ERROR
            reply.report.message = f"answer does not fit the schema: {exc!r}"
    state = position.copy()
    taken: dict[str, int] = {}
    edges: list[tuple[str, Any]] = []
    merged = heapq.merge(
        *([(key, stream, cursor, obj) for key, cursor, obj in stream.items] for stream in streams),
        key=lambda item: item[0],
        reverse=True,
    )
    for _key, stream, cursor, obj in merged:
        if len(edges) == size:
            break
        state.after[stream.part] = cursor
        taken[stream.part] = taken.get(stream.part, 0) + 1
        edges.append((codec.encode(state), obj))
    for stream in streams:
        if not stream.has_next and taken.get(stream.part, 0) == len(stream.items):
            state.done.add(stream.part)
    for source in below:
        report = reports.get(source.id) or SourceReport(source.id, SourceStatus.OK, 0.0)
        report.count = taken.get(source.id, 0)
        report.exhausted = source.id in state.done
        reports[source.id] = report
    context.add_reports([reports[s.id] for s in below], path)
    await context.federation.relay_audit(
        context.caller, "RiskFlag", [reports[s.id] for s in asked], context.purpose
    )
    has_next = any(s.part not in state.done for s in streams)
    end_cursor = codec.encode(state) if (edges or has_next) else None
    if edges and end_cursor is not None:
        edges[-1] = (end_cursor, edges[-1][1])
    return FlagsPage(edges, has_next, end_cursor)


def _remote_stream(part: str, payload: dict[str, Any], gql_type: Any) -> _Stream:
    items: list[tuple[_Key, str, Any]] = []
    for edge in payload["edges"]:
        node = edge["node"]
        at = datetime.fromisoformat(node["receivedAt"])
        if at.tzinfo is None:
            raise DecodeError(f"receivedAt {node['receivedAt'][:40]!r} has no time zone")
        items.append(((at, str(node["id"])), str(edge["cursor"]), decode(gql_type, node)))
    keys = [item[0] for item in items]
    if keys != sorted(keys, reverse=True):
        raise DecodeError("the flags are out of order")
    return _Stream(part, items, bool(payload["pageInfo"]["hasNextPage"]))


# --- events: the hub below's events of flags assigned to this hub's departments ------------

SUPERIOR_EVENTS_FIELD = "superiorFlagEvents"
MAX_EVENT_BATCH = 500


def superior_prefix(caller: Caller, district: str) -> str:
    """The division whose departments' flag events ``caller`` may read here: its own.

    Only a hub (``org_kind`` hub) of a division above ``district`` (this hub's), with
    ``risk:verify``: the city hub, in its own name, copying its departments' events.
    """
    if not (
        caller.org_kind is OrgKind.HUB
        and caller.has_scope(service.VERIFY_SCOPE)
        and caller.district is not None
        and is_superior_division(caller.district, district)
    ):
        raise Forbidden("only a hub of a division above this one reads its departments' events")
    return caller.district


async def superior_events(
    db: Database, caller: Caller, *, district: str, after: int, first: int
) -> tuple[list[FlagEventRow], int]:
    """Flag events after ``after`` of flags assigned (or once assigned) to a department of the
    calling superior hub's division, oldest first; and the last sequence number here."""
    prefix = superior_prefix(caller, district)
    if not 0 < first <= MAX_EVENT_BATCH:
        raise InvalidInput(
            f"first must be 1 to {MAX_EVENT_BATCH}", code="INVALID_PAGE_SIZE", field="first"
        )
    async with db.sessions() as session:
        last, _ = await sequence_bounds(session)
        rows = (
            await session.execute(
                select(FlagEventRow)
                .where(
                    col(FlagEventRow.seq) > after,
                    col(FlagEventRow.seq) <= last,
                    col(FlagEventRow.type).startswith(FLAG_EVENT_PREFIX),
                    sa.or_(
                        col(FlagEventRow.assigned_to).startswith(prefix),
                        col(FlagEventRow.previous_assignee).startswith(prefix),
                    ),
                )
                .order_by(col(FlagEventRow.seq))
                .limit(first)
            )
        ).scalars()
        return list(rows), last


_EVENTS = (
    "query($after: Int!, $first: Int!) {"
    f" {SUPERIOR_EVENTS_FIELD}(after: $after, first: $first) {{ lastSeq events {{"
    " seq type flagId status community assignedTo previousAssignee at timeline { hop at } } } }"
)


def _copied(raw: dict[str, Any]) -> tuple[int, FlagEventRow]:
    """(the seq below, a copy to number here) of one event the hub below sent."""
    at = datetime.fromisoformat(raw["at"])
    timeline = {str(h["hop"]): datetime.fromisoformat(h["at"]) for h in raw["timeline"]}
    if at.tzinfo is None or any(t.tzinfo is None for t in timeline.values()):
        raise DecodeError("a time without a time zone")
    event = FlagEventRow(
        seq=0,
        type=str(raw["type"])[:40],
        flag_id=str(raw["flagId"])[:200],
        status=RiskFlagStatus[str(raw["status"])].value,
        community=str(raw["community"])[:64],
        assigned_to=None if raw["assignedTo"] is None else str(raw["assignedTo"])[:64],
        previous_assignee=(
            None if raw["previousAssignee"] is None else str(raw["previousAssignee"])[:64]
        ),
        at=at,
        timeline=timeline,
    )
    if not event.type.startswith(FLAG_EVENT_PREFIX):
        raise DecodeError(f"{event.type!r} is not a flag event")
    return int(raw["seq"]), event


class EventRelay:
    """Copies, into this hub's event log, the hubs below's events of its departments' flags.

    Subscribers (``flagEvents``) and webhooks of this hub's departments then get them as
    they get this hub's own (``enqueue_event_deliveries``). Each round asks every hub
    below that serves ``flags`` for its events after the stored cursor, as this hub
    (a token it mints for itself, ``hub_caller``); the copies and the cursor commit
    together, and a cursor moved meanwhile (another replica) rolls the round back.
    """

    def __init__(
        self, db: Database, federation: Federation, caller: Caller, *, batch: int = 200
    ) -> None:
        self.db = db
        self.federation = federation
        self.caller = caller
        self.batch = batch

    def sources(self) -> list[Source]:
        return [
            s
            for s in self.federation.plan(FLAGS_CAPABILITY, None)
            if s.kind == SourceKind.HUB and s.described
        ]

    async def relay_once(self) -> int:
        """One round over the hubs below; how many events were copied."""
        copied = 0
        for source in self.sources():
            try:
                copied += await self._relay(source)
            except (DecodeError, KeyError, TypeError, ValueError) as exc:
                log.warning("flag events of %s do not fit the schema: %r", source.id, exc)
            except IntegrityError:
                pass  # another replica copied them first: the next round goes on from there
        return copied

    async def _relay(self, source: Source) -> int:
        async with self.db.sessions() as session:
            stored = await session.get(FlagRelayCursorRow, source.id)
            cursor = stored.last_seq if stored is not None else 0
        reply = await self.federation.call(
            source, self.caller, _EVENTS, {"after": cursor, "first": self.batch},
            time.monotonic() + self.federation.deadline_s, None,
            stale_key=None, field_name=SUPERIOR_EVENTS_FIELD,
        )  # fmt: skip
        if reply.payload is None:
            return 0  # down or refusing: its health and breaker say so; the next round retries
        events = [_copied(raw) for raw in reply.payload["events"]]
        if not events:
            return 0
        now = utcnow()
        async with self.db.transaction() as session:
            moved = await session.execute(
                sa.update(FlagRelayCursorRow)
                .where(
                    col(FlagRelayCursorRow.source) == source.id,
                    col(FlagRelayCursorRow.last_seq) == cursor,
                )
                .values(last_seq=events[-1][0], updated_at=now)
                .execution_options(synchronize_session=False)
            )
            if getattr(moved, "rowcount", 0) != 1:
                if cursor != 0:
                    raise IntegrityError("moved meanwhile", None, ValueError())
                session.add(
                    FlagRelayCursorRow(source=source.id, last_seq=events[-1][0], updated_at=now)
                )
            for seq, event in events:
                if seq <= cursor:
                    raise DecodeError("an event at or before the cursor")
                await number_event(session, event)
                await enqueue_event_deliveries(session, event, event_json(event))
        return len(events)
