"""The audit log: an append-only, hash-chained record of who was shown whose data.

Each row names who asked (client, organisation, its kind, the acting hub),
what was done (``disclose``, ``deny_by_id``, ``declare_emergency``, ...),
whose data, how much, the decision and the stated purpose. Rows carry a
consecutive ``seq`` and ``hash = sha256(canonical JSON of the row + prev_hash)``,
so changing, removing or reordering any stored row breaks the chain at that
row, which ``verify`` names.

The chain alone cannot show that its last rows were cut off, or that a row
was changed and every later hash recomputed. So each source reports the
``(seq, hash)`` of its new rows to the hub (``policies.source.anchors``), which
keeps them as a witness and records each report in its own chain
(``hub.governance.anchors``). ``verify_chain(url, witness=...)`` then names the
first row that is missing or differs from what the hub witnessed.

Appends never fork the chain: the tip is read under a lock held until the
transaction ends (``pg_advisory_xact_lock`` on PostgreSQL, the database write
lock on SQLite) and ``seq`` is the primary key, so a second row with the same
``seq`` cannot commit.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from policies.caller import Caller
from schema.runtime.db import Database, lock_table
from schema.storage import UTCDateTime, utcnow

__all__ = [
    "GENESIS_HASH",
    "AuditEntry",
    "AuditLogUnreadable",
    "AuditRecord",
    "AuditWriter",
    "ChainHead",
    "ChainReport",
    "append",
    "append_many",
    "chain_head",
    "define_audit_table",
    "hashes_after",
    "row_hash",
    "verify",
    "verify_chain",
]

GENESIS_HASH: Final = "0" * 64
"""The ``prev_hash`` of the first row."""

TABLE_NAME: Final = "audit_log"
MAX_PURPOSE: Final = 200

# The hashed fields, in the order they are stored; the hash covers them and prev_hash.
_HASHED: Final = (
    "seq",
    "at",
    "action",
    "owner",
    "record_type",
    "count",
    "client_id",
    "subject",
    "org",
    "org_kind",
    "actor",
    "purpose",
    "decision",
    "prev_hash",
)


def define_audit_table(metadata: sa.MetaData) -> sa.Table:
    """The ``audit_log`` table in ``metadata`` (each service keeps its own)."""
    return sa.Table(
        TABLE_NAME,
        metadata,
        sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("record_type", sa.String(40), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(200), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("org", sa.String(64), nullable=False),
        sa.Column("org_kind", sa.String(20), nullable=False),
        sa.Column("actor", sa.String(200), nullable=True),
        sa.Column("purpose", sa.String(MAX_PURPOSE), nullable=False),
        sa.Column("decision", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
    )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One thing to log, before it has a place in the chain."""

    action: str
    owner: str
    caller: Caller
    record_type: str | None = None
    count: int = 0
    decision: Mapping[str, Any] = field(default_factory=dict)
    purpose: str = ""
    at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One stored row of the chain."""

    seq: int
    at: datetime
    action: str
    owner: str
    record_type: str | None
    count: int
    client_id: str
    subject: str
    org: str
    org_kind: str
    actor: str | None
    purpose: str
    decision: str  # canonical JSON
    prev_hash: str
    hash: str

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> AuditRecord:
        """The record of one ``audit_log`` row."""
        return cls(**{name: row[name] for name in (*_HASHED, "hash")})

    @property
    def decision_value(self) -> Any:
        """The decision summary as data."""
        return json.loads(self.decision)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def row_hash(fields: Mapping[str, Any]) -> str:
    """sha256 over the canonical JSON of a row's hashed fields (``prev_hash`` included)."""
    payload = {name: fields[name] for name in _HASHED}
    at = payload["at"]
    payload["at"] = at.isoformat() if isinstance(at, datetime) else at
    return hashlib.sha256(_canonical(payload).encode("utf-8")).hexdigest()


async def _lock_tip(session: AsyncSession, table: sa.Table) -> None:
    """Hold the chain's tip until the transaction ends."""
    await lock_table(session, table)


