"""Linli aid steps to and from OASIS EDXL-RM 1.0 messages.

One step is one message. The step's kind picks the message (and, where one
message carries two kinds, its ``ResponseType`` or ``MessageRecall``)::

    step kind        EDXL-RM message                  told apart by
    request          RequestResource
    cancel           RequestResource                  MessageRecall RecallType Cancel
    offer            ResponseToRequestResource        ResponseType Accept (Provisional, Conditional)
    decline          ResponseToRequestResource        ResponseType Decline
    accept           RequisitionResource
    commit           CommitResource                   ResponseType Accept
    refuse           CommitResource                   ResponseType Decline
    dispatch         ReportResourceDeploymentStatus   ScheduleType ActualDeparture
    in_transit       ReportResourceDeploymentStatus   ScheduleType Current
    receive          ReportResourceDeploymentStatus   ScheduleType ActualArrival
    request_return   RequestReturn
    return           ResponseToRequestReturn          (or ReleaseResource)

Where the fields go::

    message_id    MessageID (a UUID; another producer's id is read as a UUID 5 of it)
    at            SentDateTime (microseconds and offset kept)
    note          MessageDescription
    request_id    OriginatingMessageID (and MessageRecall/MessageID on cancel)
    sender, requester, provider
                  ContactInformation with ContactRole Sender, Requester, Owner; the
                  community's division code in ContactDescription
    resource_id   ResourceInformation/Resource/ResourceID
    resource_kind Resource/TypeStructure, value list urn:linli:resource-kind
    kind          Resource/Keyword, value list urn:linli:edxl-rm:step-kind
                  (and the kind's GB/T 38565 first-level class: urn:linli:gb-t-38565:class)
    unit          Resource/Keyword urn:linli:unit (and UnitOfMeasure beside a quantity)
    quantity      AssignmentInformation/Quantity/MeasuredQuantity/Amount
    reason        ResponseInformation/ReasonCode in answers, else Keyword urn:linli:edxl-rm:reason
    needed_by     ScheduleInformation RequestedArrival
    skill         Resource/Keyword urn:linli:volunteer-skill (a request for volunteers, whose
                  TypeStructure is ``volunteers``: EDXL-RM personnel)
    window_from, window_to
                  ScheduleInformation BeginAvailable, EndAvailable (volunteers)
    disclosure    ScheduleInformation Committed/Location (address),
                  AssignmentInstructions/ReportingInstructions (contact),
                  Keyword urn:linli:edxl-rm:disclosed-resource-id

Not carried yet: the volunteer ids of an offer, accept or commit, and the people of a
volunteers' disclosure (its contact is).

Free text (note, ids, unit, reason, address, contact) is kept exactly as
written; codes (division codes, kinds, types, times, numbers) are read without
surrounding whitespace.

A message from another system needs no Linli keyword: the kind is then read
from the message, its ResponseType, MessageRecall and ScheduleType as above.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any
from xml.etree.ElementTree import Element, SubElement, indent

from pydantic import ValidationError

from adapters.edxl_rm._step import AidDisclosure, AidStep, AidStepKind
from adapters.edxl_rm._structure import (
    CT_NAMESPACE,
    FLOW_MESSAGES,
    MSG_NAMESPACE,
    RESPONSE_TYPES,
    SCHEDULE_TYPES,
    RmMessage,
    check_message,
)
from adapters.edxl_rm.errors import (
    EdxlRmInvalid,
    EdxlRmNotAStep,
    EdxlRmUnsupportedMessage,
    EdxlRmWrongNamespace,
)
from adapters.xmlio import parse_untrusted, serialize, split_tag, unrepresentable
from schema.codes import RESOURCE_KINDS

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "EDXL_RM_CONTENT_TYPE",
    "KIND_LIST_URN",
    "MESSAGES_FOR_KIND",
    "STEP_LIST_URN",
    "SUPPLY_CLASS_LIST_URN",
    "UNIT_LIST_URN",
    "parse_step",
    "step_from_element",
    "step_to_element",
    "validate_message",
    "write_step",
]

DEFAULT_MAX_MESSAGE_BYTES = 256 * 1024
"""Largest EDXL-RM message accepted by default (256 KiB; a step is a few KiB)."""

EDXL_RM_CONTENT_TYPE = "application/xml; charset=utf-8"
"""EDXL-RM has no media type of its own; the charset is said so Chinese text never garbles."""

STEP_LIST_URN = "urn:linli:edxl-rm:step-kind"
KIND_LIST_URN = "urn:linli:resource-kind"
UNIT_LIST_URN = "urn:linli:unit"
REASON_LIST_URN = "urn:linli:edxl-rm:reason"
DISCLOSED_LIST_URN = "urn:linli:edxl-rm:disclosed-resource-id"
VOLUNTEER_SKILL_LIST_URN = "urn:linli:volunteer-skill"
SUPPLY_CLASS_LIST_URN = "urn:linli:gb-t-38565:class"
"""The first-level GB/T 38565-2020 class of the kind (1, 2 or 3), for systems that type by it."""
_LINLI_LISTS = (
    STEP_LIST_URN,
    UNIT_LIST_URN,
    REASON_LIST_URN,
    DISCLOSED_LIST_URN,
    SUPPLY_CLASS_LIST_URN,
    VOLUNTEER_SKILL_LIST_URN,
)

_ELEMENT_ID = "1"
_FUNDING = "mutual aid between communities: no charge"
_UUID_NAMESPACE = uuid.UUID("7d0ba1a6-3c1e-5b8f-9a57-6c1d2e1f0e21")
"""Namespace of the UUID 5 given to another producer's MessageID that is not a UUID."""

