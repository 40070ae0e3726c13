"""The per-request GraphQL context of the node."""

from __future__ import annotations

from dataclasses import dataclass

from strawberry.fastapi import BaseContext

from node.settings import NodeSettings
from policies.caller import Caller
from schema.errors import Forbidden
from schema.runtime.db import Database

__all__ = ["NodeContext"]

WRITE_SCOPE = "records:write"


@dataclass
class NodeContext(BaseContext):
    """Database, settings and the authenticated caller of one request."""

    db: Database
    settings: NodeSettings
    caller: Caller

    def __post_init__(self) -> None:
        super().__init__()

    def require_staff(self, scope: str = WRITE_SCOPE) -> Caller:
        """The caller, if it is this community's own staff with ``scope``."""
        if self.caller.org != self.settings.org_code:
            raise Forbidden("only this community's own staff may change its records")
        if not self.caller.has_scope(scope):
            raise Forbidden(f"the token lacks the scope {scope!r}", scope=scope)
        return self.caller
