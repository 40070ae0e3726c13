"""The CAP codec against public sample documents, hostile input and its own output."""

from __future__ import annotations

import hashlib
import re
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, ClassVar
from xml.etree import ElementTree

import pytest
import xmlschema

from adapters.cap import (
    CAP_1_2_NAMESPACE,
    CAP_XSD_PATH,
    DEFAULT_MAX_ALERT_BYTES,
    CapError,
    CapInvalid,
    CapUnsupportedVersion,
    FeedInvalid,
    XmlError,
    XmlForbidden,
    XmlMalformed,
    XmlTooLarge,
    alert_link,
    parse_alert,
    parse_feed,
    validate_alert,
    write_alert,
    write_atom_feed,
)
from schema.enums import (
    CapCategory,
    CapCertainty,
    CapMsgType,
    CapScope,
    CapSeverity,
    CapStatus,
    CapUrgency,
)
from schema.errors import LinliError
from schema.geo import GeoPolygon
from schema.records.alert import AlertArea, AlertCreate, AlertInfo, NameValue
from tests.conftest import CAP_FIXTURES, CAP_SAMPLES

CAP12_SAMPLES = sorted(CAP_SAMPLES.glob("cap12-*.xml"))
NWS_FEED = CAP_FIXTURES / "nws-atom-feed-cap11.xml"
ATOM = "http://www.w3.org/2005/Atom"
#: SHA-256 of the XSD published with the OASIS CAP 1.2 standard (1 July 2010).
OASIS_CAP_1_2_XSD_SHA256 = "f6c6ed7537a463968b7b36110f7e8bba1f86ad2257a8b84619d7dce530e57401"


@pytest.fixture(scope="module")
def oasis_schema() -> xmlschema.XMLSchema10:
    """The OASIS XSD, loaded by xmlschema directly rather than through the codec."""
    return xmlschema.XMLSchema10(str(CAP_XSD_PATH))


def sample(name: str) -> bytes:
    return (CAP_SAMPLES / name).read_bytes()


def expect_error(code: str, call: Callable[..., object], *args: Any, **kwargs: Any) -> XmlError:
    """Run ``call`` and return the XmlError (CapError or XML-level) it raised, carrying ``code``."""
    with pytest.raises(XmlError) as caught:
        call(*args, **kwargs)
    assert caught.value.code == code, f"{caught.value.code}: {caught.value}"
    assert caught.value.extensions["code"] == code
    return caught.value


def tz(hours: int) -> timezone:
    return timezone(timedelta(hours=hours))


# --- the samples themselves -------------------------------------------------------------------


def test_every_sample_is_covered() -> None:
    # A new sample must get expectations here before the suite passes again.
    assert sorted(p.name for p in CAP_SAMPLES.iterdir()) == [
        "README.md",
        "cap12-spec-appendix-a1.xml",
        "cap12-spec-appendix-a2.xml",
        "cap12-spec-appendix-a3.xml",
        "cap12-spec-appendix-a4.xml",
    ]
    assert sorted(p.name for p in CAP_FIXTURES.iterdir()) == [
        "README.md",
        "nws-atom-feed-cap11.xml",
    ]


def test_bundled_xsd_is_the_oasis_schema_unchanged() -> None:
    assert hashlib.sha256(CAP_XSD_PATH.read_bytes()).hexdigest() == OASIS_CAP_1_2_XSD_SHA256


@pytest.mark.parametrize("path", CAP12_SAMPLES, ids=lambda p: p.name)
def test_cap12_sample_is_valid(path: Path, oasis_schema: xmlschema.XMLSchema10) -> None:
    data = path.read_bytes()
    oasis_schema.validate(data)
    assert validate_alert(data) == "1.2"


