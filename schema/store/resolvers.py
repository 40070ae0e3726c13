"""GraphQL fields for every record type, built once from its ``RecordSpec``."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Protocol, Union

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from schema.api.pagination import (
    MAX_PAGE_SIZE,
    Connection,
    Edge,
    PageInfo,
    RecordOrder,
    page_size,
)
from schema.errors import Forbidden, InvalidInput, NotFound
from schema.ids import GlobalId, InvalidGlobalId
from schema.records import Actor
from schema.runtime.db import Database
from schema.scopes import Scope
from schema.storage import utcnow
from schema.store import service
from schema.store.specs import SPECS, RecordSpec
from schema.store.tables import RowMixin

__all__ = [
    "HiddenByPolicy",
    "Record",
    "RecordContext",
    "RecordHooks",
    "ViewPage",
    "caller_view_page",
    "list_field",
    "mutation_fields",
    "node_field",
    "public_values",
    "query_fields",
    "require_read_scope",
    "to_graphql",
]


class RecordContext(Protocol):
    """What the record fields need from a service's GraphQL context."""

    db: Database
    cursor_secret: bytes
    """Signs this source's paging cursors."""

    @property
    def source_id(self) -> str:
        """The id of this source, the owner part of every global id it issues."""
        ...

    def require_read(self, spec: RecordSpec) -> None:
        """Pass if the caller's token grants one of ``spec``'s read scopes; else raise."""
        ...

    def require_staff(self, also: Collection[str] = ()) -> str:
        """The acting subject, if the caller may change this source's records; else raise.

        ``also``: scopes that suffice besides the service's write scope (creating a type
        whose ``RecordSpec.create_scopes`` names them).
        """
        ...

    @property
    def person(self) -> str | None:
        """The person signed in (the token's ``sub``); None for a machine client."""
        ...

    async def record_written(
        self, session: AsyncSession, action: str, spec: RecordSpec, row: RowMixin
    ) -> None:
        """In the writing transaction: log who (client and person) created, changed or
        retired ``row``; fail here and nothing of the write stays."""
        ...

    async def disclose(
        self, spec: RecordSpec, records: list[dict[str, Any]], *, returned: bool = True
    ) -> list[dict[str, Any] | None]:
        """What the caller may see of each record (None: nothing), per the owner's policy.

        ``returned=False``: candidates only; what is returned is disclosed again.
        """
        ...


class RecordHooks(Protocol):
    """What a service does besides storing a new record of one type (e.g. an outbox row).

    A context may offer ``record_hooks: Mapping[str, RecordHooks]`` by type name.
    """

    async def created(self, session: AsyncSession, spec: RecordSpec, row: RowMixin) -> None:
        """In the creating transaction, after the row is flushed: fail here and nothing stays."""
        ...

    def committed(self, spec: RecordSpec, row: RowMixin) -> None:
        """After that transaction committed."""
        ...


def require_read_scope(granted: Collection[str], spec: RecordSpec) -> None:
    """Raise ``Forbidden`` unless ``granted`` holds one of the scopes that read ``spec``'s type.

    Scopes are necessary, not sufficient: policy decides on each record after this.
    """
    if not any(scope in granted for scope in spec.read_scopes):
        wanted = sorted(spec.read_scopes)
        raise Forbidden(
            f"reading {spec.type_name} records needs the scope {' or '.join(wanted)}",
            scope=wanted[0] if len(wanted) == 1 else wanted,
        )


def _hooks(context: RecordContext, spec: RecordSpec) -> RecordHooks | None:
    hooks: Mapping[str, RecordHooks] = getattr(context, "record_hooks", None) or {}
    return hooks.get(spec.type_name)


class HiddenByPolicy(NotFound):
    """A record that exists but that policy hides from the caller.

    It reaches the caller exactly as an unknown id would (same code, same
    message); only the service sees the difference, to audit the denial.
    """

    def __init__(self, type_name: str, global_id: str, local_id: str) -> None:
        # The message of schema.store.service.get_record for an unknown id, word for word.
        super().__init__(f"no {type_name} with id {local_id}", type=type_name)
        self.type_name = type_name
        self.global_id = global_id


Record: Any = Annotated[
    Union[tuple(spec.gql_type for spec in SPECS.values())],  # noqa: UP007
    strawberry.union("Record"),
]


