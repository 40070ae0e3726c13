"""Mutual-aid steps between communities: one message model and one state machine.

Every cross-node step of an aid request (the requester's node -> the hub -> the
provider's node, and back) is one ``AidStep``. The requester's node, the hub and
the provider's node each apply it with ``advance``, so all three hold the same
status and the same history. It maps onto OASIS EDXL-RM 1.0 messages
(``AidStepKind`` names the message each kind stands for), which the EDXL-RM
codec (``adapters/edxl_rm``) translates to and from XML.

    step kind        EDXL-RM message                      by         from -> to
    request          RequestResource                      requester  (new) -> requested
    offer            ResponseToRequestResource            provider   requested -> offered
    accept           RequisitionResource                  requester  offered -> accepted
    commit           CommitResource                       provider*  accepted -> committed
    refuse           CommitResource (not committed)       provider*  accepted -> declined
    dispatch         ReportResourceDeploymentStatus       provider   committed -> dispatched
    in_transit       ReportResourceDeploymentStatus       provider   dispatched -> in_transit
    receive          ReportResourceDeploymentStatus       requester  dispatched|in_transit
                                                                     -> received
    request_return   RequestReturn                        provider   received -> return_requested
    return           ResponseToRequestReturn              requester  received|return_requested
                     (or ReleaseResource)                            -> returned
    cancel           RequestResource (cancel)             requester  any open state -> cancelled
    decline          ResponseToRequestResource (decline)  provider   requested..committed
                                                                     -> declined

    * written by the provider's node itself when it receives ``accept``.

Errors (each with a stable ``code``)::

    LinliError
    └── AidError                      (base)
        ├── AidStepOutOfOrder         AID_STEP_OUT_OF_ORDER     (status, step)
        ├── AidNotYourStep            AID_NOT_YOUR_STEP          (step, role)
        ├── AidQuantityInvalid        AID_QUANTITY_INVALID       (quantity, limit)
        ├── AidAboveAvailable         AID_ABOVE_AVAILABLE        (quantity, available)
        ├── AidRecordRetired          AID_RECORD_RETIRED         (resourceId)
        ├── AidNotOwner               AID_NOT_OWNER              (resourceId)
        └── AidKindMismatch           AID_KIND_MISMATCH          (kind, resourceKind)

A request open to the district (``provider`` None) is matched at the hub and passed on
to the owners of the matching resources, each as if addressed to it. The first owner's
offer names the provider; every other owner's copy is cancelled with the reason
``AID_TAKEN`` (``TAKEN``), and a later offer from another owner is ignored.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schema.enums import AidRequestStatus
from schema.errors import LinliError
from schema.geo import GeoPoint
from schema.records._types import DivisionCode, ResourceKindCode

__all__ = [
    "HOLDING",
    "MAX_QUANTITY",
    "OPEN",
    "TAKEN",
    "TERMINAL",
    "AidAboveAvailable",
    "AidDisclosure",
    "AidError",
    "AidKindMismatch",
    "AidNotOwner",
    "AidNotYourStep",
    "AidQuantityInvalid",
    "AidRecordRetired",
    "AidRole",
    "AidStep",
    "AidStepKind",
    "AidStepOutOfOrder",
    "Transition",
    "advance",
    "new_message_id",
    "releases",
]

MAX_NOTE = 1000
TAKEN = "AID_TAKEN"
"""Reason of the cancel the hub sends the other owners once an open request has a provider."""
MAX_QUANTITY = 1_000_000_000


class AidRole(enum.StrEnum):
    """The two parties of a request."""

    REQUESTER = "requester"
    PROVIDER = "provider"


class AidStepKind(enum.StrEnum):
    """One step of the exchange (see the module docstring for its EDXL-RM message)."""

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


S = AidRequestStatus


@dataclass(frozen=True, slots=True)
class Transition:
    """Who may take a step, from which statuses, to which status."""

    by: AidRole
    before: frozenset[AidRequestStatus | None]
    after: AidRequestStatus


TRANSITIONS: dict[AidStepKind, Transition] = {
    AidStepKind.REQUEST: Transition(AidRole.REQUESTER, frozenset({None}), S.REQUESTED),
    AidStepKind.OFFER: Transition(AidRole.PROVIDER, frozenset({S.REQUESTED}), S.OFFERED),
    AidStepKind.ACCEPT: Transition(AidRole.REQUESTER, frozenset({S.OFFERED}), S.ACCEPTED),
    AidStepKind.COMMIT: Transition(AidRole.PROVIDER, frozenset({S.ACCEPTED}), S.COMMITTED),
    AidStepKind.REFUSE: Transition(AidRole.PROVIDER, frozenset({S.ACCEPTED}), S.DECLINED),
    AidStepKind.DISPATCH: Transition(AidRole.PROVIDER, frozenset({S.COMMITTED}), S.DISPATCHED),
    AidStepKind.IN_TRANSIT: Transition(AidRole.PROVIDER, frozenset({S.DISPATCHED}), S.IN_TRANSIT),
    AidStepKind.RECEIVE: Transition(
        AidRole.REQUESTER, frozenset({S.DISPATCHED, S.IN_TRANSIT}), S.RECEIVED
    ),
    AidStepKind.REQUEST_RETURN: Transition(
        AidRole.PROVIDER, frozenset({S.RECEIVED}), S.RETURN_REQUESTED
    ),
    AidStepKind.RETURN: Transition(
        AidRole.REQUESTER, frozenset({S.RECEIVED, S.RETURN_REQUESTED}), S.RETURNED
    ),
    AidStepKind.CANCEL: Transition(
        AidRole.REQUESTER,
        frozenset({S.REQUESTED, S.OFFERED, S.ACCEPTED, S.COMMITTED, S.DISPATCHED, S.IN_TRANSIT}),
        S.CANCELLED,
    ),
    AidStepKind.DECLINE: Transition(
        AidRole.PROVIDER,
        frozenset({S.REQUESTED, S.OFFERED, S.ACCEPTED, S.COMMITTED}),
        S.DECLINED,
    ),
}

OPEN = frozenset({S.REQUESTED, S.OFFERED, S.ACCEPTED})
"""Not yet committed: the district's unmet needs."""
HOLDING = frozenset({S.COMMITTED, S.DISPATCHED, S.IN_TRANSIT, S.RECEIVED, S.RETURN_REQUESTED})
"""The provider's units are reserved for the request (reusable items until returned)."""
TERMINAL = frozenset({S.RETURNED, S.CANCELLED, S.DECLINED})