def test_a1_homeland_security_advisory() -> None:
    alert = parse_alert(sample("cap12-spec-appendix-a1.xml"))
    assert alert.identifier == "43b080713727"
    assert alert.sender == "hsas@dhs.gov"
    assert alert.sent == datetime(2003, 4, 2, 14, 39, 1, tzinfo=tz(-5))
    assert alert.sent.utcoffset() == timedelta(hours=-5)
    assert (alert.status, alert.msg_type, alert.scope) == (
        CapStatus.ACTUAL,
        CapMsgType.ALERT,
        CapScope.PUBLIC,
    )
    assert alert.source is None
    assert alert.references == []
    assert alert.codes == []
    (info,) = alert.infos
    assert info.language == "en-US"  # absent in the file: the XSD's default
    assert info.categories == [CapCategory.SECURITY]
    assert info.event == "Homeland Security Advisory System Update"
    assert (info.urgency, info.severity, info.certainty) == (
        CapUrgency.IMMEDIATE,
        CapSeverity.SEVERE,
        CapCertainty.LIKELY,
    )
    assert info.sender_name == "U.S. Government, Department of Homeland Security"
    assert info.headline == "Homeland Security Sets Code ORANGE"
    assert info.web == "http://www.dhs.gov/dhspublic/display?theme=29"
    assert info.parameters == [NameValue(value_name="HSAS", value="ORANGE")]
    (resource,) = info.resources
    assert resource.resource_desc == "Image file (GIF)"
    assert resource.mime_type == "image/gif"
    assert resource.uri == "http://www.dhs.gov/dhspublic/getAdvisoryImage"
    assert resource.size is None
    (area,) = info.areas
    assert area.area_desc == "U.S. nationwide and interests worldwide"
    assert area.polygons == []
    assert area.circles == []
    assert area.geometry == []


def test_a2_thunderstorm_polygon_becomes_lon_lat_geojson() -> None:
    alert = parse_alert(sample("cap12-spec-appendix-a2.xml"))
    assert alert.identifier == "KSTO1055887203"
    assert alert.sender == "KSTO@NWS.NOAA.GOV"
    assert alert.sent == datetime(2003, 6, 17, 14, 57, tzinfo=tz(-7))
    (info,) = alert.infos
    assert info.response_types == ["Shelter"]
    assert info.certainty == CapCertainty.OBSERVED
    assert info.event_codes == [NameValue(value_name="SAME", value="SVR")]
    assert info.expires == datetime(2003, 6, 17, 16, 0, tzinfo=tz(-7))
    assert info.contact == "BARUFFALDI/JUSKIE"
    (area,) = info.areas
    assert area.polygons == [
        "38.47,-120.14 38.34,-119.95 38.52,-119.74 38.62,-119.89 38.47,-120.14"
    ]
    assert area.geometry == [
        GeoPolygon(
            coordinates=[
                [
                    (-120.14, 38.47),
                    (-119.95, 38.34),
                    (-119.74, 38.52),
                    (-119.89, 38.62),
                    (-120.14, 38.47),
                ]
            ]
        )
    ]
    assert [g.value for g in area.geocodes] == ["006109", "006009", "006003"]
    assert {g.value_name for g in area.geocodes} == {"SAME"}


def test_a3_earthquake_update_references_and_circle() -> None:
    alert = parse_alert(sample("cap12-spec-appendix-a3.xml"))
    assert alert.identifier == "TRI13970876.2"
    assert alert.msg_type == CapMsgType.UPDATE
    assert alert.references == ["trinet@caltech.edu,TRI13970876.1,2003-06-11T20:30:00-07:00"]
    (info,) = alert.infos
    assert info.categories == [CapCategory.GEO]
    assert info.urgency == CapUrgency.PAST
    assert [(p.value_name, p.value) for p in info.parameters] == [
        ("EventID", "13970876"),
        ("Version", "1"),
        ("Magnitude", "3.4 Ml"),
        ("Depth", "11.8 mi."),
        ("Quality", "Excellent"),
    ]
    (area,) = info.areas
    assert area.circles == ["32.9525,-115.5527 0"]
    assert area.polygons == []
    # Radius 0: a degenerate ring at the epicentre, longitude first.
    (shape,) = area.geometry
    assert set(shape.coordinates[0]) == {(-115.5527, 32.9525)}


def test_a4_amber_alert_in_two_languages() -> None:
    alert = parse_alert(sample("cap12-spec-appendix-a4.xml"))
    assert alert.identifier == "KAR0-0306112239-SW"
    assert alert.sender == "KARO@CLETS.DOJ.CA.GOV"
    assert alert.source == "SW"
    assert [i.language for i in alert.infos] == ["en-US", "es-US"]
    assert [i.event for i in alert.infos] == ["Child Abduction", "Abducción de Niño"]
    assert alert.infos[1].areas[0].area_desc == "condado de Los Ángeles"
    for info in alert.infos:
        assert info.categories == [CapCategory.RESCUE]
        assert info.event_codes == [NameValue(value_name="SAME", value="CAE")]
        assert info.areas[0].geocodes == [NameValue(value_name="SAME", value="006037")]


