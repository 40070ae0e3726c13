"""The EDXL-RM 1.0 codec: steps round-trip, hostile and wrong messages are refused by code."""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapters.edxl_rm import (
    CT_NAMESPACE,
    DEFAULT_MAX_MESSAGE_BYTES,
    MESSAGES_FOR_KIND,
    MSG_NAMESPACE,
    AidDisclosure,
    AidStep,
    AidStepKind,
    EdxlRmError,
    EdxlRmInvalid,
    EdxlRmNotAStep,
    EdxlRmUnsupportedMessage,
    EdxlRmWrongNamespace,
    RmMessage,
    XmlError,
    XmlForbidden,
    XmlMalformed,
    XmlTooLarge,
    parse_step,
    validate_message,
    write_step,
)
from schema.codes import RESOURCE_KINDS
from schema.errors import LinliError

REQUESTER = "110105001001"
PROVIDER = "110105001002"
CST = timezone(timedelta(hours=8))
K = AidStepKind


def step(kind: AidStepKind, **changes: Any) -> AidStep:
    """A plausible step of ``kind`` sent by the party whose step it is."""
    by_provider = kind in {
        K.OFFER,
        K.COMMIT,
        K.REFUSE,
        K.DISPATCH,
        K.IN_TRANSIT,
        K.REQUEST_RETURN,
        K.DECLINE,
    }
    fields: dict[str, Any] = {
        "message_id": uuid.uuid4(),
        "kind": kind,
        "request_id": f"AidRequest:{REQUESTER}:42",
        "requester": REQUESTER,
        "provider": PROVIDER,
        "sender": PROVIDER if by_provider else REQUESTER,
        "resource_id": f"Resource:{PROVIDER}:7",
        "resource_kind": "portable_generator",
        "quantity": 2,
        "unit": "台",
        "note": "",
        "at": datetime(2026, 11, 30, 9, 15, 30, 123456, tzinfo=CST),
    }
    if kind is K.REQUEST:
        fields["needed_by"] = datetime(2026, 12, 1, 18, 0, tzinfo=CST)
    if kind is K.COMMIT:
        fields["disclosure"] = AidDisclosure(
            resource_id=f"Resource:{PROVIDER}:7",
            address="北京市东城区和平里街道 12 号院 3 号楼",
            contact="王芳 010-6420 1234",
        )
    if kind in (K.DECLINE, K.REFUSE, K.CANCEL):
        fields["reason"] = "NO_LONGER_NEEDED" if kind is K.CANCEL else "ABOVE_AVAILABLE"
        fields["quantity"] = None
    fields.update(changes)
    return AidStep(**fields)


def expect(code: str, call: Callable[..., object], *args: Any, **kwargs: Any) -> XmlError:
    """Run ``call`` and return the XmlError it raised, which must carry ``code``."""
    with pytest.raises(XmlError) as caught:
        call(*args, **kwargs)
    assert caught.value.code == code, f"{caught.value.code}: {caught.value}"
    assert caught.value.extensions["code"] == code
    return caught.value


def root_of(data: bytes) -> ElementTree.Element:
    return ElementTree.fromstring(data)


def msg(name: str) -> str:
    return f"{{{MSG_NAMESPACE}}}{name}"


def ct(name: str) -> str:
    return f"{{{CT_NAMESPACE}}}{name}"


def edit(data: bytes, change: Callable[[ElementTree.Element], None]) -> bytes:
    """``data`` with ``change`` applied to its parsed root, serialised again."""
    ElementTree.register_namespace("", MSG_NAMESPACE)
    ElementTree.register_namespace("rm", CT_NAMESPACE)
    root = root_of(data)
    change(root)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def find(root: ElementTree.Element, path: str) -> ElementTree.Element:
    """The element at ``path``, written with ``m:`` and ``r:`` for the two RM namespaces."""
    if not path:
        return root
    found = root.find(path, {"m": MSG_NAMESPACE, "r": CT_NAMESPACE})
    assert found is not None, path
    return found


# ---------------------------------------------------------------- round trips


ALL_CARRIERS = [
    (kind, message) for kind, messages in MESSAGES_FOR_KIND.items() for message in messages
]


