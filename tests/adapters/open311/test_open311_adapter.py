"""Open311 GeoReport v2 against the fake server over real HTTP: reading, faults, pushing flags."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from adapters.base import AdapterHealth, PollLoop
from adapters.open311.client import Open311Client, Open311Settings
from adapters.open311.service import PENDING_PREFIX, Open311Adapter, Open311FlagSink
from schema.enums import SeverityLevel
from schema.geo import GeoPoint
from schema.records import RiskFlagCreate
from tests.adapters.conftest import start_adapter
from tests.conftest import DatabaseUnderTest, ServerThread
from tests.fakes.open311 import FakeOpen311, fake_open311_app

NOW = datetime.now(UTC).replace(microsecond=0)

INCIDENTS = """{ incidents(first: 50) { edges { node {
  title status description address location { coordinates } reportedAt } } } }"""


@pytest.fixture
def fake(serve: Callable[..., ServerThread]) -> tuple[FakeOpen311, str]:
    state = FakeOpen311(token_delay=1)
    state.add_request(
        service_request_id="638344",
        status="open",
        service_code="001",
        service_name="道路塌陷 Road collapse",
        description="路面塌陷约两米",
        address="朝阳路 12 号",
        lat=39.9219,
        long=116.4436,
        requested_datetime=(NOW - timedelta(days=2)).isoformat(),
        updated_datetime=(NOW - timedelta(days=1)).isoformat(),
    )
    state.add_request(
        service_request_id="638349",
        status="closed",
        status_notes="已修复 Fixed",
        service_code="002",
        service_name="燃气异味 Gas smell",
        description="楼道有燃气味",
        address="幸福小区 3 号楼",
        lat=39.93,
        long=116.45,
        requested_datetime=(NOW - timedelta(days=10)).isoformat(),
        updated_datetime=(NOW - timedelta(days=9)).isoformat(),
    )
    server = serve(fake_open311_app(state))
    return state, server.url


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30.0) as client:
        yield client


def client(http: httpx.AsyncClient, url: str, **settings: object) -> Open311Client:
    values: dict[str, object] = {
        "endpoint": url,
        "api_key": "fake-open311-key",
        "window_days": 7,
        "flag_services": {"gas_leak": "002", "slope_instability": "001"},
        "token_wait_s": 0,
        **settings,
    }
    return Open311Client(http, Open311Settings(**values))  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_service_requests_become_incidents(
    adapter_db: DatabaseUnderTest,
    fake: tuple[FakeOpen311, str],
    http: httpx.AsyncClient,
    fmt: str,
) -> None:
    state, url = fake
    adapter = Open311Adapter(client(http, url).settings.model_copy(update={"format": fmt}),
                             client(http, url, format=fmt))  # fmt: skip
    service = await start_adapter(adapter_db.url, adapter)
    try:
        report = await adapter.poll(service.db)
        assert (report.created, report.problems) == (2, ())
        # Windows of 7 days over the default 30: five GETs with date ranges.
        gets = [c for c in state.calls if c.startswith(f"GET requests.{fmt}?")]
        assert len(gets) == 5
        assert all("start_date=" in c and "end_date=" in c for c in gets)
        data = await service.department.data(INCIDENTS)
        nodes = {n["node"]["title"]: n["node"] for n in data["incidents"]["edges"]}
        road = nodes["道路塌陷 Road collapse"]
        assert road["status"] == "ACTIVE"
        assert road["address"] == "朝阳路 12 号"
        assert road["location"]["coordinates"] == [116.4436, 39.9219]
        gas = nodes["燃气异味 Gas smell"]
        assert gas["status"] == "CLOSED"
        assert gas["description"] == "楼道有燃气味\n\n已修复 Fixed"
        # The request closes upstream: the next poll updates the same incident, no duplicate.
        state.set_status("638344", "closed", "已回填", NOW)
        again = await adapter.poll(service.db)
        assert (again.created, again.updated) == (0, 1)
        data = await service.department.data(INCIDENTS)
        statuses = [e["node"]["status"] for e in data["incidents"]["edges"]]
        assert sorted(statuses) == ["CLOSED", "CLOSED"]
    finally:
        await service.close()
        # Both formats share the module's database; start the next one clean.
        async with service.db.transaction() as session:
            from sqlalchemy import delete

            from adapters.store import SPECS, external_keys

            await session.execute(delete(external_keys))
            await session.execute(delete(SPECS["Incident"].table))
        await service.db.dispose()


async def test_faults_are_reported_and_the_adapter_recovers(
    adapter_db: DatabaseUnderTest, fake: tuple[FakeOpen311, str], http: httpx.AsyncClient
) -> None:
    state, url = fake
    adapter = Open311Adapter(client(http, url).settings, client(http, url))
    service = await start_adapter(adapter_db.url, adapter)
    loop = PollLoop("open311", lambda: adapter.poll(service.db), interval_s=60, timeout_s=30)
    try:
        state.fault = "500"
        assert await loop.poll_once() is None
        assert loop.status.last_error is not None
        assert loop.status.last_error["code"] == "UPSTREAM_UNAVAILABLE"
        assert loop.status.health is AdapterHealth.DOWN  # never worked yet

        state.fault = None
        report = await loop.poll_once()
        assert report is not None
        assert report.created == 2
        assert loop.status.health is AdapterHealth.OK

        state.fault = "html"
        assert await loop.poll_once() is None
        assert loop.status.last_error is not None
        assert loop.status.last_error["code"] == "UPSTREAM_BAD_RESPONSE"
        assert loop.status.health is AdapterHealth.DEGRADED  # one failure after success

        state.fault = "bad_date"
        report = await loop.poll_once()
        assert report is not None
        assert {(p.where, p.code) for p in report.problems} == {
            ("service_request 638344", "UPSTREAM_BAD_DATA"),
            ("service_request 638349", "UPSTREAM_BAD_DATA"),
        }
        assert (
            "updated_datetime '28/11/2026 8am' is not a W3C datetime" in report.problems[0].reason
        )
        assert report.created == report.updated == 0
        assert loop.status.health is AdapterHealth.DEGRADED

        state.fault = None
        report = await loop.poll_once()
        assert report is not None
        assert report.problems == ()
        assert loop.status.health is AdapterHealth.OK
        data = await service.department.data(INCIDENTS)
        assert len(data["incidents"]["edges"]) == 2  # nothing duplicated by the faults
    finally:
        await service.close()


def flag(category: str = "gas_leak") -> RiskFlagCreate:
    return RiskFlagCreate(
        category=category,
        description="3 号楼燃气味浓",
        location=GeoPoint.at(116.45, 39.93),
        address="幸福小区 3 号楼",
        estimated_severity=SeverityLevel.III,
    )


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_push_with_an_immediate_id_and_read_status_back(
    fake: tuple[FakeOpen311, str], http: httpx.AsyncClient, fmt: str
) -> None:
    state, url = fake
    sink = Open311FlagSink(client(http, url, format=fmt))
    external = await sink.push("RiskFlag:110105001001:abc", flag())
    assert external in state.requests
    created = state.requests[external]
    assert created["service_code"] == "002"
    assert (created["lat"], created["long"]) == (39.93, 116.45)
    assert created["description"].endswith("[Linli RiskFlag:110105001001:abc]")

    assert await sink.status_changes([external], NOW + timedelta(hours=1)) == []
    closed_at = NOW + timedelta(hours=2)
    state.set_status(external, "closed", "已处置", closed_at)
    changes = await sink.status_changes([external], NOW + timedelta(hours=1))
    assert [(c.external_id, c.status, c.at, c.note) for c in changes] == [
        (external, "resolved", closed_at, "已处置")
    ]


async def test_push_through_the_token_flow(
    fake: tuple[FakeOpen311, str], http: httpx.AsyncClient
) -> None:
    state, url = fake
    state.token_mode = True
    state.token_delay = 1  # the first read of the token has no id yet
    sink = Open311FlagSink(client(http, url))
    external = await sink.push("RiskFlag:110105001001:t1", flag("slope_instability"))
    assert external in state.requests
    assert state.calls.count("GET tokens/tok-1.json") == 2

    # A server slower than our patience: the id is kept as a pending token, resolved later.
    state.token_delay = 10
    pending = await sink.push("RiskFlag:110105001001:t2", flag())
    assert pending == f"{PENDING_PREFIX}tok-2"
    state.token_delay = 0
    changes = await sink.status_changes([pending], None)
    assert [(c.external_id, c.status) for c in changes] == [(state.tokens["tok-2"], "acknowledged")]


async def test_push_refusals_carry_the_servers_errors(
    fake: tuple[FakeOpen311, str], http: httpx.AsyncClient
) -> None:
    from adapters.errors import InvalidMapping, UpstreamRefused

    state, url = fake
    wrong_key = Open311FlagSink(client(http, url, api_key="wrong"))
    with pytest.raises(UpstreamRefused) as refused:
        await wrong_key.push("RiskFlag:110105001001:x", flag())
    assert refused.value.details["status"] == 403
    assert refused.value.details["errors"] == [
        {"code": 403, "description": "api_key is missing or not valid"}
    ]
    with pytest.raises(InvalidMapping):
        await Open311FlagSink(client(http, url)).push("RiskFlag:1:y", flag("power_outage"))
    assert not [c for c in state.calls if c.startswith("POST")][1:]  # only the refused POST