@pytest.mark.parametrize("path", CAP12_SAMPLES, ids=lambda p: p.name)
def test_cap12_sample_round_trips(path: Path, oasis_schema: xmlschema.XMLSchema10) -> None:
    alert = parse_alert(path.read_bytes())
    written = write_alert(alert)
    assert written.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    oasis_schema.validate(written)
    root = ElementTree.fromstring(written)
    assert root.tag == f"{{{CAP_1_2_NAMESPACE}}}alert"
    again = parse_alert(written)
    assert again == alert
    assert write_alert(again) == written


def test_written_alert_is_utf8_not_character_references() -> None:
    written = write_alert(parse_alert(sample("cap12-spec-appendix-a4.xml")))
    assert "Abducción de Niño".encode() in written


# --- the NWS index feed -----------------------------------------------------------------------


def test_nws_feed_is_an_index_of_cap11_fields_not_embedded_alerts() -> None:
    data = NWS_FEED.read_bytes()
    entries = parse_feed(data)
    atom_entries = ElementTree.fromstring(data).findall(f"{{{ATOM}}}entry")
    assert len(entries) == len(atom_entries) == 163
    assert [e.id for e in entries] == [e.findtext(f"{{{ATOM}}}id") for e in atom_entries]
    for entry in entries:
        assert entry.alert is None
        assert entry.link == entry.id  # the NWS entry link is the CAP message
        assert entry.info is not None
        assert entry.updated is not None
        assert entry.updated.tzinfo is not None
        assert entry.msg_type == CapMsgType.ALERT
    with_polygon = [e for e in entries if e.info and e.info.areas[0].polygons]
    assert len(with_polygon) == len(re.findall(rb"<cap:polygon>[^<]", data)) == 99
    for entry in entries:
        assert entry.info is not None
        (area,) = entry.info.areas
        assert len(area.geometry) == len(area.polygons)


def test_nws_feed_first_entry_fields() -> None:
    first = parse_feed(NWS_FEED.read_bytes())[0]
    assert first.id == (
        "https://alerts.weather.gov/cap/wwacapget.php?x=AK125AB652A170.HighWindWarning."
        "125AB660BDF0AK.AFGNPWNSB.e9d4afdcacb3b7015f58bccc1db60d46"
    )
    assert first.title == (
        "High Wind Warning issued August 15 at 2:52PM AKDT until August 16 at 7:00AM AKDT by NWS"
    )
    assert first.updated == datetime(2018, 8, 15, 14, 52, tzinfo=tz(-8))
    assert first.published == first.updated
    assert first.summary is not None
    assert first.summary.startswith("...HIGH WIND WARNING")
    assert first.status == CapStatus.ACTUAL
    info = first.info
    assert info is not None
    assert info.event == "High Wind Warning"
    assert info.categories == [CapCategory.MET]
    assert (info.urgency, info.severity, info.certainty) == (
        CapUrgency.EXPECTED,
        CapSeverity.SEVERE,
        CapCertainty.LIKELY,
    )
    assert info.effective == datetime(2018, 8, 15, 14, 52, tzinfo=tz(-8))
    assert info.expires == datetime(2018, 8, 16, 7, 0, tzinfo=tz(-8))
    (area,) = info.areas
    assert area.area_desc == "Eastern Beaufort Sea Coast"
    assert area.polygons == []
    assert area.geometry == []
    # One <cap:geocode> holding two valueName/value pairs.
    assert area.geocodes == [
        NameValue(value_name="FIPS6", value="002185"),
        NameValue(value_name="UGC", value="AKZ204"),
    ]
    assert info.parameters == [
        NameValue(value_name="VTEC", value="/O.CON.PAFG.HW.W.0011.180816T0000Z-180816T1500Z/")
    ]


def test_nws_feed_polygon_is_lon_lat() -> None:
    entries = parse_feed(NWS_FEED.read_bytes())
    entry = next(e for e in entries if "AL125AB652A29C.SpecialWeatherStatement" in e.id)
    assert entry.info is not None
    assert entry.info.certainty == CapCertainty.OBSERVED
    (area,) = entry.info.areas
    assert area.area_desc == "Butler; Crenshaw"
    raw = "31.62,-86.35 31.59,-86.5 31.96,-86.8 31.96,-86.41 32.03,-86.41 32.04,-86.4 32.05,-86.41 32.05,-86.4 31.62,-86.35"
    assert area.polygons == [raw]
    ring = area.geometry[0].coordinates[0]
    assert ring[:3] == [(-86.35, 31.62), (-86.5, 31.59), (-86.8, 31.96)]
    assert ring == [(float(lon), float(lat)) for lat, lon in (p.split(",") for p in raw.split())]
    assert area.geocodes[0] == NameValue(value_name="FIPS6", value="001013 001041")


