"""The node's tables of the aid flow: each request it is a party to, and the steps it applied."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from schema.storage import UTCDateTime

__all__ = ["AidTables", "define_aid_tables"]


@dataclass(frozen=True, slots=True)
class AidTables:
    """``aid_cases``, ``aid_messages`` and ``aid_volunteer_bookings``."""

    cases: sa.Table
    messages: sa.Table
    bookings: sa.Table


def define_aid_tables(metadata: sa.MetaData) -> AidTables:
    """The aid tables in ``metadata``."""
    cases = sa.Table(
        "aid_cases",
        metadata,
        sa.Column("request_id", sa.String(200), primary_key=True),
        sa.Column("role", sa.String(12), nullable=False),  # requester | provider
        sa.Column("requester", sa.String(12), nullable=False),
        sa.Column("provider", sa.String(12), nullable=False),
        sa.Column("resource_id", sa.String(200), nullable=True),
        sa.Column("resource_kind", sa.String(40), nullable=False),
        sa.Column("unit", sa.String(20), nullable=False),
        sa.Column("reusable", sa.Boolean, nullable=False),
        sa.Column("requested", sa.Integer, nullable=False),
        sa.Column("offered", sa.Integer, nullable=True),
        # Units reserved at the provider (held until returned, cancelled or declined).
        sa.Column("committed", sa.Integer, nullable=False, default=0),
        sa.Column("received", sa.Integer, nullable=True),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        # The requester's only: the pick-up address and contact, set by the commit.
        sa.Column("disclosure", sa.JSON, nullable=True),
        sa.Column("steps", sa.JSON, nullable=False),  # AidStep.history_entry() in order
        # Requests for volunteers only: the skill code, the window, the Volunteer ids offered.
        sa.Column("skill", sa.String(40), nullable=True),
        sa.Column("window_from", UTCDateTime(), nullable=True),
        sa.Column("window_to", UTCDateTime(), nullable=True),
        sa.Column("volunteer_ids", sa.JSON, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("version", sa.Integer, nullable=False, default=1),
    )
    messages = sa.Table(
        "aid_messages",
        metadata,
        # Every step this node applied or ignored, by message id: repeats change nothing.
        sa.Column("message_id", sa.String(36), primary_key=True),
        sa.Column("request_id", sa.String(200), nullable=False, index=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("outcome", sa.String(12), nullable=False),  # applied | ignored
        sa.Column("received_at", UTCDateTime(), nullable=False),
    )
    bookings = sa.Table(
        "aid_volunteer_bookings",
        metadata,
        # The provider's: a volunteer committed to a request for its window, until released.
        sa.Column("volunteer_id", sa.String(200), primary_key=True),
        sa.Column("request_id", sa.String(200), primary_key=True),
        sa.Column("window_from", UTCDateTime(), nullable=False),
        sa.Column("window_to", UTCDateTime(), nullable=False),
        sa.Column("booked_at", UTCDateTime(), nullable=False),
        sa.Column("released_at", UTCDateTime(), nullable=True),
        sa.Index("ix_aid_volunteer_bookings_request_id", "request_id"),
    )
    return AidTables(cases, messages, bookings)
