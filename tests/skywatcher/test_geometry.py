"""Outlines land where the map's WCS puts their sky positions, in every projection.

Each drawn outline's path vertices go to display coordinates through the
collection's transform, then back to the sky through the inverse of the
WCSAxes world transform (``ax.get_transform('world')``); they must equal the
input corners to 1e-6 deg, also for CCDs cut by the map edge (RA 0/360 on a
map centred on RA 180) and CCDs around or near a pole.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spica.skywatcher import FOOTPRINT_COLUMNS, PROJECTIONS, MapOptions, draw_map
from spica.skywatcher.footprints import header_footprints
from tests.skywatcher.conftest import ccd_wcs

TOL = 1e-6


def footprints() -> pd.DataFrame:
    side = (-21.0, 21.0)
    around = (-5.0, 37.0)  # the first CCD holds the pointing (a pole below)
    cases = [(214.86, 52.68, 1, side), (0.4, 10.0, 2, side), (359.6, -40.0, 3, side),
             (45.0, 89.4, 4, side), (200.0, 89.99, 5, around), (120.0, -89.99, 6, around),
             (90.0, 0.0, 7, side)]
    frames = []
    for ra, dec, expnum, offsets in cases:
        headers = []
        for dx in offsets:
            header = ccd_wcs(ra, dec, dx, 0.0).to_header()
            header["NAXIS1"], header["NAXIS2"] = 40, 80
            headers.append(header)
        frames.append(header_footprints(headers, expnum))
    table = pd.concat(frames, ignore_index=True)
    assert list(table.columns) == list(FOOTPRINT_COLUMNS) and len(table) == 14
    return table


FOOTPRINTS = footprints()
SELECTION = pd.DataFrame({"expnum": range(1, 8), "ra_deg": 0.0, "dec_deg": 0.0, "band": "r",
                          "progress": "step1"})


def sky_vertices(ax, collection) -> list[np.ndarray]:
    """The collection's polygons as (lon, lat) arrays, through display coordinates."""
    world = ax.get_transform("world").inverted()
    polygons = []
    for path in collection.get_paths():
        display = collection.get_transform().transform(path.vertices)
        lonlat = world.transform(display)
        starts = np.flatnonzero(path.codes == path.MOVETO)
        for start, end in zip(starts, list(starts[1:]) + [len(path.codes)]):
            polygons.append(lonlat[start:end - 1])  # drop the CLOSEPOLY vertex
    return polygons


def lon_close(a, b):
    return np.abs((np.asarray(a) - np.asarray(b) + 180) % 360 - 180)


def check_map(options: MapOptions) -> int:
    figure = draw_map(SELECTION, options, footprints=FOOTPRINTS)
    ax = figure.axes[0]
    outlines = ax.skywatcher_outlines
    ra = outlines[["ra_1", "ra_2", "ra_3", "ra_4"]].to_numpy()
    dec = outlines[["dec_1", "dec_2", "dec_3", "dec_4"]].to_numpy()
    drawn: dict[int, list[np.ndarray]] = {}
    for collection in ax.skywatcher_collections:
        polygons = sky_vertices(ax, collection)
        assert len(polygons) == len(collection.skywatcher_rows)
        for row, polygon in zip(collection.skywatcher_rows, polygons):
            drawn.setdefault(int(row), []).append(polygon)
    for row, pieces in drawn.items():
        if len(pieces) == 1 and len(pieces[0]) == 4:   # drawn whole: its four corners
            lon, lat = pieces[0].T                    # (from any corner, either direction)
            orders = [np.roll(np.arange(4)[::step], shift) for step in (1, -1) for shift in range(4)]
            error = min(max(lon_close(lon[o], ra[row]).max(), np.abs(lat[o] - dec[row]).max())
                        for o in orders)
            assert error < TOL, (row, lon, lat, ra[row], dec[row])
        else:                                          # split or closed through a pole
            vertices = np.concatenate(pieces)
            for r, d in zip(ra[row], dec[row]):
                near = (lon_close(vertices[:, 0], r) < TOL) & (np.abs(vertices[:, 1] - d) < TOL)
                assert near.any(), (row, r, d)
            if options.fov_deg is None:  # the extra vertices are on the map edge or a pole
                lon0 = options.centre[0] if options.centre else 180.0
                extra = ~np.array([((lon_close(v[0], ra[row]) < TOL) & (np.abs(v[1] - dec[row]) < TOL)).any()
                                   for v in vertices])
                on_edge = lon_close(vertices[extra, 0], lon0 + 180) < 1e-5
                at_pole = np.abs(np.abs(vertices[extra, 1]) - 90) < 1e-5
                assert np.all(on_edge | at_pole)
    return len(drawn)


