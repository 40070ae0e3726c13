"""The per-request GraphQL context of the hub."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from strawberry.dataloader import DataLoader
from strawberry.fastapi import BaseContext

from hub.federation.executor import Federation, SourceReply
from hub.federation.registry import Source, organisations
from hub.federation.reports import SourceReport
from policies.caller import Caller
from schema.api.types import Organisation
from schema.errors import Forbidden
from schema.runtime.db import Database
from schema.store.resolvers import require_read_scope
from schema.store.specs import RecordSpec

__all__ = ["HubContext"]


@dataclass
class HubContext(BaseContext):
    """The caller, the federation executor and what each source contributed."""

    caller: Caller
    federation: Federation
    purpose: str | None = None
    _reports: list[SourceReport] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        super().__init__()
        self.organisations: DataLoader[str, Organisation | None] = DataLoader(
            load_fn=self._load_organisations
        )

    async def _load_organisations(self, owners: list[str]) -> list[Organisation | None]:
        # One batch per request: every record's owner is looked up in the registry once.
        by_code: dict[str, Organisation] = {
            o.code: o  # type: ignore[attr-defined]
            for o in organisations(self.federation.registry)
        }
        by_source = {
            s.id: by_code.get(s.division_code) for s in self.federation.registry.sources.values()
        }
        return [by_code.get(owner) or by_source.get(owner) for owner in owners]

    @property
    def reports(self) -> tuple[SourceReport, ...]:
        """What each source contributed to this request so far (``extensions.sources``)."""
        return tuple(self._reports)

    def add_reports(self, reports: Iterable[SourceReport], path: Sequence[str | int]) -> None:
        """Keep the reports the resolver of the field at ``path`` got (``extensions.sources``)."""
        self._reports.extend(replace(r, path=tuple(path)) for r in reports)

    @property
    def db(self) -> Database:
        """The hub's database."""
        return self.federation.registry.db

    def sources(self) -> list[Source]:
        """Every source the hub federates."""
        return list(self.federation.registry.sources.values())

    async def call_source(
        self, source_id: str, document: str, variables: dict[str, Any], *, field_name: str
    ) -> SourceReply:
        """One call to one source on behalf of the caller, bounded by the overall deadline."""
        federation = self.federation
        deadline = time.monotonic() + federation.deadline_s
        return await federation.call(
            federation.registry.sources[source_id], self.caller, document, variables, deadline,
            self.purpose, stale_key=None, field_name=field_name,
        )  # fmt: skip

    def require_read(self, spec: RecordSpec) -> None:
        """Pass if the caller's token grants one of ``spec``'s read scopes."""
        require_read_scope(self.caller.scopes, spec)

    def require_scope(self, scope: str) -> Caller:
        """The caller, if its token grants ``scope``."""
        if not self.caller.has_scope(scope):
            raise Forbidden(f"the token lacks the scope {scope!r}", scope=scope)
        return self.caller
