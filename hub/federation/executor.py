"""Plan, fan out, merge: one federated page from every source that can answer."""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import json
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from hub.federation.client import SourceClient
from hub.federation.codec import DecodeError, decode
from hub.federation.cursor import CursorCodec, FederatedPosition
from hub.federation.errors import (
    CallerTimeout,
    CircuitOpen,
    SourceBusy,
    SourceDenied,
    SourceError,
    SourceNotFound,
    SourceRefused,
    SourceTimeout,
    SourceUnavailable,
    SourceUrlNotAllowed,
)
from hub.federation.registry import Registry, Source
from hub.federation.reports import SourceReport, SourceStatus, nested_sources
from hub.federation.stale import StaleStore
from policies.caller import Caller
from policies.purposes import PURPOSE_UNKNOWN
from policies.tokens import ActorChainTooLong
from schema.api.pagination import RecordOrder
from schema.errors import LinliError, NotFound
from schema.geo import BBox, distance_km
from schema.ids import GlobalId, InvalidGlobalId
from schema.records import REGISTRY
from schema.runtime.wellknown import SourceKind
from schema.storage import utcnow
from schema.store.specs import RecordSpec

__all__ = [
    "FederatedPage",
    "FederatedRecord",
    "Federation",
    "PageRequest",
    "RelayAudit",
    "SourceFailed",
    "SourceReply",
    "TokenMinter",
]

TokenMinter = Callable[[Caller, str], Awaitable[str]]
"""Mints a token for one source (``aud`` = the source) on behalf of a caller."""


class RelayAudit(Protocol):
    """Records what the hub passed on to ``caller`` of other organisations' records."""

    def __call__(
        self,
        caller: Caller,
        record_type: str,
        reports: Sequence[SourceReport],
        purpose: str | None,
    ) -> Awaitable[None]: ...


# Minted source tokens live 60 s; reuse each for at most half of that.
TOKEN_REUSE_S = 30.0

# Slow-changing data whose last good answer is served while a source is down.
STALE_TYPES = frozenset(name for name, r in REGISTRY.items() if r.served_stale)

# Statuses after which the source counts as healthy: it answered.
_ANSWERED = frozenset({SourceStatus.DENIED, SourceStatus.NOT_FOUND})


@dataclass(frozen=True)
class PageRequest:
    """What a caller asks of one federated list field."""

    caller: Caller
    where: dict[str, Any] | None
    first: int
    after: str | None
    order: RecordOrder
    selection: str  # the GraphQL selection of each node, ``{ id ... }``
    purpose: str | None
    audited: bool = True  # whether the relay is written to the audit log


@dataclass(frozen=True)
class SourceReply:
    """One call to one source: its payload (``None`` if it failed) and its report."""

    payload: dict[str, Any] | None
    report: SourceReport


@dataclass(frozen=True)
class FederatedPage:
    """One federated page: edges (cursor, object), whether more follow, each source's report."""

    edges: list[tuple[str, Any]]
    has_next: bool
    end_cursor: str | None
    reports: list[SourceReport]


@dataclass(frozen=True)
class FederatedRecord:
    """``node(id)``: the record and the report of the source that holds it."""

    record: Any
    report: SourceReport


@dataclass
class _Answer:
    source: Source
    report: SourceReport
    edges: list[Any]  # the source's edges as received: ``{cursor, node}`` objects, in order
    has_next: bool
    type_name: str
    failed: bool = False  # a record did not fit: the source's later records are not used

    def fail(self, why: str) -> None:
        """Mark the source's answer as not fitting the schema, from this record on."""
        self.failed = True
        self.report.status = SourceStatus.ERROR
        self.report.message = f"answer does not fit the schema: {why}"


