"""Hub tables of the aid flow: each request as the district sees it, its events, seen messages."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from hub.db import HubTable
from schema.storage import PydanticJSON, UTCDateTime

__all__ = ["AID_SEQUENCE", "AidCaseRow", "AidEventRow", "AidInboxMessageRow"]

AID_SEQUENCE = "aid_events"
"""The ``flag_event_sequence`` row that numbers aid events (created by the aid migration)."""


class AidCaseRow(HubTable, table=True):
    """A mutual-aid request as the district relays it: parties, status, history, hop times."""

    __tablename__ = "aid_cases"

    request_id: str = Field(primary_key=True, max_length=200)
    requester: str = Field(index=True, max_length=12)
    provider: str = Field(index=True, max_length=12)
    resource_id: str | None = Field(default=None, max_length=200)
    resource_kind: str = Field(index=True, max_length=40)
    unit: str = Field(max_length=20)
    requested: int
    committed: int = 0
    received: int | None = None
    status: str = Field(index=True, max_length=20)
    # AidStep.history_entry() of every step applied, in order (never the disclosure).
    steps: list[dict[str, Any]] = Field(
        default_factory=list, sa_type=PydanticJSON(list[dict[str, Any]])
    )
    # Requests for volunteers only: the skill code, the window, the Volunteer ids offered.
    skill: str | None = Field(default=None, max_length=40)
    window_from: datetime | None = Field(default=None, sa_type=UTCDateTime)
    window_to: datetime | None = Field(default=None, sa_type=UTCDateTime)
    volunteer_ids: list[str] | None = Field(default=None, sa_type=PydanticJSON(list[str]))
    requested_at: datetime = Field(index=True, sa_type=UTCDateTime)
    first_offer_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    committed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    received_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class AidInboxMessageRow(HubTable, table=True):
    """A step message id the hub has processed (idempotency of node deliveries)."""

    __tablename__ = "aid_inbox_messages"

    message_id: str = Field(primary_key=True, max_length=64)
    request_id: str = Field(max_length=200)
    outcome: str = Field(max_length=12)  # applied | ignored
    received_at: datetime = Field(sa_type=UTCDateTime)


class AidEventRow(HubTable, table=True):
    """One applied step of one request, numbered; ``aidEvents`` subscribers resume by ``seq``."""

    __tablename__ = "aid_events"

    seq: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True, autoincrement=False))
    type: str = Field(max_length=40)  # aid.<step kind>
    request_id: str = Field(index=True, max_length=200)
    status: str = Field(max_length=20)
    requester: str = Field(index=True, max_length=12)
    provider: str = Field(index=True, max_length=12)
    resource_kind: str = Field(max_length=40)
    quantity: int | None = None
    at: datetime = Field(index=True, sa_type=UTCDateTime)
