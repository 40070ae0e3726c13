"""``series_page`` on a migrated node database (SQLite and PostgreSQL): read in small chunks,
it stops once it holds a page and one window more, and the pages it gives, joined, are the
whole series computed at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from node.sensors import series
from node.sensors.series import series_page
from node.sensors.service import SensorStore
from node.tables import SENSORS
from tests.node.sensors.test_retention import NOW, store

__all__ = ["store"]  # the fixture

START = NOW - timedelta(hours=3)


async def test_chunked_pages_join_into_the_whole_series(
    store: SensorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 90 readings, one every 100 s (irregular values), and another sensor's in between.
    readings = [(START + timedelta(seconds=100 * i), float((i * 37) % 11)) for i in range(90)]
    async with store.db.transaction() as session:
        await session.execute(
            sa.insert(SENSORS.readings),
            [
                {"sensor_id": sensor, "t": t, "value": v, "device": "d", "received_at": NOW}
                for sensor in ("s1", "s2")
                for t, v in readings
            ],
        )
    end = START + timedelta(seconds=9000)
    whole, more = await series_page(store, "s1", START, end, 600, 500, None)
    assert not more
    assert [w.count for w in whole] == [6] * 15
    assert whole[0].start == START
    assert (whole[1].min, whole[1].max) == (
        min(v for _, v in readings[6:12]),
        max(v for _, v in readings[6:12]),
    )
    assert sum(w.mean * w.count for w in whole) == pytest.approx(sum(v for _, v in readings))

    chunks: list[str] = []

    def count(conn: object, cursor: object, statement: str, *rest: object) -> None:
        if "FROM sensor_readings" in statement:
            chunks.append(statement)

    sa.event.listen(store.db.engine.sync_engine, "before_cursor_execute", count)
    monkeypatch.setattr(series, "CHUNK", 7)
    pages = []
    per_page: list[int] = []
    after: datetime | None = None
    while True:
        chunks.clear()
        page, more = await series_page(store, "s1", START, end, 600, 4, after)
        pages.append(page)
        per_page.append(len(chunks))
        if not more:
            break
        after = page[-1].start
    assert [len(p) for p in pages] == [4, 4, 4, 3]
    # A page of 4 windows (6 readings each) stops once 5 windows are complete: 5 chunks of
    # 7 readings, not the 13 of all 90; the last page reads its 18 readings in 3.
    assert per_page == [5, 5, 5, 3]
    joined = [w for p in pages for w in p]
    assert [(w.start, w.count, w.min, w.mean, w.max) for w in joined] == [
        (w.start, w.count, w.min, w.mean, w.max) for w in whole
    ]
    assert all(w.start.tzinfo is not None and w.start >= START for w in joined)
    assert joined[-1].start == datetime.fromtimestamp(
        (START + timedelta(seconds=8400)).timestamp(), UTC
    )