@pytest.mark.parametrize(("kind", "message"), ALL_CARRIERS, ids=lambda v: str(v))
def test_every_step_round_trips_through_its_message(kind: AidStepKind, message: RmMessage) -> None:
    original = step(kind)
    data = write_step(original, message=message)
    root = root_of(data)
    assert root.tag == msg(message.value)
    assert find(root, "m:MessageContentType").text == message.value
    assert validate_message(data) is message
    assert parse_step(data) == original


def test_a_request_for_volunteers_round_trips_with_its_skill_and_window() -> None:
    original = step(
        K.REQUEST,
        resource_kind="volunteers",
        resource_id=None,
        unit="人",
        skill="first_aid",
        window_from=datetime(2026, 12, 1, 18, 0, tzinfo=CST),
        window_to=datetime(2026, 12, 1, 22, 0, tzinfo=CST),
    )
    data = write_step(original)
    root = root_of(data)
    assert validate_message(data) is RmMessage.REQUEST_RESOURCE
    schedules = [e.text for e in root.iter(msg("ScheduleType"))]
    assert schedules == ["RequestedArrival", "BeginAvailable", "EndAvailable"]
    assert parse_step(data) == original


def test_the_default_message_of_each_kind() -> None:
    expected = {
        K.REQUEST: "RequestResource",
        K.CANCEL: "RequestResource",
        K.OFFER: "ResponseToRequestResource",
        K.DECLINE: "ResponseToRequestResource",
        K.ACCEPT: "RequisitionResource",
        K.COMMIT: "CommitResource",
        K.REFUSE: "CommitResource",
        K.DISPATCH: "ReportResourceDeploymentStatus",
        K.IN_TRANSIT: "ReportResourceDeploymentStatus",
        K.RECEIVE: "ReportResourceDeploymentStatus",
        K.REQUEST_RETURN: "RequestReturn",
        K.RETURN: "ResponseToRequestReturn",
    }
    assert set(expected) == set(AidStepKind)
    for kind, name in expected.items():
        assert root_of(write_step(step(kind))).tag == msg(name)


def test_chinese_text_round_trips_byte_for_byte() -> None:
    original = step(
        K.COMMIT,
        note="两台移动发电机已备好，请于今晚 8 点前到和平里街道取用。\n注意：需自带油桶。",
        unit="台",
        reason=None,
    )
    data = write_step(original)
    assert "两台移动发电机已备好".encode() in data  # UTF-8, not character references
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    back = parse_step(data)
    assert back == original
    assert back.note == original.note
    assert back.disclosure is not None
    assert back.disclosure.address == "北京市东城区和平里街道 12 号院 3 号楼"


def test_where_the_fields_go() -> None:
    original = step(K.COMMIT, note="备注")
    root = root_of(write_step(original))
    assert find(root, "m:MessageID").text == str(original.message_id)
    assert find(root, "m:SentDateTime").text == "2026-11-30T09:15:30.123456+08:00"
    assert find(root, "m:MessageDescription").text == "备注"
    assert find(root, "m:OriginatingMessageID").text == original.request_id
    contacts = {
        find(c, "r:ContactRole").text: find(c, "r:ContactDescription").text
        for c in root.findall("m:ContactInformation", {"m": MSG_NAMESPACE})
    }
    assert contacts == {"Sender": PROVIDER, "Requester": REQUESTER, "Owner": PROVIDER}
    info = "m:ResourceInformation"
    assert find(root, f"{info}/m:ResponseInformation/r:ResponseType").text == "Accept"
    assert find(root, f"{info}/m:Resource/m:ResourceID").text == original.resource_id
    assert find(root, f"{info}/m:Resource/m:TypeStructure/r:Value").text == "portable_generator"
    supply_class = find(root, f"{info}/m:Resource/m:Keyword[2]")
    assert find(supply_class, "r:ValueListURN").text == "urn:linli:gb-t-38565:class"
    assert find(supply_class, "r:Value").text == "2"  # emergency equipment
    amount = f"{info}/m:AssignmentInformation/m:Quantity/r:MeasuredQuantity/r:Amount"
    assert find(root, amount).text == "2"
    schedule = find(root, f"{info}/m:ScheduleInformation")
    assert find(schedule, "m:ScheduleType").text == "Committed"
    assert find(schedule, "m:Location/r:LocationDescription").text.startswith("北京市")


