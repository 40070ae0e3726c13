"""A sensor's time series over real servers (SQLite and PostgreSQL): windowed aggregates of
its readings over a range, at the node and through the hub, paged by cursor; windows built
from stored aggregates where readings were downsampled; a neighbour whom the policy shows
the status only gets the answer of a sensor without readings; bad ranges get stable codes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from node.tables import SENSORS
from schema.enums import OrgKind
from schema.runtime.db import Database
from tests.conftest import GraphQLClient
from tests.hub.flags.conftest import DEPT_DEFAULT
from tests.integration.conftest import wait_sources_ok
from tests.node.flags.conftest import COMMUNITY
from tests.node.sensors.conftest import (
    NEIGHBOUR,
    T0,
    SensorRig,
    at,
    local,
    rig,
    sensors,
    water_level,
)

__all__ = ["rig", "sensors"]  # the fixtures

SERIES = """query ($s: ID!, $from: DateTime!, $to: DateTime!, $w: Int!, $first: Int,
  $after: String) {
  sensorSeries(sensor: $s, from: $from, to: $to, windowS: $w, first: $first, after: $after) {
    edges { cursor node { start count min mean max downsampled } }
    pageInfo { hasNextPage endCursor } } }"""


def _args(sensor: str, start: datetime, end: datetime, window_s: int, **more: Any) -> dict:
    return {"s": sensor, "from": start.isoformat(), "to": end.isoformat(), "w": window_s, **more}


async def _all_pages(
    client: GraphQLClient, args: dict[str, Any], first: int
) -> tuple[list[dict[str, Any]], list[bool]]:
    """Every window, following the cursors; and each page's hasNextPage."""
    windows: list[dict[str, Any]] = []
    more: list[bool] = []
    after = None
    while True:
        page = (await client.data(SERIES, {**args, "first": first, "after": after}))["sensorSeries"]
        windows += [edge["node"] for edge in page["edges"]]
        more.append(page["pageInfo"]["hasNextPage"])
        if not page["pageInfo"]["hasNextPage"]:
            return windows, more
        after = page["pageInfo"]["endCursor"]
        assert after == page["edges"][-1]["cursor"]


