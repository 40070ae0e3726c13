"""A sensor's time series: the arguments both the node and the hub check, and its GraphQL types.

``sensorSeries(sensor, from, to, windowS, first, after)`` gives a sensor's readings in
``[from, to)`` as windows of ``windowS`` seconds anchored at ``from`` (count, min, mean,
max), oldest first, paged (Relay cursor). Windows without readings are left out. Where raw
readings were downsampled (``node.sensors.retention``) a window is built from the stored
aggregates: an aggregate counts whole in the window that holds its start, and the window
says so (``downsampled``). A caller the owner's policy does not show the readings gets an
empty connection, the same answer as for a sensor without readings.

The hub checks the arguments with the same function as the node, so a bad range or window
gets its stable code at either.
"""

from __future__ import annotations

from datetime import datetime

import strawberry

from schema.api.pagination import Connection
from schema.errors import InvalidInput

__all__ = [
    "MAX_RANGE_S",
    "MAX_WINDOW_S",
    "MIN_WINDOW_S",
    "SERIES_FIELD",
    "SensorSeries",
    "SeriesWindow",
    "check_series",
]

SERIES_FIELD = "sensor_series"
MIN_WINDOW_S = 60
"""The smallest window: one minute."""
MAX_WINDOW_S = 31 * 86400
"""The largest window: 31 days."""
MAX_RANGE_S = 400 * 86400
"""The longest range: 400 days (longer than aggregates are kept by default)."""


@strawberry.type(description="One window of a sensor's readings")
class SeriesWindow:
    start: datetime = strawberry.field(description="The window's start (from + k windowS)")
    count: int
    min: float
    mean: float
    max: float
    downsampled: bool = strawberry.field(
        description="Built (in part) from stored aggregates, which count whole in the window"
        " that holds their start: the resolution there is the node's aggregate window"
    )


SensorSeries = Connection[SeriesWindow]


def check_series(start: datetime, end: datetime, window_s: int) -> None:
    """Pass if ``[start, end)`` and ``window_s`` make a series; else ``InvalidInput``."""
    if start.tzinfo is None or end.tzinfo is None:
        raise InvalidInput(
            "from and to need a time zone", code="SERIES_RANGE_INVALID", field="from"
        )
    if window_s < MIN_WINDOW_S:
        raise InvalidInput(
            f"windowS={window_s} is below {MIN_WINDOW_S} s",
            code="SERIES_WINDOW_TOO_SMALL",
            field="windowS",
            min=MIN_WINDOW_S,
        )
    if window_s > MAX_WINDOW_S:
        raise InvalidInput(
            f"windowS={window_s} is above {MAX_WINDOW_S} s",
            code="SERIES_WINDOW_TOO_LARGE",
            field="windowS",
            max=MAX_WINDOW_S,
        )
    if start >= end:
        raise InvalidInput("from must be before to", code="SERIES_RANGE_INVALID", field="to")
    if (end - start).total_seconds() > MAX_RANGE_S:
        raise InvalidInput(
            f"the range is longer than {MAX_RANGE_S // 86400} days",
            code="SERIES_RANGE_TOO_LONG",
            field="to",
            max=MAX_RANGE_S,
        )
