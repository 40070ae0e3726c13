"""The per-request GraphQL context of the node."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from node.settings import NodeSettings
from policies.source import SourceContext
from schema.errors import Forbidden
from schema.scopes import Scope
from schema.store.resolvers import RecordHooks

__all__ = ["WRITE_SCOPE", "NodeContext"]

WRITE_SCOPE = Scope.RECORDS_WRITE


@dataclass(kw_only=True)
class NodeContext(SourceContext):
    """The shared policy state of one request, the node's settings and its record hooks."""

    settings: NodeSettings
    record_hooks: Mapping[str, RecordHooks] = field(default_factory=dict)

    @property
    def source_id(self) -> str:
        return self.settings.source_id

    def require_staff(self, also: Collection[str] = ()) -> str:
        """The caller's subject, if it is this community's own staff with ``records:write``.

        ``also`` names scopes that suffice as well (``risk:flag`` to raise a flag).
        """
        if self.caller.org != self.settings.org_code:
            raise Forbidden("only this community's own staff may change its records")
        accepted = (WRITE_SCOPE, *also)
        if not any(self.caller.has_scope(scope) for scope in accepted):
            raise Forbidden(
                f"the token lacks the scope {' or '.join(map(repr, accepted))}",
                scope=WRITE_SCOPE if not also else list(accepted),
            )
        return self.caller.subject