def test_a_message_without_linli_keywords_is_read_from_its_standard_elements() -> None:
    def strip_linli_keywords(root: ElementTree.Element) -> None:
        resource = find(root, "m:ResourceInformation/m:Resource")
        for keyword in resource.findall("m:Keyword", {"m": MSG_NAMESPACE}):
            urn = find(keyword, "r:ValueListURN").text or ""
            if urn != "urn:linli:unit":
                resource.remove(keyword)

    for kind in AidStepKind:
        original = step(kind)
        if kind in (K.DECLINE, K.REFUSE, K.CANCEL):
            original = original.model_copy(update={"reason": None})
        if original.disclosure is not None:  # without its keyword it names the ResourceID
            assert original.disclosure.resource_id == original.resource_id
        data = edit(write_step(original), strip_linli_keywords)
        assert b"step-kind" not in data
        assert parse_step(data) == original, kind


def test_another_producers_message_id_becomes_a_stable_uuid() -> None:
    def foreign_id(root: ElementTree.Element) -> None:
        find(root, "m:MessageID").text = "RequestResource.1"

    data = edit(write_step(step(K.REQUEST)), foreign_id)
    first, again = parse_step(data), parse_step(data)
    assert first.message_id == again.message_id  # a redelivery is recognised
    assert first.message_id.version == 5


def test_release_resource_reads_as_a_return() -> None:
    original = step(K.RETURN)
    data = write_step(original, message=RmMessage.RELEASE_RESOURCE)
    assert root_of(data).tag == msg("ReleaseResource")
    assert parse_step(data) == original


def test_a_kind_cannot_be_written_as_another_message() -> None:
    with pytest.raises(ValueError, match="carried by CommitResource"):
        write_step(step(K.COMMIT), message=RmMessage.REQUEST_RESOURCE)


_XML_TEXT = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_categories=("Cs",), exclude_characters="\ufffe\uffff"
    ).filter(lambda c: c in "\t\n\r" or ord(c) >= 0x20),
    max_size=40,
)
_CODES = st.from_regex(r"[1-9][0-9]{11}", fullmatch=True)
_TIMES = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([UTC, CST, timezone(timedelta(hours=-5, minutes=-30))]),
)


@st.composite
def steps(draw: st.DrawFn) -> AidStep:
    kind = draw(st.sampled_from(list(AidStepKind)))
    requester, provider = draw(_CODES), draw(_CODES)
    resource_id = draw(st.none() | _XML_TEXT)
    disclosure = None
    if kind is K.COMMIT and draw(st.booleans()):
        disclosure = AidDisclosure(
            resource_id=draw(_XML_TEXT), address=draw(_XML_TEXT), contact=draw(_XML_TEXT)
        )
    return AidStep(
        message_id=draw(st.uuids()),
        kind=kind,
        request_id=draw(_XML_TEXT),
        requester=requester,
        provider=provider,
        sender=draw(st.sampled_from([requester, provider])),
        resource_id=resource_id,
        resource_kind=draw(st.sampled_from(sorted(RESOURCE_KINDS))),
        quantity=draw(st.none() | st.integers(0, 1_000_000_000)),
        unit=draw(_XML_TEXT.filter(lambda t: len(t) <= 20)),
        note=draw(_XML_TEXT),
        reason=draw(st.none() | _XML_TEXT),
        needed_by=draw(st.none() | _TIMES),
        at=draw(_TIMES),
        disclosure=disclosure,
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps())
def test_any_step_round_trips(original: AidStep) -> None:
    data = write_step(original)
    assert parse_step(data) == original


# ---------------------------------------------------------------- hostile XML


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<RequestResource xmlns="urn:oasis:names:tc:emergency:EDXL:RM:1.0:msg">&lol3;</RequestResource>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<RequestResource xmlns="urn:oasis:names:tc:emergency:EDXL:RM:1.0:msg">&secret;</RequestResource>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE RequestResource SYSTEM "http://127.0.0.1:9/rm.dtd">
<RequestResource xmlns="urn:oasis:names:tc:emergency:EDXL:RM:1.0:msg"/>"""

PLAIN_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE RequestResource [<!ELEMENT RequestResource ANY>]>
<RequestResource xmlns="urn:oasis:names:tc:emergency:EDXL:RM:1.0:msg"/>"""


@pytest.mark.parametrize(
    "data",
    [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD, PLAIN_DTD],
    ids=["entity-expansion", "external-entity", "external-dtd", "dtd"],
)
def test_dtds_and_entities_are_forbidden(data: bytes) -> None:
    error = expect("XML_FORBIDDEN", parse_step, data)
    assert isinstance(error, XmlForbidden)
    assert "refused" in error.details


