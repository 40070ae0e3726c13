"""Hub tables of the risk-flag flow: flags, their events, the outbox to nodes, webhooks,
and the pushes of confirmed flags to external (Open311) systems."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from hub.db import HubTable
from schema.geo import GeoPoint
from schema.records import FlagSource, FlagTransition, SensorReading
from schema.storage import PydanticJSON, UTCDateTime

__all__ = [
    "EVENT_SEQUENCE",
    "EventSequenceRow",
    "ExternalPushRow",
    "FlagEventRow",
    "FlagRelayCursorRow",
    "FlagRow",
    "FlagStep",
    "InboxMessageRow",
    "NodeOutboxRow",
    "WebhookAttemptRow",
    "WebhookDeliveryRow",
    "WebhookRow",
    "timeline_of",
]

EVENT_SEQUENCE = "flag_events"
"""The name of the one ``flag_event_sequence`` row (created by migration 0003)."""


class FlagStep(FlagTransition):
    """A workflow step as the hub records it: ``FlagTransition`` (with its person) plus the
    organisation and the client that made it."""

    org: str = ""
    client_id: str = ""


class FlagRow(HubTable, table=True):
    """A risk flag as the district handles it: routing, workflow state, hop times."""

    __tablename__ = "flags"

    id: str = Field(primary_key=True, max_length=200)  # RiskFlag:<community>:<local>
    community: str = Field(index=True, max_length=64)
    category: str = Field(max_length=40)
    description: str = Field(max_length=4000)
    location: GeoPoint = Field(sa_type=PydanticJSON(GeoPoint))
    address: str = Field(default="", max_length=500)
    severity: str = Field(max_length=4)
    evidence_links: list[str] = Field(default_factory=list, sa_type=PydanticJSON(list[str]))
    # A flag a sensor's rule raised: which, and the readings that raised it.
    source: FlagSource | None = Field(default=None, sa_type=PydanticJSON(FlagSource))
    evidence: list[SensorReading] = Field(
        default_factory=list, sa_type=PydanticJSON(list[SensorReading])
    )
    status: str = Field(index=True, max_length=20)
    assigned_to: str | None = Field(default=None, index=True, max_length=64)
    escalate_to: str | None = Field(default=None, max_length=64)
    ack_deadline_s: int = 0
    deadline_at: datetime | None = Field(default=None, index=True, sa_type=UTCDateTime)
    escalation_level: int = 0
    transitions: list[FlagStep] = Field(default_factory=list, sa_type=PydanticJSON(list[FlagStep]))
    # hop -> time; the "delivered" hop has its own column so that marking it never races a move.
    timeline: dict[str, datetime] = Field(
        default_factory=dict, sa_type=PydanticJSON(dict[str, datetime])
    )
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    node_version: int = 1
    version: int = 1
    # The service request in an external system (Open311) a confirmed flag was filed as.
    external_system: str | None = Field(default=None, max_length=60)  # open311:<name>
    external_id: str | None = Field(default=None, max_length=200)  # service_request_id
    external_status: str | None = Field(default=None, max_length=40)  # submitted|open|closed
    external_status_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    raised_at: datetime = Field(sa_type=UTCDateTime)
    received_at: datetime = Field(index=True, sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


def timeline_of(row: FlagRow) -> dict[str, datetime]:
    """Every hop of a flag, in time order."""
    hops = dict(row.timeline)
    if row.delivered_at is not None:
        hops["delivered"] = row.delivered_at
    return dict(sorted(hops.items(), key=lambda item: item[1]))


class InboxMessageRow(HubTable, table=True):
    """A message id the inbox has processed (idempotency of node deliveries)."""

    __tablename__ = "flag_inbox_messages"

    message_id: str = Field(primary_key=True, max_length=64)
    flag_id: str = Field(max_length=200)
    received_at: datetime = Field(sa_type=UTCDateTime)


class EventSequenceRow(HubTable, table=True):
    """The last event sequence number given out, and the newest one pruned.

    Updating this row takes its lock until commit, so events commit in sequence order.
    """

    __tablename__ = "flag_event_sequence"

    name: str = Field(primary_key=True, max_length=40)
    last_seq: int = Field(default=0, sa_type=sa.BigInteger)
    pruned_through: int = Field(default=0, sa_type=sa.BigInteger)


class FlagEventRow(HubTable, table=True):
    """One change of one flag, numbered; subscribers resume by ``seq``."""

    __tablename__ = "flag_events"

    seq: int = Field(sa_column=sa.Column(sa.BigInteger, primary_key=True, autoincrement=False))
    type: str = Field(max_length=40)
    flag_id: str = Field(index=True, max_length=200)
    status: str = Field(max_length=20)
    community: str = Field(index=True, max_length=64)
    assigned_to: str | None = Field(default=None, index=True, max_length=64)
    previous_assignee: str | None = Field(default=None, max_length=64)
    at: datetime = Field(index=True, sa_type=UTCDateTime)
    timeline: dict[str, datetime] = Field(
        default_factory=dict, sa_type=PydanticJSON(dict[str, datetime])
    )


class FlagRelayCursorRow(HubTable, table=True):
    """How far this hub has copied the flag events of one hub below (``hub/flags/below.py``).

    Moved in the transaction that copies the events, so each is copied exactly once.
    """

    __tablename__ = "flag_relay_cursors"

    source: str = Field(primary_key=True, max_length=200)
    last_seq: int = Field(default=0, sa_type=sa.BigInteger)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class NodeOutboxRow(HubTable, table=True):
    """A message owed to a community node (a flag update, an aid step), in order per node."""

    __tablename__ = "flag_outbox"

    id: int | None = Field(default=None, primary_key=True)
    message_id: str = Field(unique=True, max_length=64)
    node: str = Field(index=True, max_length=64)
    flag_id: str = Field(max_length=200)  # the subject: a flag id or an aid request id
    path: str = Field(default="/flags/updates", max_length=40)  # where the node takes it
    payload: dict[str, Any] = Field(sa_type=PydanticJSON(dict[str, Any]))
    created_at: datetime = Field(sa_type=UTCDateTime)
    attempts: int = 0
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, index=True, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=500)


class WebhookRow(HubTable, table=True):
    """A department's endpoint for its flag events (Standard Webhooks)."""

    __tablename__ = "flag_webhooks"

    id: str = Field(primary_key=True, max_length=40)
    department: str = Field(index=True, max_length=64)
    url: str = Field(max_length=2000)
    # The sender must sign, so it keeps the secret itself: sealed with LINLI_SECRETS_KEY
    # (enc:v1:..., see hub.sealed), or plain text in development and from before sealing.
    secret: str = Field(max_length=500)
    created_by: str = Field(max_length=64)  # the client
    created_by_person: str | None = Field(default=None, max_length=64)  # a person signed in
    created_at: datetime = Field(sa_type=UTCDateTime)
    active: bool = True


