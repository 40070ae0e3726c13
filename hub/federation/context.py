"""The per-request GraphQL context of the hub."""

from __future__ import annotations

from dataclasses import dataclass, field

from strawberry.dataloader import DataLoader
from strawberry.fastapi import BaseContext

from hub.federation.executor import Federation, SourceReport
from hub.federation.registry import organisations
from policies.caller import Caller
from schema.api.types import Organisation
from schema.errors import Forbidden

__all__ = ["HubContext"]


@dataclass
class HubContext(BaseContext):
    """The caller, the federation executor and what each source contributed."""

    caller: Caller
    federation: Federation
    purpose: str | None = None
    reports: list[SourceReport] = field(default_factory=list)

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

    def require_scope(self, scope: str) -> Caller:
        """The caller, if its token grants ``scope``."""
        if not self.caller.has_scope(scope):
            raise Forbidden(f"the token lacks the scope {scope!r}", scope=scope)
        return self.caller
