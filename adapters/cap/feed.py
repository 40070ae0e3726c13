"""Alert feeds: reading ATOM and RSS index feeds, writing an ATOM feed of alerts.

An index feed lists alerts and links to each CAP message. Some feeds also
carry a few CAP fields in each entry (the NWS ATOM feed has ``cap:event``,
``cap:urgency``, ``cap:polygon``, ... directly inside ``<entry>``: an index,
not the message), and some embed the whole CAP ``<alert>`` in ``<content>``.
Both are read.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urljoin
from xml.etree.ElementTree import Element, SubElement, indent

from pydantic import BaseModel, ValidationError

from adapters.cap._values import CapReader, parse_certainty, parse_enum
from adapters.cap._xml import (
    DEFAULT_MAX_ALERT_BYTES,
    DEFAULT_MAX_FEED_BYTES,
    check_xml_text,
    parse_untrusted,
    serialize,
    split_tag,
)
from adapters.cap.codec import (
    CAP_1_0_NAMESPACE,
    CAP_1_1_NAMESPACE,
    CAP_1_2_NAMESPACE,
    CAP_MIME_TYPE,
    alert_from_element,
    alert_to_element,
)
from adapters.cap.errors import CapInvalid, FeedInvalid
from schema.enums import CapCategory, CapMsgType, CapSeverity, CapStatus, CapUrgency
from schema.records.alert import AlertArea, AlertBase, AlertCreate, AlertInfo

__all__ = [
    "ATOM_NAMESPACE",
    "FeedEntry",
    "alert_link",
    "parse_feed",
    "write_atom_feed",
]

ATOM_NAMESPACE = "http://www.w3.org/2005/Atom"

# CAP 1.0 is listed so that an embedded 1.0 alert is reported as unsupported, not ignored.
_CAP_ALERT_TAGS = frozenset(
    f"{{{namespace}}}alert"
    for namespace in (CAP_1_2_NAMESPACE, CAP_1_1_NAMESPACE, CAP_1_0_NAMESPACE)
)


class FeedEntry(BaseModel):
    """One entry of an alert feed: where its CAP message is, and what the feed tells of it."""

    id: str
    title: str | None = None
    updated: datetime | None = None
    published: datetime | None = None
    link: str | None = None
    """The CAP message: the link typed application/cap+xml, else the entry's own link."""
    summary: str | None = None
    status: CapStatus | None = None
    msg_type: CapMsgType | None = None
    info: AlertInfo | None = None
    """The CAP fields an index feed puts in the entry, when they make a whole ``info``."""
    alert: AlertCreate | None = None
    """The whole message, when the entry embeds it."""


def parse_feed(
    data: bytes,
    *,
    base_url: str | None = None,
    max_bytes: int = DEFAULT_MAX_FEED_BYTES,
    max_alert_bytes: int = DEFAULT_MAX_ALERT_BYTES,
) -> list[FeedEntry]:
    """Read an ATOM or RSS 2.0 alert feed (untrusted bytes); links resolve against ``base_url``."""
    root = parse_untrusted(data, max_bytes=max_bytes)
    namespace, name = split_tag(root.tag)
    if namespace == ATOM_NAMESPACE and name == "feed":
        return [
            _atom_entry(entry, f"/feed/entry[{i}]", base_url, max_alert_bytes)
            for i, entry in enumerate(root.findall(f"{{{ATOM_NAMESPACE}}}entry"), 1)
        ]
    if namespace == "" and name == "rss":
        channel = root.find("channel")
        if channel is None:
            raise FeedInvalid("an RSS feed needs a <channel>", path="/rss")
        return [
            _rss_item(item, f"/rss/channel/item[{i}]", base_url, max_alert_bytes)
            for i, item in enumerate(channel.findall("item"), 1)
        ]
    raise FeedInvalid(f"the root element is <{name}>, not an ATOM <feed> or RSS <rss>", path="/")


def _text(parent: Element, tag: str) -> str | None:
    child = parent.find(tag)
    return None if child is None else "".join(child.itertext()).strip()


def _resolve(href: str | None, base_url: str | None) -> str | None:
    if not href:
        return None
    return urljoin(base_url, href) if base_url else href


def _atom_time(entry: Element, name: str, path: str) -> datetime | None:
    text = _text(entry, f"{{{ATOM_NAMESPACE}}}{name}")
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise FeedInvalid(f"{text!r} is not an RFC 3339 date", path=f"{path}/{name}") from None
    if value.tzinfo is None:
        raise FeedInvalid(f"{text!r} has no timezone offset", path=f"{path}/{name}")
    return value