def test_an_oversized_body_is_refused_before_parsing() -> None:
    data = b"<" * (DEFAULT_MAX_MESSAGE_BYTES + 1)  # not even XML: the size is checked first
    error = expect("XML_TOO_LARGE", parse_step, data)
    assert isinstance(error, XmlTooLarge)
    assert error.details == {
        "size": DEFAULT_MAX_MESSAGE_BYTES + 1,
        "limit": DEFAULT_MAX_MESSAGE_BYTES,
    }
    small = write_step(step(K.REQUEST))
    expect("XML_TOO_LARGE", parse_step, small, max_bytes=len(small) - 1)
    assert parse_step(small, max_bytes=len(small)).kind is K.REQUEST


@pytest.mark.parametrize("data", [b"", b"not xml", b"<RequestResource>", b"\xff\xfe<a/>"])
def test_not_xml_is_malformed(data: bytes) -> None:
    assert isinstance(expect("XML_MALFORMED", parse_step, data), XmlMalformed)


@pytest.mark.parametrize(
    ("namespace", "shown"),
    [
        ("", ""),
        (CT_NAMESPACE, CT_NAMESPACE),  # the common-types namespace is not the message namespace
        ("urn:oasis:names:tc:emergency:cap:1.2", "urn:oasis:names:tc:emergency:cap:1.2"),
    ],
)
def test_a_root_in_another_namespace_is_refused(namespace: str, shown: str) -> None:
    data = write_step(step(K.REQUEST)).replace(
        f'<RequestResource xmlns="{MSG_NAMESPACE}"'.encode(),
        f'<RequestResource xmlns:m="{MSG_NAMESPACE}" xmlns="{namespace}"'.encode(),
    )
    error = expect("EDXL_RM_WRONG_NAMESPACE", parse_step, data)
    assert isinstance(error, EdxlRmWrongNamespace)
    assert error.details == {"namespace": shown, "expected": MSG_NAMESPACE}


@pytest.mark.parametrize("name", ["RequestQuote", "OfferUnsolicitedResource", "alert", "Foo"])
def test_messages_outside_the_aid_flow_are_unsupported(name: str) -> None:
    data = f'<{name} xmlns="{MSG_NAMESPACE}"><MessageID>1</MessageID></{name}>'.encode()
    error = expect("EDXL_RM_UNSUPPORTED_MESSAGE", parse_step, data)
    assert isinstance(error, EdxlRmUnsupportedMessage)
    assert error.details["element"] == name
    assert "CommitResource" in error.details["supported"]


# ---------------------------------------------------------------- structure


def remove(path: str) -> Callable[[ElementTree.Element], None]:
    def change(root: ElementTree.Element) -> None:
        parent_path, _, _ = path.rpartition("/")
        parent = find(root, parent_path) if parent_path else root
        parent.remove(find(root, path))

    return change


def set_text(path: str, text: str) -> Callable[[ElementTree.Element], None]:
    def change(root: ElementTree.Element) -> None:
        find(root, path).text = text

    return change


def add(path: str, tag: str, text: str = "x") -> Callable[[ElementTree.Element], None]:
    def change(root: ElementTree.Element) -> None:
        parent = find(root, path) if path else root
        ElementTree.SubElement(parent, tag).text = text

    return change


def duplicate(path: str) -> Callable[[ElementTree.Element], None]:
    def change(root: ElementTree.Element) -> None:
        root.append(copy.deepcopy(find(root, path)))

    return change


INFO = "m:ResourceInformation"


