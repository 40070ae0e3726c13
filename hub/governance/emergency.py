"""Emergencies declared once at the hub for an area, relayed to every node and adapter in it.

Each source keeps, enforces and audits its own declaration (``policies/source``); the
hub decides where to send it, never retries a declaration blindly, and says per
node what happened. It audits the act in its own log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from hub.governance.audit import record
from hub.governance.ports import GovernanceContext
from policies.audit import AuditEntry
from schema.enums import OrgKind, SeverityLevel
from schema.errors import Forbidden, InvalidInput
from schema.runtime.wellknown import SourceKind
from schema.scopes import Scope

__all__ = ["mutation_fields"]

DECLARE_SCOPE = Scope.EMERGENCY_DECLARE
MAX_AREAS = 50
# Sources that keep and enforce their own emergencies: nodes and adapter services.
_RELAYED = frozenset({SourceKind.COMMUNITY, SourceKind.ADAPTER})

_DECLARE = """mutation($level: SeverityLevel!, $reason: String!, $expiresAt: DateTime!) {
  declareEmergency(level: $level, reason: $reason, expiresAt: $expiresAt) { id active } }"""
_END = "mutation($id: ID!) { endEmergency(id: $id) { id active } }"


@strawberry.type(description="What one node answered to a relayed emergency act")
class EmergencyRelay:
    source: str
    status: str = strawberry.field(description="ok, or how the node failed (timeout, error, ...)")
    emergency_id: str | None
    active: bool | None
    message: str | None


def _authority(context: GovernanceContext) -> None:
    caller = context.caller
    if caller.org_kind is not OrgKind.DEPARTMENT or not caller.has_scope(DECLARE_SCOPE):
        raise Forbidden("only a department with emergency:declare may declare an emergency")


async def _relay(
    context: GovernanceContext, targets: list[str], document: str, variables: dict[str, Any]
) -> list[EmergencyRelay]:
    answers = []
    for source_id in targets:
        field = "declareEmergency" if "declareEmergency" in document else "endEmergency"
        reply = await context.call_source(source_id, document, variables, field_name=field)
        payload, report = reply.payload, reply.report
        answers.append(
            EmergencyRelay(
                source=source_id,
                status=str(report.status),
                emergency_id=None if payload is None else str(payload.get("id")),
                active=None if payload is None else bool(payload.get("active")),
                message=report.message,
            )
        )
    return answers


async def declare_emergency(
    info: Info[GovernanceContext, None],
    area: list[str],
    level: SeverityLevel,
    reason: str,
    expires_at: datetime,
) -> list[EmergencyRelay]:
    """Declare an emergency for every community whose division code starts with an ``area`` code."""
    context = info.context
    _authority(context)
    if (
        not area
        or len(area) > MAX_AREAS
        or not all(a.isdigit() and 6 <= len(a) <= 12 for a in area)
    ):
        raise InvalidInput(
            f"area is 1 to {MAX_AREAS} division codes (6 to 12 digits)",
            code="INVALID_AREA",
            field="area",
        )
    targets = sorted(
        s.id
        for s in context.sources()
        if s.kind in _RELAYED and s.usable and any(s.division_code.startswith(a) for a in area)
    )
    answers = await _relay(
        context, targets, _DECLARE,
        {"level": level.name, "reason": reason, "expiresAt": expires_at.isoformat()},
    )  # fmt: skip
    await record(
        context.db,
        [
            AuditEntry(
                action="declare_emergency",
                owner=answer.source,
                caller=context.caller,
                decision={"level": level.value, "reason": reason, "status": answer.status,
                          "emergency": answer.emergency_id, "expires_at": expires_at.isoformat()},
                purpose=context.purpose or "",
            )
            for answer in answers
        ],
    )  # fmt: skip
    return answers


async def end_emergency(
    info: Info[GovernanceContext, None], source: str, id: strawberry.ID
) -> EmergencyRelay:
    """End an emergency a node holds (its id as ``declareEmergency`` returned it)."""
    context = info.context
    _authority(context)
    if source not in {s.id for s in context.sources()}:
        raise InvalidInput(f"no source {source}", code="NOT_FOUND", field="source")
    [answer] = await _relay(context, [source], _END, {"id": str(id)})
    await record(
        context.db,
        [
            AuditEntry(
                action="end_emergency",
                owner=source,
                caller=context.caller,
                decision={"emergency": str(id), "status": answer.status},
                purpose=context.purpose or "",
            )
        ],
    )
    return answer


def mutation_fields() -> dict[str, Any]:
    """``declareEmergency`` and ``endEmergency`` (departments with ``emergency:declare``)."""
    return {
        "declare_emergency": strawberry.mutation(
            resolver=declare_emergency,
            description="Declare an emergency for an area; relayed to each community node in it",
        ),
        "end_emergency": strawberry.mutation(
            resolver=end_emergency, description="End an emergency one node holds"
        ),
    }