class Federation:
    """The federation executor: plans a query, fans it out to the sources, merges the pages.

    At most ``max_inflight_per_source`` calls are in flight to one source; the others
    wait for a slot. A call still waiting at its deadline, or cut short by it, ends as
    the caller's timeout (``CallerTimeout``) and is no verdict on the source: one
    caller's burst cannot open the circuit every caller shares.
    """

    def __init__(
        self,
        registry: Registry,
        client: SourceClient,
        mint: TokenMinter,
        stale: StaleStore,
        cursors: CursorCodec,
        *,
        relay_audit: RelayAudit,
        timeout_s: float,
        deadline_s: float,
        max_inflight_per_source: int = 8,
    ) -> None:
        self.registry = registry
        self.client = client
        self.mint = mint
        self.stale = stale
        self.cursors = cursors
        self.relay_audit = relay_audit
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s
        self._tokens: dict[tuple[Any, ...], tuple[str, float]] = {}
        self.max_inflight_per_source = max_inflight_per_source
        self._slots: dict[str, asyncio.Semaphore] = {}

    async def _token(self, caller: Caller, source_id: str) -> str:
        # A minted token serves the same caller and source until shortly before it expires.
        key = (caller.client_id, caller.token_id, caller.org, caller.scopes, source_id)
        now = time.monotonic()
        cached = self._tokens.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        token = await self.mint(caller, source_id)
        if len(self._tokens) > 10_000:
            self._tokens.clear()
        self._tokens[key] = (token, now + TOKEN_REUSE_S)
        return token

    def plan(self, capability: str, where: dict[str, Any] | None) -> list[Source]:
        """The sources that can hold matching records."""
        chosen = []
        for source in self.registry.sources.values():
            if not source.usable or not source.serves(capability):
                continue
            if source.bbox is not None and where and not _area_overlaps(source.bbox, where):
                continue
            chosen.append(source)
        return chosen

    async def list_page(self, spec: RecordSpec, request: PageRequest) -> FederatedPage:
        """One page of ``spec``'s list field across sources, merged on the requested order."""
        field_name, type_name = spec.field_name, spec.type_name
        filter_type = spec.filter_input.__strawberry_definition__.name
        caller, where, order = request.caller, request.where, request.order
        query_digest = _digest([field_name, order.value, where])
        position = (
            self.cursors.decode(request.after, query_digest)
            if request.after
            else FederatedPosition(query_digest)
        )
        planned = self.plan(field_name, where)
        sources = [s for s in planned if s.id not in position.done]
        document = (
            f"query($where: {filter_type}, $first: Int, $after: String, $order: RecordOrder!) {{ "
            f"{field_name}(where: $where, first: $first, after: $after, orderBy: $order) {{ "
            f"edges {{ cursor node {request.selection} }} "
            f"pageInfo {{ hasNextPage endCursor }} }} }}"
        )
        deadline = time.monotonic() + self.deadline_s

        async def ask(source: Source) -> _Answer | SourceReport:
            variables = {
                "where": where,
                "first": request.first,
                "after": position.after.get(source.id),
                "order": order.name,
            }
            signature = _digest(
                [caller.org, sorted(caller.scopes), request.purpose, document, variables]
            )
            reply = await self.call(
                source, caller, document, variables, deadline, request.purpose,
                stale_key=signature if type_name in STALE_TYPES else None,
                field_name=field_name,
            )  # fmt: skip
            if reply.payload is None:
                return reply.report
            return _answer(source, reply.payload, type_name, reply.report)

        outcomes = await asyncio.gather(*(ask(s) for s in sources))
        answers = [o for o in outcomes if isinstance(o, _Answer)]
        page = self._merge(answers, position, request.first, order, spec.gql_type)
        reports = _page_reports(planned, position.done, outcomes, page)
        if request.audited:
            await self.relay_audit(caller, type_name, reports, request.purpose)
        return FederatedPage(page.edges, page.has_next, page.end_cursor, reports)

    async def gather(
        self, field_name: str, document: str, caller: Caller, purpose: str | None
    ) -> list[SourceReply]:
        """``document`` (one root field, no paging) asked of every source that serves it."""
        deadline = time.monotonic() + self.deadline_s
        return list(
            await asyncio.gather(
                *(
                    self.call(
                        source,
                        caller,
                        document,
                        {},
                        deadline,
                        purpose,
                        stale_key=None,
                        field_name=field_name,
                    )
                    for source in self.plan(field_name, None)
                )
            )
        )

    async def call(
        self,
        source: Source,
        caller: Caller,
        document: str,
        variables: dict[str, Any],
        deadline: float,
        purpose: str | None,
        *,
        stale_key: str | None,
        field_name: str,
    ) -> SourceReply:
        """One call to one source, bounded, with its report; no retry (mutations)."""
        started = time.perf_counter()
        report = SourceReport(source=source.id, status=SourceStatus.OK, ms=0.0)
        payload: dict[str, Any] | None = None
        try:
            payload, report.sources = await self._ask(
                source, caller, document, variables, deadline, purpose, field_name
            )
            if stale_key is not None:
                self.stale.put(source.id, stale_key, payload, utcnow())
        except SourceError as exc:
            report.status, report.message = exc.status, exc.message
            report.refusal = exc.refusal
            if stale_key is not None and exc.status not in _ANSWERED:
                kept = await self.stale.get(source.id, stale_key)
                if kept is not None:
                    payload, report.as_of = kept
                    report.status = SourceStatus.STALE
                    report.message = f"{exc.message}; served the answer of {kept[1].isoformat()}"
        report.ms = round((time.perf_counter() - started) * 1000, 1)
        return SourceReply(payload, report)

    async def _ask(
        self,
        source: Source,
        caller: Caller,
        document: str,
        variables: dict[str, Any],
        deadline: float,
        purpose: str | None,
        field_name: str,
    ) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
        """``data[field_name]`` of one call, through the source's slots and breaker.

        With it, what a hub source said of its own sources for the field (else ``None``).
        """
        if not source.described:
            raise SourceUnavailable(
                "not described yet: the hub has not read its /.well-known/linli-node"
            )
        slots = self._slots.get(source.id)
        if slots is None:
            slots = self._slots[source.id] = asyncio.Semaphore(self.max_inflight_per_source)
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                await slots.acquire()
        except TimeoutError:
            raise CallerTimeout(
                f"the deadline passed while waiting for one of the"
                f" {self.max_inflight_per_source} call slots of the source"
            ) from None
        try:
            return await self._ask_now(
                source, caller, document, variables, deadline, purpose, field_name
            )
        finally:
            slots.release()

    async def _ask_now(
        self,
        source: Source,
        caller: Caller,
        document: str,
        variables: dict[str, Any],
        deadline: float,
        purpose: str | None,
        field_name: str,
    ) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
        budget = min(self.timeout_s, deadline - time.monotonic())
        if budget <= 0:
            raise CallerTimeout("the overall deadline had passed")
        try:
            token = await self._token(caller, source.id)
        except ActorChainTooLong as exc:  # the hub will not act for this caller: no call
            raise SourceDenied(f"{exc.message} ({exc.reason})") from None
        if not source.breaker.allow():
            raise CircuitOpen("circuit open after repeated failures")  # not a failure: refused
        try:
            body = await self.client.graphql(
                source.url, document, variables, token=token, timeout_s=budget, purpose=purpose
            )
            payload = _field(body, field_name)
            nested = (
                nested_sources(body.get("extensions"), [field_name], body.get("errors"))
                if source.kind == SourceKind.HUB
                else None
            )
        except SourceUrlNotAllowed:
            source.breaker.abandoned()  # the hub refused to call: no verdict on the source
            raise
        except SourceTimeout:
            if budget < self.timeout_s:  # cut short by the caller's deadline: no verdict
                source.breaker.abandoned()
                raise CallerTimeout(
                    f"no answer within the {budget:.2f} s left of the caller's deadline"
                ) from None
            source.breaker.failed()
            raise
        except SourceError as exc:
            if exc.status in _ANSWERED or isinstance(exc, SourceRefused):
                source.breaker.succeeded()  # the source answered; it is healthy
            else:
                source.breaker.failed()
            raise
        except BaseException:
            source.breaker.abandoned()  # cancelled: no verdict, but never hold the probe slot
            raise
        source.breaker.succeeded()
        return payload, nested

    def _merge(
        self,
        answers: list[_Answer],
        position: FederatedPosition,
        first: int,
        order: RecordOrder,
        gql_type: Any,
    ) -> _Page:
        # Each source's page is already in the requested order: a k-way merge pulls only
        # the records it returns, and one more per source to compare. Only those are
        # parsed for their sort key and checked; only the returned ones are decoded.
        key_field = "createdAt" if order.column == "created_at" else "updatedAt"
        state = position.copy()
        taken_from: dict[str, int] = {}
        returned: dict[str, int] = {}
        seen: set[str] = set()
        edges: list[tuple[str, Any]] = []
        merged = heapq.merge(
            *(_ordered(answer, key_field, order.descending) for answer in answers),
            key=_sort_key,
            reverse=order.descending,
        )
        for (_, record_id), answer, cursor, raw in merged:
            if len(edges) == first:
                break
            if answer.failed:
                continue
            source_id = answer.source.id
            state.after[source_id] = cursor
            taken_from[source_id] = taken_from.get(source_id, 0) + 1
            if record_id in seen:  # the same record through two sources
                continue
            seen.add(record_id)
            # Objects are built only for the records returned (measured ~3 µs a field).
            try:
                obj = decode(gql_type, raw)
            except DecodeError as exc:
                answer.fail(str(exc))
                continue
            edges.append((self.cursors.encode(state), obj))
            returned[source_id] = returned.get(source_id, 0) + 1
        for answer in answers:
            exhausted = taken_from.get(answer.source.id, 0) == len(answer.edges)
            if not answer.has_next and exhausted and not answer.failed:
                state.done.add(answer.source.id)
        pending = [a for a in answers if a.source.id not in state.done]
        has_next = bool(pending)
        end_cursor = self.cursors.encode(state) if (edges or has_next) else None
        if edges and end_cursor is not None:
            edges[-1] = (end_cursor, edges[-1][1])
        return _Page(edges, has_next, end_cursor, returned, frozenset(state.done))

    def owning_source(self, owner: str) -> Source | None:
        """The source that answers for the records of ``owner`` (a global id's owner part)."""
        return (
            self.registry.sources.get(owner)
            or next(
                (s for s in self.registry.sources.values() if s.division_code == owner),
                None,
            )
            or next(  # a hub below: its area holds the owner (hierarchical federation)
                (
                    s
                    for s in self.registry.sources.values()
                    if s.kind == SourceKind.HUB and _area_holds(s.division_code, owner)
                ),
                None,
            )
        )

    async def get(
        self, global_id: str, caller: Caller, selection: str, gql_type: Any, purpose: str | None
    ) -> FederatedRecord:
        """``node(id)``, asked of the owning source only."""
        parsed = GlobalId.parse(global_id)
        source = self.owning_source(parsed.owner)
        if source is None:
            raise NotFound(f"no source holds {global_id}")
        document = (
            f"query($id: ID!) {{ node(id: $id) {{ __typename ... on {parsed.type} {selection} }} }}"
        )
        reply = await self.call(
            source, caller, document, {"id": global_id}, time.monotonic() + self.deadline_s,
            purpose, stale_key=None, field_name="node",
        )  # fmt: skip
        report = reply.report
        if reply.payload is None:
            if report.status is SourceStatus.NOT_FOUND:
                raise NotFound(f"no record {global_id}")
            raise SourceFailed(report)
        try:
            found = decode(gql_type, reply.payload)
        except DecodeError as exc:
            report.status = SourceStatus.ERROR
            report.message = f"answer does not fit the schema: {exc}"
            raise SourceFailed(report) from exc
        report.count = 1
        await self.relay_audit(caller, parsed.type, [report], purpose)
        return FederatedRecord(found, report)