@pytest.mark.parametrize(
    ("kind", "change", "path", "reason"),
    [
        (K.REQUEST, remove("m:SentDateTime"), "/RequestResource", "<SentDateTime> is required"),
        (K.REQUEST, remove("m:MessageID"), "/RequestResource", "<MessageID> is required"),
        (
            K.OFFER,
            remove("m:OriginatingMessageID"),
            "/ResponseToRequestResource",
            "<OriginatingMessageID> is required",
        ),
        (K.REQUEST, remove(INFO), "/RequestResource", "<ResourceInformation> is required"),
        (
            K.OFFER,
            remove(f"{INFO}/m:ResponseInformation"),
            "/ResponseToRequestResource/ResourceInformation[1]",
            "<ResponseInformation> is required",
        ),
        (K.ACCEPT, remove("m:Funding"), "/RequisitionResource", "<Funding> is required"),
        (
            K.REQUEST,
            remove(f"{INFO}/m:Resource/m:TypeStructure/r:ValueListURN"),
            "/RequestResource/ResourceInformation[1]/Resource/TypeStructure",
            "<ValueListURN> is required",
        ),
        (
            K.REQUEST,
            add("", msg("Surprise")),
            "/RequestResource",
            "unexpected element <Surprise> in namespace " + MSG_NAMESPACE,
        ),
        (
            K.REQUEST,
            add(f"{INFO}/m:Resource", ct("ResourceID")),  # right name, common-types namespace
            "/RequestResource/ResourceInformation[1]/Resource",
            f"unexpected element <ResourceID> in namespace {CT_NAMESPACE}",
        ),
        (
            K.REQUEST,
            add("", msg("MessageID")),
            "/RequestResource",
            "<MessageID> may occur at most 1 time(s)",
        ),
        (
            K.REQUEST,
            add("", msg("MessageDescription")),
            "/RequestResource",
            "<MessageDescription> is out of order",
        ),
        (
            K.REQUEST,
            add("", msg("PrecedingMessageID")),
            "/RequestResource",
            "<PrecedingMessageID> is not allowed",
        ),
        (
            K.REQUEST,
            set_text("m:MessageContentType", "CommitResource"),
            "/RequestResource/MessageContentType",
            "MessageContentType 'CommitResource' does not name the message <RequestResource>",
        ),
        (
            K.REQUEST,
            set_text("m:SentDateTime", "yesterday"),
            "/RequestResource/SentDateTime",
            "'yesterday' is not a date and time with a time zone (xsd:dateTime)",
        ),
        (
            K.REQUEST,
            set_text("m:SentDateTime", "2026-11-30T09:15:30"),  # no time zone
            "/RequestResource/SentDateTime",
            "'2026-11-30T09:15:30' is not a date and time with a time zone (xsd:dateTime)",
        ),
        (
            K.REQUEST,
            set_text("m:SentDateTime", "2026-02-30T09:15:30Z"),
            "/RequestResource/SentDateTime",
            "'2026-02-30T09:15:30Z' is not a date and time",
        ),
        (
            K.OFFER,
            set_text(f"{INFO}/m:ResponseInformation/r:ResponseType", "Maybe"),
            "/ResponseToRequestResource/ResourceInformation[1]/ResponseInformation/ResponseType",
            "'Maybe' is not one of Accept, Decline, Provisional, Conditional",
        ),
        (
            K.DISPATCH,
            set_text(f"{INFO}/m:ScheduleInformation/m:ScheduleType", "Teleported"),
            "/ReportResourceDeploymentStatus/ResourceInformation[1]/ScheduleInformation[1]/ScheduleType",
            None,
        ),
        (
            K.REQUEST,
            set_text(
                f"{INFO}/m:AssignmentInformation/m:Quantity/r:MeasuredQuantity/r:Amount", "two"
            ),
            "/RequestResource/ResourceInformation[1]/AssignmentInformation/Quantity/MeasuredQuantity/Amount",
            "'two' is not a decimal number",
        ),
        (
            K.REQUEST,
            set_text("", "loose text"),
            "/RequestResource",
            "text is not allowed here, only elements",
        ),
    ],
)
def test_structure_violations_are_invalid_with_a_path(
    kind: AidStepKind, change: Callable[[ElementTree.Element], None], path: str, reason: str | None
) -> None:
    data = edit(write_step(step(kind)), change)
    error = expect("EDXL_RM_INVALID", parse_step, data)
    assert isinstance(error, EdxlRmInvalid)
    assert error.details["path"] == path
    if reason is not None:
        assert error.details["reason"] == reason


def test_validate_message_checks_without_mapping() -> None:
    data = write_step(step(K.IN_TRANSIT))
    assert validate_message(data) is RmMessage.REPORT_RESOURCE_DEPLOYMENT_STATUS
    expect("EDXL_RM_INVALID", validate_message, edit(data, remove("m:SentDateTime")))


# ---------------------------------------------------------------- not a step


