"""The CAP adapter end to end: a real feed server, the adapter service, GraphQL and the ATOM feed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from adapters.base import HttpFetcher, PollReport
from adapters.cap import parse_alert, parse_feed, validate_alert, write_alert
from adapters.cap.client import CapSettings
from adapters.cap.service import CapAdapter
from schema.enums import CapMsgType, CapScope
from schema.records import AlertCreate, shifted
from tests.adapters.conftest import (
    DocumentServerState,
    RunningAdapter,
    start_adapter,
)
from tests.conftest import CAP_SAMPLES, DatabaseUnderTest, current_cap

ATOM = "http://www.w3.org/2005/Atom"

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&xxe;</identifier></alert>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>&lol3;</identifier></alert>"""


def sample(name: str) -> bytes:
    """A CAP 1.2 specification sample, made current."""
    return current_cap((CAP_SAMPLES / f"cap12-spec-appendix-{name}.xml").read_bytes())


def derived(base: bytes, **changes: object) -> AlertCreate:
    return parse_alert(base).model_copy(update=changes)


def reference(alert: AlertCreate) -> str:
    return f"{alert.sender},{alert.identifier},{alert.sent.isoformat()}"


def atom_index(base_url: str, paths: list[str]) -> bytes:
    entries = "".join(
        f"<entry><id>urn:test:{p}</id><title>{p}</title><updated>2003-06-17T14:57:00-07:00</updated>"
        f'<link rel="alternate" type="application/cap+xml" href="{base_url}{p}"/></entry>'
        for p in paths
    )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><feed xmlns="{ATOM}"><id>urn:test:feed</id>'
        f"<title>test</title><updated>2003-06-17T14:57:00-07:00</updated>{entries}</feed>"
    ).encode()


def cap_adapter(feed_url: str, http: httpx.AsyncClient, **settings: object) -> CapAdapter:
    config = CapSettings(sources=[feed_url], max_alert_bytes=20_000, **settings)  # type: ignore[arg-type]
    return CapAdapter(config, HttpFetcher(http, timeout_s=30, max_bytes=config.max_feed_bytes))


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30.0) as client:
        yield client


ACTIVE = """query($active: Boolean!) {
  alerts(where: {activeOnly: $active}, first: 100) { edges { node { id identifier msgType active scope } } }
}"""


async def identifiers(service: RunningAdapter, *, active: bool) -> dict[str, bool | None]:
    data = await service.department.data(ACTIVE, {"active": active})
    return {e["node"]["identifier"]: e["node"]["active"] for e in data["alerts"]["edges"]}


