"""A sensor's time series at its node: windows of raw readings and of stored aggregates.

``series_page`` reads the aggregates of the range (few: one per ``sensor_aggregate_s``)
and the raw readings in event-time order, in chunks, until it holds one window more than
the page; windows merge exactly (count, min, max, sum), so a window that retention folded
in part is right. ``series_field`` is the GraphQL field (``schema.api.series``): the
sensor is found and disclosed like ``node(id)``; a caller the policy does not show the
readings (``quantity.exact``) gets an empty connection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

import sqlalchemy as sa
import strawberry
from strawberry.types import Info

from node.sensors.service import SensorStore
from schema.api.pagination import (
    Edge,
    PageInfo,
    RecordOrder,
    decode_cursor,
    encode_cursor,
    page_size,
)
from schema.api.series import SERIES_FIELD, SensorSeries, SeriesWindow, check_series
from schema.errors import InvalidCursor, InvalidInput, NotFound
from schema.ids import GlobalId, InvalidGlobalId
from schema.store import service
from schema.store.resolvers import HiddenByPolicy, public_values

__all__ = ["series_field", "series_page"]

CHUNK = 2000
_ORDER = RecordOrder.CREATED_ASC  # the cursor's tag: series cursors are not list cursors


@dataclass
class _Window:
    count: int = 0
    low: float = math.inf
    high: float = -math.inf
    total: float = 0.0
    downsampled: bool = False

    def add(self, count: int, low: float, high: float, total: float) -> None:
        self.count += count
        self.low = min(self.low, low)
        self.high = max(self.high, high)
        self.total += total

    def point(self, start: datetime) -> SeriesWindow:
        return SeriesWindow(
            start=start,
            count=self.count,
            min=self.low,
            mean=self.total / self.count,
            max=self.high,
            downsampled=self.downsampled,
        )


async def series_page(
    store: SensorStore,
    sensor_id: str,
    start: datetime,
    end: datetime,
    window_s: int,
    first: int,
    after: datetime | None,
) -> tuple[list[SeriesWindow], bool]:
    """The first ``first`` windows with readings after ``after`` (a window's start), and
    whether more follow."""
    step = timedelta(seconds=window_s)

    def key(t: datetime) -> datetime:
        return start + step * math.floor((t - start) / step)

    low = start if after is None else max(start, after + step)
    readings, aggregates = store.tables.readings, store.tables.aggregates
    windows: dict[datetime, _Window] = {}
    async with store.db.sessions() as session:
        stored = await session.execute(
            sa.select(aggregates.c.start, aggregates.c.count, aggregates.c.min,
                      aggregates.c.max, aggregates.c.sum)
            .where(aggregates.c.sensor_id == sensor_id, aggregates.c.start >= low,
                   aggregates.c.start < end)
            .order_by(aggregates.c.start)
        )  # fmt: skip
        for at, count, least, most, total in stored:
            window = windows.setdefault(key(at), _Window())
            window.add(count, least, most, total)
            window.downsampled = True
        since: datetime | None = None
        while True:
            query = (
                sa.select(readings.c.t, readings.c.value)
                .where(readings.c.sensor_id == sensor_id, readings.c.t >= low, readings.c.t < end)
                .order_by(readings.c.t)
                .limit(CHUNK)
            )
            if since is not None:  # keyset: one reading per sensor and time
                query = query.where(readings.c.t > since)
            rows = (await session.execute(query)).all()
            for t, value in rows:
                windows.setdefault(key(t), _Window()).add(1, value, value, value)
            if len(rows) < CHUNK:
                break
            since = rows[-1][0]
            # Windows before the last reading's are complete: enough for a page and one more?
            if sum(1 for k in windows if k < key(since)) > first:
                break
    ordered = sorted(windows)
    return [windows[k].point(k) for k in ordered[:first]], len(ordered) > first


def _cursor_id(sensor: str, start: datetime, window_s: int) -> str:
    return f"{sensor}|{start.isoformat()}|{window_s}"


def series_field(store: SensorStore) -> dict[str, Any]:
    """``sensorSeries``: one sensor's windowed aggregates, policy-filtered and paged."""
    spec = store.sensor_spec

    async def sensor_series(
        info: Info[Any, None],
        sensor: strawberry.ID,
        start: Annotated[datetime, strawberry.argument(name="from")],
        end: Annotated[datetime, strawberry.argument(name="to")],
        window_s: int,
        first: int | None = None,
        after: str | None = None,
    ) -> SensorSeries:
        context = info.context
        context.require_read(spec)
        check_series(start, end, window_s)
        size = page_size(first)
        try:
            parsed = GlobalId.parse(str(sensor))
        except InvalidGlobalId as exc:
            raise InvalidInput(str(exc), code="INVALID_ID", field="sensor") from exc
        if parsed.type != spec.type_name or parsed.owner != context.source_id:
            raise NotFound(f"no Sensor with id {sensor}", type=spec.type_name)
        position: datetime | None = None
        if after is not None:
            position, bound = decode_cursor(after, _ORDER, secret=context.cursor_secret)
            if bound != _cursor_id(parsed.local, start, window_s):
                raise InvalidCursor("the cursor was issued for another series")
        async with context.db.sessions() as session:
            row = await service.get_record(session, spec, parsed.local)
        [shown] = await context.disclose(spec, [public_values(spec, row, context.source_id)])
        if shown is None:
            # Hidden by policy: answered exactly like an unknown id.
            raise HiddenByPolicy(spec.type_name, str(sensor), parsed.local)
        if shown.get("series") is None:
            # The policy shows the sensor, not its readings: the answer for no readings.
            return SensorSeries(edges=[], page_info=PageInfo(has_next_page=False, end_cursor=None))
        points, more = await series_page(store, parsed.local, start, end, window_s, size, position)
        bound = _cursor_id(parsed.local, start, window_s)
        edges = [
            Edge(
                cursor=encode_cursor(_ORDER, p.start, bound, secret=context.cursor_secret),
                node=p,
            )
            for p in points
        ]
        return SensorSeries(
            edges=edges,
            page_info=PageInfo(has_next_page=more, end_cursor=edges[-1].cursor if edges else None),
        )

    return {
        SERIES_FIELD: strawberry.field(
            resolver=sensor_series,
            description="A sensor's readings in [from, to) as windows of windowS seconds"
            " (count, min, mean, max), oldest first; empty if the caller may not see its"
            " readings",
        )
    }