@pytest.mark.parametrize(
    ("kind", "change", "path", "reason"),
    [
        (
            K.REQUEST,
            set_text(f"{INFO}/m:Resource/m:TypeStructure/r:Value", "unicorn"),
            "/RequestResource/ResourceInformation[1]/Resource/TypeStructure/Value",
            "resource_kind: 'unicorn' is not in the resource-kind code list",
        ),
        (
            K.REQUEST,
            set_text(
                f"{INFO}/m:AssignmentInformation/m:Quantity/r:MeasuredQuantity/r:Amount", "-3"
            ),
            "/RequestResource/ResourceInformation[1]/AssignmentInformation/Quantity/MeasuredQuantity/Amount",
            "quantity: Input should be greater than or equal to 0",
        ),
        (
            K.REQUEST,
            set_text(
                f"{INFO}/m:AssignmentInformation/m:Quantity/r:MeasuredQuantity/r:Amount", "2.5"
            ),
            "/RequestResource/ResourceInformation[1]/AssignmentInformation/Quantity/MeasuredQuantity/Amount",
            "the quantity 2.5 is not a whole number",
        ),
        (
            K.REQUEST,
            set_text("m:ContactInformation[2]/r:ContactDescription", "Chaoyang"),
            "/RequestResource/ContactInformation[2]/ContactDescription",
            None,
        ),
        (
            K.OFFER,
            set_text("m:ContactInformation[3]/r:ContactRole", "Approver"),
            "/ResponseToRequestResource",
            "no <ContactInformation> with ContactRole Owner names its community",
        ),
        (
            K.REQUEST,
            set_text(f"{INFO}/m:Resource/m:Keyword[1]/r:Value", "commit"),
            "/RequestResource/ResourceInformation[1]/Resource/Keyword[1]/Value",
            "the step kind 'commit' contradicts the message, which reads as 'request'",
        ),
        (
            K.REQUEST,
            set_text(f"{INFO}/m:Resource/m:Keyword[2]/r:Value", "1"),
            "/RequestResource/ResourceInformation[1]/Resource/Keyword[2]/Value",
            "portable_generator is of GB/T 38565 class 2, not 1",
        ),
        (
            K.REQUEST,
            set_text(f"{INFO}/m:Resource/m:Keyword[1]/r:Value", "teleport"),
            "/RequestResource/ResourceInformation[1]/Resource/Keyword[1]/Value",
            "'teleport' is not a step kind",
        ),
        (
            K.REQUEST,
            set_text(
                f"{INFO}/m:Resource/m:TypeStructure/r:ValueListURN", "http://nimsonline.org/2.0"
            ),
            "/RequestResource/ResourceInformation[1]/Resource",
            "<TypeStructure> must give one value of the list urn:linli:resource-kind",
        ),
        (
            K.REQUEST,
            duplicate(INFO),
            "/RequestResource",
            "a step has one <ResourceInformation>, this message has 2",
        ),
    ],
)
def test_valid_rm_that_is_no_step_is_refused_with_a_path(
    kind: AidStepKind, change: Callable[[ElementTree.Element], None], path: str, reason: str | None
) -> None:
    data = edit(write_step(step(kind)), change)
    validate_message(data)  # EDXL-RM as such: only the step cannot be read from it
    error = expect("EDXL_RM_NOT_A_STEP", parse_step, data)
    assert isinstance(error, EdxlRmNotAStep)
    assert error.details["path"] == path
    if reason is not None:
        assert error.details["reason"] == reason


def test_a_quantity_over_the_limit_is_not_a_step() -> None:
    def huge(root: ElementTree.Element) -> None:
        amount = f"{INFO}/m:AssignmentInformation/m:Quantity/r:MeasuredQuantity/r:Amount"
        find(root, amount).text = "1000000001"

    error = expect("EDXL_RM_NOT_A_STEP", parse_step, edit(write_step(step(K.REQUEST)), huge))
    assert error.details["field"] == "quantity"


def test_writing_a_character_xml_cannot_carry_is_invalid() -> None:
    error = expect("EDXL_RM_INVALID", write_step, step(K.REQUEST, note="bell \x07"))
    assert error.details["path"] == "/RequestResource/MessageDescription"


