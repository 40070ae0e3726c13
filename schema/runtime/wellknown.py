"""``GET /.well-known/linli-node``: who a source is, one model to write it and to read it.

Every source (a community node, an adapter service, a hub) serves the document
from a ``WellKnown``; the hub reads its sources' documents back through the
same model, so a malformed document is a validation error naming the field.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import datetime
from typing import Final

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from schema.geo import BBox

__all__ = [
    "WELL_KNOWN_PATH",
    "SourceKind",
    "UpstreamError",
    "UpstreamProblem",
    "UpstreamStatus",
    "WellKnown",
    "describe_error",
    "well_known_router",
]

WELL_KNOWN_PATH: Final = "/.well-known/linli-node"


class SourceKind(enum.StrEnum):
    """What kind of source a document describes."""

    COMMUNITY = "community"
    ADAPTER = "adapter"
    HUB = "hub"


class UpstreamError(BaseModel):
    """The last error an adapter's upstream system gave."""

    code: str
    message: str
    at: datetime


class UpstreamProblem(BaseModel):
    """One upstream input an adapter could not use."""

    where: str
    code: str
    reason: str


class UpstreamStatus(BaseModel):
    """How an adapter's upstream system is doing (``adapter`` in the document)."""

    system: str = Field(description="The adapter's upstream system (cap, open311, ...)")
    status: str = Field(description="ok, degraded or down")
    since: datetime
    last_error: UpstreamError | None = None
    last_success_at: datetime | None = None
    consecutive_failures: int = 0
    problems: list[UpstreamProblem] = Field(default_factory=list)


class WellKnown(BaseModel):
    """The well-known document of a source; fields a newer source adds are ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    id: str = Field(min_length=1, max_length=64)
    kind: SourceKind
    name: str
    division_code: str
    bbox: BBox | None = None
    schema_version: str = Field(min_length=1)
    capabilities: list[str]
    district: str | None = Field(None, description="County-level code of the source's district")
    neighbours: list[str] = Field(default_factory=list, description="Neighbour communities")
    adapter: UpstreamStatus | None = Field(None, description="An adapter's upstream status")
    federates: list[str] = Field(
        default_factory=list,
        description="A hub's: the ids of every hub below it (its hub sources, theirs, ...)",
    )


def describe_error(error: ValidationError) -> str:
    """A one-line account of why a document is not a ``WellKnown``."""
    problems = [
        f"{'.'.join(str(part) for part in item['loc']) or 'document'}: {item['msg']}"
        for item in error.errors()[:3]
    ]
    return "malformed well-known document: " + "; ".join(problems)


def well_known_router(describe: Callable[[], WellKnown]) -> APIRouter:
    """``GET /.well-known/linli-node`` answering what ``describe`` says now."""
    router = APIRouter()

    @router.get(WELL_KNOWN_PATH, response_model=WellKnown)
    async def well_known() -> WellKnown:
        return describe()

    return router
