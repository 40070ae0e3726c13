"""Hub tables of the aid flow: each request as the district sees it, its events, seen messages,
the owners an open request was passed on to, and the open requests still being matched."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from hub.db import HubTable
from schema.storage import PydanticJSON, UTCDateTime

__all__ = [
    "AID_SEQUENCE",
    "AidCaseRow",
    "AidEventRow",
    "AidInboxMessageRow",
    "AidMatchingRow",
    "AidNotifiedRow",
]

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


class AidNotifiedRow(HubTable, table=True):
    """An owner a request open to the district was passed on to: once per request and owner.

    The key makes the "once" hold across passes and hub replicas: a second insert fails.
    """

    __tablename__ = "aid_notified"

    request_id: str = Field(primary_key=True, max_length=200)
    owner: str = Field(primary_key=True, max_length=12)
    notified_at: datetime = Field(sa_type=UTCDateTime)


class AidMatchingRow(HubTable, table=True):
    """A request open to the district that the hub matches again until it is taken or over.

    It keeps who asked (the requester's client and person at the hub), so each pass reads
    the district as the first match did, and when the next pass is due.
    """

    __tablename__ = "aid_matching"

    request_id: str = Field(primary_key=True, max_length=200)
    org_kind: str = Field(max_length=20)
    client_id: str = Field(max_length=64)
    subject: str = Field(max_length=200)
    district: str | None = Field(default=None, max_length=12)
    # The request's needed-by time (volunteers: the end of the window, if sooner); none: open.
    until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    due_at: datetime = Field(index=True, sa_type=UTCDateTime)
    passes: int = 0
