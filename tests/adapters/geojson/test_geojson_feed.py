"""GeoJSON hazard feeds: the USGS format by default, bad features reported and skipped."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from adapters.base import HttpFetcher
from adapters.geojson.client import GeoJsonSettings
from adapters.geojson.codec import PropertyMapping
from adapters.geojson.service import GeoJsonAdapter
from tests.adapters.conftest import DocumentServerState, start_adapter
from tests.conftest import DatabaseUnderTest


def quake(
    fid: str, mag: object, time: object = 1764310000000, **extra: object
) -> dict[str, object]:
    return {
        "type": "Feature",
        "id": fid,
        "properties": {"mag": mag, "place": f"10 km N of {fid}", "time": time,
                       "title": f"M {mag} - {fid}", **extra},
        "geometry": {"type": "Point", "coordinates": [116.4, 39.9, 10.0]},
    }  # fmt: skip


FEED = {
    "type": "FeatureCollection",
    "metadata": {"title": "USGS test"},
    "features": [
        quake("us7000big", 7.2),
        quake("us7000mid", 5.4),
        quake("us7000small", 3.1),
        quake("us7000baddate", 4.0, time="yesterday"),
        quake("us7000badmag", "strong"),
        {"type": "Feature", "properties": {"title": "no id", "time": 1}, "geometry": None},
        "not a feature",
    ],
}

INCIDENTS = "{ incidents(first: 50) { edges { node { title severityLevel capSeverity address reportedAt } } } }"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30.0) as client:
        yield client


async def test_usgs_feed_maps_and_skips_bad_features(
    adapter_db: DatabaseUnderTest,
    upstream: tuple[DocumentServerState, str],
    http: httpx.AsyncClient,
) -> None:
    state, base = upstream
    state.put("/quakes.geojson", json.dumps(FEED).encode(), "application/geo+json")
    settings = GeoJsonSettings(url=f"{base}/quakes.geojson", mapping=PropertyMapping())
    adapter = GeoJsonAdapter(settings, HttpFetcher(http, timeout_s=30, max_bytes=1 << 20))
    service = await start_adapter(adapter_db.url, adapter)
    try:
        report = await adapter.poll(service.db)
        assert report.created == 3
        assert [(p.where.rsplit("#", 1)[1], p.code, p.reason) for p in report.problems] == [
            ("features[3]", "UPSTREAM_BAD_DATA", "time 'yesterday' is not a epoch_ms time"),
            ("features[4]", "UPSTREAM_BAD_DATA", "magnitude 'strong' is not a number"),
            ("features[5]", "UPSTREAM_BAD_DATA", "the feature has no id"),
            ("features[6]", "UPSTREAM_BAD_DATA", "not a GeoJSON Feature"),
        ]
        data = await service.department.data(INCIDENTS)
        by_title = {e["node"]["title"]: e["node"] for e in data["incidents"]["edges"]}
        assert {t: (n["severityLevel"], n["capSeverity"]) for t, n in by_title.items()} == {
            "M 7.2 - us7000big": ("I", "EXTREME"),
            "M 5.4 - us7000mid": ("III", "MODERATE"),
            "M 3.1 - us7000small": ("IV", "MINOR"),
        }
        assert by_title["M 7.2 - us7000big"]["address"] == "10 km N of us7000big"
        assert by_title["M 7.2 - us7000big"]["reportedAt"].startswith("2025-11-28T06:06:40")
        # Unchanged feed: 304, nothing stored again.
        again = await adapter.poll(service.db)
        assert again.not_modified
        assert again.created == 0
        assert state.statuses("/quakes.geojson") == [200, 304]
    finally:
        await service.close()


async def test_a_custom_mapping_and_a_feed_that_is_not_geojson(
    adapter_db: DatabaseUnderTest,
    upstream: tuple[DocumentServerState, str],
    http: httpx.AsyncClient,
) -> None:
    state, base = upstream
    feed = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"编号": "GX-1", "名称": "泥石流隐患", "时间":
             "2026-11-28T08:00:00+08:00", "地点": "西山村"}, "geometry": None},
        ],
    }  # fmt: skip
    state.put("/custom.json", json.dumps(feed, ensure_ascii=False).encode())
    mapping = PropertyMapping(
        id="编号", title="名称", time="时间", time_format="iso", magnitude=None, place="地点"
    )
    adapter = GeoJsonAdapter(
        GeoJsonSettings(url=f"{base}/custom.json", mapping=mapping),
        HttpFetcher(http, timeout_s=30, max_bytes=1 << 20),
    )
    service = await start_adapter(adapter_db.url, adapter)
    try:
        report = await adapter.poll(service.db)
        assert (report.created, report.problems) == (1, ())
        data = await service.department.data(
            '{ incidents(where: {text: "泥石流"}) { edges { node { address severityLevel } } } }'
        )
        assert [e["node"] for e in data["incidents"]["edges"]] == [
            {"address": "西山村", "severityLevel": "IV"}
        ]
        from adapters.errors import UpstreamBadResponse

        state.put("/custom.json", b"<html>maintenance</html>", "text/html")
        with pytest.raises(UpstreamBadResponse):
            await adapter.poll(service.db)
    finally:
        await service.close()
