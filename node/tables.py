"""The node's tables: each subclasses its record's base model from ``schema``.

Every table adds the same envelope (``RowMixin``): a local id, the
optimistic-concurrency version, times, a soft-retire mark, and two index
columns the base model does not have: ``lat``/``lon`` for area filters and
``search_text`` for substring search that works in any script.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from schema.enums import AidRequestStatus, RiskFlagStatus
from schema.records import (
    AidRequestBase,
    AlertBase,
    FlagTransition,
    IncidentBase,
    ResourceBase,
    RiskFlagBase,
    ShelterBase,
    VolunteerBase,
)
from schema.storage import PydanticJSON, UTCDateTime

__all__ = [
    "AidRequestRow",
    "AlertRow",
    "IncidentRow",
    "ResourceRow",
    "RiskFlagRow",
    "RowMixin",
    "ShelterRow",
    "VolunteerRow",
    "metadata",
]


metadata = sa.MetaData()


class RowMixin(SQLModel, registry=registry(metadata=metadata)):
    """Columns every record table has besides its record's own fields."""

    id: str = Field(primary_key=True, max_length=64)
    version: int = Field(default=1)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    updated_at: datetime = Field(sa_type=UTCDateTime, index=True)
    retired_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lat: float | None = Field(default=None, index=True)
    lon: float | None = Field(default=None)
    search_text: str = Field(default="", max_length=10000)


class IncidentRow(RowMixin, IncidentBase, table=True):
    __tablename__ = "incidents"


class ResourceRow(RowMixin, ResourceBase, table=True):
    __tablename__ = "resources"


class ShelterRow(RowMixin, ShelterBase, table=True):
    __tablename__ = "shelters"


class VolunteerRow(RowMixin, VolunteerBase, table=True):
    __tablename__ = "volunteers"


class RiskFlagRow(RowMixin, RiskFlagBase, table=True):
    __tablename__ = "risk_flags"

    status: RiskFlagStatus = Field(default=RiskFlagStatus.RAISED)
    transitions: list[FlagTransition] = Field(
        default_factory=list, sa_type=PydanticJSON(list[FlagTransition])
    )
    assigned_to: str | None = Field(default=None, max_length=64)


class AidRequestRow(RowMixin, AidRequestBase, table=True):
    __tablename__ = "aid_requests"

    status: AidRequestStatus = Field(default=AidRequestStatus.REQUESTED)


class AlertRow(RowMixin, AlertBase, table=True):
    __tablename__ = "alerts"


def _enums_as_text() -> None:
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


_enums_as_text()