# --- feeds we write, and other feed shapes --------------------------------------------------


def sample_alerts() -> list[AlertCreate]:
    return [parse_alert(path.read_bytes()) for path in CAP12_SAMPLES]


@pytest.mark.parametrize("embed", [True, False])
def test_atom_feed_round_trip(embed: bool) -> None:
    alerts = sample_alerts()
    updated = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    data = write_atom_feed(
        alerts,
        feed_id="urn:linli:feed:test",
        title="Test alerts",
        updated=updated,
        link_base="https://hub.example/cap/",
        embed=embed,
    )
    root = ElementTree.fromstring(data)
    assert root.tag == f"{{{ATOM}}}feed"
    assert root.findtext(f"{{{ATOM}}}id") == "urn:linli:feed:test"
    entries = parse_feed(data)
    assert len(entries) == len(alerts)
    for entry, alert in zip(entries, alerts, strict=True):
        link = f"https://hub.example/cap/{alert.identifier}"
        assert alert_link("https://hub.example/cap/", alert.identifier) == link
        assert entry.id == entry.link == link
        assert entry.updated == alert.sent
        assert entry.title == alert.infos[0].headline
        assert entry.alert == (alert if embed else None)


def test_alert_link_escapes_the_identifier() -> None:
    assert alert_link("https://h/cap", "a b/c?d") == "https://h/cap/a%20b%2Fc%3Fd"


def test_atom_entry_prefers_the_cap_typed_link_and_resolves_relative_links() -> None:
    data = f"""<feed xmlns="{ATOM}"><id>f</id><title>t</title><updated>2024-01-01T00:00:00Z</updated>
      <entry><id>e1</id><title>x</title><updated>2024-01-01T01:00:00+08:00</updated>
        <link rel="alternate" type="text/html" href="/alerts/1.html"/>
        <link rel="alternate" type="application/cap+xml" href="/alerts/1.xml"/>
      </entry>
      <entry><id>e2</id><title>y</title><updated>2024-01-01T02:00:00+08:00</updated>
        <link href="https://other.example/2.xml"/>
      </entry></feed>""".encode()
    first, second = parse_feed(data, base_url="https://alerts.example/feed.atom")
    assert first.link == "https://alerts.example/alerts/1.xml"
    assert first.updated == datetime(2024, 1, 1, 1, 0, tzinfo=tz(8))
    assert second.link == "https://other.example/2.xml"
    assert first.alert is None
    assert first.info is None


def test_atom_entry_with_escaped_cap_in_content() -> None:
    escaped = (
        sample("cap12-spec-appendix-a4.xml")
        .decode()
        .replace('encoding = "UTF-8"', 'encoding = "ISO-8859-1"')
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )
    data = f"""<feed xmlns="{ATOM}"><id>f</id><title>t</title><updated>2024-01-01T00:00:00Z</updated>
      <entry><id>e1</id><title>x</title><updated>2024-01-01T00:00:00Z</updated>
        <content type="text/xml">{escaped}</content></entry></feed>""".encode()
    (entry,) = parse_feed(data)
    assert entry.alert == parse_alert(sample("cap12-spec-appendix-a4.xml"))
    assert entry.alert.infos[1].event == "Abducción de Niño"


def test_rss_feed_items() -> None:
    alert_xml = sample("cap12-spec-appendix-a3.xml").split(b"?>", 1)[1].decode()
    data = f"""<?xml version="1.0" encoding="UTF-8"?>
      <rss version="2.0"><channel><title>Alerts</title><link>https://a.example/</link>
        <item><title>Quake</title><link>https://a.example/a.html</link>
          <guid isPermaLink="false">urn:alert:1</guid>
          <pubDate>Wed, 11 Jun 2003 20:56:00 -0700</pubDate>
          <enclosure url="/cap/1.xml" type="application/cap+xml" length="100"/>
          <description>An earthquake</description>
          {alert_xml}
        </item>
        <item><link>https://a.example/2.xml</link><pubDate>Thu, 12 Jun 2003 01:00:00 -0000</pubDate></item>
      </channel></rss>""".encode()
    first, second = parse_feed(data, base_url="https://a.example/rss")
    assert first.id == "urn:alert:1"
    assert first.title == "Quake"
    assert first.link == "https://a.example/cap/1.xml"
    assert first.updated == datetime(2003, 6, 11, 20, 56, tzinfo=tz(-7))
    assert first.summary == "An earthquake"
    assert first.alert == parse_alert(sample("cap12-spec-appendix-a3.xml"))
    assert second.id == second.link == "https://a.example/2.xml"
    assert second.updated == datetime(2003, 6, 12, 1, 0, tzinfo=UTC)
    assert second.alert is None


