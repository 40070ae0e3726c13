"""A record type as a source stores and serves it: its declaration, GraphQL types and table."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlmodel import SQLModel

from schema.api.filters import FILTERS
from schema.api.types import CREATE_INPUTS, RECORD_TYPES, UPDATE_INPUTS
from schema.records import REGISTRY, Filter, RecordType
from schema.scopes import Scope
from schema.store.tables import RecordTables, RowMixin

__all__ = ["SPECS", "RecordSpec", "bind_specs"]


@dataclass(frozen=True, slots=True)
class RecordSpec:
    """One record type's declaration with what is derived from it, over a table once bound."""

    record: RecordType
    gql_type: Any
    filter_input: Any
    create_input: Any | None
    update_input: Any | None
    table: Any = None  # the service's table, once bound (``bind``)

    @property
    def type_name(self) -> str:
        return self.record.name

    @property
    def field_name(self) -> str:
        return self.record.field_name

    @property
    def create(self) -> type[SQLModel]:
        return self.record.create

    @property
    def update(self) -> type[SQLModel] | None:
        return self.record.update

    @property
    def public(self) -> type[SQLModel]:
        return self.record.public

    @property
    def scope(self) -> Scope:
        return self.record.scope

    @property
    def read_scopes(self) -> tuple[Scope, ...]:
        return self.record.read_scopes

    @property
    def create_scopes(self) -> tuple[Scope, ...]:
        return self.record.create_scopes

    @property
    def search_fields(self) -> tuple[str, ...]:
        return self.record.search_fields

    @property
    def filters(self) -> tuple[Filter, ...]:
        return self.record.filters

    def bind(self, table: type[RowMixin]) -> RecordSpec:
        """This spec over one service's table."""
        return replace(self, table=table)


SPECS: dict[str, RecordSpec] = {
    name: RecordSpec(
        record=record_type,
        gql_type=RECORD_TYPES[name],
        filter_input=FILTERS[name],
        create_input=CREATE_INPUTS.get(name),
        update_input=UPDATE_INPUTS.get(name),
    )
    for name, record_type in REGISTRY.items()
}
"""Every record type's spec, unbound, by type name."""


def bind_specs(tables: RecordTables) -> dict[str, RecordSpec]:
    """The specs of the record types ``tables`` holds, bound to them."""
    return {name: SPECS[name].bind(table) for name, table in tables.by_type.items()}