class WebhookDeliveryRow(HubTable, table=True):
    """One event for one webhook: the exact body sent, and how its delivery is going."""

    __tablename__ = "flag_webhook_deliveries"

    id: str = Field(primary_key=True, max_length=40)  # the webhook-id header, kept across retries
    webhook_id: str = Field(index=True, max_length=40)
    department: str = Field(index=True, max_length=64)
    event_seq: int = Field(sa_type=sa.BigInteger)
    event_type: str = Field(max_length=40)
    flag_id: str = Field(max_length=200)
    body: str = Field(sa_type=sa.Text)
    status: str = Field(default="pending", index=True, max_length=12)  # pending|delivered|failed
    attempts: int = 0
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=500)
    next_attempt_at: datetime = Field(sa_type=UTCDateTime)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    delivered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(index=True, sa_type=UTCDateTime)


class WebhookAttemptRow(HubTable, table=True):
    """One attempt at a webhook delivery: the delivery log."""

    __tablename__ = "flag_webhook_attempts"

    id: int | None = Field(default=None, primary_key=True)
    delivery_id: str = Field(index=True, max_length=40)
    attempt: int
    at: datetime = Field(sa_type=UTCDateTime)
    status_code: int | None = None
    error: str | None = Field(default=None, max_length=500)
    duration_ms: float = 0.0


class ExternalPushRow(HubTable, table=True):
    """A confirmed flag owed to an external system (written with the move), then followed there.

    Until ``pushed_at`` it is an outbox row (retried with backoff, leased); after it,
    the poller reads the request's status back every ``next_poll_at`` until it is closed.
    """

    __tablename__ = "flag_external_pushes"

    id: int | None = Field(default=None, primary_key=True)
    flag_id: str = Field(unique=True, max_length=200)
    system: str = Field(max_length=20)  # open311
    target: str = Field(max_length=40)  # the [open311.<name>] of the routing file
    created_at: datetime = Field(sa_type=UTCDateTime)
    attempts: int = 0
    next_attempt_at: datetime = Field(index=True, sa_type=UTCDateTime)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=500)
    failed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    pushed_at: datetime | None = Field(default=None, index=True, sa_type=UTCDateTime)
    external_id: str | None = Field(default=None, max_length=200)  # the id, or token:<t>
    status: str | None = Field(default=None, max_length=40)  # the last status read back
    status_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # its updated_datetime
    next_poll_at: datetime | None = Field(default=None, index=True, sa_type=UTCDateTime)
