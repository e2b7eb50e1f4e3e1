"""Completeness of a release product from simulated stars (seed 6.1: "adding simulated
stars to a sub-area of each stacked image", then SExtractor).

:func:`measure_completeness` cuts the central sub-area of the product (a
copy: the product is never written, and only the sub-area of it and of its
weight map is read, :func:`subarea`), runs SExtractor on it with the release
catalogue's settings (``config/astromatic/release.sex``, single-image mode,
the product's own weight map; of the release parameter file, the columns it
reads, :data:`CATALOGUE_COLUMNS`), then, run after run, adds stars drawn with the
product's own PSFEx model (the model's constant term: the PSF at the centre
of the product's stars) on a grid of magnitudes to a fresh copy of the
cut-out (only where its weight is not zero: the completeness of the imaged
area, not of the gaps), runs SExtractor again and counts the stars it recovers. The
recovered fraction against magnitude gives the 50 % and 80 % completeness
magnitudes: where a logistic curve with a bright plateau, fitted to the
recovered counts (binomial weights), crosses 50 % and 80 %
(:func:`fit_completeness`); a noisy bin cannot fake an early crossing. When
the fit fails, the first crossing of the measured fractions, linearly
interpolated (:func:`completeness_magnitude`).

The pure functions (:func:`injection_positions`, :func:`add_stars`,
:func:`match_injected`, :func:`completeness_curve`,
:func:`completeness_magnitude`) work on arrays. The stars carry no photon
noise of their own: near the completeness limit the sky noise dominates.

``<stem>_comptness.fits`` keeps what was measured:

* HDU 1 ``INJECTED``: one row per star (run, x, y, ra, dec, mag, recovered, mag_auto);
* HDU 2 ``CURVE``: magnitude, injected, recovered, fraction;
* HDU 3 ``BASELINE``: the SExtractor detections of the cut-out without
  simulated stars (ra, dec, x, y, mag_auto), for checks against a truth;
* HDU 0 header: ``M50``, ``M80``, the cut-out's place (``SUBX0``, ``SUBY0``,
  ``SUBNX``, ``SUBNY``, 0-based, in product pixels), its WCS, ``PSFFWHM``.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from scipy.ndimage import shift as subpixel_shift
from scipy.ndimage import zoom
from scipy.spatial import cKDTree

from spica.astromatic import sextractor
from spica.astromatic.psfex import read_psf_models
from spica.qualityfits_out.figures import DEFAULT_ZEROPOINT

__all__ = [
    "CompletenessSettings",
    "magnitude_grid",
    "injection_positions",
    "add_stars",
    "match_injected",
    "completeness_curve",
    "completeness_magnitude",
    "fit_completeness",
    "completeness_magnitudes",
    "psf_stamp",
    "subarea",
    "CATALOGUE_COLUMNS",
    "catalogue_parameters",
    "measure_completeness",
    "read_completeness",
]

#: Keys of config ``qualityfits_out.completeness`` (see the schema).
CompletenessSettings = Mapping[str, Any]

#: The release catalogue's columns the completeness reads. Its SExtractor runs ask for
#: these only: the other columns of the release parameter file change no detection
#: and no MAG_AUTO, and cost 40 % of each run (issue 12).
CATALOGUE_COLUMNS = ("NUMBER", "X_IMAGE", "Y_IMAGE", "ALPHA_J2000", "DELTA_J2000", "MAG_AUTO")


def magnitude_grid(mag_min: float, mag_max: float, step: float) -> np.ndarray:
    """The injected magnitudes, ``mag_min`` to ``mag_max`` inclusive by ``step``.

    Raises
    ------
    ValueError
        If the range is empty or the step not positive.
    """
    if not step > 0 or not mag_max >= mag_min:
        raise ValueError(f"bad magnitude grid {mag_min}..{mag_max} by {step}")
    return np.round(np.arange(mag_min, mag_max + step / 2, step), 6)


def injection_positions(
    shape: tuple[int, int], *, spacing: float, margin: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Positions (0-based x, y) of one run's stars: a square grid ``spacing`` apart,
    shifted as a whole by a random offset, each star jittered by up to a tenth of
    the spacing, ``margin`` pixels from the edges, in random order.

    Raises
    ------
    ValueError
        If not a single star fits.
    """
    ny, nx = shape
    offset = rng.uniform(0, spacing, 2)
    xs = np.arange(margin + offset[0], nx - margin, spacing)
    ys = np.arange(margin + offset[1], ny - margin, spacing)
    if xs.size == 0 or ys.size == 0:
        raise ValueError(f"no room for stars {spacing:.1f} px apart in a {nx}x{ny} cut-out")
    x, y = (a.ravel() for a in np.meshgrid(xs, ys))
    jitter = rng.uniform(-0.1 * spacing, 0.1 * spacing, (2, x.size))
    order = rng.permutation(x.size)
    return (x + jitter[0])[order], (y + jitter[1])[order]


