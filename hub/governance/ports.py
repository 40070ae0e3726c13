"""What governance needs of the rest of the hub, as Protocols the hub's context satisfies.

Governance never imports the federation (nor the other way round): the hub's
request context and the federation's reports fit these shapes, and the
composition root (``hub/app.py``) wires the two together.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from policies.caller import Caller
from schema.runtime.db import Database

__all__ = ["GovernanceContext", "RelayedReport", "SourceCallResult", "SourceEntry"]


class RelayedReport(Protocol):
    """What one source contributed to an answer the hub passed on."""

    @property
    def source(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def count(self) -> int: ...
    @property
    def as_of(self) -> datetime | None: ...
    @property
    def message(self) -> str | None: ...


class SourceCallResult(Protocol):
    """One call to one source: the payload (``None`` if it failed) and how it went."""

    @property
    def payload(self) -> dict[str, Any] | None: ...
    @property
    def report(self) -> RelayedReport: ...


class SourceEntry(Protocol):
    """One source the hub federates."""

    @property
    def id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def division_code(self) -> str: ...
    @property
    def usable(self) -> bool: ...


class GovernanceContext(Protocol):
    """The request context as governance's resolvers use it."""

    @property
    def caller(self) -> Caller: ...
    @property
    def purpose(self) -> str | None: ...
    @property
    def db(self) -> Database: ...

    def require_scope(self, scope: str) -> Caller: ...

    def sources(self) -> Sequence[SourceEntry]: ...

    async def call_source(
        self, source_id: str, document: str, variables: dict[str, Any], *, field_name: str
    ) -> SourceCallResult: ...