@pytest.mark.parametrize("projection", list(PROJECTIONS))
def test_whole_sky_round_trip(projection):
    # RA 0/360 is the edge of a map centred on RA 180: the CCDs of exposures 2 and 3 are cut
    drawn = check_map(MapOptions(projection=projection, width_px=400, height_px=250, dpi=50,
                                 galactic_plane=False, grid=False))
    assert drawn == 14
    return


def test_pole_ccd_is_closed_through_the_pole():
    figure = draw_map(SELECTION, MapOptions(projection="CAR", width_px=400, height_px=250, dpi=50),
                      footprints=FOOTPRINTS)
    ax = figure.axes[0]
    outlines = ax.skywatcher_outlines
    for expnum, pole in ((5, 90.0), (6, -90.0)):
        row = outlines.index[(outlines["expnum"] == expnum) & (outlines["ccd"] == 0)][0]
        polygons = [p for c in ax.skywatcher_collections
                    for p, r in zip(sky_vertices(ax, c), c.skywatcher_rows) if r == row]
        lat = np.concatenate(polygons)[:, 1]
        assert np.isclose(lat, pole, atol=1e-6).sum() >= 2   # the CCD reaches the pole line
        lon = np.concatenate(polygons)[:, 0]
        assert np.ptp(lon % 360) > 300                        # and covers every longitude


@pytest.mark.parametrize("projection", list(PROJECTIONS))
def test_zoom_round_trip(projection):
    # a 5 deg field across RA 0, then one on the north pole
    assert check_map(MapOptions(projection=projection, centre=(0.0, 10.0), fov_deg=5.0,
                                width_px=300, height_px=300, dpi=50, grid=False)) == 2
    assert check_map(MapOptions(projection=projection, centre=(0.0, 90.0), fov_deg=5.0,
                                width_px=300, height_px=300, dpi=50, grid=False)) == 4


def test_seam_split_pieces_are_on_both_sides():
    figure = draw_map(SELECTION, MapOptions(projection="MOL", width_px=400, height_px=250, dpi=50),
                      footprints=FOOTPRINTS)
    ax = figure.axes[0]
    nx = ax.wcs.pixel_shape[0]
    pieces = {}
    for collection in ax.skywatcher_collections:
        polygons = []
        for path in collection.get_paths():
            starts = np.flatnonzero(path.codes == path.MOVETO)
            polygons += [path.vertices[start:end, 0]
                         for start, end in zip(starts, list(starts[1:]) + [len(path.codes)])]
        for row, x in zip(collection.skywatcher_rows, polygons, strict=True):
            pieces.setdefault(int(row), []).append(x)
    outlines = ax.skywatcher_outlines
    cut = outlines.index[outlines["expnum"].isin([2, 3])]
    crossing = [row for row in cut if len(pieces[row]) == 2]
    assert crossing, "no CCD was cut by the RA 0 edge"
    for row in crossing:
        sides = sorted(np.mean(x) for x in pieces[row])
        assert sides[0] < nx * 0.1 and sides[1] > nx * 0.9   # left and right edges, not across
    # no polygon drawn whole spans the map (the artefact of an unsplit CCD)
    for row, xs in pieces.items():
        for x in xs:
            assert np.ptp(x) < nx / 4


def test_field_outline_encloses_the_ccds():
    from spica.skywatcher import field_footprints

    ccds = FOOTPRINTS[FOOTPRINTS["expnum"] == 1]
    field = field_footprints(ccds)
    assert len(field) == 1
    ra = np.concatenate([ccds[[f"ra_{i}" for i in range(1, 5)]].to_numpy().ravel()])
    dec = np.concatenate([ccds[[f"dec_{i}" for i in range(1, 5)]].to_numpy().ravel()])
    f_ra = field[[f"ra_{i}" for i in range(1, 5)]].to_numpy().ravel()
    f_dec = field[[f"dec_{i}" for i in range(1, 5)]].to_numpy().ravel()
    # the field's corners are the four outer CCD corners (to 1e-3 deg: the field's own
    # tangent plane is not the CCDs'), four different ones
    matched = set()
    for r, d in zip(f_ra, f_dec):
        distance = np.hypot((ra - r) * np.cos(np.radians(d)), dec - d)
        assert distance.min() < 1e-3
        matched.add(int(np.argmin(distance)))
    assert len(matched) == 4