K = AidStepKind
M = RmMessage

MESSAGES_FOR_KIND: dict[AidStepKind, tuple[RmMessage, ...]] = {
    K.REQUEST: (M.REQUEST_RESOURCE,),
    K.CANCEL: (M.REQUEST_RESOURCE,),
    K.OFFER: (M.RESPONSE_TO_REQUEST_RESOURCE,),
    K.DECLINE: (M.RESPONSE_TO_REQUEST_RESOURCE,),
    K.ACCEPT: (M.REQUISITION_RESOURCE,),
    K.COMMIT: (M.COMMIT_RESOURCE,),
    K.REFUSE: (M.COMMIT_RESOURCE,),
    K.DISPATCH: (M.REPORT_RESOURCE_DEPLOYMENT_STATUS,),
    K.IN_TRANSIT: (M.REPORT_RESOURCE_DEPLOYMENT_STATUS,),
    K.RECEIVE: (M.REPORT_RESOURCE_DEPLOYMENT_STATUS,),
    K.REQUEST_RETURN: (M.REQUEST_RETURN,),
    K.RETURN: (M.RESPONSE_TO_REQUEST_RETURN, M.RELEASE_RESOURCE),
}
"""The messages that can carry each kind of step; the first is the one written by default."""

_ANSWERS = frozenset(
    {M.RESPONSE_TO_REQUEST_RESOURCE, M.COMMIT_RESOURCE, M.RESPONSE_TO_REQUEST_RETURN}
)
_DECLINING = frozenset({K.DECLINE, K.REFUSE})
_DEPLOYMENT_SCHEDULE = {
    K.DISPATCH: "ActualDeparture",
    K.IN_TRANSIT: "Current",
    K.RECEIVE: "ActualArrival",
}
_ROLES = {"Sender": "sender", "Requester": "requester", "Owner": "provider"}