def _atom_cap_link(entry: Element, base_url: str | None) -> str | None:
    links = entry.findall(f"{{{ATOM_NAMESPACE}}}link")
    for link in links:
        media_type = link.get("type", "").split(";")[0].strip().lower()
        if media_type == CAP_MIME_TYPE and link.get("href"):
            return _resolve(link.get("href"), base_url)
    for link in links:
        if link.get("rel", "alternate") == "alternate" and link.get("href"):
            return _resolve(link.get("href"), base_url)
    return None


def _atom_entry(entry: Element, path: str, base_url: str | None, max_alert_bytes: int) -> FeedEntry:
    entry_id = _text(entry, f"{{{ATOM_NAMESPACE}}}id")
    if not entry_id:
        raise FeedInvalid("<id> is required", path=path)
    status, msg_type, info = _index_fields(entry, path)
    return FeedEntry(
        id=entry_id,
        title=_text(entry, f"{{{ATOM_NAMESPACE}}}title"),
        updated=_atom_time(entry, "updated", path),
        published=_atom_time(entry, "published", path),
        link=_atom_cap_link(entry, base_url),
        summary=_text(entry, f"{{{ATOM_NAMESPACE}}}summary"),
        status=status,
        msg_type=msg_type,
        info=info,
        alert=_embedded_alert(
            entry, entry.find(f"{{{ATOM_NAMESPACE}}}content"), path, max_alert_bytes
        ),
    )


def _rss_time(item: Element, path: str) -> datetime | None:
    text = _text(item, "pubDate")
    if text is None:
        return None
    try:
        value = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        raise FeedInvalid(f"{text!r} is not an RFC 822 date", path=f"{path}/pubDate") from None
    # RFC 2822 "-0000" means UTC with no local offset known; Python leaves it naive.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _rss_item(item: Element, path: str, base_url: str | None, max_alert_bytes: int) -> FeedEntry:
    link = _resolve(_text(item, "link"), base_url)
    for enclosure in item.findall("enclosure"):
        if enclosure.get("type", "").split(";")[0].strip().lower() == CAP_MIME_TYPE:
            link = _resolve(enclosure.get("url"), base_url) or link
            break
    entry_id = _text(item, "guid") or link
    if not entry_id:
        raise FeedInvalid("an item needs a <guid> or a <link>", path=path)
    status, msg_type, info = _index_fields(item, path)
    return FeedEntry(
        id=entry_id,
        title=_text(item, "title"),
        updated=_rss_time(item, path),
        link=link,
        summary=_text(item, "description"),
        status=status,
        msg_type=msg_type,
        info=info,
        alert=_embedded_alert(item, None, path, max_alert_bytes),
    )


def _embedded_alert(
    entry: Element, content: Element | None, path: str, max_alert_bytes: int
) -> AlertCreate | None:
    """The CAP alert inside ``entry`` or its ``content``, as an element or as escaped XML."""
    holders = [entry] if content is None else [content, entry]
    found = next(
        (child for holder in holders for child in holder if child.tag in _CAP_ALERT_TAGS), None
    )
    where = f"{path}/content" if content is not None else path
    if found is None and content is not None and "xml" in content.get("type", ""):
        # Some feeds escape the message into the text of <content>.
        text = (content.text or "").strip()
        if text.startswith("<?xml"):
            # Already decoded: an encoding named in the declaration no longer applies.
            text = text.partition("?>")[2].lstrip()
        if text.startswith("<"):
            found = parse_untrusted(text.encode("utf-8"), max_bytes=max_alert_bytes)
    if found is None:
        return None
    try:
        return alert_from_element(found)
    except CapInvalid as exc:
        raise CapInvalid(exc.reason, path=f"{where}{exc.path}") from exc