def test_errors_are_linli_errors_with_stable_codes() -> None:
    for error_type, code in [
        (XmlForbidden, "XML_FORBIDDEN"),
        (XmlMalformed, "XML_MALFORMED"),
        (XmlTooLarge, "XML_TOO_LARGE"),
        (EdxlRmError, "EDXL_RM_ERROR"),
        (EdxlRmWrongNamespace, "EDXL_RM_WRONG_NAMESPACE"),
        (EdxlRmUnsupportedMessage, "EDXL_RM_UNSUPPORTED_MESSAGE"),
        (EdxlRmInvalid, "EDXL_RM_INVALID"),
        (EdxlRmNotAStep, "EDXL_RM_NOT_A_STEP"),
    ]:
        assert issubclass(error_type, XmlError)
        assert issubclass(error_type, LinliError)
        assert error_type.code == code
    assert re.fullmatch(r"[A-Z_]+", EdxlRmNotAStep.code)


# ---------------------------------------------------------------- another producer

FOREIGN_COMMIT = """<?xml version="1.0" encoding="UTF-8"?>
<rmsg:CommitResource xmlns:rmsg="urn:oasis:names:tc:emergency:EDXL:RM:1.0:msg"
    xmlns:rm="urn:oasis:names:tc:emergency:EDXL:RM:1.0"
    xmlns:xpil="urn:oasis:names:tc:ciq:xpil:3"
    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
    xsi:schemaLocation="urn:oasis:names:tc:emergency:EDXL:RM:1.0:msg EDXL-RMCommitResource.xsd">
  <!-- written by another system: prefixes, comments, extra contacts, CIQ party data -->
  <rmsg:MessageID>CommitResource.1</rmsg:MessageID>
  <rmsg:SentDateTime>2026-11-30T21:05:00Z</rmsg:SentDateTime>
  <rmsg:MessageContentType>CommitResource</rmsg:MessageContentType>
  <rmsg:OriginatingMessageID>AidRequest:110105001001:42</rmsg:OriginatingMessageID>
  <rmsg:PrecedingMessageID>RequisitionResource.1</rmsg:PrecedingMessageID>
  <rmsg:IncidentInformation>
    <rm:IncidentDescription>和平里街道停电</rm:IncidentDescription>
  </rmsg:IncidentInformation>
  <rmsg:ContactInformation>
    <rm:ContactDescription>110105001002</rm:ContactDescription>
    <rm:ContactRole>Sender</rm:ContactRole>
    <rm:AdditionalContactInformation>
      <xpil:PartyName><xpil:OrganisationName>和平里社区</xpil:OrganisationName></xpil:PartyName>
    </rm:AdditionalContactInformation>
  </rmsg:ContactInformation>
  <rmsg:ContactInformation>
    <rm:ContactDescription>duty officer</rm:ContactDescription>
    <rm:ContactRole>Approver</rm:ContactRole>
  </rmsg:ContactInformation>
  <rmsg:ContactInformation>
    <rm:ContactDescription> 110105001001 </rm:ContactDescription>
    <rm:ContactRole>Requester</rm:ContactRole>
  </rmsg:ContactInformation>
  <rmsg:ContactInformation>
    <rm:ContactRole>Owner</rm:ContactRole>
    <rm:ContactDescription>110105001002</rm:ContactDescription>
  </rmsg:ContactInformation>
  <rmsg:ResourceInformation>
    <rmsg:ResourceInfoElementID>ResourceInfoElementID.1</rmsg:ResourceInfoElementID>
    <rmsg:ResponseInformation>
      <rm:PrecedingResourceInfoElementID>ResourceInfoElementID.1</rm:PrecedingResourceInfoElementID>
      <rm:ResponseType>Accept</rm:ResponseType>
    </rmsg:ResponseInformation>
    <rmsg:Resource>
      <rmsg:ResourceID>Resource:110105001002:7</rmsg:ResourceID>
      <rmsg:Name>5 kW 汽油发电机</rmsg:Name>
      <rmsg:TypeStructure>
        <rm:ValueListURN>urn:linli:resource-kind</rm:ValueListURN>
        <rm:Value>portable_generator</rm:Value>
      </rmsg:TypeStructure>
      <rmsg:TypeInfo><Kind>Equipment</Kind></rmsg:TypeInfo>
      <rmsg:Keyword>
        <rm:ValueListURN>urn:example:county</rm:ValueListURN>
        <rm:Value>Dongcheng</rm:Value>
      </rmsg:Keyword>
    </rmsg:Resource>
    <rmsg:AssignmentInformation>
      <rmsg:Quantity>
        <rm:MeasuredQuantity>
          <rm:Amount>2.0</rm:Amount>
          <rm:UnitOfMeasure>
            <rm:ValueListURN>urn:linli:unit</rm:ValueListURN>
            <rm:Value>台</rm:Value>
          </rm:UnitOfMeasure>
        </rm:MeasuredQuantity>
      </rmsg:Quantity>
    </rmsg:AssignmentInformation>
    <rmsg:ScheduleInformation>
      <rmsg:ScheduleType>EstimatedArrival</rmsg:ScheduleType>
      <rmsg:DateTime>2026-11-30T23:00:00+08:00</rmsg:DateTime>
    </rmsg:ScheduleInformation>
  </rmsg:ResourceInformation>
</rmsg:CommitResource>
"""