def psf_stamp(model: np.ndarray, sampling: float = 1.0) -> np.ndarray:
    """A PSFEx model image on the product's pixel grid, normalised to a sum of 1.

    A model sampled every ``sampling`` pixels (PSFEx ``PSF_SAMP``) is resampled
    first (cubic spline).

    Raises
    ------
    ValueError
        If the model holds no positive flux.
    """
    stamp = np.asarray(model, float)
    if not math.isclose(sampling, 1.0, rel_tol=1e-6):
        stamp = zoom(stamp, sampling, order=3)
        if stamp.shape[0] % 2 == 0:  # keep the centre on a pixel
            stamp = stamp[:-1, :-1]
    stamp = np.where(np.isfinite(stamp), stamp, 0.0)
    total = stamp.sum()
    if not total > 0:
        raise ValueError("the PSF model holds no positive flux")
    return stamp / total


def add_stars(image: np.ndarray, stamp: np.ndarray, x: np.ndarray, y: np.ndarray, flux: np.ndarray) -> None:
    """Add ``flux`` times the PSF ``stamp`` centred at each (x, y) (0-based) to ``image``
    in place; sub-pixel positions by a cubic-spline shift of the stamp; stars are
    clipped at the image edges."""
    half = stamp.shape[0] // 2
    ny, nx = image.shape
    for xc, yc, f in zip(np.asarray(x, float), np.asarray(y, float), np.asarray(flux, float)):
        ix, iy = int(round(xc)), int(round(yc))
        shifted = subpixel_shift(stamp, (yc - iy, xc - ix), order=3, mode="constant") * f
        x0, y0 = ix - half, iy - half
        sx0, sy0 = max(0, -x0), max(0, -y0)
        x1, y1 = min(nx, x0 + stamp.shape[1]), min(ny, y0 + stamp.shape[0])
        if x1 <= max(x0, 0) or y1 <= max(y0, 0):
            continue
        image[max(y0, 0):y1, max(x0, 0):x1] += shifted[sy0:sy0 + y1 - max(y0, 0), sx0:sx0 + x1 - max(x0, 0)]


def match_injected(
    x: np.ndarray, y: np.ndarray, mag: np.ndarray, detections: Table, *, radius: float, max_dmag: float
) -> tuple[np.ndarray, np.ndarray]:
    """Which injected stars a catalogue recovers: a detection within ``radius``
    pixels (``X_IMAGE``, ``Y_IMAGE``, 1-based) whose ``MAG_AUTO`` (calibrated) is
    within ``max_dmag`` of the injected magnitude.

    Returns
    -------
    recovered : numpy.ndarray of bool
    mag_auto : numpy.ndarray
        The nearest acceptable detection's magnitude (NaN if none).
    """
    x, y, mag = (np.asarray(a, float) for a in (x, y, mag))
    recovered = np.zeros(x.size, bool)
    found = np.full(x.size, np.nan)
    if len(detections) == 0 or x.size == 0:
        return recovered, found
    tree = cKDTree(np.column_stack([np.asarray(detections["X_IMAGE"], float) - 1,
                                    np.asarray(detections["Y_IMAGE"], float) - 1]))
    det_mag = np.asarray(detections["MAG_AUTO"], float)
    for k, near in enumerate(tree.query_ball_point(np.column_stack([x, y]), radius)):
        good = [j for j in near if abs(det_mag[j] - mag[k]) <= max_dmag]
        if good:
            best = min(good, key=lambda j: abs(det_mag[j] - mag[k]))
            recovered[k], found[k] = True, det_mag[best]
    return recovered, found


def completeness_curve(mags: np.ndarray, recovered: np.ndarray, grid: np.ndarray) -> Table:
    """Injected and recovered counts and the recovered fraction at each grid magnitude."""
    mags, recovered = np.asarray(mags, float), np.asarray(recovered, bool)
    injected = np.array([np.count_nonzero(np.isclose(mags, m)) for m in grid])
    found = np.array([np.count_nonzero(np.isclose(mags, m) & recovered) for m in grid])
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(injected > 0, found / injected, np.nan)
    return Table({"magnitude": np.asarray(grid, float), "injected": injected, "recovered": found,
                  "fraction": fraction})