def _expected(readings: list[tuple[float, float]], window_s: float) -> list[dict[str, Any]]:
    windows: dict[int, list[float]] = {}
    for t, v in readings:
        windows.setdefault(int(t // window_s), []).append(v)
    return [
        {
            "start": (T0 + timedelta(seconds=k * window_s)).isoformat(),
            "count": len(vs),
            "min": min(vs),
            "mean": sum(vs) / len(vs),
            "max": max(vs),
            "downsampled": False,
        }
        for k, vs in sorted(windows.items())
    ]


def _same(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> None:
    assert len(got) == len(want), got
    for g, w in zip(got, want, strict=True):
        assert datetime.fromisoformat(g["start"]) == datetime.fromisoformat(w["start"])
        assert (g["count"], g["min"], g["max"], g["downsampled"]) == (
            w["count"], w["min"], w["max"], w["downsampled"],
        )  # fmt: skip
        assert abs(g["mean"] - w["mean"]) < 1e-9


async def _department(sensors: SensorRig) -> GraphQLClient:
    office = await sensors.client(
        scopes="risk:verify incidents:read", org=DEPT_DEFAULT, kind=OrgKind.DEPARTMENT,
        resource=None,
    )  # fmt: skip
    client = GraphQLClient(sensors.rig.hub_url, office.token)
    await wait_sources_ok(client, COMMUNITY)
    return client


async def test_windows_of_readings_paged_at_the_node_and_through_the_hub(
    sensors: SensorRig,
) -> None:
    device = await sensors.device()
    sensor = await sensors.create_sensor(water_level("urn:dev:linli:s1", device.client_id, []))
    # 5 min of readings every 20 s, and one just past the range (not counted).
    readings = [(float(t), round(0.1 + 0.01 * t, 3)) for t in range(0, 300, 20)]
    pack = [{"bn": "urn:dev:linli:s1", "bu": "m", "t": at(readings[0][0]), "v": readings[0][1]}]
    pack += [{"t": at(t), "v": v} for t, v in [*readings[1:], (300.0, 9.9)]]
    await sensors.sent(device, pack)
    args = _args(sensor, T0, T0 + timedelta(seconds=300), 60)
    want = _expected(readings, 60)
    assert len(want) == 5

    assert sensors.staff is not None
    at_node, more = await _all_pages(sensors.staff, args, first=2)
    _same(at_node, want)
    assert more == [True, True, False]

    department = await _department(sensors)
    try:
        through_hub, more = await _all_pages(department, args, first=2)
        _same(through_hub, want)
        assert more == [True, True, False]
        # One page of everything, and a narrower range that starts mid-stream.
        whole = (await department.data(SERIES, args))["sensorSeries"]
        _same([e["node"] for e in whole["edges"]], want)
        later = _args(sensor, T0 + timedelta(seconds=130), T0 + timedelta(seconds=250), 60)
        part = (await department.data(SERIES, later))["sensorSeries"]["edges"]
        _same(
            [e["node"] for e in part],
            [
                {**w, "start": (T0 + timedelta(seconds=130 + 60 * i)).isoformat()}
                for i, w in enumerate(
                    _expected([(t - 130, v) for t, v in readings if 130 <= t < 250], 60)
                )
            ],
        )
        # A cursor of another series (another window) is refused at the node.
        cursor = whole["edges"][0]["cursor"]
        other = _args(sensor, T0, T0 + timedelta(seconds=300), 120, after=cursor)
        assert await sensors.staff.error_code(SERIES, other) == "INVALID_CURSOR"
        unknown = sensor.rsplit(":", 1)[0] + ":nosuchsensor"
        assert await department.error_code(SERIES, {**args, "s": unknown}) == "NOT_FOUND"
    finally:
        await department.aclose()


async def _store_aggregate(
    sensors: SensorRig, sensor: str, start: datetime, *, count: int, low: float, high: float,
    total: float,
) -> None:  # fmt: skip
    db = Database(sensors.rig.node_db_url)
    try:
        async with db.transaction() as session:
            await session.execute(
                sa.insert(SENSORS.aggregates).values(
                    sensor_id=local(sensor), start=start, count=count, min=low, max=high,
                    sum=total,
                )
            )  # fmt: skip
    finally:
        await db.dispose()


async def test_downsampled_hours_come_from_the_stored_aggregates(sensors: SensorRig) -> None:
    device = await sensors.device()
    sensor = await sensors.create_sensor(water_level("urn:dev:linli:s2", device.client_id, []))
    hour = (T0 - timedelta(days=3)).replace(minute=0)  # an aggregate window (1 h by default)
    # Retention folded the hour's first readings (3 of them: 1, 3, 5); two more are raw.
    await _store_aggregate(sensors, sensor, hour, count=3, low=1.0, high=5.0, total=9.0)
    raw = [(hour + timedelta(minutes=10), 7.0), (hour + timedelta(minutes=20), 0.5),
           (hour + timedelta(minutes=65), 2.0)]  # fmt: skip
    pack: list[dict[str, Any]] = [
        {"t": t.timestamp(), "v": v, **({"bn": "urn:dev:linli:s2", "bu": "m"} if i == 0 else {})}
        for i, (t, v) in enumerate(raw)
    ]
    await sensors.sent(device, pack)
    department = await _department(sensors)
    try:
        hourly = await department.data(SERIES, _args(sensor, hour, hour + timedelta(hours=2), 3600))
        got = [e["node"] for e in hourly["sensorSeries"]["edges"]]
        _same(got, [
            {"start": hour.isoformat(), "count": 5, "min": 0.5, "mean": 16.5 / 5, "max": 7.0,
             "downsampled": True},
            {"start": (hour + timedelta(hours=1)).isoformat(), "count": 1, "min": 2.0,
             "mean": 2.0, "max": 2.0, "downsampled": False},
        ])  # fmt: skip
        # Finer than the aggregates: the aggregate counts whole in the window of its start.
        fine = await department.data(SERIES, _args(sensor, hour, hour + timedelta(hours=2), 600))
        got = [e["node"] for e in fine["sensorSeries"]["edges"]]
        _same(got, [
            {"start": hour.isoformat(), "count": 3, "min": 1.0, "mean": 3.0, "max": 5.0,
             "downsampled": True},
            *[{"start": t.replace(minute=t.minute // 10 * 10).isoformat(), "count": 1,
               "min": v, "mean": v, "max": v, "downsampled": False} for t, v in raw],
        ])  # fmt: skip
    finally:
        await department.aclose()


async def test_a_neighbour_gets_the_answer_of_a_sensor_without_readings(
    sensors: SensorRig,
) -> None:
    device = await sensors.device()
    busy = await sensors.create_sensor(water_level("urn:dev:linli:s3", device.client_id, []))
    quiet = await sensors.create_sensor(water_level("urn:dev:linli:s4", device.client_id, []))
    await sensors.sent(device, [{"bn": "urn:dev:linli:s3", "bu": "m", "t": at(10), "v": 0.4}])
    args = _args(busy, T0, T0 + timedelta(hours=1), 600)
    neighbour_token = await sensors.client(scopes="incidents:read", org=NEIGHBOUR, resource=None)
    neighbour = GraphQLClient(sensors.rig.hub_url, neighbour_token.token)
    department = await _department(sensors)
    try:
        seen = (await department.data(SERIES, args))["sensorSeries"]
        assert [e["node"]["count"] for e in seen["edges"]] == [1]  # the readings are there
        none = (await department.data(SERIES, {**args, "s": quiet}))["sensorSeries"]
        assert none == {"edges": [], "pageInfo": {"hasNextPage": False, "endCursor": None}}
        hidden = (await neighbour.data(SERIES, args))["sensorSeries"]
        assert hidden == none
        assert (await neighbour.data(SERIES, {**args, "s": quiet}))["sensorSeries"] == none
    finally:
        await neighbour.aclose()
        await department.aclose()


async def test_bad_ranges_and_windows_get_stable_codes_at_the_node_and_the_hub(
    sensors: SensorRig,
) -> None:
    device = await sensors.device()
    sensor = await sensors.create_sensor(water_level("urn:dev:linli:s5", device.client_id, []))
    start = datetime(2026, 11, 1, tzinfo=UTC)
    cases = [
        (_args(sensor, start, start + timedelta(hours=1), 59), "SERIES_WINDOW_TOO_SMALL"),
        (
            _args(sensor, start, start + timedelta(days=40), 31 * 86400 + 1),
            "SERIES_WINDOW_TOO_LARGE",
        ),
        (_args(sensor, start, start, 60), "SERIES_RANGE_INVALID"),
        (_args(sensor, start, start - timedelta(hours=1), 60), "SERIES_RANGE_INVALID"),
        (_args(sensor, start, start + timedelta(days=401), 86400), "SERIES_RANGE_TOO_LONG"),
        (
            {**_args(sensor, start, start + timedelta(hours=1), 60), "first": 501},
            "PAGE_SIZE_TOO_LARGE",
        ),
        ({**_args(sensor, start, start + timedelta(hours=1), 60), "s": "nonsense"}, "INVALID_ID"),
    ]
    department = await _department(sensors)
    assert sensors.staff is not None
    try:
        for args, code in cases:
            assert await sensors.staff.error_code(SERIES, args) == code, args
            assert await department.error_code(SERIES, args) == code, args
        # Just inside every bound: an answer (empty: no readings).
        fine = _args(sensor, start, start + timedelta(days=400), 31 * 86400)
        assert (await department.data(SERIES, fine))["sensorSeries"]["edges"] == []
    finally:
        await department.aclose()