async def test_feed_polling_update_cancel_and_bad_documents(
    adapter_db: DatabaseUnderTest,
    upstream: tuple[DocumentServerState, str],
    http: httpx.AsyncClient,
) -> None:
    state, base = upstream
    for name in ("a1", "a2", "a3", "a4"):
        state.put(f"/cap/{name}.xml", sample(name))
    a2 = parse_alert(sample("a2"))
    cancel_unknown = derived(
        sample("a1"),
        identifier="CANCEL-OF-NOTHING",
        msg_type=CapMsgType.CANCEL,
        references=["nobody@example.org,NEVER-SEEN,2003-04-02T14:39:01-05:00"],
    )
    state.put("/cap/cancel-unknown.xml", write_alert(cancel_unknown))
    state.put("/cap/xxe.xml", XXE)
    state.put("/cap/bomb.xml", BILLION_LAUGHS)
    state.put("/cap/invalid.xml", sample("a2").replace(b"<status>Actual</status>", b""))
    state.put("/cap/notxml.xml", b'{"this": "is json"}', "application/json")
    state.put("/cap/truncated.xml", sample("a1")[:700])
    padded = derived(sample("a2"), identifier="HUGE", note="x" * 30_000)
    state.put("/cap/huge.xml", write_alert(padded))
    paths = [f"/cap/{n}.xml" for n in ("a1", "a2", "xxe", "a3", "bomb", "invalid", "notxml")]
    paths += ["/cap/truncated.xml", "/cap/huge.xml", "/cap/a4.xml", "/cap/cancel-unknown.xml"]
    state.put("/feed.atom", atom_index(base, paths), "application/atom+xml")

    adapter = cap_adapter(f"{base}/feed.atom", http)
    service = await start_adapter(adapter_db.url, adapter, public_url="http://alerts.test")
    try:
        first = await adapter.poll(service.db)
        assert first.created == 5
        codes = {(p.where.rsplit("/", 1)[-1], p.code) for p in first.problems}
        assert codes == {
            ("xxe.xml", "XML_FORBIDDEN"),
            ("bomb.xml", "XML_FORBIDDEN"),
            ("invalid.xml", "CAP_INVALID"),
            ("notxml.xml", "XML_MALFORMED"),
            ("truncated.xml", "XML_MALFORMED"),
            ("huge.xml", "UPSTREAM_TOO_LARGE"),
            ("TRI13970876.2", "CAP_REFERENCE_UNKNOWN"),
            ("CANCEL-OF-NOTHING", "CAP_REFERENCE_UNKNOWN"),
        }
        invalid = next(p for p in first.problems if p.where.endswith("invalid.xml"))
        assert "status" in invalid.reason

        # Nothing changed upstream: the feed answers 304 and nothing is stored or fetched again.
        before = len(state.requests)
        second = await adapter.poll(service.db)
        assert second == PollReport(not_modified=True)
        assert state.requests[before:] == [("/feed.atom", state.requests[before][1], 304)]
        assert state.requests[before][1] is not None  # If-None-Match was sent

        expected_active = {"43b080713727", "KSTO1055887203", "TRI13970876.2", "KAR0-0306112239-SW"}
        assert set(await identifiers(service, active=True)) == expected_active
        everything = await identifiers(service, active=False)
        assert everything["CANCEL-OF-NOTHING"] is False  # kept, but a Cancel is never active

        # An Update supersedes the thunderstorm warning; then a Cancel ends the Update.
        update = derived(
            sample("a2"),
            identifier="KSTO1055887203-U1",
            sent=a2.sent + timedelta(minutes=20),
            msg_type=CapMsgType.UPDATE,
            references=[reference(a2)],
        )
        state.put("/cap/update.xml", write_alert(update))
        state.put("/feed.atom", atom_index(base, [*paths, "/cap/update.xml"]))
        third = await adapter.poll(service.db)
        assert (third.created, third.unchanged) == (1, 0)
        active = await identifiers(service, active=True)
        assert set(active) == expected_active - {"KSTO1055887203"} | {"KSTO1055887203-U1"}
        assert (await identifiers(service, active=False))["KSTO1055887203"] is False

        cancel = derived(
            sample("a2"),
            identifier="KSTO1055887203-C1",
            sent=a2.sent + timedelta(minutes=40),
            msg_type=CapMsgType.CANCEL,
            references=[reference(update)],
        )
        state.put("/cap/cancel.xml", write_alert(cancel))
        state.put("/feed.atom", atom_index(base, [*paths, "/cap/update.xml", "/cap/cancel.xml"]))
        fourth = await adapter.poll(service.db)
        assert fourth.created == 1
        assert not [p for p in fourth.problems if p.code == "CAP_REFERENCE_UNKNOWN"]
        active = await identifiers(service, active=True)
        assert set(active) == expected_active - {"KSTO1055887203"}

        # The public ATOM feed lists exactly the active public alerts; each link is valid CAP.
        async with httpx.AsyncClient(base_url=service.url, timeout=30.0) as public:
            response = await public.get("/alerts.atom")
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
            entries = parse_feed(response.content)
            assert {e.link for e in entries} == {f"http://alerts.test/alerts/{i}" for i in active}
            for identifier in active:
                xml = await public.get(f"/alerts/{identifier}.xml")
                assert xml.status_code == 200
                assert xml.headers["content-type"] == "application/cap+xml; charset=utf-8"
                assert validate_alert(xml.content) == "1.2"
                assert parse_alert(xml.content).identifier == identifier
            assert (await public.get("/alerts/NO-SUCH-ALERT.xml")).status_code == 404
    finally:
        await service.close()