def test_feed_with_invalid_embedded_alert_names_the_entry() -> None:
    bad = sample("cap12-spec-appendix-a2.xml").split(b"?>", 1)[1].replace(b">Alert<", b">Bogus<")
    data = (
        f'<feed xmlns="{ATOM}"><id>f</id><entry><id>e</id>'
        f'<content type="application/cap+xml">{bad.decode()}</content></entry></feed>'
    ).encode()
    error = expect_error("CAP_INVALID", parse_feed, data)
    assert isinstance(error, CapInvalid)
    assert error.path == "/feed/entry[1]/content/alert/msgType"


def test_parse_feed_refuses_what_is_not_a_feed() -> None:
    error = expect_error("FEED_INVALID", parse_feed, sample("cap12-spec-appendix-a1.xml"))
    assert isinstance(error, FeedInvalid)
    expect_error("FEED_INVALID", parse_feed, f'<feed xmlns="{ATOM}"><entry/></feed>'.encode())
    expect_error("FEED_INVALID", parse_feed, b'<rss version="2.0"/>')


# --- CAP 1.1 and other versions ---------------------------------------------------------------


def as_cap11(data: bytes) -> bytes:
    return data.replace(CAP_1_2_NAMESPACE.encode(), b"urn:oasis:names:tc:emergency:cap:1.1")


def test_cap11_reads_into_the_same_model() -> None:
    data = as_cap11(sample("cap12-spec-appendix-a2.xml"))
    assert validate_alert(data) == "1.1"
    assert parse_alert(data) == parse_alert(sample("cap12-spec-appendix-a2.xml"))


def test_cap11_very_likely_and_missing_mime_type(oasis_schema: xmlschema.XMLSchema10) -> None:
    data = (
        as_cap11(sample("cap12-spec-appendix-a1.xml"))
        .replace(b"<certainty>Likely</certainty>", b"<certainty>Very Likely</certainty>")
        .replace(b"<mimeType>image/gif</mimeType>", b"")
    )
    alert = parse_alert(data)
    assert alert.infos[0].certainty == CapCertainty.LIKELY
    assert alert.infos[0].resources[0].mime_type is None
    # Written as CAP 1.2, where mimeType is required.
    written = write_alert(alert)
    oasis_schema.validate(written)
    assert b"<mimeType>application/octet-stream</mimeType>" in written


def test_cap11_structural_check() -> None:
    base = as_cap11(sample("cap12-spec-appendix-a2.xml"))
    missing = base.replace(b"<identifier>KSTO1055887203</identifier>", b"")
    assert expect_error("CAP_INVALID", parse_alert, missing).details["path"] == "/alert"
    doubled = base.replace(b"<scope>Public</scope>", b"<scope>Public</scope><scope>Public</scope>")
    expect_error("CAP_INVALID", parse_alert, doubled)
    unknown = base.replace(b"<scope>Public</scope>", b"<scope>Public</scope><colour>red</colour>")
    expect_error("CAP_INVALID", parse_alert, unknown)
    no_category = base.replace(b"<category>Met</category>", b"")
    assert expect_error("CAP_INVALID", parse_alert, no_category).details["path"] == (
        "/alert/info[1]"
    )
    bad_enum = base.replace(b"<urgency>Immediate</urgency>", b"<urgency>Soon</urgency>")
    assert expect_error("CAP_INVALID", parse_alert, bad_enum).details["path"] == (
        "/alert/info[1]/urgency"
    )
    # Order is not part of the 1.1 check (documented): swapped elements still read.
    swapped = base.replace(
        b"<status>Actual</status>\n    <msgType>Alert</msgType>",
        b"<msgType>Alert</msgType>\n    <status>Actual</status>",
    )
    assert swapped != base
    assert parse_alert(swapped).identifier == "KSTO1055887203"