async def append(session: AsyncSession, table: sa.Table, entry: AuditEntry) -> AuditRecord:
    """Add ``entry`` at the end of the chain, in the session's transaction (which commits it)."""
    [record] = await append_many(session, table, [entry])
    return record


async def append_many(
    session: AsyncSession, table: sa.Table, entries: Sequence[AuditEntry]
) -> list[AuditRecord]:
    """Add ``entries`` in order at the end of the chain: one lock, one read, one insert."""
    if not entries:
        return []
    await _lock_tip(session, table)
    head = await chain_head(session, table)
    seq, prev_hash = head.seq, head.hash
    rows: list[dict[str, Any]] = []
    for entry in entries:
        caller = entry.caller
        seq += 1
        fields: dict[str, Any] = {
            "seq": seq,
            # verify re-reads the time as UTC: hash it in the form it is read back.
            "at": entry.at.astimezone(UTC),
            "action": entry.action,
            "owner": entry.owner,
            "record_type": entry.record_type,
            "count": entry.count,
            "client_id": caller.client_id,
            "subject": caller.subject,
            "org": caller.org,
            "org_kind": caller.org_kind.value,
            # The whole chain when a higher hub's call went through (``hub-110105 < hub-110100``).
            "actor": (" < ".join(caller.actors)[:200] or None) if caller.actors else caller.actor,
            "purpose": entry.purpose[:MAX_PURPOSE],
            "decision": _canonical(entry.decision),
            "prev_hash": prev_hash,
        }
        fields["hash"] = prev_hash = row_hash(fields)
        rows.append(fields)
    await session.execute(sa.insert(table), rows)
    return [AuditRecord(**fields) for fields in rows]


class AuditWriter:
    """The one writer of an audit log in this process: appends in order, in group commits.

    Requests hand their entries to ``append`` and wait until they are committed, so
    a disclosure's rows are durable before its answer leaves. Whatever queued while a
    commit was running goes into the next one together: one lock, one read and one
    insert for many requests, instead of each request waiting on the others' locks.
    (Several processes on one database still serialise on the chain's lock.)
    """

    def __init__(self, db: Database, table: sa.Table) -> None:
        self.db = db
        self.table = table
        self.commits = 0
        self._queue: list[tuple[Sequence[AuditEntry], asyncio.Future[None]]] = []
        self._draining: asyncio.Task[None] | None = None

    async def append(self, entries: Sequence[AuditEntry]) -> None:
        """Add ``entries`` at the end of the chain; return once they are committed."""
        if not entries:
            return
        done = asyncio.get_running_loop().create_future()
        self._queue.append((entries, done))
        if self._draining is None or self._draining.done():
            self._draining = asyncio.create_task(self._drain())
        await done

    async def _drain(self) -> None:
        # No await between the emptiness check and returning: an append that comes
        # later sees this task done and starts the next one.
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                async with self.db.transaction() as session:
                    await append_many(session, self.table, [e for es, _ in batch for e in es])
            except BaseException as exc:
                failure = (
                    exc if isinstance(exc, Exception) else RuntimeError("audit writer stopped")
                )
                for _, done in batch:
                    if not done.done():
                        done.set_exception(failure)
                if failure is not exc:
                    raise
            else:
                self.commits += 1
                for _, done in batch:
                    if not done.done():
                        done.set_result(None)


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The last row of a chain: its ``seq`` (0 when empty) and ``hash``."""

    seq: int
    hash: str


async def chain_head(session: AsyncSession, table: sa.Table) -> ChainHead:
    """The chain's current head."""
    tip = (
        await session.execute(
            sa.select(table.c.seq, table.c.hash).order_by(table.c.seq.desc()).limit(1)
        )
    ).first()
    return ChainHead(tip.seq, tip.hash) if tip else ChainHead(0, GENESIS_HASH)


async def hashes_after(
    session: AsyncSession, table: sa.Table, after: int, limit: int
) -> list[tuple[int, str]]:
    """``(seq, hash)`` of up to ``limit`` rows after ``after``, in order."""
    result = await session.execute(
        sa.select(table.c.seq, table.c.hash)
        .where(table.c.seq > after)
        .order_by(table.c.seq)
        .limit(limit)
    )
    return [(row.seq, row.hash) for row in result]


