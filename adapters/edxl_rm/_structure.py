"""EDXL-RM 1.0's element structure, checked without the OASIS XSD.

The OASIS schemas (``EDXL-RMCommonTypes.xsd`` and one ``EDXL-RM<Message>.xsd``
per message, importing the CIQ xPIL/xNL/xAL and GML profiles) could not be
obtained for this repository, so messages are checked against the element
list of the specification (EDXL-RM 1.0 OASIS Standard, §3 and the data
dictionary): which children each element has, in which namespace, how often,
and (where marked ``ordered``) in which order. Elements whose content the
specification takes from other standards (CIQ party and address data, GML
areas, free ``TypeInfo``) are accepted without looking inside.

Message elements and the elements declared inside them are in the message
namespace (``...:RM:1.0:msg``); the children of the common types
(ValueList, Location, ContactInformation, ResponseInformation, Quantity, ...)
are in the common-types namespace (``...:RM:1.0``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from adapters.edxl_rm.errors import EdxlRmInvalid
from adapters.xmlio import split_tag

__all__ = [
    "CT_NAMESPACE",
    "FLOW_MESSAGES",
    "MSG_NAMESPACE",
    "RESPONSE_TYPES",
    "SCHEDULE_TYPES",
    "Child",
    "RmMessage",
    "Structure",
    "check_message",
]

MSG_NAMESPACE = "urn:oasis:names:tc:emergency:EDXL:RM:1.0:msg"
CT_NAMESPACE = "urn:oasis:names:tc:emergency:EDXL:RM:1.0"


class RmMessage(enum.StrEnum):
    """The sixteen EDXL-RM 1.0 messages (their root element and ``MessageContentType``)."""

    REQUEST_INFORMATION = "RequestInformation"
    RESPONSE_TO_REQUEST_INFORMATION = "ResponseToRequestInformation"
    REQUEST_RESOURCE = "RequestResource"
    RESPONSE_TO_REQUEST_RESOURCE = "ResponseToRequestResource"
    REQUISITION_RESOURCE = "RequisitionResource"
    COMMIT_RESOURCE = "CommitResource"
    OFFER_UNSOLICITED_RESOURCE = "OfferUnsolicitedResource"
    RELEASE_RESOURCE = "ReleaseResource"
    REQUEST_RETURN = "RequestReturn"
    RESPONSE_TO_REQUEST_RETURN = "ResponseToRequestReturn"
    REQUEST_QUOTE = "RequestQuote"
    RESPONSE_TO_REQUEST_QUOTE = "ResponseToRequestQuote"
    REQUEST_RESOURCE_DEPLOYMENT_STATUS = "RequestResourceDeploymentStatus"
    REPORT_RESOURCE_DEPLOYMENT_STATUS = "ReportResourceDeploymentStatus"
    REQUEST_EXTENDED_DEPLOYMENT_DURATION = "RequestExtendedDeploymentDuration"
    RESPONSE_TO_REQUEST_EXTENDED_DEPLOYMENT_DURATION = "ResponseToRequestExtendedDeploymentDuration"


M = RmMessage

FLOW_MESSAGES = (
    M.REQUEST_RESOURCE,
    M.RESPONSE_TO_REQUEST_RESOURCE,
    M.REQUISITION_RESOURCE,
    M.COMMIT_RESOURCE,
    M.REPORT_RESOURCE_DEPLOYMENT_STATUS,
    M.REQUEST_RETURN,
    M.RESPONSE_TO_REQUEST_RETURN,
    M.RELEASE_RESOURCE,
)
"""The messages the aid flow reads and writes; the others are refused as unsupported."""

_RESPONSES = frozenset(
    {M.RESPONSE_TO_REQUEST_RESOURCE, M.COMMIT_RESOURCE, M.RESPONSE_TO_REQUEST_RETURN}
)
"""Messages whose ResourceInformation answers an earlier one (ResponseInformation required)."""

RESPONSE_TYPES = ("Accept", "Decline", "Provisional", "Conditional")
SCHEDULE_TYPES = (
    "RequestedArrival",
    "EstimatedArrival",
    "ActualArrival",
    "RequestedDeparture",
    "EstimatedDeparture",
    "ActualDeparture",
    "RequestedReturnDeparture",
    "EstimatedReturnDeparture",
    "ActualReturnDeparture",
    "RequestedReturnArrival",
    "EstimatedReturnArrival",
    "ActualReturnArrival",
    "BeginAvailable",
    "EndAvailable",
    "Committed",
    "Current",
    "ReportTo",
    "Route",
)

TEXT = "text"
"""A leaf: character data only."""
ANY = "any"
"""Content defined by another standard (CIQ, GML) or left open: not looked into."""


@dataclass(frozen=True, slots=True)
class Child:
    """One child element: name, namespace, occurrences (``most`` None is unbounded), content."""

    name: str
    namespace: str
    least: int
    most: int | None
    content: Structure | str = TEXT


@dataclass(frozen=True, slots=True)
class Structure:
    """The children an element may have; ``ordered`` checks they come in this order."""

    children: tuple[Child, ...]
    ordered: bool = False


def _ct(name: str, least: int, most: int | None, content: Structure | str = TEXT) -> Child:
    return Child(name, CT_NAMESPACE, least, most, content)


def _msg(name: str, least: int, most: int | None, content: Structure | str = TEXT) -> Child:
    return Child(name, MSG_NAMESPACE, least, most, content)


VALUE_LIST = Structure((_ct("ValueListURN", 1, 1), _ct("Value", 1, None)), ordered=True)
LOCATION = Structure(
    (_ct("LocationDescription", 0, 1), _ct("Address", 0, 1, ANY), _ct("TargetArea", 0, 1, ANY))
)
CONTACT = Structure(
    (
        _ct("ContactDescription", 0, 1),
        _ct("ContactRole", 0, 1),
        _ct("AdditionalContactInformation", 0, 1, ANY),
        _ct("Radio", 0, None, ANY),
        _ct("ContactLocation", 0, 1, LOCATION),
    )
)
INCIDENT = Structure((_ct("IncidentID", 0, 1), _ct("IncidentDescription", 0, 1)))
RECALL = Structure((_ct("MessageID", 1, 1), _ct("RecallType", 1, 1)))
FUNDING = Structure((_ct("FundCode", 0, 1), _ct("FundingInfo", 0, 1)))
RESPONSE = Structure(
    (
        _ct("PrecedingResourceInfoElementID", 1, 1),
        _ct("ResponseType", 1, 1),
        _ct("ReasonCode", 0, 1),
        _ct("ResponseReason", 0, 1),
    )
)
MEASURED = Structure((_ct("Amount", 1, 1), _ct("UnitOfMeasure", 0, 1, VALUE_LIST)))
QUANTITY = Structure((_ct("MeasuredQuantity", 0, 1, MEASURED), _ct("QuantityText", 0, 1)))
INSTRUCTIONS = Structure(
    (
        _ct("ModeOfTransportation", 0, 1),
        _ct("NavigationInstructions", 0, 1),
        _ct("ReportingInstructions", 0, 1),
    )
)
ASSIGNMENT = Structure(
    (
        _msg("Quantity", 0, 1, QUANTITY),
        _msg("Restrictions", 0, 1),
        _msg("AnticipatedFunction", 0, 1),
        _msg("PriceQuote", 0, 1, ANY),
        _msg("OrderID", 0, 1),
        _msg("AssignmentInstructions", 0, 1, INSTRUCTIONS),
    )
)
SCHEDULE = Structure(
    (_msg("ScheduleType", 1, 1), _msg("DateTime", 0, 1), _msg("Location", 0, 1, LOCATION)),
    ordered=True,
)
RESOURCE = Structure(
    (
        _msg("ResourceID", 0, 1),
        _msg("Name", 0, 1),
        _msg("TypeStructure", 0, 1, VALUE_LIST),
        _msg("TypeInfo", 0, 1, ANY),
        _msg("Keyword", 0, None, VALUE_LIST),
        _msg("Description", 0, 1),
        _msg("Credentials", 0, None),
        _msg("Certifications", 0, None),
        _msg("SpecialRequirements", 0, 1),
        _msg("ResponsibleParty", 0, 1, ANY),
        _msg("OwnershipInformation", 0, 1, ANY),
        _msg("ResourceStatus", 0, 1, ANY),
    ),
    ordered=True,
)


def _resource_information(*, answers: bool) -> Structure:
    return Structure(
        (
            _msg("ResourceInfoElementID", 1, 1),
            _msg("ResponseInformation", 1 if answers else 0, 1, RESPONSE),
            _msg("Resource", 0, 1, RESOURCE),
            _msg("AssignmentInformation", 0, 1, ASSIGNMENT),
            _msg("ScheduleInformation", 0, None, SCHEDULE),
        ),
        ordered=True,
    )


def _message(message: RmMessage) -> Structure:
    first = message is M.REQUEST_RESOURCE
    return Structure(
        (
            _msg("MessageID", 1, 1),
            _msg("SentDateTime", 1, 1),
            _msg("MessageContentType", 1, 1),
            _msg("MessageDescription", 0, 1),
            _msg("OriginatingMessageID", 0 if first else 1, 1),
            _msg("PrecedingMessageID", 0, 0 if first else 1),
            _msg("IncidentInformation", 0, None, INCIDENT),
            _msg("MessageRecall", 0, 1, RECALL),
            _msg("Funding", 1 if message is M.REQUISITION_RESOURCE else 0, None, FUNDING),
            _msg("ContactInformation", 1, None, CONTACT),
            _msg(
                "ResourceInformation",
                1,
                None,
                _resource_information(answers=message in _RESPONSES),
            ),
        ),
        ordered=True,
    )


MESSAGES: dict[RmMessage, Structure] = {message: _message(message) for message in FLOW_MESSAGES}


def check_message(root: Element, message: RmMessage) -> None:
    """EDXL_RM_INVALID naming the first place where ``root`` breaks ``message``'s structure."""
    _check(root, MESSAGES[message], f"/{message.value}")