class AidError(LinliError):
    """Base of the aid flow's refusals."""

    code = "AID_ERROR"


class AidStepOutOfOrder(AidError):
    """The step does not follow from the request's status (receive before dispatch, ...)."""

    code = "AID_STEP_OUT_OF_ORDER"


class AidNotYourStep(AidError):
    """The step belongs to the other party (a provider cannot accept its own offer)."""

    code = "AID_NOT_YOUR_STEP"


class AidQuantityInvalid(AidError):
    """A quantity of zero, negative, or over what was requested (or committed)."""

    code = "AID_QUANTITY_INVALID"


class AidAboveAvailable(AidError):
    """The commit asks for more than the resource has available: nothing was reserved."""

    code = "AID_ABOVE_AVAILABLE"


class AidRecordRetired(AidError):
    """The resource was retired: nothing can be committed from it."""

    code = "AID_RECORD_RETIRED"


class AidNotOwner(AidError):
    """The offered resource is not this community's own."""

    code = "AID_NOT_OWNER"


class AidKindMismatch(AidError):
    """The offered resource is of another kind than the one requested."""

    code = "AID_KIND_MISMATCH"


class AidDisclosure(BaseModel):
    """What the requester learns only once the provider has committed: where and whom."""

    model_config = ConfigDict(extra="forbid")

    resource_id: str = Field(max_length=200)
    address: str = Field(max_length=500)
    contact: str = Field(max_length=200)


class AidStep(BaseModel):
    """One cross-node step of a mutual-aid request (maps onto one EDXL-RM message).

    ``message_id`` is the step's identity everywhere: each receiver applies a given
    message id once, so a step delivered twice (a lost answer, a retry) takes effect
    once. ``quantity`` is what the step is about: requested (request), offered
    (offer, accept), reserved (commit), received (receive), returned (return).
    """

    model_config = ConfigDict(extra="forbid")

    message_id: uuid.UUID
    kind: AidStepKind
    request_id: str = Field(max_length=200, description="AidRequest:<requester>:<local>")
    requester: DivisionCode
    provider: DivisionCode | None = Field(
        default=None,
        description="None only on the request step of a request open to the district",
    )
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
    place: GeoPoint | None = Field(
        default=None, description="Only on request: where it is needed (matching, nearest first)"
    )
    at: AwareDatetime
    disclosure: AidDisclosure | None = Field(
        default=None, description="Only on commit: the pick-up address and contact"
    )

    def role(self) -> AidRole:
        """Which party sent the step."""
        return AidRole.REQUESTER if self.sender == self.requester else AidRole.PROVIDER

    def history_entry(self) -> dict[str, object]:
        """The step as each side's history records it: everything but the disclosure."""
        return self.model_dump(mode="json", exclude={"disclosure"})


def new_message_id() -> uuid.UUID:
    """A fresh step id."""
    return uuid.uuid4()


def advance(status: AidRequestStatus | None, kind: AidStepKind, by: AidRole) -> AidRequestStatus:
    """The status after ``kind`` taken by ``by`` from ``status``; refused if out of order."""
    rule = TRANSITIONS[kind]
    if rule.by is not by:
        raise AidNotYourStep(
            f"the step {kind.value!r} is the {rule.by.value}'s, not the {by.value}'s",
            step=kind.value,
            role=by.value,
        )
    if status not in rule.before:
        shown = status.value if status is not None else "(none)"
        raise AidStepOutOfOrder(
            f"the step {kind.value!r} cannot follow the status {shown!r}",
            status=shown,
            step=kind.value,
        )
    return rule.after


def releases(before: AidRequestStatus, after: AidRequestStatus, *, reusable: bool) -> bool:
    """Whether moving ``before`` -> ``after`` gives the reserved units back to the provider."""
    if before not in HOLDING:
        return False
    if after in (S.CANCELLED, S.DECLINED):
        return True
    return after is S.RETURNED and reusable


def consumes(after: AidRequestStatus, *, reusable: bool) -> bool:
    """Whether reaching ``after`` means the units left the provider's stock for good."""
    return after is S.RECEIVED and not reusable


def step_time(step: AidStep) -> datetime:
    """When the step was taken."""
    return step.at
