"""Point in polygon, polygon and box, distance to a polygon: the area filters of alerts."""

from __future__ import annotations

import pytest

from schema.geo import (
    BBox,
    GeoPolygon,
    circle_polygon,
    distance_km,
    polygon_covers,
    polygon_distance_km,
    polygon_meets_bbox,
)

# CAP 1.2 Appendix A.2's thunderstorm polygon, as GeoJSON (lon, lat).
STORM = GeoPolygon(
    coordinates=[
        [(-120.14, 38.47), (-119.95, 38.34), (-119.74, 38.52), (-119.89, 38.62), (-120.14, 38.47)]
    ]
)
# A square of 1 degree with a square hole of 0.5 in its middle.
FRAME = GeoPolygon(
    coordinates=[
        [(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.0, 0.0)],
        [(0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75), (0.25, 0.25)],
    ]
)
# A thin diagonal band: its bounding box is large, the polygon is not.
BAND = GeoPolygon(coordinates=[[(0.0, 0.0), (0.1, 0.0), (1.0, 0.9), (1.0, 1.0), (0.0, 0.0)]])


@pytest.mark.parametrize(
    ("lon", "lat", "covered"),
    [
        (-119.95, 38.48, True),  # inside
        (-120.14, 38.47, True),  # a corner
        (-119.845, 38.43, True),  # on an edge
        (-120.14, 38.62, False),  # inside the bounding box, outside the polygon
        (-121.0, 38.5, False),
        (0.1, 0.1, True),  # the frame itself
        (0.5, 0.5, False),  # in the hole
        (0.25, 0.5, True),  # on the hole's edge
    ],
)
def test_a_polygon_covers_its_inside_edges_and_corners_not_its_holes(
    lon: float, lat: float, covered: bool
) -> None:
    shape = STORM if lon < -100 else FRAME
    assert polygon_covers(shape, lon, lat) is covered


@pytest.mark.parametrize(
    ("box", "meets"),
    [
        (BBox(west=-120.15, south=38.46, east=-120.13, north=38.48), True),  # around a corner
        (BBox(west=-121.0, south=38.0, east=-119.0, north=39.0), True),  # the whole polygon
        (BBox(west=-119.9, south=38.45, east=-119.89, north=38.46), True),  # inside, no vertex
        (BBox(west=-120.14, south=38.58, east=-120.05, north=38.62), False),  # only the bbox
        (BBox(west=0.7, south=0.1, east=0.9, north=0.2), False),  # beside the band
        (BBox(west=0.4, south=0.0, east=0.45, north=1.0), True),  # crosses the band, no vertex in
    ],
)
def test_a_polygon_meets_a_box_that_shares_a_point(box: BBox, meets: bool) -> None:
    shape = STORM if box.west < -100 else BAND
    assert polygon_meets_bbox(shape, box) is meets


def test_distance_to_a_polygon_is_zero_inside_and_to_the_nearest_edge_outside() -> None:
    assert polygon_distance_km(STORM, -119.95, 38.48) == 0.0
    assert polygon_distance_km(FRAME, 0.5, 0.5) == pytest.approx(
        distance_km((0.5, 0.5), (0.5, 0.75)), rel=0.01
    )  # in the hole: to the hole's edge
    # North of the frame's top edge, and beyond its corner (to the corner itself).
    assert polygon_distance_km(FRAME, 0.5, 1.1) == pytest.approx(
        distance_km((0.5, 1.1), (0.5, 1.0)), rel=0.01
    )
    assert polygon_distance_km(FRAME, 1.1, 1.1) == pytest.approx(
        distance_km((1.1, 1.1), (1.0, 1.0)), rel=0.01
    )


def test_a_circle_of_radius_zero_is_its_centre() -> None:
    point = circle_polygon(-115.5527, 32.9525, 0.0)
    assert polygon_covers(point, -115.5527, 32.9525)
    assert not polygon_covers(point, -115.55, 32.95)
    assert polygon_distance_km(point, -115.5527, 32.9625) == pytest.approx(1.112, rel=0.01)
    assert polygon_meets_bbox(point, BBox(west=-115.6, south=32.9, east=-115.5, north=33.0))
