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
        ├── AidKindMismatch           AID_KIND_MISMATCH          (kind, resourceKind)
        ├── AidSkillUnknown           AID_SKILL_UNKNOWN          (skill)
        ├── AidWindowInvalid          AID_WINDOW_INVALID         (windowFrom, windowTo, maxHours)
        ├── AidVolunteerBooked        AID_VOLUNTEER_BOOKED       (volunteerId, requestId)
        └── AidVolunteerUnavailable   AID_VOLUNTEER_UNAVAILABLE  (volunteerId, availability)

Volunteers. A request whose ``resource_kind`` is ``volunteers`` asks for ``quantity``
people with ``skill`` (``schema.codes.VOLUNTEER_SKILLS``) from ``window_from`` to
``window_to``. The steps are the same; the provider is the volunteers' community, and
its offer names Volunteer records (``volunteer_ids``) instead of a resource. Its node
books them when the accept arrives, in the accept's transaction (a volunteer is never
booked twice for overlapping windows, and must be ``available``); the commit discloses
their names and phones to the requester. ``dispatch`` means they set out, ``receive``
that they arrived, ``return`` (or ``cancel``/``decline``) releases the booking;
``in_transit`` does not apply and is refused (``AID_STEP_OUT_OF_ORDER``);
``request_return`` is the community calling its people back.

A request open to the district (``provider`` None) is matched at the hub and passed on
to the owners of the matching resources, each as if addressed to it. The first owner's
offer names the provider; every other owner's copy is cancelled with the reason
``AID_TAKEN`` (``TAKEN``), and a later offer from another owner is ignored.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schema.codes import VOLUNTEER_SKILLS, VOLUNTEERS_KIND
from schema.enums import AidRequestStatus
from schema.errors import LinliError
from schema.geo import GeoPoint
from schema.records._types import AidKindCode, DivisionCode

__all__ = [
    "HOLDING",
    "MAX_QUANTITY",
    "MAX_VOLUNTEERS",
    "MAX_WINDOW",
    "OPEN",
    "TAKEN",
    "TERMINAL",
    "AidAboveAvailable",
    "AidDisclosure",
    "AidError",
    "AidKindMismatch",
    "AidNotOwner",
    "AidNotYourStep",
    "AidPerson",
    "AidQuantityInvalid",
    "AidRecordRetired",
    "AidRole",
    "AidSkillUnknown",
    "AidStep",
    "AidStepKind",
    "AidStepOutOfOrder",
    "AidVolunteerBooked",
    "AidVolunteerUnavailable",
    "AidWindowInvalid",
    "Transition",
    "advance",
    "check_volunteer_request",
    "new_message_id",
    "releases",
]

MAX_NOTE = 1000
TAKEN = "AID_TAKEN"
"""Reason of the cancel the hub sends the other owners once an open request has a provider."""
MAX_QUANTITY = 1_000_000_000
MAX_VOLUNTEERS = 200
"""People one request may ask for."""
MAX_WINDOW = timedelta(days=14)
"""The longest time window a request for volunteers may span."""


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


class AidSkillUnknown(AidError):
    """The skill is not in the volunteer skill code list."""

    code = "AID_SKILL_UNKNOWN"


class AidWindowInvalid(AidError):
    """A request for volunteers needs a window: from before to, at most ``MAX_WINDOW`` long."""

    code = "AID_WINDOW_INVALID"


class AidVolunteerBooked(AidError):
    """The volunteer is already committed to a request whose window overlaps this one."""

    code = "AID_VOLUNTEER_BOOKED"


class AidVolunteerUnavailable(AidError):
    """The volunteer's availability is not ``available`` (on duty, unavailable)."""

    code = "AID_VOLUNTEER_UNAVAILABLE"


class AidPerson(BaseModel):
    """A committed volunteer as the requester learns of them: who, and how to reach them."""

    model_config = ConfigDict(extra="forbid")

    volunteer_id: str = Field(max_length=200)
    name: str = Field(max_length=200)
    phone: str | None = Field(default=None, max_length=40)


