"""The aid step model the codec maps, mirroring ``schema.aid`` of the aid branch.

Until that branch is merged this is a faithful local copy of its ``AidStep``,
``AidStepKind`` and ``AidDisclosure`` (same names, fields and limits); at merge
it becomes a re-export of ``schema.aid``.
"""

from __future__ import annotations

import enum
import uuid

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schema.records._types import DivisionCode, ResourceKindCode

__all__ = ["MAX_NOTE", "MAX_QUANTITY", "AidDisclosure", "AidStep", "AidStepKind"]

MAX_NOTE = 1000
MAX_QUANTITY = 1_000_000_000


class AidStepKind(enum.StrEnum):
    """One step of the exchange."""

    REQUEST = "request"
    OFFER = "offer"
    ACCEPT = "accept"
    COMMIT = "commit"
    REFUSE = "refuse"
    DISPATCH = "dispatch"
    IN_TRANSIT = "in_transit"
    RECEIVE = "receive"
    REQUEST_RETURN = "request_return"
    RETURN = "return"
    CANCEL = "cancel"
    DECLINE = "decline"


class AidDisclosure(BaseModel):
    """What the requester learns only once the provider has committed: where and whom."""

    model_config = ConfigDict(extra="forbid")

    resource_id: str = Field(max_length=200)
    address: str = Field(max_length=500)
    contact: str = Field(max_length=200)


class AidStep(BaseModel):
    """One cross-node step of a mutual-aid request (maps onto one EDXL-RM message)."""

    model_config = ConfigDict(extra="forbid")

    message_id: uuid.UUID
    kind: AidStepKind
    request_id: str = Field(max_length=200, description="AidRequest:<requester>:<local>")
    requester: DivisionCode
    provider: DivisionCode
    sender: DivisionCode = Field(description="The party that took the step")
    resource_id: str | None = Field(
        default=None, max_length=200, description="Resource:<provider>:<local>"
    )
    resource_kind: ResourceKindCode
    quantity: int | None = Field(default=None, ge=0, le=MAX_QUANTITY)
    unit: str = Field(max_length=20)
    note: str = Field(default="", max_length=MAX_NOTE)
    reason: str | None = Field(default=None, max_length=60, description="Code of a refusal")
    needed_by: AwareDatetime | None = None
    at: AwareDatetime
    disclosure: AidDisclosure | None = Field(
        default=None, description="Only on commit: the pick-up address and contact"
    )