def completeness_magnitude(magnitude: Sequence[float], fraction: Sequence[float], level: float) -> float:
    """Magnitude at which the completeness falls to ``level`` (0-1).

    Scanning bright to faint, the first grid step from a fraction >= ``level``
    to one below it, interpolated linearly. NaN if the curve never reaches
    ``level`` or never falls below it.
    """
    m = np.asarray(magnitude, float)
    f = np.asarray(fraction, float)
    ok = np.isfinite(f)
    m, f = m[ok], f[ok]
    order = np.argsort(m)
    m, f = m[order], f[order]
    for k in range(1, m.size):
        if f[k - 1] >= level > f[k]:
            return float(m[k - 1] + (f[k - 1] - level) / (f[k - 1] - f[k]) * (m[k] - m[k - 1]))
    return math.nan


def fit_completeness(magnitude: Sequence[float], injected: Sequence[int], recovered: Sequence[int]
                     ) -> tuple[float, float, float] | None:
    """Fit ``f(m) = A / (1 + exp((m - m0) / w))`` to recovered / injected counts.

    Returns
    -------
    tuple of float or None
        ``(A, m0, w)``, or None if the fit fails or is not a falling curve.
    """
    from scipy.optimize import curve_fit

    m = np.asarray(magnitude, float)
    n = np.asarray(injected, float)
    k = np.asarray(recovered, float)
    ok = n > 0
    if np.count_nonzero(ok) < 4:
        return None
    m, n, k = m[ok], n[ok], k[ok]
    f = k / n
    p = np.clip(f, 0.05, 0.95)  # binomial errors, kept finite at 0 and 1
    sigma = np.sqrt(p * (1 - p) / n)
    start = (max(f.max(), 0.05), float(m[np.argmin(np.abs(f - 0.5 * f.max()))]), 0.2)
    try:
        (a, m0, w), _ = curve_fit(lambda x, a, m0, w: a / (1 + np.exp((x - m0) / w)), m, f, p0=start,
                                  sigma=sigma, bounds=([0.0, m.min() - 5, 0.01], [1.0, m.max() + 5, 5.0]))
    except (RuntimeError, ValueError):
        return None
    return float(a), float(m0), float(w)


def completeness_magnitudes(magnitude: Sequence[float], injected: Sequence[int], recovered: Sequence[int],
                            levels: Sequence[float] = (0.5, 0.8)) -> list[float]:
    """Magnitudes at which the completeness falls to each of ``levels`` (0-1): on the
    :func:`fit_completeness` curve (NaN where its plateau stays below the level), or,
    if the fit fails, by :func:`completeness_magnitude` on the measured fractions."""
    fit = fit_completeness(magnitude, injected, recovered)
    if fit is None:
        n = np.asarray(injected, float)
        with np.errstate(invalid="ignore", divide="ignore"):
            fraction = np.where(n > 0, np.asarray(recovered, float) / n, np.nan)
        return [completeness_magnitude(magnitude, fraction, level) for level in levels]
    a, m0, w = fit
    return [float(m0 + w * math.log(a / level - 1)) if a > level else math.nan for level in levels]


def subarea(ny: int, nx: int, fraction: float) -> tuple[tuple[int, int], tuple[int, int]]:
    """The central sub-area of an ``nx x ny`` image, ``fraction`` of each side (at least
    one pixel): ``((y0, y1), (x0, x1))``, 0-based, end excluded (the cut-out of
    :class:`astropy.nddata.Cutout2D` centred on the image centre)."""
    bounds = []
    for n in (ny, nx):
        size = min(n, max(1, int(round(n * fraction))))
        start = int(math.ceil((n - 1) / 2 - size / 2))
        bounds.append((start, start + size))
    return bounds[0], bounds[1]


def catalogue_parameters(param: str | Path) -> str:
    """The text of a SExtractor parameter file asking for :data:`CATALOGUE_COLUMNS` only,
    checked against the release catalogue's parameter file ``param``.

    Raises
    ------
    ValueError
        If ``param`` lacks one of them.
    """
    names = {line.split("#")[0].strip() for line in Path(param).read_text().splitlines()}
    missing = [name for name in CATALOGUE_COLUMNS if name not in names]
    if missing:
        raise ValueError(f"{param}: no {', '.join(missing)}: the completeness cannot match its stars")
    return "\n".join(CATALOGUE_COLUMNS) + "\n"


