"""``disclosures``: a source's audit log, for the owner's own staff with ``audit:read``."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

import sqlalchemy as sa
import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from policies.audit import AuditRecord
from policies.source.context import SourceContext
from schema.api.pagination import Connection, Edge, PageInfo, page_size
from schema.errors import InvalidCursor

__all__ = ["AuditEntry", "query_fields"]

_CURSOR_PREFIX = "audit:"


@strawberry.type(description="One row of the hash-chained audit log")
class AuditEntry:
    seq: int
    at: datetime
    action: str = strawberry.field(
        description="disclose, deny_by_id, declare_emergency, end_emergency"
    )
    owner: str = strawberry.field(description="Whose data")
    record_type: str | None
    count: int
    client_id: str
    subject: str
    org: str
    org_kind: str
    actor: str | None = strawberry.field(description="Who called on the caller's behalf (act)")
    purpose: str
    decision: JSON
    prev_hash: str
    hash: str


def _entry(record: AuditRecord) -> AuditEntry:
    return AuditEntry(
        seq=record.seq,
        at=record.at,
        action=record.action,
        owner=record.owner,
        record_type=record.record_type,
        count=record.count,
        client_id=record.client_id,
        subject=record.subject,
        org=record.org,
        org_kind=record.org_kind,
        actor=record.actor,
        purpose=record.purpose,
        decision=record.decision_value,
        prev_hash=record.prev_hash,
        hash=record.hash,
    )


def _cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{seq}".encode()).decode().rstrip("=")


def _seq_after(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()).decode()
        if not raw.startswith(_CURSOR_PREFIX):
            raise ValueError
        return int(raw.removeprefix(_CURSOR_PREFIX))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidCursor("malformed cursor") from exc


async def disclosures(
    info: Info[SourceContext, None], first: int | None = None, after: str | None = None
) -> Connection[AuditEntry]:
    """The audit log, newest first (own staff, scope audit:read)."""
    context = info.context
    context.require_auditor()
    size = page_size(first)
    table = context.tables.audit_log
    statement = sa.select(table).order_by(table.c.seq.desc()).limit(size + 1)
    if after is not None:
        statement = statement.where(table.c.seq < _seq_after(after))
    async with context.db.sessions() as session:
        rows = (await session.execute(statement)).mappings().all()
    records = [AuditRecord.from_row(row) for row in rows[:size]]
    edges = [Edge(cursor=_cursor(r.seq), node=_entry(r)) for r in records]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=len(rows) > size,
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )


def query_fields() -> dict[str, object]:
    """``disclosures``."""
    return {
        "disclosures": strawberry.field(
            resolver=disclosures,
            description="Who was shown what of the owner's data (own staff, audit:read)",
        )
    }
