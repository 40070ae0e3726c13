"""CAP alerts through the hub: a real feed server, a CAP adapter service, the hub's API and feed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import xmlschema

from adapters.base import HttpFetcher
from adapters.cap import CAP_XSD_PATH, parse_alert, parse_feed, write_alert
from adapters.cap.client import CapSettings
from adapters.cap.service import CapAdapter
from schema.enums import (
    CapCategory,
    CapCertainty,
    CapMsgType,
    CapScope,
    CapSeverity,
    CapStatus,
    CapUrgency,
    OrgKind,
)
from schema.records import AlertCreate, shifted
from tests.adapters.conftest import DocumentServerState
from tests.conftest import CAP_FIXTURES, CAP_SAMPLES, current_cap
from tests.integration.conftest import (
    ALERT_OWNER,
    COMMUNITY,
    DEPARTMENT,
    Federated,
    polls_after_change,
    wait_sources_ok,
)

CAP_SOURCE = "adapter-cap"
ATOM = "http://www.w3.org/2005/Atom"
_NAME_VALUE = "{ valueName value }"
ALERT_FIELDS = (
    "{ id owner identifier sender sent status msgType source scope restriction addresses codes "
    "note references incidents active infos { language categories event responseTypes urgency "
    f"severity certainty audience eventCodes {_NAME_VALUE} effective onset expires senderName "
    f"headline description instruction web contact parameters {_NAME_VALUE} "
    "resources { resourceDesc mimeType size uri derefUri digest } "
    f"areas {{ areaDesc polygons circles geocodes {_NAME_VALUE} altitude ceiling "
    "geometry { type coordinates } } } }"
)
ALERTS = (
    "query($where: AlertFilter) { alerts(where: $where, first: 100) "
    f"{{ edges {{ node {ALERT_FIELDS} }} }} }}"
)


def cap_messages() -> dict[str, bytes]:
    """Every CAP message of the samples (not the NWS index feed), made current, by file name."""
    return {
        path.name: current_cap(path.read_bytes())
        for path in sorted([*CAP_SAMPLES.glob("*.xml"), *CAP_FIXTURES.glob("*.xml")])
        if re.search(rb"<alert\b", path.read_bytes())
    }


def cap_adapter(sources: list[str], http: httpx.AsyncClient) -> CapAdapter:
    settings = CapSettings(sources=sources, interval_s=0.2, timeout_s=30)
    return CapAdapter(settings, HttpFetcher(http, timeout_s=30, max_bytes=settings.max_feed_bytes))


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _snake_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {_snake(k): _snake_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snake_keys(v) for v in value]
    return value


def as_record(node: dict[str, Any]) -> AlertCreate:
    """What the hub answered for one alert, as the record a CAP message maps to.

    GraphQL spells enum values by name (``ACTUAL``); the record holds CAP's own (``Actual``).
    """
    values = _snake_keys(node)
    values["status"] = CapStatus[values["status"]]
    values["msg_type"] = CapMsgType[values["msg_type"]]
    values["scope"] = CapScope[values["scope"]]
    for info in values["infos"]:
        info["categories"] = [CapCategory[c] for c in info["categories"]]
        info["urgency"] = CapUrgency[info["urgency"]]
        info["severity"] = CapSeverity[info["severity"]]
        info["certainty"] = CapCertainty[info["certainty"]]
    return AlertCreate.model_validate({name: values[name] for name in AlertCreate.model_fields})


def reference(alert: AlertCreate) -> str:
    return f"{alert.sender},{alert.identifier},{alert.sent.isoformat()}"


async def by_identifier(client: Any, *, active_only: bool) -> dict[str, dict[str, Any]]:
    body = await client.post(ALERTS, {"where": {"activeOnly": active_only}})
    assert "errors" not in body, body["errors"]
    reports = {r["source"]: r["status"] for r in body["extensions"]["sources"]}
    assert reports == {CAP_SOURCE: "ok"}
    return {e["node"]["identifier"]: e["node"] for e in body["data"]["alerts"]["edges"]}


async def feed_identifiers(public: httpx.AsyncClient, hub_url: str) -> set[str]:
    response = await public.get("/alerts.atom")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
    links = {entry.link for entry in parse_feed(response.content)}
    prefix = f"{hub_url}/alerts/"
    assert all(link is not None and link.startswith(prefix) for link in links), links
    return {str(link).removeprefix(prefix).removesuffix(".xml") for link in links}


async def test_every_sample_reaches_the_hub_api_and_its_public_cap_feed(
    upstream: tuple[DocumentServerState, str], federated: Any
) -> None:
    # upstream before federated: the feed server outlives the adapter service that polls it.
    state, base = upstream
    messages = cap_messages()
    assert len(messages) == 4  # the four Appendix A messages of the CAP 1.2 specification
    nws = (CAP_FIXTURES / "nws-atom-feed-cap11.xml").read_bytes()
    for name, body in messages.items():
        state.put(f"/cap/{name}", body)
    state.put("/nws.atom", nws, "application/atom+xml")
    district: Federated = await federated(CAP_SOURCE)
    sources = [f"{base}/cap/{name}" for name in messages] + [f"{base}/nws.atom"]
    service = await district.start_adapter(
        CAP_SOURCE, cap_adapter(sources, httpx.AsyncClient(timeout=30.0)), org_code=ALERT_OWNER
    )
    department = await district.reader(
        org=DEPARTMENT, kind=OrgKind.DEPARTMENT, scopes="alerts:read"
    )
    await wait_sources_ok(department, CAP_SOURCE)
    # The NWS feed is the last source read: its second fetch means a whole poll was stored.
    await polls_after_change(state, "/nws.atom", polls=2)

    expected = {parse_alert(body).identifier: parse_alert(body) for body in messages.values()}
    seen = await by_identifier(department, active_only=True)
    # The NWS index links every entry to another host: its alerts are not fetched.
    assert set(seen) == set(expected)
    for identifier, node in seen.items():
        assert node["owner"] == CAP_SOURCE  # global ids name the source (schema/ids.py)
        assert node["active"] is True
        assert as_record(node) == expected[identifier]

    # CAP writes "lat,lon"; GeoJSON is [lon, lat].
    storm = seen["KSTO1055887203"]["infos"][0]["areas"][0]
    assert storm["polygons"] == [
        "38.47,-120.14 38.34,-119.95 38.52,-119.74 38.62,-119.89 38.47,-120.14"
    ]
    assert storm["geometry"] == [
        {
            "type": "Polygon",
            "coordinates": [
                [[-120.14, 38.47], [-119.95, 38.34], [-119.74, 38.52], [-119.89, 38.62],
                 [-120.14, 38.47]]
            ],
        }
    ]  # fmt: skip
    # The earthquake's circle of radius 0 is a point: a ring collapsed on its centre.
    quake = seen["TRI13970876.2"]["infos"][0]["areas"][0]["geometry"]
    assert len(quake) == 1
    assert {tuple(p) for p in quake[0]["coordinates"][0]} == {(-115.5527, 32.9525)}
    assert seen["43b080713727"]["infos"][0]["areas"][0]["geometry"] == []  # areaDesc only

    # The public feed (no token) lists the same alerts; each is valid CAP 1.2 and reads back
    # as exactly what the hub answered.
    schema = xmlschema.XMLSchema10(str(CAP_XSD_PATH))
    public = await district.public()
    try:
        assert await feed_identifiers(public, district.hub.url) == set(expected)
        for identifier, node in seen.items():
            response = await public.get(f"/alerts/{identifier}.xml")
            assert response.status_code == 200, response.text
            assert response.headers["content-type"] == "application/cap+xml; charset=utf-8"
            schema.validate(response.content)
            assert parse_alert(response.content) == as_record(node)
        # The hub and the adapter service refuse an unknown alert alike.
        for url in (district.hub.url, service.url):
            missing = await public.get(f"{url}/alerts/NO-SUCH-ALERT.xml")
            assert missing.status_code == 404
            assert missing.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    finally:
        await public.aclose()

    # A community without alerts:read is refused by the hub before any source is asked.
    community = await district.reader(
        org=COMMUNITY, kind=OrgKind.COMMUNITY, scopes="resources:read"
    )
    assert await community.error_code(ALERTS, {"where": {"activeOnly": True}}) == "FORBIDDEN"


async def test_update_and_cancel_change_what_the_hub_reports_active(
    upstream: tuple[DocumentServerState, str], federated: Any
) -> None:
    state, base = upstream
    original = parse_alert(current_cap((CAP_SAMPLES / "cap12-spec-appendix-a2.xml").read_bytes()))
    update = original.model_copy(
        update={
            "identifier": "KSTO1055887203-U1",
            "sent": original.sent + timedelta(minutes=20),
            "msg_type": CapMsgType.UPDATE,
            "references": [reference(original)],
        }
    )
    cancel = original.model_copy(
        update={
            "identifier": "KSTO1055887203-C1",
            "sent": original.sent + timedelta(minutes=40),
            "msg_type": CapMsgType.CANCEL,
            "references": [reference(update)],
        }
    )
    state.put("/current.xml", write_alert(original))
    district: Federated = await federated(CAP_SOURCE)
    await district.start_adapter(
        CAP_SOURCE,
        cap_adapter([f"{base}/current.xml"], httpx.AsyncClient(timeout=30.0)),
        org_code=ALERT_OWNER,
    )
    department = await district.reader(
        org=DEPARTMENT, kind=OrgKind.DEPARTMENT, scopes="alerts:read"
    )
    await wait_sources_ok(department, CAP_SOURCE)
    public = await district.public()
    try:
        await polls_after_change(state, "/current.xml")
        assert set(await by_identifier(department, active_only=True)) == {"KSTO1055887203"}
        assert await feed_identifiers(public, district.hub.url) == {"KSTO1055887203"}

        state.put("/current.xml", write_alert(update))
        await polls_after_change(state, "/current.xml")
        assert set(await by_identifier(department, active_only=True)) == {"KSTO1055887203-U1"}
        everything = await by_identifier(department, active_only=False)
        assert {i: n["active"] for i, n in everything.items()} == {
            "KSTO1055887203": False,
            "KSTO1055887203-U1": True,
        }
        assert await feed_identifiers(public, district.hub.url) == {"KSTO1055887203-U1"}
        superseded = await public.get("/alerts/KSTO1055887203.xml")
        assert superseded.status_code == 404
        served = await public.get("/alerts/KSTO1055887203-U1.xml")
        assert parse_alert(served.content).references == [reference(original)]

        state.put("/current.xml", write_alert(cancel))
        await polls_after_change(state, "/current.xml")
        assert await by_identifier(department, active_only=True) == {}
        everything = await by_identifier(department, active_only=False)
        assert {i: n["active"] for i, n in everything.items()} == {
            "KSTO1055887203": False,
            "KSTO1055887203-U1": False,
            "KSTO1055887203-C1": False,
        }
        assert await feed_identifiers(public, district.hub.url) == set()
        assert (await public.get("/alerts/KSTO1055887203-U1.xml")).status_code == 404
    finally:
        await public.aclose()


async def test_the_hub_finds_alerts_by_area_and_leaves_expired_ones_out_of_its_feed(
    upstream: tuple[DocumentServerState, str], federated: Any
) -> None:
    state, base = upstream
    raw = (CAP_SAMPLES / "cap12-spec-appendix-a2.xml").read_bytes()
    storm = parse_alert(current_cap(raw))
    old = parse_alert(raw)
    expired = shifted(old, datetime.now(UTC) - timedelta(hours=3) - old.sent).model_copy(
        update={"identifier": "EXPIRED-1"}
    )
    state.put("/storm.xml", write_alert(storm))
    state.put("/expired.xml", write_alert(expired))
    district: Federated = await federated(CAP_SOURCE)
    sources = [f"{base}/storm.xml", f"{base}/expired.xml"]
    await district.start_adapter(
        CAP_SOURCE, cap_adapter(sources, httpx.AsyncClient(timeout=30.0)), org_code=ALERT_OWNER
    )
    department = await district.reader(
        org=DEPARTMENT, kind=OrgKind.DEPARTMENT, scopes="alerts:read"
    )
    await wait_sources_ok(department, CAP_SOURCE)
    await polls_after_change(state, "/expired.xml", polls=2)

    everything = await by_identifier(department, active_only=False)
    assert {i: n["active"] for i, n in everything.items()} == {
        "KSTO1055887203": True,
        "EXPIRED-1": False,
    }
    assert set(await by_identifier(department, active_only=True)) == {"KSTO1055887203"}
    # A point at one corner of the storm's polygon finds both; one 20 km away, neither.
    for near, expected in (
        ({"lat": 38.47, "lon": -120.14, "radiusKm": 0.05}, {"KSTO1055887203", "EXPIRED-1"}),
        ({"lat": 38.47 + 20 / 111.2, "lon": -120.14, "radiusKm": 5}, set()),
    ):
        body = await department.post(ALERTS, {"where": {"near": near}})
        assert "errors" not in body, body["errors"]
        assert {e["node"]["identifier"] for e in body["data"]["alerts"]["edges"]} == expected
    public = await district.public()
    try:
        assert await feed_identifiers(public, district.hub.url) == {"KSTO1055887203"}
        assert (await public.get("/alerts/EXPIRED-1.xml")).status_code == 404
    finally:
        await public.aclose()
