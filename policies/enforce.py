"""Policy enforcement on every read of a source's own data, with the reasons and the audit.

A source (a community node, an adapter service) builds one ``PolicyEnforcer``
for its owner and, per request, a ``DisclosureLedger``. Its GraphQL context
implements ``PolicyContext``; its schema adds ``PolicyExtension``, which puts
the reasons per record type and field into ``extensions.policy`` and writes
one audit row per (request, record type) disclosed to another organisation,
one per record type of which policy withheld everything the request touched,
one per by-id request that policy answered with NOT_FOUND, and one per request
whose fields were refused (FORBIDDEN, UNAUTHENTICATED).

    context.disclose(spec, records)          # the RecordContext hook
      -> enforcer.disclose(caller, type, records, mode=..., purpose=...)
      -> ledger.add(page)                    # reasons and counts of the request
    PolicyExtension (after execution)
      -> ledger.deny_by_id(...) for each HiddenByPolicy error
      -> context.record_audit(ledger.audit_entries())   # fails the request if it fails
      -> extensions.policy = ledger.reasons()
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from os import PathLike
from typing import Any, Final, Protocol

from strawberry.extensions import SchemaExtension
from strawberry.utils.str_converters import to_camel_case

from policies.audit import AuditEntry
from policies.caller import Caller
from policies.engine import Mode, Owner, PolicyEngine
from policies.mask import disclose_page
from schema.enums import SeverityLevel
from schema.errors import Forbidden, LinliError, Unauthenticated
from schema.runtime.db import storage_failure
from schema.store.resolvers import HiddenByPolicy

__all__ = [
    "AuditUnavailable",
    "DisclosureLedger",
    "PageDisclosure",
    "PolicyContext",
    "PolicyEnforcer",
    "PolicyExtension",
]

log = logging.getLogger("linli.policies.enforce")

WITHHELD_CODE: Final = "WITHHELD_BY_POLICY"
"""The code of an audit row for records policy kept from a caller."""


class AuditUnavailable(LinliError):
    """The audit log could not be written, so nothing is disclosed."""

    code = "AUDIT_UNAVAILABLE"


@dataclass(frozen=True, slots=True)
class PageDisclosure:
    """What one read of one record type disclosed."""

    record_type: str
    records: list[dict[str, Any] | None]  # None: withheld
    reasons: Mapping[str, str]  # GraphQL field name -> why it is hidden or approximated
    shown: int
    withheld: int


def _merge(reasons: Sequence[Mapping[str, str]]) -> dict[str, str]:
    by_field: dict[str, set[str]] = {}
    for one in reasons:
        for name, reason in one.items():
            by_field.setdefault(to_camel_case(name), set()).add(reason)
    return {name: "; ".join(sorted(found)) for name, found in sorted(by_field.items())}


class PolicyEnforcer:
    """The owner's policy applied to reads of the owner's records."""

    def __init__(self, owner: Owner, engine: PolicyEngine) -> None:
        self.owner = owner
        self.engine = engine

    @classmethod
    def load(cls, owner: Owner, policy_file: str | PathLike[str] | None = None) -> PolicyEnforcer:
        """The baseline plus the owner's policy file; ``PolicyError`` names a bad file."""
        return cls(owner, PolicyEngine(policy_file))

    async def disclose(
        self,
        caller: Caller,
        record_type: str,
        records: Sequence[Mapping[str, Any]],
        *,
        mode: Mode,
        purpose: str = "",
        emergency_level: SeverityLevel | None = None,
    ) -> PageDisclosure:
        """Each record as ``caller`` may see it (None: absent), with the reasons per field."""
        page = disclose_page(
            records,
            record_type,
            caller,
            owner=self.owner,
            engine=self.engine,
            mode=mode,
            purpose=purpose,
            emergency_level=emergency_level,
        )
        shown = [record for record, _ in page]
        visible = [reasons for record, reasons in page if record is not None]
        return PageDisclosure(
            record_type=record_type,
            records=shown,
            reasons=_merge(visible),
            shown=len(visible),
            withheld=len(page) - len(visible),
        )

    def ledger(self, caller: Caller, purpose: str = "") -> DisclosureLedger:
        """A ledger for one request of ``caller``."""
        return DisclosureLedger(owner=self.owner.org, caller=caller, purpose=purpose)


@dataclass
class _Tally:
    shown: int = 0
    withheld: int = 0
    reasons: list[Mapping[str, str]] = field(default_factory=list)


