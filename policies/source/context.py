"""The per-request policy state every source's GraphQL context shares.

Who is calling, the owner's enforcer, the current mode (normal, or emergency
while one declared here is in force), the request's disclosure ledger, and
the source's own ``emergencies`` and ``audit_log`` tables.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.fastapi import BaseContext

from policies.audit import AuditEntry, AuditWriter, append_many, define_audit_table
from policies.caller import Caller
from policies.emergency import (
    DECLARE_SCOPE,
    PolicyMode,
    active_emergencies,
    define_emergency_table,
    policy_mode,
)
from policies.enforce import DisclosureLedger, PolicyEnforcer
from policies.records import facts_of
from schema.enums import OrgKind
from schema.errors import Forbidden
from schema.runtime.db import Database
from schema.scopes import Scope
from schema.store.resolvers import require_read_scope
from schema.store.specs import RecordSpec
from schema.store.tables import RowMixin

__all__ = ["AUDIT_SCOPE", "PolicyTables", "SourceContext", "define_policy_tables"]

AUDIT_SCOPE = Scope.AUDIT_READ


@dataclass(frozen=True, slots=True)
class PolicyTables:
    """A source's own ``emergencies`` and ``audit_log`` tables."""

    emergencies: sa.Table
    audit_log: sa.Table


def define_policy_tables(metadata: sa.MetaData) -> PolicyTables:
    """The ``emergencies`` and ``audit_log`` tables in ``metadata``."""
    return PolicyTables(define_emergency_table(metadata), define_audit_table(metadata))


@dataclass(kw_only=True)
class SourceContext(BaseContext):
    """The caller, the owner's policy in the current mode, and the audit log of one request."""

    db: Database
    caller: Caller
    enforcer: PolicyEnforcer
    tables: PolicyTables
    audit: AuditWriter
    """The source's one writer of ``tables.audit_log``."""
    cursor_secret: bytes
    """Signs the source's paging cursors."""
    purpose: str = ""
    policy_ledger: DisclosureLedger | None = field(default=None, init=False)
    _mode: PolicyMode | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        super().__init__()
        self.policy_ledger = self.enforcer.ledger(self.caller, self.purpose)

    @property
    def owner_org(self) -> str:
        """The organisation whose data this source serves."""
        return self.enforcer.owner.org

    def require_emergency_authority(self) -> str:
        """The subject, if the caller is a department of this district allowed to declare."""
        caller = self.caller
        district = self.enforcer.owner.district
        if caller.org_kind is not OrgKind.DEPARTMENT or caller.district != district:
            raise Forbidden("only a department of this source's district may declare emergencies")
        if not caller.has_scope(DECLARE_SCOPE):
            raise Forbidden(f"the token lacks the scope {DECLARE_SCOPE!r}", scope=DECLARE_SCOPE)
        return caller.subject

    @property
    def person(self) -> str | None:
        """The person signed in (the token's ``sub``); None for a machine client."""
        return self.caller.person

    async def record_written(
        self, session: AsyncSession, action: str, spec: RecordSpec, row: RowMixin
    ) -> None:
        """A ``record.<action>`` row in the audit log, in the writing transaction.

        The row names the client and the subject (the person when one signed in), so
        every change of a record says who made it.
        """
        entry = AuditEntry(
            action=f"record.{action}",
            owner=self.owner_org,
            caller=self.caller,
            record_type=spec.type_name,
            count=1,
            decision={"id": row.id, "version": row.version},
            purpose=self.purpose,
        )
        await append_many(session, self.tables.audit_log, [entry])

    def require_read(self, spec: RecordSpec) -> None:
        """Pass if the caller's token grants one of ``spec``'s read scopes."""
        require_read_scope(self.caller.scopes, spec)

    def require_auditor(self) -> None:
        """Pass if the caller is the owner's own staff with ``audit:read``."""
        if self.caller.org != self.owner_org:
            raise Forbidden("only the owner's own staff may read its audit log")
        if not self.caller.has_scope(AUDIT_SCOPE):
            raise Forbidden(f"the token lacks the scope {AUDIT_SCOPE!r}", scope=AUDIT_SCOPE)

    async def policy_mode(self) -> PolicyMode:
        """Emergency mode while an emergency is active here (read once per request)."""
        if self._mode is None:
            async with self.db.sessions() as session:
                self._mode = policy_mode(await active_emergencies(session, self.tables.emergencies))
        return self._mode

    async def disclose(
        self, spec: RecordSpec, records: list[dict[str, Any]], *, returned: bool = True
    ) -> list[dict[str, Any] | None]:
        """What the caller may see of each record, per the owner's policy in the current mode.

        ``returned``: these records go to the caller as shown, so they count in the
        request's reasons and audit; otherwise only the ones policy withheld count
        (for the audit, which the caller never sees).
        """
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
            if returned:
                self.policy_ledger.add(page)
            else:
                self.policy_ledger.withhold(spec.type_name, page.withheld)
        return page.records

    @property
    def aggregate_area(self) -> str:
        """The county-level code of the owner: the ``area`` of this source's totals."""
        return self.enforcer.owner.district or self.owner_org

    async def aggregable(self, spec: RecordSpec, records: list[dict[str, Any]]) -> list[bool]:
        """Whether each record counts in the caller's totals (Cedar ``read_aggregate``)."""
        mode = await self.policy_mode()
        owner = self.enforcer.owner
        relation = owner.relation_of(self.caller)
        return [
            self.enforcer.engine.may_aggregate(
                self.caller,
                relation,
                owner,
                spec.type_name,
                mode=mode.mode,
                purpose=self.purpose,
                emergency_level=mode.level,
                record_facts=facts_of(spec.type_name, record),
            )
            for record in records
        ]

    async def record_audit(self, entries: Sequence[AuditEntry]) -> None:
        """Append ``entries`` to the audit log; return once they are committed."""
        await self.audit.append(entries)