def _section(path: str | Path, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """Pixels ``[y0:y1, x0:x1]`` of a single-image FITS file (float32), read through
    a memory map: the rest of the image is never read."""
    with fits.open(path, memmap=True) as hdul:
        return np.array(hdul[0].data[y0:y1, x0:x1], dtype=np.float32)


def _catalogue(path: Path) -> Table:
    with fits.open(path, memmap=False) as hdul:
        objects = next(h for h in hdul if h.name == "LDAC_OBJECTS")
        names = [c.name for c in objects.columns if len(objects.data[c.name].shape) <= 1]
        return Table({n: np.asarray(objects.data[n]) for n in names})


def measure_completeness(
    *,
    image: str | Path,
    weight: str | Path,
    psf: str | Path,
    binary: str,
    config: str | Path,
    param: str | Path,
    conv: str | Path,
    nnw: str | Path,
    options: Mapping[str, Any],
    settings: CompletenessSettings,
    pixel_scale: float,
    out: str | Path,
    log: Any = None,
) -> dict[str, float]:
    """Measure a product's completeness and write ``_comptness.fits`` (module docstring).

    Parameters
    ----------
    image, weight : path
        The product and its weight map (read only).
    psf : path
        The product's PSFEx model (``_protopsf.fits``).
    binary, config, param, conv, nnw : str or path
        SExtractor and the release catalogue's configuration files (of ``param``, the
        columns :data:`CATALOGUE_COLUMNS` only).
    options : mapping
        Options on top of ``config`` (apertures, BACK_SIZE...); the run adds
        ``WEIGHT_TYPE MAP_WEIGHT`` (one image) and ``SEEING_FWHM`` (the model's).
    settings : mapping
        Config ``qualityfits_out.completeness``.
    pixel_scale : float
        Arcsec per pixel (for the match radius).
    out : path
        The ``_comptness.fits`` to write.
    log : file, optional
        Receives SExtractor's output.

    Returns
    -------
    dict
        ``m50``, ``m80``, ``n_injected``, ``n_recovered``, ``psf_fwhm_arcsec``.

    Raises
    ------
    ValueError
        If the PSF model is missing or empty.
    """
    models = read_psf_models(psf)
    if not models or models[0][1] is None:
        raise ValueError(f"{psf}: no usable PSF model, completeness not measured")
    figures, model = models[0]
    stamp = psf_stamp(model, figures.get("PSF_SAMP", 1.0))
    fwhm_px = float(figures.get("PSF_FWHM", 4.0))
    header = fits.getheader(image)
    zeropoint = float(header.get("MAGZERO", DEFAULT_ZEROPOINT))
    (y0, y1), (x0, x1) = subarea(int(header["NAXIS2"]), int(header["NAXIS1"]),
                                 float(settings["subarea_fraction"]))
    cut_data = _section(image, y0, y1, x0, x1)  # only the sub-area is read (memory-mapped)
    cut_weight = _section(weight, y0, y1, x0, x1)
    if cut_weight.shape != cut_data.shape:
        raise ValueError(f"{weight}: weight map does not cover the sub-area of {image}")
    cut_wcs = WCS(header, naxis=2).slice((slice(y0, y1), slice(x0, x1)))
    cut_header = header.copy()
    for key in ("CRPIX1", "CRPIX2"):
        cut_header.remove(key, ignore_missing=True)
    cut_header.update(cut_wcs.to_header())
    cut_header["MAGZERO"] = zeropoint

    grid = magnitude_grid(float(settings["mag_min"]), float(settings["mag_max"]), float(settings["mag_step"]))
    rng = np.random.default_rng(int(settings["seed"]))
    run_options = {**options, "WEIGHT_TYPE": "MAP_WEIGHT", "MAG_ZEROPOINT": zeropoint,
                   "SEEING_FWHM": round(fwhm_px * pixel_scale, 3), "CATALOG_TYPE": "FITS_LDAC"}
    radius = float(settings["match_radius_arcsec"]) / pixel_scale
    work = Path(tempfile.mkdtemp(prefix="comptness-", dir=Path(out).parent))
    rows = []
    try:
        weight_path, param_path = work / "weight.fits", work / "completeness.param"
        fits.writeto(weight_path, cut_weight, cut_header, overwrite=True)
        param_path.write_text(catalogue_parameters(param))

        def extract(data: np.ndarray, label: str) -> Table:
            image_path, catalog = work / f"{label}.fits", work / f"{label}_ldac.fits"
            fits.writeto(image_path, data, cut_header, overwrite=True)
            sextractor.run(binary, images=image_path, config=config, param=param_path, conv=conv, nnw=nnw,
                           weights=weight_path, catalog=catalog, xml_out=work / f"{label}.xml",
                           options=run_options, log=log)  # release.sex writes XML: keep it in the scratch
            return _catalogue(catalog)

        baseline = extract(cut_data, "baseline")
        for run in range(int(settings["runs"])):
            x, y = injection_positions(cut_data.shape, spacing=float(settings["spacing_fwhm"]) * fwhm_px,
                                       margin=stamp.shape[0], rng=rng)
            imaged = cut_weight[np.round(y).astype(int), np.round(x).astype(int)] > 0
            x, y = x[imaged], y[imaged]  # the completeness of the imaged area: no star in a gap
            mags = np.resize(rng.permutation(grid), x.size)
            copy = cut_data.copy()
            add_stars(copy, stamp, x, y, 10 ** (-0.4 * (mags - zeropoint)))
            found, mag_auto = match_injected(x, y, mags, extract(copy, f"run{run}"), radius=radius,
                                             max_dmag=float(settings["max_mag_difference"]))
            sky = cut_wcs.pixel_to_world_values(x, y)
            rows.append(Table({"run": np.full(x.size, run), "x": x + x0, "y": y + y0,
                               "ra": sky[0], "dec": sky[1], "mag": mags, "recovered": found,
                               "mag_auto": mag_auto}))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    injected = Table(np.hstack([t.as_array() for t in rows]))
    curve = completeness_curve(injected["mag"], injected["recovered"], grid)
    m50, m80 = completeness_magnitudes(curve["magnitude"], curve["injected"], curve["recovered"])
    result = {
        "m50": m50,
        "m80": m80,
        "n_injected": int(len(injected)),
        "n_recovered": int(np.count_nonzero(injected["recovered"])),
        "psf_fwhm_arcsec": fwhm_px * pixel_scale,
    }
    primary = fits.PrimaryHDU(header=cut_wcs.to_header())
    for key, value, comment in [
        ("M50", result["m50"], "[mag] 50 % completeness magnitude"),
        ("M80", result["m80"], "[mag] 80 % completeness magnitude"),
        ("PSFFWHM", result["psf_fwhm_arcsec"], "[arcsec] FWHM of the injected PSF model"),
        ("MAGZERO", zeropoint, "zero point of the product"),
        ("SUBX0", int(x0), "cut-out origin x (0-based product pixels)"),
        ("SUBY0", int(y0), "cut-out origin y (0-based product pixels)"),
        ("SUBNX", int(cut_data.shape[1]), "cut-out width"),
        ("SUBNY", int(cut_data.shape[0]), "cut-out height"),
        ("MATCHRAD", float(settings["match_radius_arcsec"]), "[arcsec] recovery radius"),
        ("MAXDMAG", float(settings["max_mag_difference"]), "[mag] recovery magnitude tolerance"),
    ]:
        primary.header[key] = (value if not (isinstance(value, float) and math.isnan(value)) else -99.0, comment)
    baseline_table = Table({
        "ra": np.asarray(baseline["ALPHA_J2000"], float), "dec": np.asarray(baseline["DELTA_J2000"], float),
        "x": np.asarray(baseline["X_IMAGE"], float) - 1 + x0, "y": np.asarray(baseline["Y_IMAGE"], float) - 1 + y0,
        "mag_auto": np.asarray(baseline["MAG_AUTO"], float),
    })
    hdus = [primary]
    for name, table in (("INJECTED", injected), ("CURVE", curve), ("BASELINE", baseline_table)):
        hdu = fits.table_to_hdu(table)
        hdu.name = name
        hdus.append(hdu)
    fits.HDUList(hdus).writeto(out, overwrite=True)
    return result


def read_completeness(path: str | Path) -> dict[str, object]:
    """Read a ``_comptness.fits`` back: ``m50``, ``m80`` (NaN when not reached),
    ``curve``, ``injected`` and ``baseline`` tables and the primary ``header``."""
    with fits.open(path, memmap=False) as hdul:
        header = hdul[0].header.copy()
        tables = {name: Table(hdul[name].data) for name in ("INJECTED", "CURVE", "BASELINE")}

    def value(key: str) -> float:
        v = float(header.get(key, -99.0))
        return math.nan if v == -99.0 else v

    return {"m50": value("M50"), "m80": value("M80"), "curve": tables["CURVE"],
            "injected": tables["INJECTED"], "baseline": tables["BASELINE"], "header": header}