# xsd:dateTime with the time zone EDXL requires: 2026-11-30T08:00:00.25+08:00 or ...Z.
_DATETIME = re.compile(r"-?\d{4,}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


def _tag(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


# ---------------------------------------------------------------- writing


class _Writer:
    """Builds EDXL-RM elements, checking that each text can be written as XML."""

    def add(self, parent: Element, namespace: str, name: str, text: str, path: str) -> Element:
        child = SubElement(parent, _tag(namespace, name))
        bad = unrepresentable(text)
        if bad is not None:
            raise EdxlRmInvalid(
                f"character U+{ord(bad):04X} cannot appear in an XML document",
                path=f"{path}/{name}",
            )
        child.text = text
        return child

    def node(self, parent: Element, namespace: str, name: str) -> Element:
        return SubElement(parent, _tag(namespace, name))

    def value_list(self, parent: Element, name: str, urn: str, value: str, path: str) -> None:
        element = self.node(
            parent, MSG_NAMESPACE if name != "UnitOfMeasure" else CT_NAMESPACE, name
        )
        self.add(element, CT_NAMESPACE, "ValueListURN", urn, f"{path}/{name}")
        self.add(element, CT_NAMESPACE, "Value", value, f"{path}/{name}")


def format_datetime(value: datetime) -> str:
    """An aware datetime as xsd:dateTime, keeping its microseconds and its offset."""
    if value.utcoffset() is None:
        raise ValueError("an EDXL-RM time needs a time zone")
    return value.isoformat()


def step_to_element(step: AidStep, *, message: RmMessage | None = None) -> Element:
    """A step as the root element of its EDXL-RM message (``message`` picks an alternative)."""
    allowed = MESSAGES_FOR_KIND[step.kind]
    chosen = allowed[0] if message is None else message
    if chosen not in allowed:
        shown = ", ".join(m.value for m in allowed)
        raise ValueError(f"a {step.kind.value} step is carried by {shown}, not {chosen.value}")
    w = _Writer()
    path = f"/{chosen.value}"
    root = Element(_tag(MSG_NAMESPACE, chosen.value))
    w.add(root, MSG_NAMESPACE, "MessageID", str(step.message_id), path)
    w.add(root, MSG_NAMESPACE, "SentDateTime", format_datetime(step.at), path)
    w.add(root, MSG_NAMESPACE, "MessageContentType", chosen.value, path)
    if step.note:
        w.add(root, MSG_NAMESPACE, "MessageDescription", step.note, path)
    w.add(root, MSG_NAMESPACE, "OriginatingMessageID", step.request_id, path)
    if step.kind is K.CANCEL:
        recall = w.node(root, MSG_NAMESPACE, "MessageRecall")
        w.add(recall, CT_NAMESPACE, "MessageID", step.request_id, f"{path}/MessageRecall")
        w.add(recall, CT_NAMESPACE, "RecallType", "Cancel", f"{path}/MessageRecall")
    if chosen is M.REQUISITION_RESOURCE:  # the specification requires Funding here
        funding = w.node(root, MSG_NAMESPACE, "Funding")
        w.add(funding, CT_NAMESPACE, "FundingInfo", _FUNDING, f"{path}/Funding")
    parties = [("Sender", step.sender), ("Requester", step.requester)]
    if step.provider is not None:  # none yet: a request open to the district
        parties.append(("Owner", step.provider))
    for i, (role, code) in enumerate(parties, 1):
        contact = w.node(root, MSG_NAMESPACE, "ContactInformation")
        where = f"{path}/ContactInformation[{i}]"
        w.add(contact, CT_NAMESPACE, "ContactDescription", code, where)
        w.add(contact, CT_NAMESPACE, "ContactRole", role, where)
    _write_resource_information(w, root, step, chosen, path)
    return root


def _write_resource_information(
    w: _Writer, root: Element, step: AidStep, message: RmMessage, path: str
) -> None:
    info = w.node(root, MSG_NAMESPACE, "ResourceInformation")
    path = f"{path}/ResourceInformation[1]"
    w.add(info, MSG_NAMESPACE, "ResourceInfoElementID", _ELEMENT_ID, path)
    answers = message in _ANSWERS
    if answers:
        response = w.node(info, MSG_NAMESPACE, "ResponseInformation")
        where = f"{path}/ResponseInformation"
        w.add(response, CT_NAMESPACE, "PrecedingResourceInfoElementID", _ELEMENT_ID, where)
        w.add(
            response,
            CT_NAMESPACE,
            "ResponseType",
            "Decline" if step.kind in _DECLINING else "Accept",
            where,
        )
        if step.reason is not None:
            w.add(response, CT_NAMESPACE, "ReasonCode", step.reason, where)
    resource = w.node(info, MSG_NAMESPACE, "Resource")
    where = f"{path}/Resource"
    if step.resource_id is not None:
        w.add(resource, MSG_NAMESPACE, "ResourceID", step.resource_id, where)
    w.value_list(resource, "TypeStructure", KIND_LIST_URN, step.resource_kind, where)
    w.value_list(resource, "Keyword", STEP_LIST_URN, step.kind.value, where)
    known = RESOURCE_KINDS.get(step.resource_kind)  # None: volunteers (no supply class)
    if known is not None:
        w.value_list(resource, "Keyword", SUPPLY_CLASS_LIST_URN, known.supply_class.value, where)
    w.value_list(resource, "Keyword", UNIT_LIST_URN, step.unit, where)
    if step.skill is not None:
        w.value_list(resource, "Keyword", VOLUNTEER_SKILL_LIST_URN, step.skill, where)
    if step.reason is not None and not answers:
        w.value_list(resource, "Keyword", REASON_LIST_URN, step.reason, where)
    if step.disclosure is not None and step.disclosure.resource_id is not None:
        w.value_list(resource, "Keyword", DISCLOSED_LIST_URN, step.disclosure.resource_id, where)
    if step.quantity is not None or step.disclosure is not None:
        assignment = w.node(info, MSG_NAMESPACE, "AssignmentInformation")
        where = f"{path}/AssignmentInformation"
        if step.quantity is not None:
            quantity = w.node(assignment, MSG_NAMESPACE, "Quantity")
            measured = w.node(quantity, CT_NAMESPACE, "MeasuredQuantity")
            w.add(measured, CT_NAMESPACE, "Amount", str(step.quantity), f"{where}/Quantity")
            w.value_list(measured, "UnitOfMeasure", UNIT_LIST_URN, step.unit, f"{where}/Quantity")
        if step.disclosure is not None:
            instructions = w.node(assignment, MSG_NAMESPACE, "AssignmentInstructions")
            w.add(
                instructions,
                CT_NAMESPACE,
                "ReportingInstructions",
                step.disclosure.contact,
                f"{where}/AssignmentInstructions",
            )
    schedules: list[tuple[str, datetime | None, str | None]] = []
    if step.needed_by is not None:
        schedules.append(("RequestedArrival", step.needed_by, None))
    if step.window_from is not None:
        schedules.append(("BeginAvailable", step.window_from, None))
    if step.window_to is not None:
        schedules.append(("EndAvailable", step.window_to, None))
    if step.kind in _DEPLOYMENT_SCHEDULE:
        schedules.append((_DEPLOYMENT_SCHEDULE[step.kind], step.at, None))
    if step.disclosure is not None:
        schedules.append(("Committed", None, step.disclosure.address))
    for i, (schedule_type, moment, address) in enumerate(schedules, 1):
        schedule = w.node(info, MSG_NAMESPACE, "ScheduleInformation")
        where = f"{path}/ScheduleInformation[{i}]"
        w.add(schedule, MSG_NAMESPACE, "ScheduleType", schedule_type, where)
        if moment is not None:
            w.add(schedule, MSG_NAMESPACE, "DateTime", format_datetime(moment), where)
        if address is not None:
            location = w.node(schedule, MSG_NAMESPACE, "Location")
            w.add(location, CT_NAMESPACE, "LocationDescription", address, f"{where}/Location")


def write_step(step: AidStep, *, message: RmMessage | None = None) -> bytes:
    """A step as an EDXL-RM 1.0 XML message (UTF-8) that passes this codec's structure check."""
    root = step_to_element(step, message=message)
    check_message(root, RmMessage(split_tag(root.tag)[1]))
    indent(root, space="  ")
    return serialize(root, prefixes={CT_NAMESPACE: "rm"})


# ---------------------------------------------------------------- reading


def _message_of(root: Element) -> RmMessage:
    namespace, name = split_tag(root.tag)
    if namespace != MSG_NAMESPACE:
        raise EdxlRmWrongNamespace(namespace, expected=MSG_NAMESPACE)
    supported = [m.value for m in FLOW_MESSAGES]
    if name not in supported:
        raise EdxlRmUnsupportedMessage(name, supported=supported)
    return RmMessage(name)


def _check(root: Element) -> RmMessage:
    message = _message_of(root)
    check_message(root, message)
    content_type = _text(_child(root, MSG_NAMESPACE, "MessageContentType")).strip()
    if content_type != message.value:
        raise EdxlRmInvalid(
            f"MessageContentType {content_type!r} does not name the message <{message.value}>",
            path=f"/{message.value}/MessageContentType",
        )
    return message


def validate_message(data: bytes, *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> RmMessage:
    """Check an EDXL-RM message of the aid flow against the specification and say which it is."""
    return _check(parse_untrusted(data, max_bytes=max_bytes))


def parse_step(data: bytes, *, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> AidStep:
    """Read one EDXL-RM message (untrusted bytes) into an aid step."""
    return step_from_element(parse_untrusted(data, max_bytes=max_bytes))


def _child(parent: Element, namespace: str, name: str) -> Element | None:
    return parent.find(_tag(namespace, name))


def _children(parent: Element, namespace: str, name: str) -> Iterator[Element]:
    return iter(parent.findall(_tag(namespace, name)))


def _text(element: Element | None) -> str:
    return "" if element is None else "".join(element.itertext())


def _parse_datetime(text: str, *, path: str) -> datetime:
    text = text.strip()
    if not _DATETIME.fullmatch(text):
        raise EdxlRmInvalid(
            f"{text!r} is not a date and time with a time zone (xsd:dateTime)", path=path
        )
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise EdxlRmInvalid(f"{text!r} is not a date and time", path=path) from None


def _message_uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError:
        # Another producer's id ("RequestResource.1"): the same text always gives the same id,
        # so a message delivered twice is still recognised.
        return uuid.uuid5(_UUID_NAMESPACE, text)


class _Read:
    """What a step's fields were read from, so a refusal names the place in the message."""

    def __init__(self, root_path: str) -> None:
        self.fields: dict[str, Any] = {}
        self.paths: dict[str, str] = {}
        self.root_path = root_path

    def set(self, field: str, value: Any, path: str) -> None:
        self.fields[field] = value
        self.paths[field] = path

    def not_a_step(self, reason: str, path: str | None = None) -> EdxlRmNotAStep:
        return EdxlRmNotAStep(reason, path=path or self.root_path)


def step_from_element(root: Element) -> AidStep:
    """Check an already parsed EDXL-RM message and read it into an aid step."""
    message = _check(root)
    path = f"/{message.value}"
    read = _Read(path)
    read.set(
        "message_id",
        _message_uuid(_text(_child(root, MSG_NAMESPACE, "MessageID")).strip()),
        f"{path}/MessageID",
    )
    read.set(
        "at",
        _parse_datetime(
            _text(_child(root, MSG_NAMESPACE, "SentDateTime")), path=f"{path}/SentDateTime"
        ),
        f"{path}/SentDateTime",
    )
    description = _child(root, MSG_NAMESPACE, "MessageDescription")
    read.set("note", _text(description), f"{path}/MessageDescription")
    origin = _child(root, MSG_NAMESPACE, "OriginatingMessageID")
    if origin is None:
        raise read.not_a_step("<OriginatingMessageID> must name the aid request")
    read.set("request_id", _text(origin), f"{path}/OriginatingMessageID")
    _read_contacts(read, root, path)
    infos = list(_children(root, MSG_NAMESPACE, "ResourceInformation"))
    if len(infos) != 1:
        raise read.not_a_step(
            f"a step has one <ResourceInformation>, this message has {len(infos)}"
        )
    kind = _read_resource_information(
        read, root, infos[0], message, f"{path}/ResourceInformation[1]"
    )
    read.set("kind", kind, read.paths.get("kind", path))
    if "provider" not in read.fields and kind is not K.REQUEST:  # only a request may be open
        raise read.not_a_step("no <ContactInformation> with ContactRole Owner names its community")
    try:
        return AidStep(**read.fields)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        field = str(first["loc"][0]) if first["loc"] else ""
        where = read.paths.get(field, path)
        raise EdxlRmNotAStep(f"{field}: {first['msg']}", path=where, field=field) from exc


def _read_contacts(read: _Read, root: Element, path: str) -> None:
    seen: set[str] = set()
    for i, contact in enumerate(_children(root, MSG_NAMESPACE, "ContactInformation"), 1):
        where = f"{path}/ContactInformation[{i}]"
        role = _text(_child(contact, CT_NAMESPACE, "ContactRole")).strip()
        if role not in _ROLES:
            continue  # another contact (an approver, a point of contact): not a party of the step
        if role in seen:
            raise read.not_a_step(f"two contacts have the role {role}", where)
        seen.add(role)
        code = _text(_child(contact, CT_NAMESPACE, "ContactDescription")).strip()
        read.set(_ROLES[role], code, f"{where}/ContactDescription")
    for role in _ROLES:
        if role not in seen and role != "Owner":  # no Owner: open to the district
            raise read.not_a_step(
                f"no <ContactInformation> with ContactRole {role} names its community"
            )


def _value_lists(parent: Element, name: str, path: str) -> Iterator[tuple[str, list[str], str]]:
    for i, element in enumerate(_children(parent, MSG_NAMESPACE, name), 1):
        where = f"{path}/{name}[{i}]" if name == "Keyword" else f"{path}/{name}"
        urn = _text(_child(element, CT_NAMESPACE, "ValueListURN")).strip()
        values = [_text(v) for v in _children(element, CT_NAMESPACE, "Value")]
        yield urn, values, where


def _read_resource_information(
    read: _Read, root: Element, info: Element, message: RmMessage, path: str
) -> AidStepKind:
    resource = _child(info, MSG_NAMESPACE, "Resource")
    if resource is None:
        raise read.not_a_step("a step names its resource kind in <Resource>", path)
    where = f"{path}/Resource"
    keywords: dict[str, tuple[str, str]] = {}
    for urn, values, at in _value_lists(resource, "Keyword", where):
        if urn not in _LINLI_LISTS:
            continue
        if urn in keywords or len(values) != 1:
            raise read.not_a_step(f"the value list {urn} is given more than one value", at)
        keywords[urn] = (values[0], f"{at}/Value")
    type_structure = next(_value_lists(resource, "TypeStructure", where), None)
    if type_structure is None or type_structure[0] != KIND_LIST_URN or len(type_structure[1]) != 1:
        raise read.not_a_step(
            f"<TypeStructure> must give one value of the list {KIND_LIST_URN}", where
        )
    resource_kind = type_structure[1][0].strip()
    read.set("resource_kind", resource_kind, f"{where}/TypeStructure/Value")
    if SUPPLY_CLASS_LIST_URN in keywords and resource_kind in RESOURCE_KINDS:
        value, at = keywords[SUPPLY_CLASS_LIST_URN]
        supply_class = RESOURCE_KINDS[resource_kind].supply_class
        if value.strip() != supply_class.value:
            raise read.not_a_step(
                f"{resource_kind} is of GB/T 38565 class {supply_class.value}, not {value.strip()}",
                at,
            )
    resource_id = _child(resource, MSG_NAMESPACE, "ResourceID")
    read.set(
        "resource_id",
        None if resource_id is None else _text(resource_id),
        f"{where}/ResourceID",
    )

    response = _child(info, MSG_NAMESPACE, "ResponseInformation")
    response_type: str | None = None
    if response is not None:
        response_type = _text(_child(response, CT_NAMESPACE, "ResponseType")).strip()
        if response_type not in RESPONSE_TYPES:
            raise EdxlRmInvalid(
                f"{response_type!r} is not one of {', '.join(RESPONSE_TYPES)}",
                path=f"{path}/ResponseInformation/ResponseType",
            )
        reason = _child(response, CT_NAMESPACE, "ReasonCode")
        if reason is not None:
            read.set("reason", _text(reason), f"{path}/ResponseInformation/ReasonCode")
    if REASON_LIST_URN in keywords and "reason" not in read.fields:
        value, at = keywords[REASON_LIST_URN]
        read.set("reason", value, at)

    unit_of_measure, contact = _read_assignment(read, info, f"{path}/AssignmentInformation")
    if UNIT_LIST_URN in keywords:
        value, at = keywords[UNIT_LIST_URN]
        if unit_of_measure is not None and unit_of_measure[0] != value:
            raise read.not_a_step(
                f"the unit {value!r} and the UnitOfMeasure {unit_of_measure[0]!r} differ",
                at,
            )
        read.set("unit", value, at)
    elif unit_of_measure is not None:
        read.set("unit", *unit_of_measure)
    else:
        raise read.not_a_step(
            f"no unit: neither a Keyword of {UNIT_LIST_URN} nor a UnitOfMeasure", where
        )

    schedules = _read_schedules(read, info, path)
    if "RequestedArrival" in schedules and schedules["RequestedArrival"][0] is not None:
        read.set("needed_by", schedules["RequestedArrival"][0], schedules["RequestedArrival"][2])
    for schedule_type, field in (("BeginAvailable", "window_from"), ("EndAvailable", "window_to")):
        if schedule_type in schedules and schedules[schedule_type][0] is not None:
            read.set(field, schedules[schedule_type][0], schedules[schedule_type][2])
    if VOLUNTEER_SKILL_LIST_URN in keywords:
        value, at = keywords[VOLUNTEER_SKILL_LIST_URN]
        read.set("skill", value.strip(), at)
    _read_disclosure(read, keywords, schedules, contact)

    recall = _child(root, MSG_NAMESPACE, "MessageRecall")
    cancelled = (
        recall is not None and _text(_child(recall, CT_NAMESPACE, "RecallType")).strip() == "Cancel"
    )
    inferred = _infer_kind(message, response_type, cancelled, schedules)
    if STEP_LIST_URN not in keywords:
        read.paths["kind"] = f"/{message.value}"
        return inferred
    value, at = keywords[STEP_LIST_URN]
    read.paths["kind"] = at
    try:
        kind = AidStepKind(value.strip())
    except ValueError:
        raise read.not_a_step(f"{value.strip()!r} is not a step kind", at) from None
    if kind is not inferred:
        raise read.not_a_step(
            f"the step kind {kind.value!r} contradicts the message, "
            f"which reads as {inferred.value!r}",
            at,
        )
    return kind


_Found = tuple[str, str]
"""A text read from the message and where it was."""


def _read_assignment(read: _Read, info: Element, path: str) -> tuple[_Found | None, _Found | None]:
    """Read the quantity; give back the UnitOfMeasure and the disclosed contact, if any."""
    assignment = _child(info, MSG_NAMESPACE, "AssignmentInformation")
    if assignment is None:
        return None, None
    contact: _Found | None = None
    instructions = _child(assignment, MSG_NAMESPACE, "AssignmentInstructions")
    if instructions is not None:
        reporting = _child(instructions, CT_NAMESPACE, "ReportingInstructions")
        if reporting is not None:
            where = f"{path}/AssignmentInstructions/ReportingInstructions"
            contact = (_text(reporting), where)
    quantity = _child(assignment, MSG_NAMESPACE, "Quantity")
    if quantity is None:
        return None, contact
    return _read_quantity(read, quantity, f"{path}/Quantity"), contact


def _read_quantity(read: _Read, quantity: Element, path: str) -> _Found | None:
    """Read a whole-number quantity; give back its UnitOfMeasure, if any."""
    measured = _child(quantity, CT_NAMESPACE, "MeasuredQuantity")
    if measured is None:
        text = _text(_child(quantity, CT_NAMESPACE, "QuantityText")).strip()
        if not text.isdigit():
            raise read.not_a_step(
                f"the quantity {text!r} is not a whole number", f"{path}/QuantityText"
            )
        read.set("quantity", int(text), f"{path}/QuantityText")
        return None
    where = f"{path}/MeasuredQuantity"
    amount = _text(_child(measured, CT_NAMESPACE, "Amount")).strip()
    if not _DECIMAL.fullmatch(amount):
        raise EdxlRmInvalid(f"{amount!r} is not a decimal number", path=f"{where}/Amount")
    value = Decimal(amount)
    if value != value.to_integral_value():
        raise read.not_a_step(f"the quantity {amount} is not a whole number", f"{where}/Amount")
    read.set("quantity", int(value), f"{where}/Amount")
    unit = _child(measured, CT_NAMESPACE, "UnitOfMeasure")
    if unit is None:
        return None
    urn = _text(_child(unit, CT_NAMESPACE, "ValueListURN")).strip()
    values = [_text(v) for v in _children(unit, CT_NAMESPACE, "Value")]
    if urn != UNIT_LIST_URN or len(values) != 1:
        raise read.not_a_step(
            f"<UnitOfMeasure> must give one value of the list {UNIT_LIST_URN}",
            f"{where}/UnitOfMeasure",
        )
    return values[0], f"{where}/UnitOfMeasure/Value"


_Schedule = tuple[datetime | None, str | None, str]


def _read_schedules(read: _Read, info: Element, path: str) -> dict[str, _Schedule]:
    """Each ScheduleType's time, location text and path (a type given twice is refused)."""
    found: dict[str, _Schedule] = {}
    for i, schedule in enumerate(_children(info, MSG_NAMESPACE, "ScheduleInformation"), 1):
        where = f"{path}/ScheduleInformation[{i}]"
        schedule_type = _text(_child(schedule, MSG_NAMESPACE, "ScheduleType")).strip()
        if schedule_type not in SCHEDULE_TYPES:
            raise EdxlRmInvalid(
                f"{schedule_type!r} is not one of {', '.join(SCHEDULE_TYPES)}",
                path=f"{where}/ScheduleType",
            )
        if schedule_type in found:
            raise read.not_a_step(f"the ScheduleType {schedule_type} is given twice", where)
        moment_element = _child(schedule, MSG_NAMESPACE, "DateTime")
        moment = (
            None
            if moment_element is None
            else _parse_datetime(_text(moment_element), path=f"{where}/DateTime")
        )
        location = _child(schedule, MSG_NAMESPACE, "Location")
        description = (
            None if location is None else _child(location, CT_NAMESPACE, "LocationDescription")
        )
        address = None if description is None else _text(description)
        found[schedule_type] = (
            moment,
            address,
            f"{where}/DateTime" if moment is not None else f"{where}/Location/LocationDescription",
        )
    return found


def _read_disclosure(
    read: _Read,
    keywords: dict[str, _Found],
    schedules: dict[str, _Schedule],
    contact: _Found | None,
) -> None:
    """A Committed schedule with a location is the disclosure: address, contact, resource."""
    committed = schedules.get("Committed")
    if committed is None or committed[1] is None:
        return
    _, address, where = committed
    if contact is None:
        raise read.not_a_step(
            "a disclosed pick-up address needs the contact in ReportingInstructions", where
        )
    if DISCLOSED_LIST_URN in keywords:
        resource_id = keywords[DISCLOSED_LIST_URN][0]
    elif read.fields.get("resource_id") is not None:
        resource_id = str(read.fields["resource_id"])
    else:
        raise read.not_a_step("a disclosure names its resource: no ResourceID", where)
    try:
        disclosure = AidDisclosure(resource_id=resource_id, address=address, contact=contact[0])
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        raise read.not_a_step(f"disclosure: {first['msg']}", where) from exc
    read.set("disclosure", disclosure, where)


def _infer_kind(
    message: RmMessage, response_type: str | None, cancelled: bool, schedules: dict[str, _Schedule]
) -> AidStepKind:
    declined = response_type == "Decline"
    if message is M.REQUEST_RESOURCE:
        return K.CANCEL if cancelled else K.REQUEST
    if message is M.RESPONSE_TO_REQUEST_RESOURCE:
        return K.DECLINE if declined else K.OFFER
    if message is M.REQUISITION_RESOURCE:
        return K.ACCEPT
    if message is M.COMMIT_RESOURCE:
        return K.REFUSE if declined else K.COMMIT
    if message is M.REPORT_RESOURCE_DEPLOYMENT_STATUS:
        if "ActualArrival" in schedules:
            return K.RECEIVE
        if "ActualDeparture" in schedules:
            return K.DISPATCH
        return K.IN_TRANSIT
    if message is M.REQUEST_RETURN:
        return K.REQUEST_RETURN
    return K.RETURN  # ResponseToRequestReturn, ReleaseResource
