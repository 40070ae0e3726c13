"""The hub's own hash-chained audit log: every relay of another organisation's data."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import strawberry
from strawberry.types import Info

from hub.db import metadata
from hub.governance.ports import GovernanceContext, RelayedReport
from policies.audit import AuditEntry, AuditWriter, append_many, define_audit_table
from policies.caller import Caller
from schema.api.pagination import Connection, Edge, PageInfo, page_size
from schema.errors import InvalidCursor
from schema.runtime.db import Database
from schema.scopes import Scope

__all__ = ["AUDIT_LOG", "RelayLog", "query_fields", "record", "relay_entries"]

log = logging.getLogger("linli.hub.audit")

AUDIT_LOG = define_audit_table(metadata)


async def record(db: Database, entries: Iterable[AuditEntry]) -> None:
    """Append ``entries`` to the hub's log in one transaction."""
    entries = list(entries)
    if not entries:
        return
    async with db.transaction() as session:
        await append_many(session, AUDIT_LOG, entries)


def relay_entries(
    caller: Caller,
    record_type: str,
    reports: Iterable[RelayedReport],
    purpose: str | None,
) -> list[AuditEntry]:
    """One row per source whose records the hub passed on to ``caller`` (not its own data)."""
    return [
        AuditEntry(
            action="relay",
            owner=report.source,
            caller=caller,
            record_type=record_type,
            count=report.count,
            decision={
                "status": str(report.status),
                "as_of": report.as_of.isoformat() if report.as_of else None,
            },
            purpose=purpose or "",
        )
        for report in reports
        if report.count and report.source != caller.org
    ]


class RelayLog:
    """The hook the federation calls after each relay: its rows through one group-commit writer."""

    def __init__(self, db: Database) -> None:
        self.writer = AuditWriter(db, AUDIT_LOG)

    async def __call__(
        self,
        caller: Caller,
        record_type: str,
        reports: Sequence[RelayedReport],
        purpose: str | None,
    ) -> None:
        """Log what was passed on to ``caller``; return once it is committed."""
        await self.writer.append(relay_entries(caller, record_type, reports, purpose))


AUDIT_SCOPE = Scope.AUDIT_READ


@strawberry.type(description="One row of the hub's audit log")
class HubDisclosure:
    seq: int
    at: datetime
    action: str
    owner: str
    record_type: str | None
    count: int
    client_id: str
    subject: str = strawberry.field(description="The token's sub: the person, or the client")
    org: str
    org_kind: str
    actor: str | None
    purpose: str
    decision: str = strawberry.field(description="The decision, as canonical JSON")
    hash: str
    person: str | None = strawberry.field(
        default=None, description="The person signed in, when a person (not a client) asked"
    )

    @classmethod
    def of(cls, row: sa.RowMapping) -> HubDisclosure:
        names = [n for n in cls.__annotations__ if n != "person"]
        person = row["subject"] if row["subject"] != row["client_id"] else None
        return cls(**{n: row[n] for n in names}, person=person)


async def hub_disclosures(
    info: Info[GovernanceContext, None], first: int | None = None, after: str | None = None
) -> Connection[HubDisclosure] | None:
    """What the hub passed on of the caller's organisation's data (scope audit:read)."""
    context = info.context
    caller = context.require_scope(AUDIT_SCOPE)
    owners = {caller.org} | {s.id for s in context.sources() if s.division_code == caller.org}
    size = page_size(first)
    try:
        start = int(after) if after is not None else 0
    except ValueError as exc:
        raise InvalidCursor("malformed cursor") from exc
    table = AUDIT_LOG
    statement = (
        sa.select(table)
        .where(table.c.owner.in_(owners), table.c.seq > start)
        .order_by(table.c.seq)
        .limit(size + 1)
    )
    async with context.db.sessions() as session:
        rows = list((await session.execute(statement)).mappings())
    edges = [
        Edge(
            cursor=str(row["seq"]),
            node=HubDisclosure.of(row),
        )
        for row in rows[:size]
    ]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=len(rows) > size, end_cursor=edges[-1].cursor if edges else None
        ),
    )


def query_fields() -> dict[str, Any]:
    """``hubDisclosures``."""
    return {"hub_disclosures": strawberry.field(resolver=hub_disclosures)}
