"""The hub's GraphQL API: the common read API over every source, plus the registry."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types import Info

from hub.federation.codec import DecodeError, decode, encode_input
from hub.federation.context import HubContext
from hub.federation.executor import PageRequest, SourceFailed
from hub.federation.registry import organisations
from hub.federation.reports import SourceStatus
from hub.federation.selection import ENVELOPE, node_selection, print_selection
from hub.federation.series import series_field
from policies.audit import AuditEntry
from policies.caller import Caller
from schema.api.pagination import Connection, Edge, PageInfo, RecordOrder, page_size
from schema.api.types import CREATE_INPUTS, Organisation
from schema.enums import OrgKind, RiskFlagStatus
from schema.errors import Forbidden, InvalidInput, NotFound
from schema.ids import GlobalId, InvalidGlobalId
from schema.scopes import Scope
from schema.store.aggregates import AGGREGATES_FIELD, Aggregates, Total, sum_totals
from schema.store.resolvers import Record, list_field
from schema.store.specs import SPECS, RecordSpec

__all__ = ["SourcesExtension", "mutation_fields", "query_fields"]

ADMIN_SCOPE = Scope.ADMIN


def _list_field(spec: RecordSpec) -> Any:
    async def resolve(
        info: Info[HubContext, None],
        where: Any = None,
        first: int | None = None,
        after: str | None = None,
        order_by: RecordOrder = RecordOrder.CREATED_DESC,
    ) -> Any:
        context = info.context
        context.require_read(spec)  # not fanned out without a read scope
        request = PageRequest(
            caller=context.caller,
            where=encode_input(where),
            first=page_size(first),
            after=after,
            order=order_by,
            selection=node_selection(info.selected_fields[0]),
            purpose=context.purpose,
        )
        page = await context.federation.list_page(spec, request)
        context.add_reports(page.reports, info.path.as_list())
        return Connection(
            edges=[Edge(cursor=cursor, node=node) for cursor, node in page.edges],
            page_info=PageInfo(has_next_page=page.has_next, end_cursor=page.end_cursor),
        )

    return list_field(
        spec, resolve, HubContext, f"{spec.type_name} records of every source, merged and paged"
    )


async def _node(info: Info[HubContext, None], id: strawberry.ID) -> Any:
    context = info.context
    try:
        parsed = GlobalId.parse(str(id))
    except InvalidGlobalId as exc:
        raise InvalidInput(str(exc), code="INVALID_ID", field="id") from exc
    spec = SPECS.get(parsed.type)
    if spec is None:
        raise InvalidInput(f"no record type {parsed.type}", code="INVALID_ID", field="id")
    context.require_read(spec)  # not fanned out without a read scope
    selections = [
        child
        for selection in info.selected_fields[0].selections
        for child in (
            selection.selections
            if getattr(selection, "type_condition", parsed.type) == parsed.type
            else []
        )
    ]
    try:
        found = await context.federation.get(
            str(id),
            context.caller,
            print_selection(selections, ENVELOPE),
            spec.gql_type,
            context.purpose,
        )
    except SourceFailed as failed:
        context.add_reports([failed.report], info.path.as_list())
        raise
    context.add_reports([found.report], info.path.as_list())
    return found.record


_node.__annotations__["return"] = Record | None


@strawberry.type(description="A source the hub federates, and how it is doing")
class SourceInfo:
    id: str
    url: str | None = strawberry.field(description="Departments and admins only; else null")
    name: str
    kind: str
    status: str = strawberry.field(description="unknown, ok, down, incompatible or not_allowed")
    last_seen: datetime | None
    latency_ms: float | None
    schema_version: str | None
    capabilities: list[str]
    circuit: str | None = strawberry.field(
        description="closed, open or half_open; departments and admins only, else null"
    )
    last_error: str | None = strawberry.field(description="Departments and admins only; else null")


def _sees_source_details(caller: Caller) -> bool:
    # URLs, errors and circuits map the hub's network: not for public or community callers.
    return caller.org_kind is OrgKind.DEPARTMENT or caller.has_scope(ADMIN_SCOPE)


async def _sources(info: Info[HubContext, None]) -> list[SourceInfo]:
    registry = info.context.federation.registry
    details = _sees_source_details(info.context.caller)
    return [
        SourceInfo(
            id=s.id,
            url=s.url if details else None,
            name=s.name,
            kind=s.kind,
            status=s.health.value,
            last_seen=s.last_seen,
            latency_ms=s.latency_ms,
            schema_version=s.schema_version,
            capabilities=s.capabilities,
            circuit=s.breaker.state.value if details else None,
            last_error=s.last_error if details else None,
        )
        for s in sorted(registry.sources.values(), key=lambda s: s.id)
    ]


async def _communities(info: Info[HubContext, None]) -> list[Organisation]:
    return organisations(info.context.federation.registry)


_AGGREGATES_DOCUMENT = (
    "{ aggregates { totals { recordType area kind status count quantity available"
    " capacity occupancy affected oldestAt } } }"
)


async def _aggregates(info: Info[HubContext, None]) -> Aggregates:
    context = info.context
    replies = await context.federation.gather(
        AGGREGATES_FIELD, _AGGREGATES_DOCUMENT, context.caller, context.purpose
    )
    parts: list[list[Total]] = []
    for reply in replies:
        if reply.payload is None:
            continue
        try:
            totals = [decode(Total, raw) for raw in reply.payload["totals"]]
        except (DecodeError, KeyError, TypeError) as exc:
            reply.report.status = SourceStatus.ERROR
            reply.report.message = f"answer does not fit the schema: {exc!r}"
            continue
        reply.report.count = len(totals)
        parts.append(totals)
    context.add_reports([r.report for r in replies], info.path.as_list())
    return Aggregates(totals=sum_totals(parts))


def query_fields() -> dict[str, Any]:
    """Every federated list field, ``node``, ``sources``, ``communities`` and ``aggregates``."""
    fields = {spec.field_name: _list_field(spec) for spec in SPECS.values()}
    fields[AGGREGATES_FIELD] = strawberry.field(
        resolver=_aggregates,
        description="Every source's totals (by area, kind and status) of the records the caller"
        " may count, summed; no record is fetched",
    )
    fields.update(series_field())
    fields["node"] = strawberry.field(resolver=_node, description="A record by global id")
    fields["sources"] = strawberry.field(resolver=_sources, description="The federated sources")
    fields["communities"] = strawberry.field(
        resolver=_communities, description="The communities of the district"
    )
    return fields


async def _add_source(info: Info[HubContext, None], id: str, url: str) -> SourceInfo:
    context = info.context
    caller = context.require_scope(ADMIN_SCOPE)
    registry = context.federation.registry
    added = await registry.add(id, url)
    # Audited like a changed URL: the client and the person (``subject``) who did it.
    await registry.audit(
        AuditEntry(action="add_source", owner=id, caller=caller, decision={"url": added.url})
    )
    return next(s for s in await _sources(info) if s.id == id)


async def _replace_source_url(info: Info[HubContext, None], id: str, url: str) -> SourceInfo:
    context = info.context
    caller = context.require_scope(ADMIN_SCOPE)
    await context.federation.registry.replace_url(id, url, caller=caller)
    return next(s for s in await _sources(info) if s.id == id)


async def _remove_source(info: Info[HubContext, None], id: str) -> bool:
    caller = info.context.require_scope(ADMIN_SCOPE)
    registry = info.context.federation.registry
    await registry.remove(id)
    await registry.audit(AuditEntry(action="remove_source", owner=id, caller=caller))
    return True


_RAISE_FLAG = """mutation ($input: RiskFlagCreateInput!) {
  raiseRiskFlag(input: $input) { id status version } }"""


@strawberry.type(description="A risk flag raised at the caller's own community node")
class RaisedFlag:
    id: strawberry.ID
    source: str = strawberry.field(description="The node that keeps it")
    status: RiskFlagStatus
    version: int


async def _raise_risk_flag(info: Info[HubContext, None], input: Any) -> RaisedFlag:
    # People at the hub's web application raise flags here; the hub relays the mutation to
    # the caller's own node (the node decides, keeps it and delivers it through its outbox).
    context = info.context
    caller = context.require_scope(Scope.RISK_FLAG)
    if caller.org_kind is not OrgKind.COMMUNITY:
        raise Forbidden("only community staff raise risk flags, at their own node")
    node = next(
        (s for s in context.sources() if s.kind == "community" and s.division_code == caller.org),
        None,
    )
    if node is None:
        raise NotFound(f"the hub federates no node of community {caller.org}")
    reply = await context.call_source(
        node.id, _RAISE_FLAG, {"input": encode_input(input)}, field_name="raiseRiskFlag"
    )
    context.add_reports([reply.report], info.path.as_list())
    if reply.payload is None:
        raise SourceFailed(reply.report)
    return RaisedFlag(
        id=strawberry.ID(str(reply.payload["id"])),
        source=node.id,
        status=RiskFlagStatus[str(reply.payload["status"])],
        version=int(reply.payload["version"]),
    )


_raise_risk_flag.__annotations__["input"] = CREATE_INPUTS["RiskFlag"]


def mutation_fields() -> dict[str, Any]:
    """Registry administration (scope ``admin``), and raising a flag at one's own node."""
    return {
        "add_source": strawberry.mutation(
            resolver=_add_source,
            description="Register a new source by id and URL (scope admin; SOURCE_EXISTS if known)",
        ),
        "replace_source_url": strawberry.mutation(
            resolver=_replace_source_url,
            description="Point an existing source at another URL (scope admin; audited)",
        ),
        "remove_source": strawberry.mutation(
            resolver=_remove_source, description="Stop federating a source (scope admin)"
        ),
        "raise_risk_flag": strawberry.mutation(
            resolver=_raise_risk_flag,
            description="Raise a risk flag at the caller's own community node (scope risk:flag)",
        ),
    }


class SourcesExtension(SchemaExtension):
    """``extensions.sources`` on every answer, and one GraphQL error per failed source."""

    def on_operation(self) -> Iterator[None]:
        yield
        context = self.execution_context.context
        result = self.execution_context.result
        reports = getattr(context, "reports", None)
        if not reports or result is None:
            return
        errors = list(result.errors or [])
        for report in reports:
            if report.error_code is None:
                continue
            errors.append(
                GraphQLError(
                    f"source {report.source}: {report.message}",
                    path=list(report.path) or None,
                    extensions={
                        "code": report.error_code,
                        "source": report.source,
                        "status": report.status.value,
                    },
                )
            )
        result.errors = errors

    def get_results(self) -> dict[str, Any]:
        reports = getattr(self.execution_context.context, "reports", None)
        if not reports:
            return {}
        return {"sources": [r.as_json() for r in reports]}
