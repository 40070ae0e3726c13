"""The node's tables of the flag flow: the outbox to the hub and the updates it has applied."""

from __future__ import annotations

import enum
from dataclasses import dataclass

import sqlalchemy as sa

from schema.storage import UTCDateTime

__all__ = ["FlagTables", "OutboxStatus", "define_flag_tables"]

MAX_ERROR = 500


class OutboxStatus(enum.StrEnum):
    """Where an outbox row stands: waiting (or retrying), accepted by the hub, or refused."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # the hub refused its content: retrying cannot help


@dataclass(frozen=True, slots=True)
class FlagTables:
    """``flag_outbox`` and ``flag_updates``."""

    outbox: sa.Table
    updates: sa.Table


def define_flag_tables(metadata: sa.MetaData) -> FlagTables:
    """The flag tables in ``metadata``."""
    outbox = sa.Table(
        "flag_outbox",
        metadata,
        # Autoincrement: the order in which this node raised its flags, kept on delivery.
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(36), nullable=False, unique=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("flag_id", sa.String(200), nullable=False, index=True),
        # The inbox message without ``sent_at``, which each attempt adds.
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("status", sa.String(12), nullable=False, index=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, default=0),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("last_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(MAX_ERROR), nullable=True),
    )
    updates = sa.Table(
        "flag_updates",
        metadata,
        # Every message id the hub sent and this node processed: repeats change nothing.
        sa.Column("message_id", sa.String(64), primary_key=True),
        sa.Column("flag_id", sa.String(200), nullable=False, index=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("outcome", sa.String(12), nullable=False),  # applied | ignored
        sa.Column("received_at", UTCDateTime(), nullable=False),
    )
    return FlagTables(outbox, updates)
