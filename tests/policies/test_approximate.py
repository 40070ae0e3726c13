"""Quantity bands and coarse locations."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies import coarse_point, quantity_band
from schema.geo import GeoPoint, distance_km


@pytest.mark.parametrize(
    ("value", "low", "high", "label"),
    [
        (0, 0, 0, "none"),
        (1, 1, 9, "1-9"),
        (9, 1, 9, "1-9"),
        (10, 10, 49, "10-49"),
        (49, 10, 49, "10-49"),
        (50, 50, 199, "50-199"),
        (199, 50, 199, "50-199"),
        (200, 200, 999, "200-999"),
        (999, 200, 999, "200-999"),
        (1000, 1000, None, "1000+"),
        (1_000_000_000, 1000, None, "1000+"),
    ],
)
def test_quantity_bands(value: int, low: int, high: int | None, label: str) -> None:
    band = quantity_band(value)
    assert (band.low, band.high, band.label) == (low, high, label)


def test_a_negative_quantity_has_no_band() -> None:
    with pytest.raises(ValueError, match="a quantity cannot be negative: -1"):
        quantity_band(-1)


def test_a_band_is_a_copy_the_caller_may_change() -> None:
    quantity_band(5).label = "changed"
    assert quantity_band(5).label == "1-9"


latitudes = st.floats(min_value=-80, max_value=80, allow_nan=False)
longitudes = st.floats(min_value=-180, max_value=180, allow_nan=False)


@given(lon=longitudes, lat=latitudes)
def test_a_coarse_point_is_within_the_cell_and_stable(lon: float, lat: float) -> None:
    point = GeoPoint.at(lon, lat)
    coarse = coarse_point(point)
    # Half the diagonal of a 500 m cell is ~354 m.
    assert distance_km(point.coordinates, coarse.coordinates) <= 0.36
    # Asking again, or asking with the coarse point, gives the same point:
    # nothing to average.
    assert coarse_point(point) == coarse
    assert coarse_point(coarse) == coarse


def test_points_in_one_cell_share_a_coarse_point_and_distant_points_do_not() -> None:
    # The centre of the cell around Tiananmen Square; a cell is ~500 m wide,
    # so anything within ~200 m of its centre lies in it.
    centre = coarse_point(GeoPoint.at(116.3975, 39.9087))
    for dlon, dlat in ((0.002, 0.0), (-0.002, 0.0), (0.0, 0.0015), (0.0015, -0.0015)):
        assert coarse_point(GeoPoint.at(centre.lon + dlon, centre.lat + dlat)) == centre
    far = coarse_point(GeoPoint.at(centre.lon + 0.012, centre.lat))  # ~1 km east
    assert far != centre
    assert 0.9 <= distance_km(centre.coordinates, far.coordinates) <= 1.1


@pytest.mark.parametrize(
    ("lon", "lat"), [(180.0, 90.0), (-180.0, -90.0), (180.0, 0.0), (-180.0, 89.9999)]
)
def test_coarse_points_at_the_edges_of_the_map_are_valid(lon: float, lat: float) -> None:
    coarse = coarse_point(GeoPoint.at(lon, lat))
    assert -180.0 <= coarse.lon <= 180.0
    assert -90.0 <= coarse.lat <= 90.0
