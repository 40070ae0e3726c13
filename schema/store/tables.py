"""Record tables: each subclasses its record's create (and state) model, from ``REGISTRY``.

Every table adds the same envelope (``RowMixin``): a local id, the
optimistic-concurrency version, times, a soft-retire mark, and two index
columns the base model does not have: ``lat``/``lon`` for area filters and
``search_text`` for substring search that works in any script.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import registry as Registry
from sqlmodel import Field, SQLModel

from schema.records import REGISTRY
from schema.storage import UTCDateTime

__all__ = ["RecordTables", "RowMixin", "define_tables"]


class RowMixin(SQLModel):
    """Columns every record table has besides its record's own fields."""

    id: str = Field(primary_key=True, max_length=64)
    version: int = Field(default=1)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(sa_type=UTCDateTime, index=True)
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lat: float | None = Field(default=None, index=True)
    lon: float | None = Field(default=None)
    search_text: str = Field(default="", max_length=10000)


@dataclass(frozen=True)
class RecordTables:
    """One service's record tables, by record type name."""

    metadata: sa.MetaData
    by_type: dict[str, type[RowMixin]]

    def __getitem__(self, type_name: str) -> type[RowMixin]:
        return self.by_type[type_name]


def define_tables(metadata: sa.MetaData, only: set[str] | None = None) -> RecordTables:
    """Create the record tables (all, or ``only`` those types) in ``metadata``."""
    # SQLModel takes the registry from a non-table base class, so each call
    # makes its own base over RowMixin.
    row_base = types.new_class("Row", (RowMixin,), {"registry": Registry(metadata=metadata)})
    by_type: dict[str, type[RowMixin]] = {}
    for record_type in REGISTRY.values():
        type_name, table_name = record_type.name, record_type.table_name
        if only is not None and type_name not in only:
            continue
        state = () if record_type.state is None else (record_type.state,)

        def body(namespace: dict[str, Any], table_name: str = table_name) -> None:
            namespace["__tablename__"] = table_name

        by_type[type_name] = types.new_class(
            f"{type_name}Row",
            (row_base, record_type.create, *state),
            {"table": True},
            body,
        )
    _enums_as_text(metadata)
    return RecordTables(metadata, by_type)


def _enums_as_text(metadata: sa.MetaData) -> None:
    # Store enum values as plain strings (no PostgreSQL ENUM types), so adding a
    # value to a code list never needs a type migration.
    for table in metadata.tables.values():
        for column in table.columns:
            if isinstance(column.type, sa.Enum) and column.type.enum_class is not None:
                column.type = sa.Enum(
                    column.type.enum_class,
                    native_enum=False,
                    create_constraint=False,
                    length=32,
                    values_callable=lambda members: [m.value for m in members],
                )
