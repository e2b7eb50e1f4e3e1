"""Colours of the stars of a tile and their clustering (seed, product table and footnote 8).

For each set of three filters of a release tile, a colour-colour diagram
(``CFHTLS_W_gri_<tile>_T0002_diagcc.png`` and ``.ps``: ``g-r`` against ``r-i``)
of the stars, with the reference stellar locus over it; for each pair of
filters a colour-magnitude diagram (``_diagcm``); for each product the
angular two-point correlation function of its stars (``_wtheta``).

Stars are selected in each filter as QualityFITS-out selects them: in the
half-light-radius-magnitude plane of the product's QualityFITS-out catalogue
(``_qfo_ldac.fits``), with :func:`spica.step1.qa.measure.stellar_locus` and
:func:`spica.step1.qa.measure.classify_sources`. The stacks of one tile share
one pixel grid, so the filters are matched by pixel position. Colours are
``MAG_AUTO`` differences at each product's zero point (``MAGZERO``, default
30): the catalogue reader (:func:`spica.astromatic.sextractor.read_ldac`)
keeps one-dimensional columns only, and for point sources ``MAG_AUTO``
holds the same fraction of the flux in every filter. No extinction
correction is applied.

The reference locus (:data:`LOCUS_TABLE`) is the median SDSS locus of
Covey et al. (2007), turned into MegaCam colours with the CFHTLS colour
terms (:data:`MEGACAM_COLOUR_TERMS`). The correlation function is TreeCorr's
Landy-Szalay estimator with a random catalogue drawn over the product's
non-zero weight.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from scipy.spatial import cKDTree

from spica.astromatic.sextractor import read_ldac
from spica.paths import colour_stem
from spica.qualityfits_out.measure import DEFAULT_ZEROPOINT
from spica.step1.qa.measure import celestial_wcs, classify_sources, stellar_locus

__all__ = [
    "LOCUS_TABLE",
    "MEGACAM_COLOUR_TERMS",
    "ColourError",
    "reference_locus",
    "locus_colours",
    "locus_distance",
    "select_stars",
    "star_table",
    "read_star_table",
    "match_filters",
    "colour_colour_figures",
    "random_positions",
    "angular_correlation",
    "colour_colour_plot",
    "colour_magnitude_plot",
    "wtheta_plot",
    "make_tile_colours",
    "make_star_clustering",
]

#: The reference stellar locus: Covey et al. (2007) median SDSS colours against g-i.
LOCUS_TABLE = Path(__file__).parent / "data" / "stellar_locus.csv"

#: SDSS -> MegaCam colour terms of the CFHTLS filters (CADC, "CFHTLS filters": SNLS for
#: griz, CFHT for u; the old i filter): ``m_Mega = m_SDSS + c (b1_SDSS - b2_SDSS)``,
#: band -> (c, b1, b2).
MEGACAM_COLOUR_TERMS: dict[str, tuple[float, str, str]] = {
    "u": (-0.241, "u", "g"),
    "g": (-0.153, "g", "r"),
    "r": (-0.024, "g", "r"),
    "i": (-0.085, "r", "i"),
    "z": (0.074, "i", "z"),
}

_BANDS = "ugriz"


class ColourError(ValueError):
    """Catalogues that cannot give colours (not one grid, a filter missing...)."""


# --------------------------------------------------------------------------
# The reference locus
# --------------------------------------------------------------------------
def reference_locus(table: str | Path = LOCUS_TABLE) -> pd.DataFrame:
    """The reference stellar locus in MegaCam magnitudes, one row per node.

    Returns
    -------
    pandas.DataFrame
        Columns ``u, g, r, i, z``: MegaCam magnitudes of each node relative to
        ``r_SDSS = 0`` (only their differences, the colours, mean anything),
        ``g_i_sdss`` (the table's g-i) and ``n`` (stars in the node).
    """
    frame = pd.read_csv(table, comment="#")
    sdss = {"r": np.zeros(len(frame))}
    sdss["g"] = frame["g_r"].to_numpy(float)
    sdss["u"] = sdss["g"] + frame["u_g"].to_numpy(float)
    sdss["i"] = -frame["r_i"].to_numpy(float)
    sdss["z"] = sdss["i"] - frame["i_z"].to_numpy(float)
    mega = {b: sdss[b] + c * (sdss[b1] - sdss[b2]) for b, (c, b1, b2) in MEGACAM_COLOUR_TERMS.items()}
    return pd.DataFrame({**mega, "g_i_sdss": frame["g_i"].to_numpy(float), "n": frame["n"].to_numpy(int)})


def locus_colours(locus: Mapping[str, Any], bands: str) -> tuple[np.ndarray, np.ndarray]:
    """The two colours ``b1-b2`` and ``b2-b3`` of a locus (or of stars) for filters ``bands``."""
    if len(bands) != 3:
        raise ColourError(f"a colour-colour diagram needs three filters, got {bands!r}")
    b1, b2, b3 = bands
    m = {b: np.asarray(locus[b], float) for b in bands}
    return m[b1] - m[b2], m[b2] - m[b3]


def locus_distance(x: np.ndarray, y: np.ndarray, locus_x: np.ndarray, locus_y: np.ndarray) -> np.ndarray:
    """Perpendicular distance (mag) of each point ``(x, y)`` to the locus polyline.

    The distance to the nearest segment of the polyline through the nodes
    ``(locus_x, locus_y)`` (in their order), its ends included.
    """
    px, py = np.asarray(x, float)[:, None], np.asarray(y, float)[:, None]
    ax, ay = np.asarray(locus_x, float)[:-1], np.asarray(locus_y, float)[:-1]
    dx, dy = np.diff(np.asarray(locus_x, float)), np.diff(np.asarray(locus_y, float))
    length2 = np.where(dx * dx + dy * dy > 0, dx * dx + dy * dy, 1.0)
    t = np.clip(((px - ax) * dx + (py - ay) * dy) / length2, 0.0, 1.0)
    return np.hypot(px - (ax + t * dx), py - (ay + t * dy)).min(axis=1)


# --------------------------------------------------------------------------
# Stars of one filter, matched across filters
# --------------------------------------------------------------------------
def select_stars(catalog: Table | pd.DataFrame, *, min_snr: float) -> np.ndarray:
    """Stars of a QualityFITS-out catalogue, selected in the half-light-radius-magnitude plane.

    QualityFITS-out's selection (:func:`spica.step1.qa.measure.stellar_locus` on
    unflagged, unsaturated sources, then
    :func:`spica.step1.qa.measure.classify_sources`): sources of the stellar
    locus above ``min_snr``. Returns a boolean mask.
    """
    cat = catalog.to_pandas() if isinstance(catalog, Table) else catalog
    if len(cat) == 0:
        return np.zeros(0, bool)
    for column in ("FLUX_RADIUS", "SNR_WIN", "MAG_AUTO"):
        if column not in cat:
            raise ColourError(f"catalogue without {column}: not a QualityFITS-out catalogue")
    flags = cat["FLAGS"].to_numpy(int) if "FLAGS" in cat else np.zeros(len(cat), int)
    usable = (flags <= 3) & (cat["MAG_AUTO"].to_numpy(float) < 90)
    rh, rh_sigma = stellar_locus(cat["FLUX_RADIUS"].to_numpy(float), cat["SNR_WIN"].to_numpy(float), usable)
    return classify_sources(cat, rh, rh_sigma, min_snr) == "star"


def star_table(header: fits.Header, catalog: Table, *, min_snr: float) -> pd.DataFrame:
    """The sources of one filter: pixel and sky position, calibrated magnitude, star flag.

    Magnitudes are ``MAG_AUTO + MAGZERO`` (the QualityFITS-out catalogue is at
    zero point 0; ``MAGZERO`` of the product's header, default 30).
    """
    zeropoint = float(header.get("MAGZERO", DEFAULT_ZEROPOINT))
    cat = catalog.to_pandas()
    x = "XWIN_IMAGE" if "XWIN_IMAGE" in cat else "X_IMAGE"
    y = "YWIN_IMAGE" if "YWIN_IMAGE" in cat else "Y_IMAGE"
    for column in (x, y, "ALPHA_J2000", "DELTA_J2000"):
        if column not in cat:
            raise ColourError(f"catalogue without {column}")
    mag = cat["MAG_AUTO"].to_numpy(float)
    return pd.DataFrame({
        "x": cat[x].to_numpy(float), "y": cat[y].to_numpy(float),
        "ra": cat["ALPHA_J2000"].to_numpy(float), "dec": cat["DELTA_J2000"].to_numpy(float),
        "mag": np.where(mag < 90, mag + zeropoint, np.nan),
        "star": select_stars(cat, min_snr=min_snr),
    })


def read_star_table(ldac: str | Path, *, min_snr: float) -> tuple[fits.Header, pd.DataFrame]:
    """Read a QualityFITS-out catalogue (``_qfo_ldac.fits``): its image header and
    :func:`star_table`.

    Raises
    ------
    ColourError
        If the file holds no LDAC table.
    """
    catalogs = read_ldac(ldac)
    if not catalogs:
        raise ColourError(f"{ldac}: no LDAC_OBJECTS table")
    header, table = catalogs[0]
    return header, star_table(header, table, min_snr=min_snr)


_GRID_KEYS = ("NAXIS1", "NAXIS2", "CRPIX1", "CRPIX2", "CRVAL1", "CRVAL2")


def match_filters(tables: Mapping[str, pd.DataFrame], *, radius_pix: float,
                  headers: Mapping[str, fits.Header] | None = None) -> pd.DataFrame:
    """Match the sources of several filters of one tile by pixel position.

    Each source of the first filter is paired with the nearest source of
    every other filter within ``radius_pix``; sources found in every filter
    are kept. Columns: ``x, y, ra, dec`` (first filter), ``mag_<b>`` and
    ``star_<b>`` per filter, and ``star`` (a star in every filter).

    Raises
    ------
    ColourError
        If ``headers`` are given and the products are not on one pixel grid.
    """
    bands = list(tables)
    if headers:
        grids = {b: tuple(round(float(headers[b].get(k, math.nan)), 6) for k in _GRID_KEYS) for b in bands}
        if len(set(grids.values())) > 1:
            raise ColourError(f"the products are not on one pixel grid: {grids}")
    first = tables[bands[0]]
    keep = np.ones(len(first), bool)
    out = {key: first[key].to_numpy() for key in ("x", "y", "ra", "dec")}
    for band in bands:
        table = tables[band]
        if len(table) == 0 or len(first) == 0:
            keep[:] = False
            index = np.zeros(len(first), int)
        else:
            distance, index = cKDTree(np.column_stack([table["x"], table["y"]])).query(
                np.column_stack([first["x"], first["y"]]), distance_upper_bound=radius_pix)
            found = np.isfinite(distance)
            keep &= found
            index = np.where(found, index, 0)
        out[f"mag_{band}"] = table["mag"].to_numpy(float)[index] if len(table) else np.full(len(first), np.nan)
        out[f"star_{band}"] = table["star"].to_numpy(bool)[index] if len(table) else np.zeros(len(first), bool)
    frame = pd.DataFrame(out)[keep].reset_index(drop=True)
    frame["star"] = np.logical_and.reduce([frame[f"star_{b}"] for b in bands]) if len(frame) else []
    return frame


def colour_colour_figures(matched: pd.DataFrame, bands: str, *, locus: pd.DataFrame | None = None) -> dict[str, Any]:
    """The stars' colours in the diagram of ``bands`` and their distance to the locus.

    Returns
    -------
    dict
        ``n_stars``; ``median_distance`` (mag), the median perpendicular
        distance of the stars to the locus (NaN without stars);
        ``median_offset_x``, ``median_offset_y``: the median of each colour
        minus that of the nearest locus point; ``x``, ``y`` (the stars'
        colours) and ``locus_x``, ``locus_y``.
    """
    locus = reference_locus() if locus is None else locus
    stars = matched[matched["star"]] if len(matched) else matched
    mags = {b: stars[f"mag_{b}"].to_numpy(float) if len(stars) else np.zeros(0) for b in bands}
    x, y = locus_colours(mags, bands)
    good = np.isfinite(x) & np.isfinite(y)
    x, y = x[good], y[good]
    lx, ly = locus_colours(locus, bands)
    result: dict[str, Any] = {"n_stars": int(x.size), "x": x, "y": y, "locus_x": lx, "locus_y": ly,
                              "median_distance": math.nan, "median_offset_x": math.nan,
                              "median_offset_y": math.nan}
    if x.size:
        distance = locus_distance(x, y, lx, ly)
        # offsets from the nearest point of a finely resampled locus
        s = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(lx), np.diff(ly)))])
        fine = np.linspace(0.0, s[-1], 2000)
        fx, fy = np.interp(fine, s, lx), np.interp(fine, s, ly)
        nearest = np.argmin(np.hypot(x[:, None] - fx, y[:, None] - fy), axis=1)
        result.update(median_distance=float(np.median(distance)),
                      median_offset_x=float(np.median(x - fx[nearest])),
                      median_offset_y=float(np.median(y - fy[nearest])))
    return result


# --------------------------------------------------------------------------
# Angular correlation function (TreeCorr)
# --------------------------------------------------------------------------
def random_positions(weight: np.ndarray, wcs: WCS, n: int, rng: np.random.Generator,
                     *, max_rounds: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """``n`` positions (RA, Dec in degrees) uniform over the pixels of non-zero weight.

    Pixels are drawn uniformly and kept where the weight is positive (the weight
    may be a memory-mapped array: only the drawn pixels are read).

    Raises
    ------
    ColourError
        If the weight map has no positive pixel among the draws.
    """
    ny, nx = weight.shape
    xs, ys = [], []
    count = 0
    for _ in range(max_rounds):
        x = rng.uniform(-0.5, nx - 0.5, max(2 * (n - count), 64))
        y = rng.uniform(-0.5, ny - 0.5, x.size)
        good = np.asarray(weight[np.rint(y).astype(int), np.rint(x).astype(int)]) > 0
        xs.append(x[good])
        ys.append(y[good])
        count += int(good.sum())
        if count >= n:
            break
    if count == 0:
        raise ColourError("no pixel of positive weight: no area to draw random positions in")
    x, y = np.concatenate(xs)[:n], np.concatenate(ys)[:n]
    ra, dec = wcs.all_pix2world(x, y, 0)
    return np.asarray(ra, float), np.asarray(dec, float)


def angular_correlation(ra: np.ndarray, dec: np.ndarray, random_ra: np.ndarray, random_dec: np.ndarray, *,
                        theta_min_arcmin: float, theta_max_arcmin: float, nbins: int) -> dict[str, np.ndarray]:
    """The angular two-point correlation function w(theta), TreeCorr's Landy-Szalay estimator.

    Parameters
    ----------
    ra, dec : array
        The objects (degrees).
    random_ra, random_dec : array
        A random catalogue over the same area (degrees).
    theta_min_arcmin, theta_max_arcmin, nbins
        Logarithmic bins of separation.

    Returns
    -------
    dict
        ``theta_arcmin`` (mean separation of the pairs of each bin), ``w``,
        ``sigma`` (shot-noise error), ``npairs`` (data-data pairs).
    """
    import treecorr

    def catalogue(r: np.ndarray, d: np.ndarray) -> Any:
        return treecorr.Catalog(ra=np.asarray(r, float), dec=np.asarray(d, float), ra_units="deg", dec_units="deg")

    config = {"min_sep": theta_min_arcmin, "max_sep": theta_max_arcmin, "nbins": nbins, "sep_units": "arcmin",
              "var_method": "shot", "num_threads": 1, "verbose": 0}
    data, randoms = catalogue(ra, dec), catalogue(random_ra, random_dec)
    dd, rr, dr = (treecorr.NNCorrelation(config) for _ in range(3))
    dd.process(data)
    rr.process(randoms)
    dr.process(data, randoms)
    w, variance = dd.calculateXi(rr=rr, dr=dr)
    theta = np.where(dd.npairs > 0, np.exp(dd.meanlogr), np.exp(dd.logr))
    return {"theta_arcmin": np.asarray(theta, float), "w": np.asarray(w, float),
            "sigma": np.sqrt(np.asarray(variance, float)), "npairs": np.asarray(dd.npairs, float)}


# --------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------
def _pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (imported when a plot is drawn)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _title(ax: Any, title: str) -> None:
    from spica.plotting import fit_title

    fit_title(ax, title, 9)


def _save(fig: Any, paths: Sequence[str | Path]) -> None:
    from spica.plotting import save_figure

    save_figure(fig, list(paths))


def colour_colour_plot(figures: Mapping[str, Any], bands: str, paths: Sequence[str | Path], *, title: str,
                       tolerance: float) -> None:
    """The stars' ``b1-b2`` against ``b2-b3`` with the reference locus; the number of
    stars and their median distance to the locus (flagged above ``tolerance``) printed."""
    plt = _pyplot()
    b1, b2, b3 = bands
    fig, ax = plt.subplots(figsize=(6, 4.5))
    fig.subplots_adjust(left=0.12, right=0.96, bottom=0.11, top=0.92)
    ax.scatter(figures["x"], figures["y"], s=4, c="k", label=f"stars ({figures['n_stars']})")
    ax.plot(figures["locus_x"], figures["locus_y"], "-", color="tab:red", lw=1.5,
            label="reference locus (Covey et al. 2007, MegaCam)")
    distance = figures["median_distance"]
    verdict = "no stars" if not np.isfinite(distance) else ("ok" if distance <= tolerance else "OFF THE LOCUS")
    ax.text(0.03, 0.97, f"median distance to the locus {distance:.3f} mag ({verdict})\n"
            f"median offset {figures['median_offset_x']:+.3f}, {figures['median_offset_y']:+.3f} mag",
            transform=ax.transAxes, va="top", fontsize=8)
    ax.set_xlabel(f"{b1} - {b2}")
    ax.set_ylabel(f"{b2} - {b3}")
    if figures["n_stars"]:
        x, y = np.asarray(figures["x"]), np.asarray(figures["y"])
        ax.set_xlim(np.nanpercentile(x, 0.5) - 0.3, np.nanpercentile(x, 99.5) + 0.3)
        ax.set_ylim(np.nanpercentile(y, 0.5) - 0.3, np.nanpercentile(y, 99.5) + 0.3)
    ax.legend(loc="lower right", fontsize=7, framealpha=1)
    _title(ax, title)
    _save(fig, paths)


def colour_magnitude_plot(matched: pd.DataFrame, pair: str, paths: Sequence[str | Path], *, title: str) -> int:
    """``b2`` against ``b1-b2``: every source found in both filters, stars in colour.
    Returns the number of stars."""
    plt = _pyplot()
    b1, b2 = pair
    colour = matched[f"mag_{b1}"] - matched[f"mag_{b2}"] if len(matched) else pd.Series(dtype=float)
    mag = matched[f"mag_{b2}"] if len(matched) else pd.Series(dtype=float)
    star = matched["star"].to_numpy(bool) if len(matched) else np.zeros(0, bool)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    fig.subplots_adjust(left=0.12, right=0.96, bottom=0.11, top=0.92)
    ax.scatter(colour[~star], mag[~star], s=3, c="0.6", label=f"other sources ({int((~star).sum())})")
    ax.scatter(colour[star], mag[star], s=5, c="tab:blue", label=f"stars ({int(star.sum())})")
    ax.invert_yaxis()
    ax.set_xlabel(f"{b1} - {b2}")
    ax.set_ylabel(b2)
    ax.legend(loc="lower left", fontsize=7, framealpha=1)
    _title(ax, title)
    _save(fig, paths)
    return int(star.sum())


def wtheta_plot(result: Mapping[str, np.ndarray] | None, n_stars: int, paths: Sequence[str | Path], *,
                title: str) -> None:
    """w(theta) of the stars with its shot-noise errors, log separation axis."""
    plt = _pyplot()
    import matplotlib.ticker

    fig, ax = plt.subplots(figsize=(6, 4.5))
    fig.subplots_adjust(left=0.12, right=0.96, bottom=0.11, top=0.92)
    if result is not None:
        ax.errorbar(result["theta_arcmin"], result["w"], yerr=result["sigma"], fmt="o", ms=4,
                    label=f"stars ({n_stars}), Landy-Szalay (TreeCorr)")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.legend(loc="upper right", fontsize=7, framealpha=1)
    else:
        ax.text(0.5, 0.5, f"too few stars ({n_stars})", transform=ax.transAxes, ha="center")
    ax.axhline(0.0, color="0.5", lw=0.8)
    ax.set_xlabel("theta (arcmin)")
    ax.set_ylabel("w(theta)")
    _title(ax, title)
    _save(fig, paths)


# --------------------------------------------------------------------------
# The rules' jobs
# --------------------------------------------------------------------------
def make_tile_colours(catalogues: Mapping[str, str | Path], outputs: Mapping[str, Sequence[str | Path]], *,
                      settings: Mapping[str, Any], tile: str) -> dict[str, dict[str, Any]]:
    """Every colour diagram of a release tile (rules ``plot_tile_colours_<n>``): the
    colour-colour diagram of each set of three of its filters, the colour-magnitude
    diagram of each pair, each catalogue read once.

    One job per tile instead of one per diagram: a five-filter tile has twenty
    diagrams, and at survey scale the jobs of the diagrams were a sixth of a release's
    (issue 10, section 5).

    Parameters
    ----------
    catalogues
        Band -> QualityFITS-out catalogue of the tile's product in that band.
    outputs
        Filters of a diagram (``gri``: colour-colour, ``ri``: colour-magnitude) -> the
        PNG and PS files to write; each diagram's filters are some of ``catalogues``'.
    settings
        ``qualityfits_out.colours`` of the configuration.
    tile
        The tile's name (``CFHTLS_D_ugriz_141927+524056_T0002``); each diagram's title
        is its stem (:func:`spica.paths.colour_stem`).

    Returns
    -------
    dict
        Filters -> the diagram's figures: ``n_stars``, ``median_distance``,
        ``median_offset_x``, ``median_offset_y`` (mag) for a colour-colour diagram;
        ``n_sources`` (found in both filters) and ``n_stars`` for a colour-magnitude one.

    Raises
    ------
    ColourError
        A diagram of filters that are not distinct, in ``ugriz`` order and all among
        ``catalogues``.
    """
    read = {band: read_star_table(path, min_snr=float(settings["min_snr"])) for band, path in catalogues.items()}
    radius, results = float(settings["match_radius_pix"]), {}
    for bands, files in outputs.items():
        if len(bands) not in (2, 3) or bands != "".join(b for b in _BANDS if b in bands) \
                or not set(bands) <= set(read) or len(set(bands)) != len(bands):
            raise ColourError(f"{tile}: no diagram of filters {bands!r} (catalogues of {sorted(read)})")
        matched = match_filters({b: read[b][1] for b in bands}, radius_pix=radius,
                                headers={b: read[b][0] for b in bands})
        title = colour_stem(tile, bands)
        if len(bands) == 3:
            figures = colour_colour_figures(matched, bands)
            colour_colour_plot(figures, bands, files, title=title, tolerance=float(settings["locus_tolerance_mag"]))
            results[bands] = {key: figures[key] for key in
                              ("n_stars", "median_distance", "median_offset_x", "median_offset_y")}
        else:
            n_stars = colour_magnitude_plot(matched, bands, files, title=title)
            results[bands] = {"n_sources": int(len(matched)), "n_stars": n_stars}
    return results


def make_star_clustering(catalogue: str | Path, weight: str | Path, outputs: Sequence[str | Path], *,
                         settings: Mapping[str, Any], title: str) -> dict[str, Any]:
    """w(theta) of a product's stars (part of rule ``assess_product_quality``).

    The stars of the product's QualityFITS-out catalogue (:func:`select_stars`
    at ``settings["min_snr"]``) against ``randoms_per_star`` random positions
    per star over its non-zero weight (:func:`random_positions`, seeded).

    Returns
    -------
    dict
        ``n_stars``, ``theta_arcmin``, ``w``, ``sigma`` (lists; empty with fewer
        than 10 stars).
    """
    header, table = read_star_table(catalogue, min_snr=float(settings["min_snr"]))
    stars = table[table["star"]]
    wcs = celestial_wcs(header)
    if wcs is None:
        raise ColourError(f"{catalogue}: no celestial WCS in the image header")
    result = None
    if len(stars) >= 10:
        spec = settings["wtheta"]
        with fits.open(weight, memmap=True) as hdul:
            data = hdul[0].data
            if data is None or data.shape != (int(header["NAXIS2"]), int(header["NAXIS1"])):
                raise ColourError(f"{weight}: weight map does not match the catalogue's image")
            rng = np.random.default_rng(int(spec["seed"]))
            random_ra, random_dec = random_positions(data, wcs, int(spec["randoms_per_star"]) * len(stars), rng)
        result = angular_correlation(stars["ra"].to_numpy(), stars["dec"].to_numpy(), random_ra, random_dec,
                                     theta_min_arcmin=float(spec["theta_min_arcmin"]),
                                     theta_max_arcmin=float(spec["theta_max_arcmin"]), nbins=int(spec["nbins"]))
    wtheta_plot(result, len(stars), outputs, title=title)
    out: dict[str, Any] = {"n_stars": int(len(stars))}
    for key in ("theta_arcmin", "w", "sigma"):
        out[key] = [] if result is None else [float(v) for v in result[key]]
    return out