def _check(element: Element, structure: Structure, path: str) -> None:
    if (element.text or "").strip():
        raise EdxlRmInvalid("text is not allowed here, only elements", path=path)
    by_key = {(child.namespace, child.name): child for child in structure.children}
    position = {key: index for index, key in enumerate(by_key)}
    counts: dict[tuple[str, str], int] = {}
    last = -1
    for node in element:
        if not isinstance(node.tag, str):  # a comment or processing instruction
            continue
        namespace, name = split_tag(node.tag)
        child = by_key.get((namespace, name))
        if child is None:
            raise EdxlRmInvalid(
                f"unexpected element <{name}> in namespace {namespace or '(none)'}",
                path=path,
                element=name,
                namespace=namespace,
            )
        key = (namespace, name)
        counts[key] = counts.get(key, 0) + 1
        if child.most is not None and counts[key] > child.most:
            allowed = (
                "is not allowed" if child.most == 0 else f"may occur at most {child.most} time(s)"
            )
            raise EdxlRmInvalid(f"<{name}> {allowed}", path=path, element=name)
        if structure.ordered:
            if position[key] < last:
                raise EdxlRmInvalid(f"<{name}> is out of order", path=path, element=name)
            last = position[key]
        where = f"{path}/{name}" if child.most == 1 else f"{path}/{name}[{counts[key]}]"
        if isinstance(child.content, Structure):
            _check(node, child.content, where)
        elif child.content == TEXT and len(node):
            raise EdxlRmInvalid(f"<{name}> holds text only, not elements", path=where)
    for child in structure.children:
        if counts.get((child.namespace, child.name), 0) < child.least:
            raise EdxlRmInvalid(f"<{child.name}> is required", path=path, element=child.name)