async def test_restricted_alerts_stay_out_of_the_public_feed(
    adapter_db: DatabaseUnderTest,
    upstream: tuple[DocumentServerState, str],
    http: httpx.AsyncClient,
) -> None:
    state, base = upstream
    restricted = derived(
        sample("a2"), identifier="RESTRICTED-1", scope=CapScope.RESTRICTED, restriction="staff"
    )
    state.put("/restricted.xml", write_alert(restricted))
    adapter = cap_adapter(f"{base}/restricted.xml", http)
    service = await start_adapter(adapter_db.url, adapter)
    try:
        report = await adapter.poll(service.db)
        assert report.created == 1
        assert report.problems == ()
        # The owning department sees it; a community (relation public) does not.
        assert "RESTRICTED-1" in await identifiers(service, active=True)
        community = await service.community.data(ACTIVE, {"active": True})
        shown = {e["node"]["identifier"] for e in community["alerts"]["edges"]}
        assert "RESTRICTED-1" not in shown
        async with httpx.AsyncClient(base_url=service.url, timeout=30.0) as public:
            feed = parse_feed((await public.get("/alerts.atom")).content)
            assert all("RESTRICTED-1" not in (e.link or "") for e in feed)
            assert (await public.get("/alerts/RESTRICTED-1.xml")).status_code == 404
    finally:
        await service.close()


async def test_directory_source_and_out_of_order_cancel(
    adapter_db: DatabaseUnderTest, tmp_path: Path, http: httpx.AsyncClient
) -> None:
    original = derived(sample("a4"), identifier="DIR-ALERT-1")
    cancel = derived(
        sample("a4"),
        identifier="DIR-CANCEL-1",
        sent=original.sent + timedelta(hours=1),
        msg_type=CapMsgType.CANCEL,
        references=[reference(original)],
    )
    # The Cancel arrives first; the alert it cancels arrives later and is inactive at once.
    (tmp_path / "b-cancel.xml").write_bytes(write_alert(cancel))
    adapter = CapAdapter(
        CapSettings(sources=[str(tmp_path)]),
        HttpFetcher(http, timeout_s=30, max_bytes=1 << 20),
    )
    service = await start_adapter(adapter_db.url, adapter)
    try:
        first = await adapter.poll(service.db)
        assert first.created == 1
        assert [p.code for p in first.problems] == ["CAP_REFERENCE_UNKNOWN"]
        (tmp_path / "a-alert.xml").write_bytes(write_alert(original))
        (tmp_path / "c-broken.xml").write_bytes(b"<alert")
        second = await adapter.poll(service.db)
        assert second.created == 1  # the unchanged Cancel file is not read again
        assert [(Path(p.where).name, p.code) for p in second.problems] == [
            ("c-broken.xml", "XML_MALFORMED")
        ]
        everything = await identifiers(service, active=False)
        assert everything["DIR-ALERT-1"] is False
        assert "DIR-ALERT-1" not in await identifiers(service, active=True)
    finally:
        await service.close()


AREAS = """query($where: AlertFilter) {
  alerts(where: $where, first: 100) { edges { node { identifier active } } }
}"""