@pytest.mark.parametrize(
    "namespace",
    ["http://www.incident.com/cap/1.0", "urn:oasis:names:tc:emergency:cap:1.3", ""],
)
def test_other_cap_versions_are_unsupported(namespace: str) -> None:
    data = sample("cap12-spec-appendix-a2.xml").replace(
        f'xmlns = "{CAP_1_2_NAMESPACE}"'.encode(),
        f'xmlns = "{namespace}"'.encode() if namespace else b"",
    )
    error = expect_error("CAP_UNSUPPORTED_VERSION", parse_alert, data)
    assert isinstance(error, CapUnsupportedVersion)
    assert error.details["namespace"] == namespace


def test_root_that_is_not_an_alert() -> None:
    expect_error("CAP_INVALID", parse_alert, NWS_FEED.read_bytes(), max_bytes=1 << 20)


# --- hostile and broken input -----------------------------------------------------------------


class FileOpens:
    """Paths opened while ``watching`` (an audit hook cannot be removed, so it is switched)."""

    watching = False
    opened: ClassVar[list[str]] = []

    @classmethod
    def hook(cls, event: str, args: tuple[Any, ...]) -> None:
        if cls.watching and event == "open" and args and isinstance(args[0], str | bytes):
            cls.opened.append(str(args[0]))


sys.addaudithook(FileOpens.hook)


@pytest.fixture
def file_opens() -> Iterator[list[str]]:
    FileOpens.opened = []
    FileOpens.watching = True
    try:
        yield FileOpens.opened
    finally:
        FileOpens.watching = False


def xxe_documents(secret: Path) -> list[bytes]:
    uri = secret.as_uri()
    body = f"""<alert xmlns="{CAP_1_2_NAMESPACE}"><identifier>&xxe;</identifier></alert>"""
    return [
        f'<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY xxe SYSTEM "{uri}">]>{body}'.encode(),
        f'<?xml version="1.0"?><!DOCTYPE alert SYSTEM "{uri}">{body}'.encode(),
        f'<!DOCTYPE alert [<!ENTITY % p SYSTEM "{uri}"> %p;]>{body}'.encode(),
        f'<!DOCTYPE alert SYSTEM "file:///etc/passwd"><alert xmlns="{CAP_1_2_NAMESPACE}"/>'.encode(),
    ]