def public_values(spec: RecordSpec, row: RowMixin, owner: str) -> dict[str, Any]:
    """The owner's full view of one row, as the fields of its Public model."""
    values = {name: getattr(row, name, None) for name in spec.public.model_fields}
    values.update(
        id=str(GlobalId(spec.type_name, owner, row.id)),
        owner=owner,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
    if spec.record.derived is not None:
        values.update(spec.record.derived(row))
    return values


def to_graphql(spec: RecordSpec, values: dict[str, Any]) -> Any:
    """The GraphQL object of one disclosed record."""
    return spec.gql_type.from_pydantic(spec.public.model_validate(values))


async def _disclosed(
    context: RecordContext, spec: RecordSpec, rows: list[RowMixin]
) -> list[tuple[RowMixin, Any]]:
    full = [public_values(spec, row, context.source_id) for row in rows]
    shown = await context.disclose(spec, full)
    return [(row, to_graphql(spec, v)) for row, v in zip(rows, shown, strict=True) if v is not None]


def _local_id(spec: RecordSpec, context: RecordContext, value: str) -> str:
    try:
        parsed = GlobalId.parse(value)
    except InvalidGlobalId as exc:
        raise InvalidInput(str(exc), code="INVALID_ID", field="id") from exc
    if parsed.owner != context.source_id or parsed.type != spec.type_name:
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
        info: Info[RecordContext, None],
        where: Any = None,
        first: int | None = None,
        after: str | None = None,
        order_by: RecordOrder = RecordOrder.CREATED_DESC,
    ) -> Any:
        context = info.context
        context.require_read(spec)
        size = page_size(first)
        page = await caller_view_page(context, spec, where, order_by, size, after)
        edges = [Edge(cursor=cursor, node=node) for cursor, node in page.edges]
        return Connection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next, end_cursor=edges[-1].cursor if edges else None
            ),
        )

    return list_field(
        spec, resolve, RecordContext, f"{spec.type_name} records of this source, paged"
    )


@dataclass(frozen=True, slots=True)
class ViewPage:
    """What the caller may see: (cursor, GraphQL object) pairs, and whether more follow."""

    edges: list[tuple[str, Any]]
    has_next: bool


async def caller_view_page(
    context: RecordContext,
    spec: RecordSpec,
    where: Any,
    order: RecordOrder,
    size: int,
    after: str | None,
) -> ViewPage:
    """The next ``size`` records the caller may see that pass ``where`` as the caller sees them.

    Records the caller may not see, or that pass only on values hidden from it, do not
    exist for paging: the page, its cursors and ``has_next`` are those of the caller's
    view alone. SQL narrows the candidates; ``shown_match`` decides on the shown values.
    """
    secret = context.cursor_secret
    batch = min(max(2 * (size + 1), 50), MAX_PAGE_SIZE)
    found: list[tuple[str, dict[str, Any]]] = []  # (cursor, the owner's full record)
    position = after
    while len(found) <= size:
        async with context.db.sessions() as session:
            page = await service.find_page(
                session, spec, where, order=order, first=batch, after=position, secret=secret
            )
        full = [public_values(spec, row, context.source_id) for row in page.rows]
        shown = await context.disclose(spec, full, returned=False)
        for row, record, values in zip(page.rows, full, shown, strict=True):
            if values is not None and service.shown_match(spec, where, values):
                found.append((page.cursor(row), record))
        if not page.has_next:
            break
        position = page.cursor(page.rows[-1])
    # Only what is returned counts as disclosed: reasons and audit see nothing else.
    returned = found[:size]
    shown = await context.disclose(spec, [record for _, record in returned])
    edges = [
        (cursor, to_graphql(spec, values))
        for (cursor, _), values in zip(returned, shown, strict=True)
        if values is not None
    ]
    return ViewPage(edges, len(found) > size)


def list_field(
    spec: RecordSpec, resolve: Callable[..., Any], context: type, description: str
) -> Any:
    """A connection field of ``spec``'s type with the read API's arguments, over ``resolve``.

    ``resolve(info, where, first, after, order_by)``; the annotations strawberry reads
    are set here, from the spec, the same for every source and the hub. The field is
    nullable: a field that fails (a missing scope, a bad filter) is ``null`` with its
    error, and the other fields of the request still answer.
    """
    resolve.__annotations__ = {
        "info": Info[context, None],  # type: ignore[valid-type]
        "where": spec.filter_input | None,
        "first": int | None,
        "after": str | None,
        "order_by": RecordOrder,
        "return": Connection[spec.gql_type] | None,  # type: ignore[name-defined]
    }
    resolve.__name__ = spec.field_name
    return strawberry.field(resolver=resolve, name=spec.field_name, description=description)


def query_fields(specs: dict[str, RecordSpec]) -> dict[str, Any]:
    """The list fields of the given (bound) record types."""
    return {spec.field_name: _list_field(spec) for spec in specs.values()}


