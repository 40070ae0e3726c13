"""Hub tables of the federation: the source registry and the stale-answer store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Field

from hub.db import HubTable
from schema.storage import PydanticJSON, UTCDateTime

__all__ = ["SourceRow", "StaleAnswerRow"]


class SourceRow(HubTable, table=True):
    """A registered source and what it last said about itself."""

    __tablename__ = "sources"

    id: str = Field(primary_key=True, max_length=64)
    url: str = Field(max_length=500)
    kind: str = Field(default="community", max_length=20)
    name: str = Field(default="", max_length=200)
    division_code: str = Field(default="", max_length=12)
    district: str | None = Field(default=None, max_length=12)
    neighbours: list[str] = Field(default_factory=list, sa_type=PydanticJSON(list[str]))
    bbox: dict[str, float] | None = Field(
        default=None, sa_type=PydanticJSON(dict[str, float] | None)
    )
    capabilities: list[str] = Field(default_factory=list, sa_type=PydanticJSON(list[str]))
    schema_version: str | None = Field(default=None, max_length=20)
    origin: str = Field(default="admin", max_length=10)  # config | admin
    added_at: datetime = Field(sa_type=UTCDateTime)


class StaleAnswerRow(HubTable, table=True):
    """The last good answer of a source to one query, served while the source is down."""

    __tablename__ = "stale_answers"

    source_id: str = Field(primary_key=True, max_length=64)
    signature: str = Field(primary_key=True, max_length=64)
    payload: dict[str, Any] = Field(sa_type=PydanticJSON(dict[str, Any]))
    as_of: datetime = Field(sa_type=UTCDateTime)
