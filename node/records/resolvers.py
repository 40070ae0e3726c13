"""GraphQL fields for every record type, built once from its ``RecordSpec``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Union

import strawberry
from strawberry.types import Info

from node.context import NodeContext
from node.records import service
from node.records.specs import SPECS, RecordSpec
from node.tables import RowMixin
from schema.api.pagination import Connection, Edge, PageInfo, RecordOrder, page_size
from schema.enums import RiskFlagStatus
from schema.errors import InvalidInput, NotFound
from schema.ids import GlobalId, InvalidGlobalId
from schema.records import FlagTransition
from schema.storage import utcnow

__all__ = ["Record", "mutation_fields", "node_field", "query_fields", "to_graphql"]

Record: Any = Annotated[
    Union[tuple(spec.gql_type for spec in SPECS.values())],  # noqa: UP007
    strawberry.union("Record"),
]


def _public_values(spec: RecordSpec, row: RowMixin, owner: str) -> dict[str, Any]:
    values = {name: getattr(row, name, None) for name in spec.public.model_fields}
    values.update(
        id=str(GlobalId(spec.type_name, owner, row.id)),
        owner=owner,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
    if "active" in spec.public.model_fields:
        values["active"] = getattr(row, "msg_type", None) != "Cancel"
    return values


def to_graphql(spec: RecordSpec, row: RowMixin, owner: str) -> Any:
    """The GraphQL object of one row as its owner sees it."""
    return spec.gql_type.from_pydantic(spec.public.model_validate(_public_values(spec, row, owner)))


def _local_id(spec: RecordSpec, context: NodeContext, value: str) -> str:
    try:
        parsed = GlobalId.parse(value)
    except InvalidGlobalId as exc:
        raise InvalidInput(str(exc), code="INVALID_ID", field="id") from exc
    if parsed.owner != context.settings.source_id or parsed.type != spec.type_name:
        # Another node's (or another type's) id: nothing of it is here.
        raise NotFound(f"no {spec.type_name} with id {value}", type=spec.type_name)
    return parsed.local


def _pydantic(inp: Any) -> Any:
    """Convert a strawberry pydantic input, turning validation failures into codes."""
    from pydantic import ValidationError

    try:
        return inp.to_pydantic()
    except ValidationError as exc:
        raise InvalidInput.from_validation(exc, prefix="input") from exc


def _list_field(spec: RecordSpec) -> Any:
    async def resolve(
        info: Info[NodeContext, None],
        where: Any = None,
        first: int | None = None,
        after: str | None = None,
        order_by: RecordOrder = RecordOrder.CREATED_DESC,
    ) -> Any:
        context = info.context
        size = page_size(first)
        async with context.db.sessions() as session:
            page = await service.find_page(
                session, spec, where, order=order_by, first=size, after=after
            )
        owner = context.settings.source_id
        edges = [
            Edge(cursor=page.cursor(row), node=to_graphql(spec, row, owner)) for row in page.rows
        ]
        return Connection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next, end_cursor=edges[-1].cursor if edges else None
            ),
        )

    resolve.__annotations__ = {
        "info": Info[NodeContext, None],
        "where": spec.filter_input | None,
        "first": int | None,
        "after": str | None,
        "order_by": RecordOrder,
        "return": Connection[spec.gql_type],  # type: ignore[name-defined]
    }
    resolve.__name__ = spec.field_name
    return strawberry.field(
        resolver=resolve,
        name=spec.field_name,
        description=f"{spec.type_name} records of this node, paged",
    )


def query_fields() -> dict[str, Any]:
    """The list fields of every record type."""
    return {spec.field_name: _list_field(spec) for spec in SPECS.values()}


def node_field() -> Any:
    """``node(id)``: any record of this node by its global id."""

    async def resolve(info: Info[NodeContext, None], id: strawberry.ID) -> Any:
        context = info.context
        try:
            parsed = GlobalId.parse(str(id))
        except InvalidGlobalId as exc:
            raise InvalidInput(str(exc), code="INVALID_ID", field="id") from exc
        spec = SPECS.get(parsed.type)
        if spec is None:
            raise NotFound(f"no record type {parsed.type}")
        local = _local_id(spec, context, str(id))
        async with context.db.sessions() as session:
            row = await service.get_record(session, spec, local)
        return to_graphql(spec, row, context.settings.source_id)

    resolve.__annotations__["return"] = Record | None
    return strawberry.field(resolver=resolve, name="node", description="A record by global id")


def _named(name: str, fn: Callable[..., Any], annotations: dict[str, Any], doc: str) -> Any:
    fn.__annotations__ = annotations
    fn.__name__ = name
    return strawberry.mutation(resolver=fn, name=name, description=doc)


def _create(spec: RecordSpec) -> Any:
    async def resolve(info: Info[NodeContext, None], input: Any) -> Any:
        context = info.context
        caller = context.require_staff()
        data = _pydantic(input)
        system: dict[str, Any] = {}
        if spec.type_name == "RiskFlag":
            system = {
                "status": RiskFlagStatus.RAISED,
                "transitions": [
                    FlagTransition(status=RiskFlagStatus.RAISED, at=utcnow(), by=caller.subject)
                ],
            }
        async with context.db.transaction() as session:
            row = await service.create_record(session, spec, data, **system)
        return to_graphql(spec, row, context.settings.source_id)

    verb = "raise" if spec.type_name == "RiskFlag" else "create"
    return _named(
        f"{verb}{spec.type_name}",
        resolve,
        {"info": Info[NodeContext, None], "input": spec.create_input, "return": spec.gql_type},
        f"{verb.capitalize()} a {spec.type_name} (own staff, scope records:write)",
    )


def _update(spec: RecordSpec) -> Any:
    async def resolve(info: Info[NodeContext, None], id: strawberry.ID, input: Any) -> Any:
        context = info.context
        context.require_staff()
        local = _local_id(spec, context, str(id))
        patch = _pydantic(input)
        async with context.db.transaction() as session:
            row = await service.update_record(session, spec, local, patch)
        return to_graphql(spec, row, context.settings.source_id)

    return _named(
        f"update{spec.type_name}",
        resolve,
        {
            "info": Info[NodeContext, None],
            "id": strawberry.ID,
            "input": spec.update_input,
            "return": spec.gql_type,
        },
        f"Change a {spec.type_name}; refused with STALE_VERSION if expectedVersion is old",
    )


def _retire(spec: RecordSpec) -> Any:
    async def resolve(
        info: Info[NodeContext, None],
        id: strawberry.ID,
        expected_version: int,
    ) -> Any:
        context = info.context
        context.require_staff()
        local = _local_id(spec, context, str(id))
        async with context.db.transaction() as session:
            row = await service.retire_record(session, spec, local, expected_version)
        return to_graphql(spec, row, context.settings.source_id)

    return _named(
        f"retire{spec.type_name}",
        resolve,
        {
            "info": Info[NodeContext, None],
            "id": strawberry.ID,
            "expected_version": int,
            "return": spec.gql_type,
        },
        f"Retire a {spec.type_name}: it leaves every list",
    )


def mutation_fields() -> dict[str, Any]:
    """Create, update and retire for every record type the staff maintain."""
    fields: dict[str, Any] = {}
    for spec in SPECS.values():
        if spec.create_input is not None:
            field = _create(spec)
            fields[field.graphql_name] = field
        if spec.update_input is not None:
            field = _update(spec)
            fields[field.graphql_name] = field
            field = _retire(spec)
            fields[field.graphql_name] = field
    return fields