@dataclass(frozen=True, slots=True)
class ChainReport:
    """What ``verify_chain`` found: how many rows, and the first bad one."""

    rows: int
    first_bad: int | None = None
    problem: str | None = None
    witnessed: int = 0
    """The last ``seq`` the witness (the hub's anchors) holds; 0: none given."""

    @property
    def intact(self) -> bool:
        return self.first_bad is None


class AuditLogUnreadable(Exception):
    """The database at the URL cannot be read as an audit log (the message is one line)."""


def _check(record: AuditRecord, expected_seq: int, prev_hash: str) -> str | None:
    if record.seq != expected_seq:
        return f"expected seq {expected_seq}, found {record.seq} (a row is missing or moved)"
    if record.prev_hash != prev_hash:
        return "prev_hash does not match the previous row's hash"
    if row_hash(_fields(record)) != record.hash:
        return "the row's content does not match its hash"
    return None


def _against_witness(record: AuditRecord, witness: Mapping[int, str]) -> str | None:
    anchored = witness.get(record.seq)
    if anchored is None or anchored == record.hash:
        return None
    return (
        f"the row differs from what the hub anchored (hash {record.hash[:12]}…,"
        f" anchored {anchored[:12]}…): it was changed or replaced after it was anchored"
    )


def _fields(record: AuditRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in _HASHED}


def _engine(url: str) -> AsyncEngine:
    """An engine for an existing database at ``url`` (never creates a SQLite file)."""
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError:
        raise AuditLogUnreadable(f"{url!r} is not a database URL") from None
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database or ""
        if path and path != ":memory:" and not Path(path).is_file():
            raise AuditLogUnreadable(f"no database file at {path}")
    try:
        return create_async_engine(parsed)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as exc:
        raise AuditLogUnreadable(f"cannot use {parsed.drivername!r}: {exc}") from None


async def verify_chain(
    url: str, *, witness: Mapping[int, str] | None = None, batch: int = 1000
) -> ChainReport:
    """Re-read every row of ``audit_log`` at ``url`` in order and check the chain.

    ``witness``: ``seq -> hash`` as the hub anchored them; a row that differs, or an
    anchored row the chain no longer has, is reported as the first bad one.
    """
    witness = witness or {}
    witnessed = max(witness, default=0)
    table = define_audit_table(sa.MetaData())
    engine = _engine(url)
    rows = 0
    prev_hash = GENESIS_HASH
    try:
        async with engine.connect() as connection:
            if not await connection.run_sync(lambda sync: sa.inspect(sync).has_table(TABLE_NAME)):
                raise AuditLogUnreadable(
                    f"no {TABLE_NAME} table at {make_url(url).render_as_string()}"
                    " (not a Linli hub, node or adapter database, or not migrated)"
                )
            after = 0
            while True:
                result = await connection.execute(
                    sa.select(table).where(table.c.seq > after).order_by(table.c.seq).limit(batch)
                )
                chunk = result.mappings().all()
                if not chunk:
                    break
                for row in chunk:
                    record = AuditRecord.from_row(row)
                    problem = _check(record, rows + 1, prev_hash) or _against_witness(
                        record, witness
                    )
                    if problem is not None:
                        return ChainReport(rows, record.seq, problem, witnessed)
                    rows += 1
                    prev_hash = record.hash
                    after = record.seq
    except (sa.exc.DBAPIError, OSError) as exc:
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        reason = first[0] if first else type(exc).__name__
        raise AuditLogUnreadable(f"cannot read the database: {reason}") from None
    finally:
        await engine.dispose()
    if rows < witnessed:
        return ChainReport(
            rows,
            rows + 1,
            f"missing: the chain ends at seq {rows}, but the hub anchored rows up to seq"
            f" {witnessed} (the last {witnessed - rows} rows were removed)",
            witnessed,
        )
    return ChainReport(rows, witnessed=witnessed)


async def verify(url: str) -> int | None:
    """The ``seq`` of the first row that breaks the chain at ``url``, or None if it is intact."""
    return (await verify_chain(url)).first_bad
