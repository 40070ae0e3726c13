"""The per-request GraphQL context of the node."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from strawberry.fastapi import BaseContext

from node.settings import NodeSettings
from policies.caller import Caller
from schema.errors import Forbidden
from schema.runtime.db import Database
from schema.store.specs import RecordSpec

__all__ = ["WRITE_SCOPE", "NodeContext"]

WRITE_SCOPE = "records:write"


@dataclass
class NodeContext(BaseContext):
    """Database, settings and the authenticated caller of one request."""

    db: Database
    settings: NodeSettings
    caller: Caller

    def __post_init__(self) -> None:
        super().__init__()

    @property
    def source_id(self) -> str:
        return self.settings.source_id

    def require_staff(self) -> str:
        """The caller's subject, if it is this community's own staff with ``records:write``."""
        if self.caller.org != self.settings.org_code:
            raise Forbidden("only this community's own staff may change its records")
        if not self.caller.has_scope(WRITE_SCOPE):
            raise Forbidden(f"the token lacks the scope {WRITE_SCOPE!r}", scope=WRITE_SCOPE)
        return self.caller.subject

    async def disclose(
        self, spec: RecordSpec, records: list[dict[str, Any]]
    ) -> list[dict[str, Any] | None]:
        """Statically trusted callers see records whole (the stopgap before policies)."""
        return list(records)
