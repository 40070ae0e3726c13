"""Approximate forms of exact values: quantity bands and coarse locations.

Both are deterministic functions of the exact value: asking again returns
the same band and the same grid point, so repeated reads cannot be averaged
back to the exact figure or position (random noise could be).
"""

from __future__ import annotations

import math
from typing import Final

from schema.geo import GeoPoint
from schema.records import QuantityBand

__all__ = ["GRID_METRES", "QUANTITY_BANDS", "coarse_point", "quantity_band"]

# (low, high) inclusive; high None means "and above". Wide enough at the top
# that a neighbour learns "plenty", not the stock level.
QUANTITY_BANDS: Final[tuple[QuantityBand, ...]] = (
    QuantityBand(low=0, high=0, label="none"),
    QuantityBand(low=1, high=9, label="1-9"),
    QuantityBand(low=10, high=49, label="10-49"),
    QuantityBand(low=50, high=199, label="50-199"),
    QuantityBand(low=200, high=999, label="200-999"),
    QuantityBand(low=1000, high=None, label="1000+"),
)

GRID_METRES: Final = 500.0
_METRES_PER_DEGREE_LAT: Final = 111_320.0


def quantity_band(value: int) -> QuantityBand:
    """The band ``value`` falls in."""
    if value < 0:
        raise ValueError(f"a quantity cannot be negative: {value}")
    for band in QUANTITY_BANDS:
        if band.high is None or value <= band.high:
            return band.model_copy()
    raise AssertionError("the last band is open-ended")  # pragma: no cover


def coarse_point(point: GeoPoint, *, grid_metres: float = GRID_METRES) -> GeoPoint:
    """The centre of the ``grid_metres`` grid cell that ``point`` lies in."""
    lat_step = grid_metres / _METRES_PER_DEGREE_LAT
    # Rows are counted from the south pole so that every point has exactly
    # one row, whatever its sign.
    row = min(math.floor((point.lat + 90.0) / lat_step), math.floor(180.0 / lat_step))
    lat = min(90.0, -90.0 + (row + 0.5) * lat_step)
    # Columns are as wide in metres as rows are tall at the row's own
    # latitude, so a cell is close to square everywhere but at the poles.
    lon_step = min(360.0, lat_step / max(math.cos(math.radians(lat)), 1e-9))
    col = math.floor((point.lon + 180.0) / lon_step)
    lon = min(180.0, -180.0 + (col + 0.5) * lon_step)
    # ~0.1 m of rounding keeps the output short without moving it out of its cell.
    return GeoPoint.at(round(lon, 6), round(lat, 6))
