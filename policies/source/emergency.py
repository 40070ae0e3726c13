"""Emergency mode at a source: declare, end and list emergencies (GraphQL fields).

A department of the source's district declares directly, or through the hub, which
relays its own ``declareEmergency`` to the sources in the area.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import sqlalchemy as sa
import strawberry
from strawberry.types import Info

from policies.audit import AuditEntry, append
from policies.emergency import MAX_REASON
from policies.emergency import Emergency as EmergencyRecord
from policies.source.context import SourceContext
from schema.enums import SeverityLevel
from schema.errors import InvalidInput, NotFound
from schema.ids import new_local_id
from schema.storage import utcnow

__all__ = ["MAX_DURATION", "Emergency", "mutation_fields", "query_fields"]

MAX_DURATION = timedelta(days=90)
MAX_LISTED = 200


@strawberry.type(description="An emergency declared for this source's area")
class Emergency:
    id: strawberry.ID
    level: SeverityLevel
    reason: str
    declared_at: datetime
    expires_at: datetime
    declared_by_org: str
    declared_by: str
    ended_at: datetime | None
    ended_by: str | None
    active: bool = strawberry.field(description="In force now: not ended and not expired")


def _graphql(record: EmergencyRecord) -> Emergency:
    return Emergency(
        id=strawberry.ID(record.id),
        level=record.level,
        reason=record.reason,
        declared_at=record.declared_at,
        expires_at=record.expires_at,
        declared_by_org=record.declared_by_org,
        declared_by=record.declared_by,
        ended_at=record.ended_at,
        ended_by=record.ended_by,
        active=record.active_at(utcnow()),
    )


def _decision(record: EmergencyRecord) -> dict[str, str]:
    return {
        "emergency": record.id,
        "level": record.level.value,
        "reason": record.reason,
        "expires_at": record.expires_at.isoformat(),
    }


async def declare_emergency(
    info: Info[SourceContext, None], level: SeverityLevel, reason: str, expires_at: datetime
) -> Emergency:
    """Declare an emergency (a department of this district, scope emergency:declare)."""
    context = info.context
    subject = context.require_emergency_authority()
    reason = reason.strip()
    if not reason:
        raise InvalidInput("reason must not be empty", code="STRING_TOO_SHORT", field="reason")
    if len(reason) > MAX_REASON:
        raise InvalidInput(
            f"reason is over {MAX_REASON} characters", code="STRING_TOO_LONG", field="reason"
        )
    if expires_at.tzinfo is None:
        raise InvalidInput(
            "expiresAt needs a time zone", code="INVALID_DATETIME", field="expiresAt"
        )
    now = utcnow()
    if not now < expires_at <= now + MAX_DURATION:
        raise InvalidInput(
            f"expiresAt must be in the future and at most {MAX_DURATION.days} days away",
            code="OUT_OF_RANGE",
            field="expiresAt",
        )
    record = EmergencyRecord(
        id=new_local_id(),
        level=SeverityLevel(level),
        reason=reason,
        declared_at=now,
        expires_at=expires_at,
        declared_by_org=context.caller.org,
        declared_by=subject,
    )
    async with context.db.transaction() as session:
        await session.execute(sa.insert(context.tables.emergencies).values(**_row(record)))
        await append(
            session,
            context.tables.audit_log,
            AuditEntry(
                action="declare_emergency",
                owner=context.owner_org,
                caller=context.caller,
                decision=_decision(record),
                purpose=context.purpose,
                at=now,
            ),
        )
    return _graphql(record)


def _row(record: EmergencyRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "level": record.level.value,
        "reason": record.reason,
        "declared_at": record.declared_at,
        "expires_at": record.expires_at,
        "declared_by_org": record.declared_by_org,
        "declared_by": record.declared_by,
        "ended_at": record.ended_at,
        "ended_by": record.ended_by,
    }


async def end_emergency(info: Info[SourceContext, None], id: strawberry.ID) -> Emergency:
    """End an emergency before it expires (same authority as declaring)."""
    context = info.context
    subject = context.require_emergency_authority()
    now = utcnow()
    async with context.db.transaction() as session:
        table = context.tables.emergencies
        row = (await session.execute(sa.select(table).where(table.c.id == str(id)))).first()
        if row is None:
            raise NotFound(f"no emergency with id {id}", type="Emergency")
        record = EmergencyRecord.from_row(row)
        if not record.active_at(now):
            return _graphql(record)  # already over: nothing to end, nothing to audit
        await session.execute(
            sa.update(table).where(table.c.id == record.id).values(ended_at=now, ended_by=subject)
        )
        await append(
            session,
            context.tables.audit_log,
            AuditEntry(
                action="end_emergency",
                owner=context.owner_org,
                caller=context.caller,
                decision=_decision(record),
                purpose=context.purpose,
                at=now,
            ),
        )
    return _graphql(replace(record, ended_at=now, ended_by=subject))


async def emergencies(
    info: Info[SourceContext, None], active_only: bool = False
) -> list[Emergency]:
    """Emergencies declared here, newest first."""
    context = info.context
    table = context.tables.emergencies
    statement = sa.select(table).order_by(table.c.declared_at.desc())
    if active_only:
        now = utcnow()
        statement = statement.where(table.c.ended_at.is_(None), table.c.expires_at > now)
    async with context.db.sessions() as session:
        rows = (await session.execute(statement.limit(MAX_LISTED))).all()
    return [_graphql(EmergencyRecord.from_row(row)) for row in rows]


def query_fields() -> dict[str, object]:
    """``emergencies``."""
    return {
        "emergencies": strawberry.field(
            resolver=emergencies, description="Emergencies declared for this source, newest first"
        )
    }


def mutation_fields() -> dict[str, object]:
    """``declareEmergency`` and ``endEmergency``."""
    return {
        "declare_emergency": strawberry.mutation(
            resolver=declare_emergency,
            description="Declare an emergency (department of this district, emergency:declare)",
        ),
        "end_emergency": strawberry.mutation(
            resolver=end_emergency, description="End an emergency before it expires"
        ),
    }
