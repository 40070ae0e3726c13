"""The per-request GraphQL context of the node."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from strawberry.fastapi import BaseContext

from node.settings import NodeSettings
from node.tables import AUDIT_LOG, EMERGENCIES
from policies.audit import AuditEntry, append
from policies.caller import Caller
from policies.emergency import DECLARE_SCOPE, PolicyMode, active_emergencies, policy_mode
from policies.enforce import DisclosureLedger, PolicyEnforcer
from schema.enums import OrgKind
from schema.errors import Forbidden
from schema.runtime.db import Database
from schema.scopes import Scope
from schema.store.resolvers import RecordHooks
from schema.store.specs import RecordSpec

__all__ = ["AUDIT_SCOPE", "WRITE_SCOPE", "NodeContext"]

WRITE_SCOPE = Scope.RECORDS_WRITE
AUDIT_SCOPE = Scope.AUDIT_READ


@dataclass
class NodeContext(BaseContext):
    """Database, settings, the authenticated caller and the policy state of one request."""

    db: Database
    settings: NodeSettings
    caller: Caller
    enforcer: PolicyEnforcer
    purpose: str = ""
    record_hooks: Mapping[str, RecordHooks] = field(default_factory=dict)
    policy_ledger: DisclosureLedger | None = field(default=None, init=False)
    _mode: PolicyMode | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        super().__init__()
        self.policy_ledger = self.enforcer.ledger(self.caller, self.purpose)

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

    def require_emergency_authority(self) -> str:
        """The subject, if the caller is a department of this district allowed to declare."""
        caller = self.caller
        if caller.org_kind is not OrgKind.DEPARTMENT or caller.district != self.settings.district:
            raise Forbidden("only a department of this node's district may declare emergencies")
        if not caller.has_scope(DECLARE_SCOPE):
            raise Forbidden(f"the token lacks the scope {DECLARE_SCOPE!r}", scope=DECLARE_SCOPE)
        return caller.subject

    def require_auditor(self) -> None:
        """Pass if the caller is this community's own staff with ``audit:read``."""
        if self.caller.org != self.settings.org_code:
            raise Forbidden("only this community's own staff may read its audit log")
        if not self.caller.has_scope(AUDIT_SCOPE):
            raise Forbidden(f"the token lacks the scope {AUDIT_SCOPE!r}", scope=AUDIT_SCOPE)

    async def policy_mode(self) -> PolicyMode:
        """Emergency mode while an emergency is active here (read once per request)."""
        if self._mode is None:
            async with self.db.sessions() as session:
                self._mode = policy_mode(await active_emergencies(session, EMERGENCIES))
        return self._mode

    async def disclose(
        self, spec: RecordSpec, records: list[dict[str, Any]]
    ) -> list[dict[str, Any] | None]:
        """What the caller may see of each record, per the owner's policy in the current mode."""
        mode = await self.policy_mode()
        page = await self.enforcer.disclose(
            self.caller,
            spec.type_name,
            records,
            mode=mode.mode,
            purpose=self.purpose,
            emergency_level=mode.level,
        )
        if self.policy_ledger is not None:
            self.policy_ledger.add(page)
        return page.records

    async def record_audit(self, entries: Sequence[AuditEntry]) -> None:
        """Append ``entries`` to the audit log in one transaction."""
        async with self.db.transaction() as session:
            for entry in entries:
                await append(session, AUDIT_LOG, entry)