class SourceFailed(LinliError):
    """The one source that could answer did not (``node(id)``); ``report`` says how."""

    def __init__(self, report: SourceReport) -> None:
        super().__init__(f"source {report.source}: {report.message}", source=report.source)
        self.report = report
        self._code = report.error_code or "SOURCE_ERROR"

    @property
    def extensions(self) -> dict[str, Any]:
        return {"code": self._code, **self.details}


@dataclass(frozen=True)
class _Page:
    edges: list[tuple[str, Any]]
    has_next: bool
    end_cursor: str | None
    returned: dict[str, int]  # source id: how many of its records the page holds
    done: frozenset[str]  # the sources a later page will not ask again


def _page_reports(
    planned: Sequence[Source],
    done_before: set[str] | frozenset[str],
    outcomes: Sequence[_Answer | SourceReport],
    page: _Page,
) -> list[SourceReport]:
    """One report per planned source, in plan order, counting what the merged page holds.

    A source exhausted on an earlier page is not asked again; it is reported ``ok``
    with nothing in this page.
    """
    asked = {r.source: r for r in (o.report if isinstance(o, _Answer) else o for o in outcomes)}
    reports = []
    for source in planned:
        report = asked.get(source.id)
        if report is None:
            report = SourceReport(source=source.id, status=SourceStatus.OK, ms=0.0)
        else:
            report.count = page.returned.get(source.id, 0)
        report.exhausted = source.id in page.done
        reports.append(report)
    return reports