def node_field(specs: dict[str, RecordSpec]) -> Any:
    """``node(id)``: any record of this source by its global id."""

    async def resolve(info: Info[RecordContext, None], id: strawberry.ID) -> Any:
        context = info.context
        try:
            parsed = GlobalId.parse(str(id))
        except InvalidGlobalId as exc:
            raise InvalidInput(str(exc), code="INVALID_ID", field="id") from exc
        spec = specs.get(parsed.type)
        if spec is None:
            raise NotFound(f"no {parsed.type} records here")
        local = _local_id(spec, context, str(id))
        async with context.db.sessions() as session:
            row = await service.get_record(session, spec, local)
        shown = await _disclosed(context, spec, [row])
        if not shown:
            # Hidden by policy: answered exactly like an unknown id.
            raise HiddenByPolicy(spec.type_name, str(id), local)
        return shown[0][1]

    resolve.__annotations__["return"] = Record | None
    return strawberry.field(resolver=resolve, name="node", description="A record by global id")


def _own_view(context: RecordContext, spec: RecordSpec, row: RowMixin) -> Any:
    # Staff changing their own records see them whole.
    return to_graphql(spec, public_values(spec, row, context.source_id))


def _named(name: str, fn: Callable[..., Any], annotations: dict[str, Any], doc: str) -> Any:
    fn.__annotations__ = annotations
    fn.__name__ = name
    return strawberry.mutation(resolver=fn, name=name, description=doc)


def _create(spec: RecordSpec) -> Any:
    async def resolve(info: Info[RecordContext, None], input: Any) -> Any:
        context = info.context
        subject = context.require_staff(also=spec.create_scopes)
        data = _pydantic(input)
        initial_state = spec.record.initial_state
        actor = Actor(subject, context.person)
        system = {} if initial_state is None else initial_state(actor, utcnow())
        hooks = _hooks(context, spec)
        async with context.db.transaction() as session:
            row = await service.create_record(session, spec, data, **system)
            if hooks is not None:
                await hooks.created(session, spec, row)
            await context.record_written(session, "create", spec, row)
        if hooks is not None:
            hooks.committed(spec, row)
        return _own_view(context, spec, row)

    verb = spec.record.create_verb
    scopes = " or ".join((Scope.RECORDS_WRITE, *spec.create_scopes))
    return _named(
        f"{verb}{spec.type_name}",
        resolve,
        {"info": Info[RecordContext, None], "input": spec.create_input, "return": spec.gql_type},
        f"{verb.capitalize()} a {spec.type_name} (own staff, scope {scopes})",
    )


def _update(spec: RecordSpec) -> Any:
    async def resolve(info: Info[RecordContext, None], id: strawberry.ID, input: Any) -> Any:
        context = info.context
        context.require_staff()
        local = _local_id(spec, context, str(id))
        patch = _pydantic(input)
        async with context.db.transaction() as session:
            row = await service.update_record(session, spec, local, patch)
            await context.record_written(session, "update", spec, row)
        return _own_view(context, spec, row)

    return _named(
        f"update{spec.type_name}",
        resolve,
        {
            "info": Info[RecordContext, None],
            "id": strawberry.ID,
            "input": spec.update_input,
            "return": spec.gql_type,
        },
        f"Change a {spec.type_name}; refused with STALE_VERSION if expectedVersion is old",
    )


def _retire(spec: RecordSpec) -> Any:
    async def resolve(
        info: Info[RecordContext, None],
        id: strawberry.ID,
        expected_version: int,
    ) -> Any:
        context = info.context
        context.require_staff()
        local = _local_id(spec, context, str(id))
        async with context.db.transaction() as session:
            row = await service.retire_record(session, spec, local, expected_version)
            await context.record_written(session, "retire", spec, row)
        return _own_view(context, spec, row)

    return _named(
        f"retire{spec.type_name}",
        resolve,
        {
            "info": Info[RecordContext, None],
            "id": strawberry.ID,
            "expected_version": int,
            "return": spec.gql_type,
        },
        f"Retire a {spec.type_name}: it leaves every list",
    )


def mutation_fields(specs: dict[str, RecordSpec]) -> dict[str, Any]:
    """Create, update and retire for every record type the staff maintain."""
    fields: dict[str, Any] = {}
    for spec in specs.values():
        if spec.create_input is not None:
            field = _create(spec)
            fields[field.graphql_name] = field
        if spec.update_input is not None:
            field = _update(spec)
            fields[field.graphql_name] = field
            field = _retire(spec)
            fields[field.graphql_name] = field
    return fields
