"""Retention on a migrated node database (SQLite and PostgreSQL): raw readings past their
days folded into windowed aggregates, then the aggregates dropped after their months."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from node.app import MIGRATIONS
from node.sensors.retention import downsample
from node.sensors.service import SensorStore
from node.settings import NodeSettings
from node.tables import FLAGS, SENSORS, TABLES
from schema.runtime.db import Database
from schema.store.specs import bind_specs
from tests.conftest import BACKENDS, _empty_database, migrate

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SensorStore]:
    async with _empty_database(request.param, tmp_path) as database:
        await migrate(MIGRATIONS, database.url)
        settings = NodeSettings(
            database_url=database.url,
            sensor_raw_retention_s=86400,
            sensor_aggregate_s=3600,
            sensor_aggregate_retention_s=30 * 86400,
        )
        db = Database(database.url)
        specs = bind_specs(TABLES)
        built = SensorStore(
            settings, db, SENSORS, specs["Sensor"], specs["RiskFlag"], FLAGS, lambda: None
        )
        try:
            yield built
        finally:
            await db.dispose()


async def _insert(store: SensorStore, sensor: str, readings: list[tuple[datetime, float]]) -> None:
    async with store.db.transaction() as session:
        await session.execute(
            sa.insert(SENSORS.readings),
            [
                {"sensor_id": sensor, "t": t, "value": v, "device": "d", "received_at": NOW}
                for t, v in readings
            ],
        )


async def _rows(store: SensorStore, table: sa.Table) -> list[tuple[object, ...]]:
    async with store.db.sessions() as session:
        order = [c for c in table.primary_key.columns]
        return [tuple(r) for r in (await session.execute(sa.select(table).order_by(*order))).all()]


async def test_old_readings_become_hourly_aggregates_and_old_aggregates_go(
    store: SensorStore,
) -> None:
    two_days = NOW - timedelta(days=2)  # 10:00 two days ago: past the one day of raw readings
    old = [(two_days + timedelta(minutes=m), float(m)) for m in (0, 10, 50, 70)]
    fresh = [(NOW - timedelta(hours=1), 9.0)]
    await _insert(store, "s1", old + fresh)
    await _insert(store, "s2", [(two_days, 100.0)])

    done = await downsample(store, NOW)
    assert (done.folded, done.dropped) == (5, 0)
    aggregates = await _rows(store, SENSORS.aggregates)
    assert [
        (s, start, count, low, high, total) for s, start, count, low, high, total in aggregates
    ] == [
        ("s1", two_days, 3, 0.0, 50.0, 60.0),
        ("s1", two_days + timedelta(hours=1), 1, 70.0, 70.0, 70.0),
        ("s2", two_days, 1, 100.0, 100.0, 100.0),
    ]
    left = await _rows(store, SENSORS.readings)
    assert [(r[1], r[3]) for r in left] == [("s1", 9.0)]  # only the fresh reading stays raw

    # A late old reading of an aggregated window adds to it exactly.
    await _insert(store, "s1", [(two_days + timedelta(minutes=20), 30.0)])
    assert (await downsample(store, NOW)).folded == 1
    first = (await _rows(store, SENSORS.aggregates))[0]
    assert first[2:] == (4, 0.0, 50.0, 90.0)

    # Months later the aggregates go too (with the last raw reading, folded on the way).
    later = NOW + timedelta(days=31)
    done = await downsample(store, later)
    assert (done.folded, done.dropped) == (1, 4)
    assert await _rows(store, SENSORS.aggregates) == []