class AidDisclosure(BaseModel):
    """What the requester learns only once the provider has committed: where and whom.

    For a resource: its pick-up address; for volunteers: ``people`` (no resource, no address).
    """

    model_config = ConfigDict(extra="forbid")

    resource_id: str | None = Field(default=None, max_length=200)
    address: str = Field(default="", max_length=500)
    contact: str = Field(max_length=200)
    people: list[AidPerson] = Field(default_factory=list, max_length=MAX_VOLUNTEERS)


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
    resource_kind: AidKindCode
    quantity: int | None = Field(default=None, ge=0, le=MAX_QUANTITY)
    unit: str = Field(max_length=20)
    note: str = Field(default="", max_length=MAX_NOTE)
    reason: str | None = Field(default=None, max_length=60, description="Code of a refusal")
    needed_by: AwareDatetime | None = None
    place: GeoPoint | None = Field(
        default=None, description="Only on request: where it is needed (matching, nearest first)"
    )
    skill: str | None = Field(default=None, max_length=40, description="Volunteers: the skill")
    window_from: AwareDatetime | None = Field(default=None, description="Volunteers: from")
    window_to: AwareDatetime | None = Field(default=None, description="Volunteers: until")
    volunteer_ids: list[str] | None = Field(
        default=None,
        max_length=MAX_VOLUNTEERS,
        description="Volunteers: on offer and accept, the Volunteer records offered",
    )
    at: AwareDatetime
    disclosure: AidDisclosure | None = Field(
        default=None, description="Only on commit: the pick-up address and contact"
    )

    @model_validator(mode="after")
    def _a_request_for_volunteers_is_whole(self) -> AidStep:
        """A request step for volunteers names a known skill, a number and a window."""
        if self.kind is AidStepKind.REQUEST:
            check_volunteer_request(
                self.resource_kind, self.quantity or 0, self.skill, self.window_from,
                self.window_to,
            )  # fmt: skip
        return self

    def role(self) -> AidRole:
        """Which party sent the step."""
        return AidRole.REQUESTER if self.sender == self.requester else AidRole.PROVIDER

    def history_entry(self) -> dict[str, object]:
        """The step as each side's history records it: everything but the disclosure."""
        return self.model_dump(mode="json", exclude={"disclosure"})


def check_volunteer_request(
    kind: str,
    quantity: int,
    skill: str | None,
    window_from: datetime | None,
    window_to: datetime | None,
) -> None:
    """Refuse a request for volunteers that names no known skill, too many people, or no window.

    A request for a resource must not name a skill or window (``AID_KIND_MISMATCH``).
    """
    if kind != VOLUNTEERS_KIND:
        if skill is not None or window_from is not None or window_to is not None:
            raise AidKindMismatch(
                "a skill and a window are for requests of volunteers",
                kind=kind,
                resourceKind=VOLUNTEERS_KIND,
            )
        return
    if skill is None or skill not in VOLUNTEER_SKILLS:
        raise AidSkillUnknown(
            f"{(skill or '')[:40]!r} is not in the volunteer skill code list", skill=skill
        )
    if quantity <= 0 or quantity > MAX_VOLUNTEERS:
        raise AidQuantityInvalid(
            f"a request asks for 1..{MAX_VOLUNTEERS} volunteers, not {quantity}",
            quantity=quantity,
            limit=MAX_VOLUNTEERS,
        )
    hours = MAX_WINDOW.total_seconds() / 3600
    if (
        window_from is None
        or window_to is None
        or window_to <= window_from
        or window_to - window_from > MAX_WINDOW
    ):
        raise AidWindowInvalid(
            f"volunteers need a window from before to, at most {hours:g} hours long",
            windowFrom=window_from.isoformat() if window_from else None,
            windowTo=window_to.isoformat() if window_to else None,
            maxHours=hours,
        )


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
