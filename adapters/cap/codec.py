"""CAP alert messages to and from the common schema's Alert records.

Reading accepts CAP 1.2 (validated against the OASIS XSD) and CAP 1.1 (which
has no XSD here, so it gets a structural check instead); writing always
produces CAP 1.2 and validates the result against the XSD before returning it.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal
from xml.etree.ElementTree import Element, SubElement, indent

import xmlschema
from pydantic import ValidationError

from adapters.cap._values import (
    CapReader,
    format_datetime,
    format_decimal,
    join_quoted,
    parse_certainty,
    parse_enum,
    polygon_text,
    split_quoted,
)
from adapters.cap._xml import (
    DEFAULT_MAX_ALERT_BYTES,
    check_xml_text,
    parse_untrusted,
    serialize,
    split_tag,
)
from adapters.cap.errors import CapInvalid, CapUnsupportedVersion
from schema.enums import (
    CapCategory,
    CapMsgType,
    CapScope,
    CapSeverity,
    CapStatus,
    CapUrgency,
)
from schema.records.alert import (
    AlertArea,
    AlertBase,
    AlertCreate,
    AlertInfo,
    AlertResource,
    NameValue,
)

__all__ = [
    "ATOM_CONTENT_TYPE",
    "CAP_1_0_NAMESPACE",
    "CAP_1_1_NAMESPACE",
    "CAP_1_2_NAMESPACE",
    "CAP_CONTENT_TYPE",
    "CAP_MIME_TYPE",
    "CAP_XSD_PATH",
    "CapVersion",
    "alert_from_element",
    "alert_to_element",
    "cap12_schema",
    "parse_alert",
    "validate_alert",
    "write_alert",
]

CAP_1_2_NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.2"
CAP_1_1_NAMESPACE = "urn:oasis:names:tc:emergency:cap:1.1"
CAP_1_0_NAMESPACE = "http://www.incident.com/cap/1.0"
CAP_MIME_TYPE = "application/cap+xml"
CAP_CONTENT_TYPE = f"{CAP_MIME_TYPE}; charset=utf-8"
"""What we serve CAP XML as: the charset is said, so Chinese text never garbles."""
ATOM_CONTENT_TYPE = "application/atom+xml; charset=utf-8"
CAP_XSD_PATH = Path(__file__).parent / "xsd" / "CAP-v1.2.xsd"

CapVersion = Literal["1.1", "1.2"]

_VERSIONS: dict[str, CapVersion] = {CAP_1_2_NAMESPACE: "1.2", CAP_1_1_NAMESPACE: "1.1"}

# CAP 1.2 makes mimeType required; a CAP 1.1 resource may lack it, and RFC 2046
# names this type for "some bytes of unknown kind".
_UNKNOWN_MIME_TYPE = "application/octet-stream"

# How many XSD failures an error carries in its details (the message names the first).
_MAX_PROBLEMS = 10


@functools.cache
def cap12_schema() -> xmlschema.XMLSchema10:
    """The OASIS CAP 1.2 XML Schema, loaded once."""
    # The schema is our own file and imports nothing; "sandbox" keeps it that way.
    return xmlschema.XMLSchema10(str(CAP_XSD_PATH), allow="sandbox", defuse="always")


def _clean_path(path: str | None) -> str:
    """An xmlschema path without namespaces: ``/alert/info/category``."""
    if not path:
        return "/alert"
    return "/".join(split_tag(step)[1] for step in path.split("/"))


def _strip_namespaces(text: str) -> str:
    for namespace in (CAP_1_2_NAMESPACE, CAP_1_1_NAMESPACE):
        text = text.replace(f"{{{namespace}}}", "")
    return text


def _check_against_xsd(root: Element) -> None:
    """CAP_INVALID naming the first place where ``root`` breaks the CAP 1.2 XSD."""
    problems: list[dict[str, str]] = []
    # The element is parsed already; allow="none" keeps xmlschema from fetching anything for it.
    for error in cap12_schema().iter_errors(xmlschema.XMLResource(root, allow="none")):
        reason = _strip_namespaces(error.reason or error.message)
        problems.append({"path": _clean_path(error.path), "reason": reason})
        if len(problems) == _MAX_PROBLEMS:
            break
    if problems:
        first = problems[0]
        raise CapInvalid(first["reason"], path=first["path"], problems=problems)


# CAP 1.1 structure (CAP 1.1 §3.2): child -> (min, max) occurrences; max None is unbounded.
_Occurs = tuple[int, int | None]
_ONE: _Occurs = (1, 1)
_OPTIONAL: _Occurs = (0, 1)
_MANY: _Occurs = (0, None)
_PAIR = {"valueName": _ONE, "value": _ONE}
_CAP11_STRUCTURE: dict[str, dict[str, _Occurs]] = {
    "alert": {
        "identifier": _ONE,
        "sender": _ONE,
        "sent": _ONE,
        "status": _ONE,
        "msgType": _ONE,
        "source": _OPTIONAL,
        "scope": _ONE,
        "restriction": _OPTIONAL,
        "addresses": _OPTIONAL,
        "code": _MANY,
        "note": _OPTIONAL,
        "references": _OPTIONAL,
        "incidents": _OPTIONAL,
        "info": _MANY,
    },
    "info": {
        "language": _OPTIONAL,
        "category": (1, None),
        "event": _ONE,
        "responseType": _MANY,
        "urgency": _ONE,
        "severity": _ONE,
        "certainty": _ONE,
        "audience": _OPTIONAL,
        "eventCode": _MANY,
        "effective": _OPTIONAL,
        "onset": _OPTIONAL,
        "expires": _OPTIONAL,
        "senderName": _OPTIONAL,
        "headline": _OPTIONAL,
        "description": _OPTIONAL,
        "instruction": _OPTIONAL,
        "web": _OPTIONAL,
        "contact": _OPTIONAL,
        "parameter": _MANY,
        "resource": _MANY,
        "area": _MANY,
    },
    "resource": {
        "resourceDesc": _ONE,
        "mimeType": _OPTIONAL,
        "size": _OPTIONAL,
        "uri": _OPTIONAL,
        "derefUri": _OPTIONAL,
        "digest": _OPTIONAL,
    },
    "area": {
        "areaDesc": _ONE,
        "polygon": _MANY,
        "circle": _MANY,
        "geocode": _MANY,
        "altitude": _OPTIONAL,
        "ceiling": _OPTIONAL,
    },
    "eventCode": _PAIR,
    "parameter": _PAIR,
    "geocode": _PAIR,
}


def _check_cap11_structure(element: Element, path: str) -> None:
    """CAP_INVALID unless ``element`` has exactly the children CAP 1.1 allows, in any order.

    Element order is not checked, nor are values (reading them checks those).
    Elements of other namespaces, such as an XML signature, are ignored.
    """
    allowed = _CAP11_STRUCTURE[split_tag(element.tag)[1]]
    counts: dict[str, int] = {}
    for child in element:
        namespace, name = split_tag(child.tag)
        if namespace != CAP_1_1_NAMESPACE:
            continue
        if name not in allowed:
            raise CapInvalid(f"unexpected element <{name}>", path=path)
        counts[name] = counts.get(name, 0) + 1
        if name in _CAP11_STRUCTURE:
            _check_cap11_structure(child, f"{path}/{name}[{counts[name]}]")
    for name, (least, most) in allowed.items():
        seen = counts.get(name, 0)
        if seen < least:
            raise CapInvalid(f"<{name}> is required", path=path)
        if most is not None and seen > most:
            raise CapInvalid(f"<{name}> may occur at most {most} time(s)", path=path)


def _cap_version(root: Element) -> CapVersion:
    """Which CAP the root ``alert`` element is, refusing anything but 1.1 and 1.2."""
    namespace, name = split_tag(root.tag)
    if name != "alert":
        raise CapInvalid(f"the root element is <{name}>, not a CAP <alert>", path="/")
    version = _VERSIONS.get(namespace)
    if version is None:
        raise CapUnsupportedVersion(namespace)
    return version


def _check_element(root: Element) -> CapVersion:
    version = _cap_version(root)
    if version == "1.2":
        _check_against_xsd(root)
    else:
        _check_cap11_structure(root, "/alert")
    return version


def validate_alert(data: bytes, *, max_bytes: int = DEFAULT_MAX_ALERT_BYTES) -> CapVersion:
    """Check a CAP message (1.2 against the XSD, 1.1 structurally) and say which version it is."""
    return _check_element(parse_untrusted(data, max_bytes=max_bytes))


def parse_alert(data: bytes, *, max_bytes: int = DEFAULT_MAX_ALERT_BYTES) -> AlertCreate:
    """Read one CAP 1.2 or 1.1 message (untrusted bytes) into an Alert record.

    CAP 1.2 is validated against the OASIS XSD. CAP 1.1 has no XSD here: it is
    checked structurally (required elements and how often each may occur, not
    their order) and its values are checked as they are read.
    """
    return alert_from_element(parse_untrusted(data, max_bytes=max_bytes))


def alert_from_element(root: Element) -> AlertCreate:
    """Check an already parsed CAP ``alert`` element and read it into an Alert record."""
    _check_element(root)
    return _read_alert(CapReader(split_tag(root.tag)[0]), root)


def _invalid_from_validation(error: ValidationError, path: str) -> CapInvalid:
    first = error.errors(include_url=False, include_input=False)[0]
    where = "/".join([path, *(str(step) for step in first["loc"])])
    return CapInvalid(first["msg"], path=where)


def _read_alert(cap: CapReader, root: Element) -> AlertCreate:
    path = "/alert"
    infos = [
        _read_info(cap, info, f"{path}/info[{i}]")
        for i, info in enumerate(cap.all(root, "info"), 1)
    ]
    sent = cap.time(root, "sent", path)
    if sent is None:
        raise CapInvalid("<sent> is required", path=path)
    try:
        return AlertCreate(
            identifier=cap.required(root, "identifier", path).strip(),
            sender=cap.required(root, "sender", path).strip(),
            sent=sent,
            status=parse_enum(CapStatus, cap.required(root, "status", path), path=f"{path}/status"),
            msg_type=parse_enum(
                CapMsgType, cap.required(root, "msgType", path), path=f"{path}/msgType"
            ),
            source=cap.text(root, "source"),
            scope=parse_enum(CapScope, cap.required(root, "scope", path), path=f"{path}/scope"),
            restriction=cap.text(root, "restriction"),
            addresses=cap.text(root, "addresses"),
            codes=cap.tokens(root, "code"),
            note=cap.text(root, "note"),
            # References are "sender,identifier,sent" triples, none with whitespace.
            references=(cap.text(root, "references") or "").split(),
            incidents=split_quoted(cap.text(root, "incidents") or ""),
            infos=infos,
        )
    except ValidationError as exc:
        raise _invalid_from_validation(exc, path) from exc


def _read_info(cap: CapReader, info: Element, path: str) -> AlertInfo:
    categories = [
        parse_enum(CapCategory, text, path=f"{path}/category")
        for text in cap.tokens(info, "category")
    ]
    if not categories:
        raise CapInvalid("<category> is required", path=path)
    resources = [
        _read_resource(cap, resource, f"{path}/resource[{i}]")
        for i, resource in enumerate(cap.all(info, "resource"), 1)
    ]
    areas = [
        _read_area(cap, area, f"{path}/area[{i}]")
        for i, area in enumerate(cap.all(info, "area"), 1)
    ]
    try:
        return AlertInfo(
            language=cap.token(info, "language") or "en-US",
            categories=categories,
            event=cap.required(info, "event", path),
            response_types=cap.tokens(info, "responseType"),
            urgency=parse_enum(
                CapUrgency, cap.required(info, "urgency", path), path=f"{path}/urgency"
            ),
            severity=parse_enum(
                CapSeverity, cap.required(info, "severity", path), path=f"{path}/severity"
            ),
            certainty=parse_certainty(
                cap.required(info, "certainty", path), path=f"{path}/certainty"
            ),
            audience=cap.text(info, "audience"),
            event_codes=cap.pairs(info, "eventCode"),
            effective=cap.time(info, "effective", path),
            onset=cap.time(info, "onset", path),
            expires=cap.time(info, "expires", path),
            sender_name=cap.text(info, "senderName"),
            headline=cap.text(info, "headline"),
            description=cap.text(info, "description"),
            instruction=cap.text(info, "instruction"),
            web=cap.token(info, "web"),
            contact=cap.text(info, "contact"),
            parameters=cap.pairs(info, "parameter"),
            resources=resources,
            areas=areas,
        )
    except ValidationError as exc:
        raise _invalid_from_validation(exc, path) from exc


def _read_resource(cap: CapReader, resource: Element, path: str) -> AlertResource:
    size_text = cap.token(resource, "size")
    try:
        size = None if size_text is None else int(size_text)
    except ValueError:
        raise CapInvalid(f"{size_text!r} is not a whole number", path=f"{path}/size") from None
    try:
        return AlertResource(
            resource_desc=cap.required(resource, "resourceDesc", path),
            mime_type=cap.token(resource, "mimeType"),
            size=size,
            uri=cap.token(resource, "uri"),
            deref_uri=cap.token(resource, "derefUri"),
            digest=cap.token(resource, "digest"),
        )
    except ValidationError as exc:
        raise _invalid_from_validation(exc, path) from exc


def _read_decimal(cap: CapReader, area: Element, name: str, path: str) -> float | None:
    text = cap.token(area, name)
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise CapInvalid(f"{text!r} is not a number", path=f"{path}/{name}") from None
    format_decimal(value, path=f"{path}/{name}")  # refuses nan and inf
    return value


def _read_area(cap: CapReader, area: Element, path: str) -> AlertArea:
    polygons, circles, geometry = cap.shapes(area, path)
    try:
        return AlertArea(
            area_desc=cap.required(area, "areaDesc", path),
            polygons=polygons,
            circles=circles,
            geocodes=cap.pairs(area, "geocode"),
            altitude=_read_decimal(cap, area, "altitude", path),
            ceiling=_read_decimal(cap, area, "ceiling", path),
            geometry=geometry,
        )
    except ValidationError as exc:
        raise _invalid_from_validation(exc, path) from exc


class _Writer:
    """Builds CAP 1.2 elements, checking that each text can be written as XML."""

    def add(self, parent: Element, name: str, text: str | None, path: str) -> None:
        if text is None:
            return
        child = SubElement(parent, f"{{{CAP_1_2_NAMESPACE}}}{name}")
        child.text = check_xml_text(text, path=f"{path}/{name}")

    def add_pairs(self, parent: Element, name: str, pairs: list[NameValue], path: str) -> None:
        for i, pair in enumerate(pairs, 1):
            element = SubElement(parent, f"{{{CAP_1_2_NAMESPACE}}}{name}")
            self.add(element, "valueName", pair.value_name, f"{path}/{name}[{i}]")
            self.add(element, "value", pair.value, f"{path}/{name}[{i}]")


def alert_to_element(alert: AlertBase) -> Element:
    """An Alert record as a CAP 1.2 ``alert`` element, checked against the XSD.

    Elements follow the XSD's order. Where an area has ``polygons`` or
    ``circles`` they are written as they are; an area with only ``geometry``
    gets each polygon's outer ring as a CAP ``polygon``. Sub-second times are
    truncated (CAP has whole seconds only).
    """
    w = _Writer()
    path = "/alert"
    root = Element(f"{{{CAP_1_2_NAMESPACE}}}alert")
    w.add(root, "identifier", alert.identifier, path)
    w.add(root, "sender", alert.sender, path)
    w.add(root, "sent", format_datetime(alert.sent, path=f"{path}/sent"), path)
    w.add(root, "status", alert.status.value, path)
    w.add(root, "msgType", alert.msg_type.value, path)
    w.add(root, "source", alert.source, path)
    w.add(root, "scope", alert.scope.value, path)
    w.add(root, "restriction", alert.restriction, path)
    w.add(root, "addresses", alert.addresses, path)
    for code in alert.codes:
        w.add(root, "code", code, path)
    w.add(root, "note", alert.note, path)
    if alert.references:
        if any(not ref or any(c.isspace() for c in ref) for ref in alert.references):
            raise CapInvalid(
                "a reference may not be empty or contain whitespace", path=f"{path}/references"
            )
        w.add(root, "references", " ".join(alert.references), path)
    if alert.incidents:
        w.add(root, "incidents", join_quoted(alert.incidents, path=f"{path}/incidents"), path)
    for i, info in enumerate(alert.infos, 1):
        _write_info(w, root, info, f"{path}/info[{i}]")
    _check_against_xsd(root)
    return root


def _write_info(w: _Writer, root: Element, info: AlertInfo, path: str) -> None:
    element = SubElement(root, f"{{{CAP_1_2_NAMESPACE}}}info")
    w.add(element, "language", info.language, path)
    for category in info.categories:
        w.add(element, "category", category.value, path)
    w.add(element, "event", info.event, path)
    for response_type in info.response_types:
        w.add(element, "responseType", response_type, path)
    w.add(element, "urgency", info.urgency.value, path)
    w.add(element, "severity", info.severity.value, path)
    w.add(element, "certainty", info.certainty.value, path)
    w.add(element, "audience", info.audience, path)
    w.add_pairs(element, "eventCode", info.event_codes, path)
    for name, value in (
        ("effective", info.effective),
        ("onset", info.onset),
        ("expires", info.expires),
    ):
        if value is not None:
            w.add(element, name, format_datetime(value, path=f"{path}/{name}"), path)
    w.add(element, "senderName", info.sender_name, path)
    w.add(element, "headline", info.headline, path)
    w.add(element, "description", info.description, path)
    w.add(element, "instruction", info.instruction, path)
    w.add(element, "web", info.web, path)
    w.add(element, "contact", info.contact, path)
    w.add_pairs(element, "parameter", info.parameters, path)
    for i, resource in enumerate(info.resources, 1):
        _write_resource(w, element, resource, f"{path}/resource[{i}]")
    for i, area in enumerate(info.areas, 1):
        _write_area(w, element, area, f"{path}/area[{i}]")


def _write_resource(w: _Writer, info: Element, resource: AlertResource, path: str) -> None:
    element = SubElement(info, f"{{{CAP_1_2_NAMESPACE}}}resource")
    w.add(element, "resourceDesc", resource.resource_desc, path)
    w.add(element, "mimeType", resource.mime_type or _UNKNOWN_MIME_TYPE, path)
    w.add(element, "size", None if resource.size is None else str(resource.size), path)
    w.add(element, "uri", resource.uri, path)
    w.add(element, "derefUri", resource.deref_uri, path)
    w.add(element, "digest", resource.digest, path)


def _write_area(w: _Writer, info: Element, area: AlertArea, path: str) -> None:
    element = SubElement(info, f"{{{CAP_1_2_NAMESPACE}}}area")
    w.add(element, "areaDesc", area.area_desc, path)
    polygons = area.polygons
    if not polygons and not area.circles:
        polygons = [
            polygon_text(shape, path=f"{path}/geometry[{i}]")
            for i, shape in enumerate(area.geometry, 1)
        ]
    for polygon in polygons:
        w.add(element, "polygon", polygon, path)
    for circle in area.circles:
        w.add(element, "circle", circle, path)
    w.add_pairs(element, "geocode", area.geocodes, path)
    for name, value in (("altitude", area.altitude), ("ceiling", area.ceiling)):
        if value is not None:
            w.add(element, name, format_decimal(value, path=f"{path}/{name}"), path)


def write_alert(alert: AlertBase) -> bytes:
    """An Alert record as a CAP 1.2 XML message (UTF-8) that validates against the XSD."""
    root = alert_to_element(alert)
    indent(root, space="  ")
    return serialize(root)