def _field(body: dict[str, Any], field_name: str) -> dict[str, Any]:
    """``data[field_name]`` of a GraphQL response, or the error that says why there is none."""
    data = body.get("data")
    if isinstance(data, dict) and data.get(field_name) is None and not body.get("errors"):
        raise SourceNotFound("the source has no such record")
    if not isinstance(data, dict) or not isinstance(data.get(field_name), dict):
        errors = body.get("errors") or [{}]
        extensions = errors[0].get("extensions") or {}
        code = extensions.get("code")
        message = f"{errors[0].get('message', 'no data')} ({code})"
        error: SourceError
        if code == "NOT_FOUND":
            error = SourceNotFound(message)
        # A source whose purpose list lacks the caller's purpose refuses it: an answer about
        # this caller, not a failure of the source (see policies.purposes).
        elif code in ("UNAUTHENTICATED", "FORBIDDEN", PURPOSE_UNKNOWN):
            error = SourceDenied(message)
        elif code in ("DATABASE_BUSY", "DATABASE_UNAVAILABLE"):
            raise SourceBusy(message)
        elif code not in (None, "INTERNAL"):
            error = SourceRefused(message)
        else:
            raise SourceError(message)
        if isinstance(extensions, dict) and isinstance(code, str):
            error.refusal = {str(k): v for k, v in list(extensions.items())[:20]}
        raise error
    payload: dict[str, Any] = data[field_name]
    return payload