async def test_alerts_are_found_by_their_areas_and_expire(
    adapter_db: DatabaseUnderTest, tmp_path: Path, http: httpx.AsyncClient
) -> None:
    # The module's tests share one database: these alerts have identifiers of their own.
    storm = derived(sample("a2"), identifier="AREA-STORM")  # a polygon; expires after 63 min
    raw = parse_alert((CAP_SAMPLES / "cap12-spec-appendix-a2.xml").read_bytes())
    expired = shifted(raw, datetime.now(UTC) - timedelta(hours=3) - raw.sent).model_copy(
        update={"identifier": "AREA-EXPIRED"}
    )
    quake = derived(sample("a3"), identifier="AREA-QUAKE", references=[])  # radius 0
    advisory = derived(sample("a1"), identifier="AREA-ADVISORY")  # areaDesc only
    for alert in (storm, expired, quake, advisory):
        (tmp_path / f"{alert.identifier}.xml").write_bytes(write_alert(alert))
    adapter = CapAdapter(
        CapSettings(sources=[str(tmp_path)]), HttpFetcher(http, timeout_s=30, max_bytes=1 << 20)
    )
    service = await start_adapter(adapter_db.url, adapter, public_url="http://alerts.test")

    async def found(**where: object) -> dict[str, bool]:
        data = await service.department.data(AREAS, {"where": where})
        edges = data["alerts"]["edges"]
        return {
            e["node"]["identifier"]: e["node"]["active"]
            for e in edges
            if e["node"]["identifier"].startswith("AREA-")
        }

    try:
        assert (await adapter.poll(service.db)).created == 4
        everything = await found()
        assert everything == {
            "AREA-STORM": True, "AREA-EXPIRED": False, "AREA-QUAKE": True,
            "AREA-ADVISORY": True,
        }  # fmt: skip
        assert "AREA-EXPIRED" not in await found(activeOnly=True)
        # A box around one corner of the storm's polygon, and a circle at that corner.
        corner = {"west": -120.141, "south": 38.469, "east": -120.139, "north": 38.471}
        assert await found(bbox=corner) == {"AREA-STORM": True, "AREA-EXPIRED": False}
        assert await found(bbox=corner, activeOnly=True) == {"AREA-STORM": True}
        near_corner = {"lat": 38.47, "lon": -120.14, "radiusKm": 0.1}
        assert set(await found(near=near_corner)) == {"AREA-STORM", "AREA-EXPIRED"}
        # Inside the polygon's bounding box but outside the polygon: nothing.
        outside = {"west": -120.14, "south": 38.58, "east": -120.05, "north": 38.62}
        assert await found(bbox=outside) == {}
        # 2 km north of the epicentre: within 3 km, not within 1 km.
        north = {"lat": 32.9525 + 2 / 111.2, "lon": -115.5527}
        assert await found(near={**north, "radiusKm": 3}) == {"AREA-QUAKE": True}
        assert await found(near={**north, "radiusKm": 1}) == {}
        # The public feed lists active alerts only: the expired one is left out.
        async with httpx.AsyncClient(base_url=service.url, timeout=30.0) as public:
            entries = parse_feed((await public.get("/alerts.atom")).content)
        links = {e.link for e in entries}
        assert "http://alerts.test/alerts/AREA-STORM" in links
        assert "http://alerts.test/alerts/AREA-EXPIRED" not in links
    finally:
        await service.close()


async def test_a_source_that_is_down_fails_the_poll_and_recovers(
    adapter_db: DatabaseUnderTest,
    upstream: tuple[DocumentServerState, str],
    http: httpx.AsyncClient,
) -> None:
    from adapters.base import AdapterHealth, PollLoop

    state, base = upstream
    state.put("/one.xml", write_alert(derived(sample("a1"), identifier="RECOVERED-1")))
    adapter = cap_adapter(f"{base}/one.xml", http)
    service = await start_adapter(adapter_db.url, adapter)
    loop = PollLoop("cap", lambda: adapter.poll(service.db), interval_s=60, timeout_s=30)
    try:
        state.fail_with = 503
        assert await loop.poll_once() is None
        assert loop.status.health is AdapterHealth.DOWN
        assert loop.status.last_error is not None
        assert loop.status.last_error["code"] == "UPSTREAM_UNAVAILABLE"
        state.fail_with = None
        report = await loop.poll_once()
        assert report is not None
        assert report.created == 1
        assert loop.status.health is AdapterHealth.OK
        assert loop.status.consecutive_failures == 0
    finally:
        await service.close()