def _index_fields(
    entry: Element, path: str
) -> tuple[CapStatus | None, CapMsgType | None, AlertInfo | None]:
    """The CAP fields an index feed writes straight into an entry (CAP 1.1 or 1.2 namespace)."""
    namespaces = {split_tag(child.tag)[0] for child in entry}
    namespace = next(
        (ns for ns in (CAP_1_2_NAMESPACE, CAP_1_1_NAMESPACE) if ns in namespaces), None
    )
    if namespace is None:
        return None, None, None
    cap = CapReader(namespace)
    status_text = cap.token(entry, "status")
    status = (
        None if status_text is None else parse_enum(CapStatus, status_text, path=f"{path}/status")
    )
    msg_type_text = cap.token(entry, "msgType")
    msg_type = (
        None
        if msg_type_text is None
        else parse_enum(CapMsgType, msg_type_text, path=f"{path}/msgType")
    )
    event = cap.text(entry, "event")
    urgency = cap.token(entry, "urgency")
    severity = cap.token(entry, "severity")
    certainty = cap.token(entry, "certainty")
    categories = cap.tokens(entry, "category")
    # An index may carry only some fields; without those every info has, there is none.
    if event is None or urgency is None or severity is None or certainty is None or not categories:
        return status, msg_type, None
    polygons, circles, geometry = cap.shapes(entry, path)
    geocodes = cap.pairs(entry, "geocode")
    area_desc = cap.text(entry, "areaDesc")
    areas = (
        [
            AlertArea(
                area_desc=area_desc or "",
                polygons=polygons,
                circles=circles,
                geocodes=geocodes,
                geometry=geometry,
            )
        ]
        if area_desc is not None or polygons or circles or geocodes
        else []
    )
    try:
        info = AlertInfo(
            categories=[
                parse_enum(CapCategory, text, path=f"{path}/category") for text in categories
            ],
            event=event,
            response_types=cap.tokens(entry, "responseType"),
            urgency=parse_enum(CapUrgency, urgency, path=f"{path}/urgency"),
            severity=parse_enum(CapSeverity, severity, path=f"{path}/severity"),
            certainty=parse_certainty(certainty, path=f"{path}/certainty"),
            event_codes=cap.pairs(entry, "eventCode"),
            effective=cap.time(entry, "effective", path),
            onset=cap.time(entry, "onset", path),
            expires=cap.time(entry, "expires", path),
            sender_name=cap.text(entry, "senderName"),
            headline=cap.text(entry, "headline"),
            parameters=cap.pairs(entry, "parameter"),
            areas=areas,
        )
    except ValidationError as exc:
        raise CapInvalid(exc.errors()[0]["msg"], path=path) from exc
    return status, msg_type, info


def alert_link(link_base: str, identifier: str) -> str:
    """Where a feed written with ``link_base`` says the CAP XML of alert ``identifier`` is."""
    return f"{link_base.rstrip('/')}/{quote(identifier, safe='')}"


def _add(parent: Element, name: str, text: str, path: str) -> Element:
    child = SubElement(parent, f"{{{ATOM_NAMESPACE}}}{name}")
    child.text = check_xml_text(text, path=f"{path}/{name}")
    return child


def write_atom_feed(
    alerts: Iterable[AlertBase],
    *,
    feed_id: str,
    title: str,
    updated: datetime,
    link_base: str,
    embed: bool = False,
) -> bytes:
    """An ATOM feed of alerts, each entry linking to its CAP XML (and embedding it if ``embed``).

    Each entry's id and link are ``alert_link(link_base, identifier)``.
    """
    feed = Element(f"{{{ATOM_NAMESPACE}}}feed")
    _add(feed, "id", feed_id, "/feed")
    _add(feed, "title", title, "/feed")
    if updated.utcoffset() is None:
        raise ValueError("updated must be timezone-aware")
    _add(feed, "updated", updated.isoformat(), "/feed")
    _add(feed, "generator", "Linli", "/feed")
    for i, alert in enumerate(alerts, 1):
        path = f"/feed/entry[{i}]"
        entry = SubElement(feed, f"{{{ATOM_NAMESPACE}}}entry")
        link = alert_link(link_base, alert.identifier)
        first = alert.infos[0] if alert.infos else None
        headline = first and (first.headline or first.event)
        _add(entry, "id", link, path)
        _add(entry, "title", headline or f"{alert.msg_type.value} {alert.identifier}", path)
        if alert.sent.utcoffset() is None:
            raise CapInvalid("datetime has no timezone", path=f"{path}/updated")
        _add(entry, "updated", alert.sent.isoformat(), path)
        author = SubElement(entry, f"{{{ATOM_NAMESPACE}}}author")
        _add(author, "name", (first and first.sender_name) or alert.sender, f"{path}/author")
        SubElement(
            entry,
            f"{{{ATOM_NAMESPACE}}}link",
            {"rel": "alternate", "type": CAP_MIME_TYPE, "href": link},
        )
        if first is not None and first.description is not None:
            _add(entry, "summary", first.description, path)
        if embed:
            content = SubElement(entry, f"{{{ATOM_NAMESPACE}}}content", {"type": CAP_MIME_TYPE})
            try:
                content.append(alert_to_element(alert))
            except CapInvalid as exc:
                raise CapInvalid(exc.reason, path=f"{path}/content{exc.path}") from exc
    indent(feed, space="  ")
    return serialize(feed)