def _answer(
    source: Source, payload: dict[str, Any], type_name: str, report: SourceReport
) -> _Answer | SourceReport:
    """One source's page as received, or its report marked as an error if it is no page.

    The edges are checked one by one only as the merge reaches them (``_ordered``).
    """
    try:
        edges, has_next = payload["edges"], payload["pageInfo"]["hasNextPage"]
        if not isinstance(edges, list):
            raise TypeError("edges is not a list")
    except (KeyError, TypeError) as exc:
        source.breaker.failed()
        report.status = SourceStatus.ERROR
        report.message = f"answer does not fit the schema: {exc!r}"
        return report
    report.count = len(edges)
    return _Answer(source, report, edges, bool(has_next), type_name)


_SortKey = tuple[datetime, str]  # (the order's time, the record's id), as sources order


def _sort_key(item: tuple[_SortKey, _Answer, str, dict[str, Any]]) -> _SortKey:
    return item[0]


def _ordered(
    answer: _Answer, key_field: str, descending: bool
) -> Iterator[tuple[_SortKey, _Answer, str, dict[str, Any]]]:
    """A source's edges as (sort key, answer, cursor, record JSON), checked as they are pulled.

    An edge that is not a record of the type, or out of the requested order, fails the
    source and ends its edges there: the records before it stand.
    """
    last: _SortKey | None = None
    for edge in answer.edges:
        if answer.failed:  # failed while the merge decoded one of its records
            return
        try:
            node = edge["node"]
            record_id = node["id"]
            if GlobalId.parse(record_id).type != answer.type_name:
                raise DecodeError(f"a {answer.type_name} list held {record_id[:60]}")
            at = datetime.fromisoformat(node[key_field])
            if at.tzinfo is None:
                raise DecodeError(f"{key_field} {node[key_field][:40]!r} has no time zone")
            key = (at, record_id)
            if last is not None and (key > last if descending else key < last):
                raise DecodeError(f"{record_id[:60]} is out of the requested order")
            cursor = str(edge["cursor"])
        except (DecodeError, InvalidGlobalId, KeyError, TypeError, ValueError) as exc:
            answer.source.breaker.failed()
            answer.fail(str(exc) if isinstance(exc, DecodeError) else repr(exc))
            return
        last = key
        yield key, answer, cursor, node


def _digest(value: Any) -> str:
    return hashlib.sha256(
        json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()[:32]


def _area_overlaps(box: BBox, where: dict[str, Any]) -> bool:
    if (asked := where.get("bbox")) is not None:
        try:
            return box.intersects(BBox.model_validate(asked))
        except ValueError:
            return True  # let the source refuse it with its own error
    if (near := where.get("near")) is not None:
        lat, lon, radius = near.get("lat"), near.get("lon"), near.get("radiusKm")
        if None in (lat, lon, radius):
            return True
        nearest = (min(max(lon, box.west), box.east), min(max(lat, box.south), box.north))
        return distance_km((lon, lat), nearest) <= float(radius)
    return True


def _area_holds(division: str, owner: str) -> bool:
    """Whether the GB/T 2260 area ``division`` (county, city or province) holds ``owner``."""
    if len(division) != 6 or not division.isdigit():
        return False
    prefix = division[:2] if division.endswith("0000") else division.removesuffix("00")
    prefix = prefix if len(prefix) in (2, 4) else division
    return owner.startswith(prefix) and owner != division
