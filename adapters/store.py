"""The adapter service's database: the common record tables it serves, and its own state.

Record tables come from ``schema.store`` (alerts, incidents, resources), so the
service answers the same read API as a node. State tables are the adapter's
own: conditional-request validators per upstream URL (``adapter_fetch_state``),
the CAP de-duplication and supersession keys (``adapter_alert_keys``,
``adapter_alert_references``) and the upstream keys of every other record
(``adapter_external_keys``), so a re-read updates instead of duplicating.
The ``emergencies`` and ``audit_log`` tables are a node's (``policies.source``):
the service enforces and audits its owner's policy as a node does.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from adapters.base import Keyed, Problem, Validators
from policies.source import PolicyTables, define_policy_tables
from schema.enums import CapMsgType
from schema.records import AlertCreate
from schema.storage import UTCDateTime, utcnow
from schema.store import service
from schema.store.specs import RecordSpec, bind_specs
from schema.store.tables import RecordTables, define_tables

__all__ = [
    "MIGRATIONS",
    "POLICY",
    "SPECS",
    "TABLES",
    "AlertOutcome",
    "UpsertOutcome",
    "alert_key",
    "inactive_alert_ids",
    "load_validators",
    "metadata",
    "save_validators",
    "store_alert",
    "upsert_keyed",
]

log = logging.getLogger("linli.adapters.store")

MIGRATIONS = Path(__file__).parent / "migrations"

metadata = sa.MetaData()
TABLES: RecordTables = define_tables(metadata, only={"Alert", "Incident", "Resource"})
SPECS: dict[str, RecordSpec] = bind_specs(TABLES)
POLICY: PolicyTables = define_policy_tables(metadata)

fetch_state = sa.Table(
    "adapter_fetch_state",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True, comment="sha256 of adapter and URL"),
    sa.Column("adapter", sa.String(64), nullable=False),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("etag", sa.String(500), nullable=True),
    sa.Column("last_modified", sa.String(100), nullable=True),
    sa.Column("fetched_at", UTCDateTime(), nullable=False),
)

alert_keys = sa.Table(
    "adapter_alert_keys",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True, comment="sha256 of sender,identifier,sent"),
    sa.Column("alert_id", sa.String(64), sa.ForeignKey("alerts.id"), nullable=False, unique=True),
    sa.Column("superseded_by", sa.String(64), nullable=True),
    sa.Column("superseded_at", UTCDateTime(), nullable=True),
)

alert_references = sa.Table(
    "adapter_alert_references",
    metadata,
    sa.Column("target", sa.String(64), primary_key=True, comment="alert_key of the referenced"),
    sa.Column("by_alert_id", sa.String(64), sa.ForeignKey("alerts.id"), primary_key=True),
    sa.Column("msg_type", sa.String(16), nullable=False),
)

external_keys = sa.Table(
    "adapter_external_keys",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True, comment="sha256 of source, type, key"),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("record_type", sa.String(32), nullable=False),
    sa.Column("external_key", sa.String(500), nullable=False),
    sa.Column("record_id", sa.String(64), nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def _sent_text(sent: datetime) -> str:
    return sent.astimezone(UTC).replace(microsecond=0).isoformat()


def alert_key(sender: str, identifier: str, sent: datetime) -> str:
    """The de-duplication key of a CAP message: its sender, identifier and sent time (in UTC)."""
    return _digest(sender, identifier, _sent_text(sent))


def _reference_key(reference: str) -> str | None:
    """The key of a CAP ``references`` entry ``sender,identifier,sent``; None if unreadable."""
    parts = reference.split(",")
    if len(parts) != 3:
        return None
    try:
        sent = datetime.fromisoformat(parts[2])
    except ValueError:
        return None
    if sent.tzinfo is None:
        return None
    return alert_key(parts[0], parts[1], sent)


async def load_validators(session: AsyncSession, adapter: str, url: str) -> Validators | None:
    """The validators saved for the last fetch of ``url``."""
    row = (
        await session.execute(
            sa.select(fetch_state.c.etag, fetch_state.c.last_modified).where(
                fetch_state.c.key == _digest(adapter, url)
            )
        )
    ).first()
    return None if row is None else Validators(row.etag, row.last_modified)


async def save_validators(
    session: AsyncSession, adapter: str, url: str, validators: Validators
) -> None:
    """Remember ``validators`` for the next conditional fetch of ``url``."""
    key = _digest(adapter, url)
    await session.execute(sa.delete(fetch_state).where(fetch_state.c.key == key))
    if validators.etag or validators.last_modified:
        await session.execute(
            sa.insert(fetch_state).values(
                key=key,
                adapter=adapter,
                url=url[:2000],
                etag=(validators.etag or None) and validators.etag[:500],
                last_modified=(validators.last_modified or None) and validators.last_modified[:100],
                fetched_at=utcnow(),
            )
        )


@dataclass(frozen=True, slots=True)
class AlertOutcome:
    """What storing one CAP message did."""

    stored: bool  # False: a duplicate of a message already stored
    alert_id: str | None
    superseded: tuple[str, ...] = ()  # ids of alerts this one made inactive
    problems: tuple[Problem, ...] = ()


async def store_alert(session: AsyncSession, alert: AlertCreate, *, where: str) -> AlertOutcome:
    """Store a CAP message once; Update and Cancel make the alerts they reference inactive.

    Messages may arrive in any order: a reference to an alert not seen yet is
    kept, and supersedes that alert when it arrives. A reference that names no
    known alert is reported (``CAP_REFERENCE_UNKNOWN``) but the message is kept.
    """
    key = alert_key(alert.sender, alert.identifier, alert.sent)
    known = (
        await session.execute(sa.select(alert_keys.c.alert_id).where(alert_keys.c.key == key))
    ).scalar_one_or_none()
    if known is not None:
        return AlertOutcome(stored=False, alert_id=known)
    row = await service.create_record(session, SPECS["Alert"], alert)
    await session.execute(sa.insert(alert_keys).values(key=key, alert_id=row.id))
    superseded: list[str] = []
    problems: list[Problem] = []
    now = utcnow()
    # Someone referenced this message before it arrived.
    earlier = (
        await session.execute(
            sa.select(alert_references.c.by_alert_id).where(alert_references.c.target == key)
        )
    ).first()
    if earlier is not None:
        await session.execute(
            sa.update(alert_keys)
            .where(alert_keys.c.key == key)
            .values(superseded_by=earlier.by_alert_id, superseded_at=now)
        )
        superseded.append(row.id)
    if alert.msg_type in (CapMsgType.UPDATE, CapMsgType.CANCEL):
        targets = {k for k in map(_reference_key, alert.references) if k is not None}
        for target in sorted(targets):
            await session.execute(
                sa.insert(alert_references).values(
                    target=target, by_alert_id=row.id, msg_type=alert.msg_type.value
                )
            )
            result = await session.execute(
                sa.update(alert_keys)
                .where(alert_keys.c.key == target, alert_keys.c.superseded_by.is_(None))
                .values(superseded_by=row.id, superseded_at=now)
                .returning(alert_keys.c.alert_id)
            )
            superseded.extend(result.scalars())
        known_targets = 0
        if targets:
            known_targets = (
                await session.execute(
                    sa.select(sa.func.count()).where(alert_keys.c.key.in_(targets))
                )
            ).scalar_one()
        if known_targets < len(alert.references):
            reason = (
                f"{alert.msg_type.value} {alert.identifier} references"
                f" {len(alert.references) - known_targets} alert(s) not seen here; kept"
            )
            log.warning("%s: %s", where, reason)
            problems.append(Problem(where, "CAP_REFERENCE_UNKNOWN", reason))
    return AlertOutcome(True, row.id, tuple(superseded), tuple(problems))


async def inactive_alert_ids(session: AsyncSession, alert_ids: list[str]) -> set[str]:
    """Which of ``alert_ids`` an Update or Cancel has superseded."""
    if not alert_ids:
        return set()
    rows = await session.execute(
        sa.select(alert_keys.c.alert_id).where(
            alert_keys.c.alert_id.in_(alert_ids), alert_keys.c.superseded_by.is_not(None)
        )
    )
    return set(rows.scalars())


def _content_hash(record: BaseModel) -> str:
    return hashlib.sha256(record.model_dump_json().encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class UpsertOutcome:
    """What storing one keyed record did: ``created``, ``updated`` or ``unchanged``."""

    action: str
    record_id: str


async def upsert_keyed(
    session: AsyncSession, spec: RecordSpec, source: str, item: Keyed[Any]
) -> UpsertOutcome:
    """Create the record for an upstream key, or update it if its content changed."""
    key = _digest(source, spec.type_name, item.key)
    digest = _content_hash(item.record)
    row = (
        await session.execute(
            sa.select(external_keys.c.record_id, external_keys.c.content_hash).where(
                external_keys.c.key == key
            )
        )
    ).first()
    if row is None:
        created = await service.create_record(session, spec, item.record)
        await session.execute(
            sa.insert(external_keys).values(
                key=key,
                source=source,
                record_type=spec.type_name,
                external_key=item.key[:500],
                record_id=created.id,
                content_hash=digest,
            )
        )
        return UpsertOutcome("created", created.id)
    if row.content_hash == digest:
        return UpsertOutcome("unchanged", row.record_id)
    current = await service.get_record(session, spec, row.record_id)
    assert spec.update is not None, f"{spec.type_name} records cannot be updated"
    patch = spec.update.model_validate(
        {**item.record.model_dump(), "expected_version": current.version}
    )
    await service.update_record(session, spec, row.record_id, patch)
    await session.execute(
        sa.update(external_keys).where(external_keys.c.key == key).values(content_hash=digest)
    )
    return UpsertOutcome("updated", row.record_id)