def test_another_producers_commit_is_read_from_the_standard_elements() -> None:
    data = FOREIGN_COMMIT.encode()
    assert validate_message(data) is RmMessage.COMMIT_RESOURCE
    read = parse_step(data)
    assert read.kind is K.COMMIT  # no Linli keyword: CommitResource with ResponseType Accept
    assert read.message_id == parse_step(data).message_id
    assert read.request_id == "AidRequest:110105001001:42"
    assert (read.sender, read.requester, read.provider) == (PROVIDER, REQUESTER, PROVIDER)
    assert read.resource_id == "Resource:110105001002:7"
    assert (read.resource_kind, read.quantity, read.unit) == ("portable_generator", 2, "台")
    assert read.at == datetime(2026, 11, 30, 21, 5, tzinfo=UTC)
    assert read.needed_by is None
    assert read.disclosure is None
    assert read.note == ""
    # Written out again it is Linli's own message for the same step, and reads back the same.
    assert parse_step(write_step(read)) == read


def test_a_foreign_decline_and_a_recall_are_read_as_such() -> None:
    decline = FOREIGN_COMMIT.replace(
        "<rm:ResponseType>Accept</rm:ResponseType>",
        "<rm:ResponseType>Decline</rm:ResponseType><rm:ReasonCode>IN_USE</rm:ReasonCode>",
    )
    refused = parse_step(decline.encode())
    assert (refused.kind, refused.reason) == (K.REFUSE, "IN_USE")

    request = write_step(step(K.REQUEST))

    def recall(root: ElementTree.Element) -> None:
        resource = find(root, "m:ResourceInformation/m:Resource")
        resource.remove(find(resource, "m:Keyword[1]"))  # no Linli step-kind keyword
        element = ElementTree.Element(msg("MessageRecall"))
        ElementTree.SubElement(element, ct("MessageID")).text = "AidRequest:110105001001:42"
        ElementTree.SubElement(element, ct("RecallType")).text = "Cancel"
        position = list(root).index(find(root, "m:ContactInformation"))
        root.insert(position, element)

    assert parse_step(edit(request, recall)).kind is K.CANCEL


# ---------------------------------------------------------------- samples

SAMPLES = Path(__file__).parents[3] / "adapters" / "edxl_rm" / "samples"


def sample_steps() -> dict[str, AidStep]:
    """One fixed step per message of the flow, as the samples show them."""
    at = datetime(2026, 11, 30, 20, 0, tzinfo=CST)
    samples: dict[str, AidStep] = {}
    for number, (kind, message) in enumerate(ALL_CARRIERS, 1):
        name = f"{number:02d}-{kind.value}-{message.value}"
        samples[name] = step(
            kind,
            message_id=uuid.UUID(int=number),
            at=at + timedelta(minutes=10 * number),
            note="社区互助：移动发电机 Mutual aid: a portable generator",
        )
    return samples


def sample_message(name: str, original: AidStep) -> bytes:
    message = RmMessage(name.rsplit("-", 1)[1])
    return write_step(original, message=message)


def test_the_samples_are_what_the_codec_writes_and_reads() -> None:
    samples = sample_steps()
    assert sorted(p.stem for p in SAMPLES.glob("*.xml")) == sorted(samples), (
        "regenerate with: python -m tests.adapters.edxl_rm.test_edxl_rm_codec"
    )
    for name, original in samples.items():
        data = (SAMPLES / f"{name}.xml").read_bytes()
        assert data == sample_message(name, original), name
        assert parse_step(data) == original


if __name__ == "__main__":
    for stale in SAMPLES.glob("*.xml"):
        stale.unlink()
    for sample_name, sample_step in sample_steps().items():
        (SAMPLES / f"{sample_name}.xml").write_bytes(sample_message(sample_name, sample_step))