@dataclass
class DisclosureLedger:
    """What one request was shown of the owner's data, per record type."""

    owner: str
    caller: Caller
    purpose: str = ""
    _types: dict[str, _Tally] = field(default_factory=dict)
    _denied: list[tuple[str, str]] = field(default_factory=list)
    _refused: list[tuple[str, str]] = field(default_factory=list)

    def add(self, page: PageDisclosure) -> None:
        """Count one disclosure of the request."""
        tally = self._types.setdefault(page.record_type, _Tally())
        tally.shown += page.shown
        tally.withheld += page.withheld
        if page.shown:
            tally.reasons.append(page.reasons)

    def withhold(self, record_type: str, count: int) -> None:
        """Count records the policy kept from the caller, outside any page it was shown."""
        self._types.setdefault(record_type, _Tally()).withheld += count

    def deny_by_id(self, record_type: str, global_id: str) -> None:
        """Note a by-id request answered NOT_FOUND because policy hides the record."""
        self._denied.append((record_type, global_id))

    def reasons(self) -> dict[str, dict[str, str]]:
        """Per record type, each field the caller got hidden or approximated, and why."""
        return {name: _merge(tally.reasons) for name, tally in self._types.items()}

    def refuse(self, code: str, path: str) -> None:
        """Note a field of the request refused to the caller (an error with ``code``)."""
        self._refused.append((code, path))

    def audit_entries(self) -> list[AuditEntry]:
        """The audit rows the request calls for (``disclosure_entries`` and ``refusal_entries``)."""
        return [*self.disclosure_entries(), *self.refusal_entries()]

    def disclosure_entries(self) -> list[AuditEntry]:
        """One ``disclose`` row per record type shown to another organisation.

        Whether there are any depends only on what the caller was shown, so a request
        whose rows cannot be written may fail without telling anything hidden.
        """
        entries: list[AuditEntry] = []
        if self.caller.org == self.owner:
            return entries
        for record_type, tally in self._types.items():
            if not tally.shown:
                continue  # nothing of this type left the owner
            fields = _merge(tally.reasons)
            approximated = [f for f, r in fields.items() if r.startswith("approximated")]
            hidden = [f for f in fields if f not in approximated]
            entries.append(
                AuditEntry(
                    action="disclose",
                    owner=self.owner,
                    caller=self.caller,
                    record_type=record_type,
                    count=tally.shown,
                    decision={
                        "shown": tally.shown,
                        "withheld": tally.withheld,
                        "approximated": approximated,
                        "hidden": hidden,
                    },
                    purpose=self.purpose,
                )
            )
        return entries

    def refusal_entries(self) -> list[AuditEntry]:
        """Rows for what policy kept from the caller: withheld records, hidden ids, refusals.

        ``withhold``: one row per record type of which the request was shown nothing
        but policy withheld records (the count, code ``WITHHELD_BY_POLICY``);
        ``deny_by_id``: by-id requests answered NOT_FOUND because policy hides the
        record; ``refuse``: one row per request whose fields were refused (the codes
        and paths). Whether there are any depends on hidden data, so writing them must
        never change the answer (``PolicyExtension`` logs a failure and answers).
        """
        entries: list[AuditEntry] = []
        if self.caller.org != self.owner:
            for record_type, tally in self._types.items():
                if tally.shown or not tally.withheld:
                    continue
                entries.append(
                    AuditEntry(
                        action="withhold",
                        owner=self.owner,
                        caller=self.caller,
                        record_type=record_type,
                        count=tally.withheld,
                        decision={"withheld": tally.withheld, "code": WITHHELD_CODE},
                        purpose=self.purpose,
                    )
                )
        by_type: dict[str, list[str]] = {}
        for record_type, global_id in self._denied:
            by_type.setdefault(record_type, []).append(global_id)
        for record_type, ids in by_type.items():
            entries.append(
                AuditEntry(
                    action="deny_by_id",
                    owner=self.owner,
                    caller=self.caller,
                    record_type=record_type,
                    count=len(ids),
                    decision={"ids": sorted(set(ids))},
                    purpose=self.purpose,
                )
            )
        if self._refused:
            codes = sorted({code for code, _ in self._refused})
            entries.append(
                AuditEntry(
                    action="refuse",
                    owner=self.owner,
                    caller=self.caller,
                    count=len(self._refused),
                    decision={"codes": codes, "paths": sorted({p for _, p in self._refused})},
                    purpose=self.purpose,
                )
            )
        return entries


class PolicyContext(Protocol):
    """What ``PolicyExtension`` needs from a service's GraphQL context."""

    @property
    def policy_ledger(self) -> DisclosureLedger | None:
        """The request's ledger (None: nothing of the owner's was read)."""
        ...

    async def record_audit(self, entries: Sequence[AuditEntry]) -> None:
        """Append ``entries`` to the service's audit log, committed before returning."""
        ...


class PolicyExtension(SchemaExtension):
    """Reasons in ``extensions.policy``; the request's audit rows written before it answers."""

    _audit_failed = False

    async def on_execute(self) -> AsyncIterator[None]:
        yield
        context: PolicyContext | None = self.execution_context.context
        ledger = getattr(context, "policy_ledger", None)
        if context is None or not isinstance(ledger, DisclosureLedger):
            return
        result = self.execution_context.result
        for error in getattr(result, "errors", None) or []:
            original = error.original_error
            if isinstance(original, HiddenByPolicy):
                ledger.deny_by_id(original.type_name, original.global_id)
            elif isinstance(original, Forbidden | Unauthenticated):
                ledger.refuse(original.code, ".".join(str(p) for p in error.path or ()))
        disclosed = ledger.disclosure_entries()
        entries = [*disclosed, *ledger.refusal_entries()]
        if not entries:
            return
        try:
            await context.record_audit(entries)
        except Exception as exc:
            if not disclosed:
                # Only what policy kept back: failing now would tell that something was.
                log.exception("audit log write failed for withheld or refused reads")
                return
            self._audit_failed = True
            failure = storage_failure(exc)
            if failure is not None:  # a busy or lost database: say so, and when to retry
                log.warning("audit log write failed (%s); withholding the answer", failure.code)
                raise failure from exc
            log.exception("audit log write failed; withholding the answer")
            raise AuditUnavailable("the audit log is unavailable; nothing was disclosed") from exc

    def get_results(self) -> dict[str, Any]:
        context = self.execution_context.context
        ledger = getattr(context, "policy_ledger", None)
        result = self.execution_context.result
        if (
            self._audit_failed
            or not isinstance(ledger, DisclosureLedger)
            or getattr(result, "data", None) is None
        ):
            return {}
        reasons = ledger.reasons()
        return {"policy": reasons} if reasons else {}
