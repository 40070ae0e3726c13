"""Retention: raw readings folded into windowed aggregates, old aggregates dropped.

Each round takes up to ``BATCH`` raw readings older than
``sensor_raw_retention_s``, adds them to their ``sensor_aggregate_s`` window
of ``sensor_aggregates`` (count, min, max, sum: windows merge exactly, so a
window filled over several rounds is right) and deletes them, in one
transaction; then it deletes aggregates older than
``sensor_aggregate_retention_s``. Works the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult

from node.sensors.service import SensorStore, window_start

__all__ = ["BATCH", "RetentionRound", "downsample"]

BATCH = 5000


@dataclass(frozen=True, slots=True)
class RetentionRound:
    """What one round did: raw readings folded (and deleted), aggregates dropped."""

    folded: int
    dropped: int


async def downsample(store: SensorStore, now: datetime) -> RetentionRound:
    """Fold the oldest raw readings past retention into aggregates; drop expired aggregates."""
    settings = store.settings
    readings, aggregates = store.tables.readings, store.tables.aggregates
    cutoff = now - timedelta(seconds=settings.sensor_raw_retention_s)
    window_s = settings.sensor_aggregate_s
    async with store.lock, store.db.transaction() as session:
        rows = (
            await session.execute(
                sa.select(readings.c.id, readings.c.sensor_id, readings.c.t, readings.c.value)
                .where(readings.c.t < cutoff)
                .order_by(readings.c.id)
                .limit(BATCH)
            )
        ).all()
        windows: dict[tuple[str, datetime], list[float]] = defaultdict(
            lambda: [0, float("inf"), float("-inf"), 0.0]
        )
        for _, sensor_id, t, value in rows:
            acc = windows[(sensor_id, window_start(t, window_s))]
            acc[0] += 1
            acc[1] = min(acc[1], value)
            acc[2] = max(acc[2], value)
            acc[3] += value
        for (sensor_id, start), (count, low, high, total) in windows.items():
            key = (aggregates.c.sensor_id == sensor_id) & (aggregates.c.start == start)
            known = (
                await session.execute(
                    sa.select(
                        aggregates.c.count, aggregates.c.min, aggregates.c.max, aggregates.c.sum
                    ).where(key)
                )
            ).first()
            if known is None:
                await session.execute(
                    sa.insert(aggregates).values(
                        sensor_id=sensor_id,
                        start=start,
                        count=int(count),
                        min=low,
                        max=high,
                        sum=total,
                    )
                )
            else:
                await session.execute(
                    sa.update(aggregates)
                    .where(key)
                    .values(
                        count=known[0] + int(count),
                        min=min(known[1], low),
                        max=max(known[2], high),
                        sum=known[3] + total,
                    )
                )
        if rows:
            await session.execute(
                sa.delete(readings).where(readings.c.id.in_([row[0] for row in rows]))
            )
        expired = now - timedelta(seconds=settings.sensor_aggregate_retention_s)
        result = await session.execute(sa.delete(aggregates).where(aggregates.c.start < expired))
        assert isinstance(result, CursorResult)
        return RetentionRound(folded=len(rows), dropped=result.rowcount)