@pytest.mark.parametrize("parse", [parse_alert, parse_feed, validate_alert])
def test_xxe_is_refused_and_nothing_is_read(
    parse: Callable[[bytes], object], tmp_path: Path, file_opens: list[str]
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-42")
    file_opens.clear()  # writing the secret above is the only open allowed
    for document in xxe_documents(secret):
        error = expect_error("XML_FORBIDDEN", parse, document)
        assert isinstance(error, XmlForbidden)
        assert "TOP-SECRET-42" not in str(error)
        assert "TOP-SECRET-42" not in str(error.details)
    assert not [p for p in file_opens if "secret" in p or "passwd" in p]


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol9;</identifier></alert>"""


@pytest.mark.parametrize("parse", [parse_alert, parse_feed])
def test_billion_laughs_is_refused(parse: Callable[[bytes], object]) -> None:
    error = expect_error("XML_FORBIDDEN", parse, BILLION_LAUGHS)
    assert error.details["refused"] == "DTDForbidden"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not xml at all",
        b'{"identifier": "x"}',
        b"<alert><identifier>x</alert>",
        b"\xff\xfe\x00",
    ],
    ids=["empty", "text", "json", "mismatched", "binary"],
)
def test_not_xml_is_malformed(data: bytes) -> None:
    assert isinstance(expect_error("XML_MALFORMED", parse_alert, data), XmlMalformed)


def test_truncated_sample_is_malformed() -> None:
    data = sample("cap12-spec-appendix-a2.xml")
    expect_error("XML_MALFORMED", parse_alert, data[: len(data) // 2])
    expect_error("XML_MALFORMED", parse_feed, NWS_FEED.read_bytes()[:-10])


def test_oversized_document_is_refused_before_parsing() -> None:
    data = sample("cap12-spec-appendix-a2.xml")
    padded = data + b"<!--" + b" " * DEFAULT_MAX_ALERT_BYTES + b"-->"
    error = expect_error("XML_TOO_LARGE", parse_alert, padded)
    assert isinstance(error, XmlTooLarge)
    assert error.details == {"size": len(padded), "limit": DEFAULT_MAX_ALERT_BYTES}
    # Malformed as well as too large: the size is what is reported, so nothing was parsed.
    expect_error("XML_TOO_LARGE", parse_alert, b"<" * (DEFAULT_MAX_ALERT_BYTES + 1))
    expect_error("XML_TOO_LARGE", parse_alert, BILLION_LAUGHS, max_bytes=100)


def test_size_limit_is_configurable() -> None:
    data = sample("cap12-spec-appendix-a2.xml")
    expect_error("XML_TOO_LARGE", parse_alert, data, max_bytes=len(data) - 1)
    assert parse_alert(data, max_bytes=len(data)).identifier == "KSTO1055887203"
    feed = NWS_FEED.read_bytes()
    expect_error("XML_TOO_LARGE", parse_feed, feed, max_bytes=len(feed) - 1)


def test_xsd_invalid_msg_type() -> None:
    data = sample("cap12-spec-appendix-a2.xml").replace(
        b"<msgType>Alert</msgType>", b"<msgType>Warning</msgType>"
    )
    error = expect_error("CAP_INVALID", parse_alert, data)
    assert isinstance(error, CapInvalid)
    assert error.path == "/alert/msgType"
    assert "Alert" in error.reason
    assert "Cancel" in error.reason
    assert str(error).startswith("/alert/msgType: ")
    expect_error("CAP_INVALID", validate_alert, data)


@pytest.mark.parametrize(
    ("old", "new", "path"),
    [
        (b"<sender>KSTO@NWS.NOAA.GOV</sender>", b"", "/alert"),
        (b"2003-06-17T14:57:00-07:00", b"2003-06-17T21:57:00Z", "/alert/sent"),
        (b"<category>Met</category>", b"<category>Weather</category>", "/alert/info/category"),
        (b"<scope>Public</scope>", b"", "/alert"),
        (b"KSTO1055887203", b"K" * 501, "/alert/identifier"),
        (
            b"<status>Actual</status>\n    <msgType>Alert</msgType>",
            b"<msgType>Alert</msgType>\n    <status>Actual</status>",
            "/alert",
        ),
    ],
    ids=["missing-sender", "zulu-time", "bad-category", "missing-scope", "long-id", "wrong-order"],
)
def test_xsd_invalid_messages(old: bytes, new: bytes, path: str) -> None:
    data = sample("cap12-spec-appendix-a2.xml").replace(old, new)
    assert data != sample("cap12-spec-appendix-a2.xml")
    assert expect_error("CAP_INVALID", parse_alert, data).details["path"] == path


@pytest.mark.parametrize(
    ("polygon", "reason"),
    [
        (b"38.47,-120.14 38.34,-119.95", "at least four"),
        (b"98.47,-120.14 38.34,-119.95 38.52,-119.74 98.47,-120.14", "latitude 98.47"),
        (b"38.47;-120.14 38.34,-119.95 38.52,-119.74 38.47;-120.14", "latitude,longitude"),
    ],
)
def test_bad_polygon(polygon: bytes, reason: str) -> None:
    data = re.sub(
        rb"<polygon>[^<]*</polygon>",
        b"<polygon>" + polygon + b"</polygon>",
        sample("cap12-spec-appendix-a2.xml"),
    )
    error = expect_error("CAP_INVALID", parse_alert, data)
    assert error.details["path"] == "/alert/info[1]/area[1]/polygon[1]"
    assert reason in error.details["reason"]


def test_open_polygon_is_closed_in_geometry_only() -> None:
    raw = "38.47,-120.14 38.34, -119.95 38.52,-119.74 38.62,-119.89"
    data = re.sub(
        rb"<polygon>[^<]*</polygon>",
        f"<polygon>{raw}</polygon>".encode(),
        sample("cap12-spec-appendix-a2.xml"),
    )
    area = parse_alert(data).infos[0].areas[0]
    assert area.polygons == [raw]
    ring = area.geometry[0].coordinates[0]
    assert ring[0] == ring[-1] == (-120.14, 38.47)
    assert ring[1] == (-119.95, 38.34)
    assert len(ring) == 5


def test_circle_with_radius_becomes_a_ring_around_the_centre() -> None:
    data = sample("cap12-spec-appendix-a3.xml").replace(
        b"32.9525,-115.5527 0", b"32.9525,-115.5527 10"
    )
    box = parse_alert(data).infos[0].areas[0].geometry[0].bbox()
    assert box.south == pytest.approx(32.9525 - 10 / 111.32)
    assert box.north == pytest.approx(32.9525 + 10 / 111.32)
    assert box.west < -115.5527 < box.east
    bad = sample("cap12-spec-appendix-a3.xml").replace(b"32.9525,-115.5527 0", b"32.9525 0")
    assert expect_error("CAP_INVALID", parse_alert, bad).details["path"] == (
        "/alert/info[1]/area[1]/circle[1]"
    )


# --- writing records made elsewhere -----------------------------------------------------------


def minimal_alert(**changes: Any) -> AlertCreate:
    info = AlertInfo(
        categories=[CapCategory.GEO],
        event="Landslide risk",
        urgency=CapUrgency.EXPECTED,
        severity=CapSeverity.MODERATE,
        certainty=CapCertainty.POSSIBLE,
        areas=[AlertArea(area_desc="Slope behind block 3")],
    )
    fields: dict[str, Any] = {
        "identifier": "linli-1",
        "sender": "hub@linli.example",
        "sent": datetime(2024, 7, 1, 9, 30, 15, 123456, tzinfo=UTC),
        "status": CapStatus.ACTUAL,
        "msg_type": CapMsgType.ALERT,
        "scope": CapScope.PUBLIC,
        "infos": [info],
    }
    fields.update(changes)
    return AlertCreate(**fields)


def test_written_times_use_whole_seconds_and_minus_zero_for_utc(
    oasis_schema: xmlschema.XMLSchema10,
) -> None:
    written = write_alert(minimal_alert())
    oasis_schema.validate(written)
    assert b"<sent>2024-07-01T09:30:15-00:00</sent>" in written
    assert parse_alert(written).sent == datetime(2024, 7, 1, 9, 30, 15, tzinfo=UTC)


def test_geometry_only_area_is_written_as_a_lat_lon_polygon(
    oasis_schema: xmlschema.XMLSchema10,
) -> None:
    ring = [(116.3, 39.9), (116.4, 39.9), (116.4, 40.0), (116.3, 39.9)]
    shape = GeoPolygon(coordinates=[ring])
    base = minimal_alert()
    base.infos[0].areas = [AlertArea(area_desc="Block 3", geometry=[shape])]
    written = write_alert(base)
    oasis_schema.validate(written)
    assert b"<polygon>39.9,116.3 39.9,116.4 40.0,116.4 39.9,116.3</polygon>" in written
    area = parse_alert(written).infos[0].areas[0]
    assert area.geometry == [shape]


def test_incidents_with_spaces_are_quoted_and_read_back() -> None:
    alert = minimal_alert(
        incidents=["slope 3", "gas-7"], references=["a@b,1,2024-07-01T09:00:00-00:00"]
    )
    written = write_alert(alert)
    assert b'<incidents>"slope 3" gas-7</incidents>' in written
    again = parse_alert(written)
    assert again.incidents == ["slope 3", "gas-7"]
    assert again.references == alert.references


@pytest.mark.parametrize(
    ("changes", "path"),
    [
        ({"sent": datetime(2024, 7, 1, 9, 30)}, "/alert/sent"),
        ({"note": "bell \x07 character"}, "/alert/note"),
        ({"references": ["has space,1,2"]}, "/alert/references"),
    ],
    ids=["naive-time", "control-char", "reference-with-space"],
)
def test_unwritable_alerts_are_refused(changes: dict[str, Any], path: str) -> None:
    error = expect_error("CAP_INVALID", write_alert, minimal_alert(**changes))
    assert error.details["path"] == path


def test_alert_that_breaks_the_xsd_is_refused_on_write() -> None:
    alert = minimal_alert()
    alert.infos[0].categories = []
    error = expect_error("CAP_INVALID", write_alert, alert)
    assert error.details["path"] == "/alert/info"


def test_errors_cross_http_as_linli_errors() -> None:
    for error_type, code in [
        (XmlForbidden, "XML_FORBIDDEN"),
        (XmlMalformed, "XML_MALFORMED"),
        (XmlTooLarge, "XML_TOO_LARGE"),
        (CapInvalid, "CAP_INVALID"),
        (CapUnsupportedVersion, "CAP_UNSUPPORTED_VERSION"),
        (FeedInvalid, "FEED_INVALID"),
    ]:
        assert issubclass(error_type, XmlError)
        assert issubclass(error_type, LinliError)
        assert error_type.code == code
    for error_type in (CapInvalid, CapUnsupportedVersion, FeedInvalid):
        assert issubclass(error_type, CapError)
