"""Defects of one exposure: saturation, cosmic rays, satellite trails.

Step 1 (QualityFITS-in) builds the weight and flag maps of an exposure with
WeightWatcher from four inputs (see ``config/astromatic/step1.ww`` and
:mod:`spica.astromatic.weightwatcher`):

- the Elixir flat field (weight-type input; outside ``flat_range`` -> bit 16),
- the Elixir bad-pixel mask (weight-type input, 1 = good; below 0.5 -> bit 1),
- the *defect map* written here (flag-type input, bits 2, 4, 8, 32 passed
  through unchanged).

The defect map carries everything that depends on the exposure's own pixels:
saturation (``>= SATURATE`` of *each* CCD: WeightWatcher thresholds are one
number per input file, not per extension, and MegaCam's SATURATE differs from
CCD to CCD), cosmic rays (astroscrappy, i.e. L.A.Cosmic), satellite trails
(acstools' median Radon transform) and non-finite pixels.

Array functions here are pure; :func:`write_defect_map` is the I/O edge.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from spica import headers

__all__ = [
    "FLAG_BITS",
    "DEFECT_MAP_BITS",
    "flag_meaning",
    "saturation_mask",
    "detect_cosmics",
    "detect_trails",
    "defect_flags",
    "write_defect_map",
]

#: Bits of the final 8-bit flag map ``NNNNNNp_flag.fits``. The weight is 0
#: wherever any bit is set.
FLAG_BITS: dict[str, int] = {
    "bad_pixel": 1,  # Elixir bad-pixel mask (0 = bad)
    "saturated": 2,  # pixel >= SATURATE of its CCD
    "cosmic_ray": 4,  # astroscrappy (L.A.Cosmic)
    "trail": 8,  # satellite / aircraft trail (median Radon transform)
    "flat_range": 16,  # flat field outside flat_range: dead, hot, vignetted
    "nonfinite": 32,  # NaN or infinite pixel in the image
}

#: Bits that :func:`defect_flags` / :func:`write_defect_map` set; the other
#: two (1 and 16) come from WeightWatcher's weight-type inputs.
DEFECT_MAP_BITS: tuple[int, ...] = (
    FLAG_BITS["saturated"],
    FLAG_BITS["cosmic_ray"],
    FLAG_BITS["trail"],
    FLAG_BITS["nonfinite"],
)



def flag_meaning(value: int) -> list[str]:
    """Return the names of the :data:`FLAG_BITS` set in a flag value.

    Parameters
    ----------
    value : int
        A pixel of the flag map.

    Returns
    -------
    list of str
        Names in increasing bit order, e.g. ``["saturated", "cosmic_ray"]``.
    """
    return [name for name, bit in FLAG_BITS.items() if int(value) & bit]


def saturation_mask(data: np.ndarray, saturate: float | None) -> np.ndarray:
    """Return pixels at or above the saturation level.

    Parameters
    ----------
    data : ndarray
        Image in ADU (after BSCALE/BZERO).
    saturate : float or None
        The CCD's ``SATURATE``; None or a non-positive value flags nothing
        (Elixir writes ``SATURATE = 0`` for "not applicable").

    Returns
    -------
    ndarray of bool
    """
    if saturate is None or not saturate > 0:
        return np.zeros(np.shape(data), dtype=bool)
    with np.errstate(invalid="ignore"):
        return np.asarray(data) >= saturate


def detect_cosmics(
    data: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    gain: float,
    readnoise: float,
    satlevel: float | None,
    sigclip: float,
    sigfrac: float,
    objlim: float,
    niter: int,
) -> np.ndarray:
    """Detect cosmic-ray hits with L.A.Cosmic (``astroscrappy.detect_cosmics``).

    Parameters
    ----------
    data : ndarray
        Image in ADU, sky *not* subtracted (the noise model needs it).
        Non-finite pixels are replaced by the median of the finite ones for the
        call and are never reported as cosmic rays.
    mask : ndarray of bool, optional
        Known bad pixels, ignored by the detection (``inmask``).
    gain : float
        Gain in e-/ADU (header ``GAIN``).
    readnoise : float
        Read noise in electrons (header ``RDNOISE``).
    satlevel : float or None
        Saturation level in ADU; saturated stars are protected from being
        flagged. None or non-positive disables it.
    sigclip, sigfrac, objlim, niter
        L.A.Cosmic settings (config ``step1.weights.cosmics``): Laplacian
        detection limit in sigma, fraction of it for neighbouring pixels,
        contrast limit between Laplacian and fine structure (protects compact
        stars), number of iterations.

    Returns
    -------
    ndarray of bool
        True on cosmic-ray pixels.
    """
    import astroscrappy

    image = np.array(data, dtype=np.float32)  # a copy: astroscrappy wants float32
    bad = ~np.isfinite(image)
    if bad.any():
        fill = np.median(image[~bad]) if (~bad).any() else 0.0
        image[bad] = fill
    inmask = bad if mask is None else (bad | np.asarray(mask, dtype=bool))
    crmask, _ = astroscrappy.detect_cosmics(
        image,
        inmask=inmask,
        sigclip=float(sigclip),
        sigfrac=float(sigfrac),
        objlim=float(objlim),
        gain=float(gain),
        readnoise=float(readnoise),
        satlevel=float(satlevel) if satlevel and satlevel > 0 else float(np.inf),
        niter=int(niter),
        verbose=False,
    )
    return np.asarray(crmask, dtype=bool) & ~bad


def _bin_nanmean(image: np.ndarray, binsize: int) -> np.ndarray:
    """Block-average ``image`` by ``binsize``, ignoring NaN, padding the edges."""
    if binsize == 1:
        return image.copy()
    ny, nx = image.shape
    py, px = -ny % binsize, -nx % binsize
    padded = np.pad(image, ((0, py), (0, px)), constant_values=np.nan)
    blocks = padded.reshape(
        padded.shape[0] // binsize, binsize, padded.shape[1] // binsize, binsize
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks
        return np.nanmean(blocks, axis=(1, 3))


def _subtract_background(binned: np.ndarray, box: int) -> np.ndarray:
    """Remove a running-median background (kills gradients that fake trails)."""
    from scipy import ndimage

    finite = np.isfinite(binned)
    if not finite.any():
        return binned
    filled = np.where(finite, binned, np.median(binned[finite]))
    box = max(3, min(box, *binned.shape) | 1)
    background = ndimage.median_filter(filled, size=box, mode="reflect")
    return np.where(finite, binned - background, np.nan)


@contextmanager
def _quiet_acstools() -> Iterator[None]:
    """Silence acstools' INFO chatter for the duration of a call."""
    loggers = [logging.getLogger(n) for n in ("findsat_mrt", "utils_findsat_mrt")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _mrt_peaks(snr: np.ndarray, threshold: float, separation: int) -> np.ndarray:
    """Local maxima of the Radon S/N image above ``threshold``, as (row, col)."""
    from scipy import ndimage

    snr = np.where(np.isfinite(snr), snr, 0.0)
    size = 2 * separation + 1
    # theta wraps around (0 deg == 180 deg with rho -> -rho); "nearest" is a
    # good enough edge treatment for finding peaks.
    local_max = ndimage.maximum_filter(snr, size=size, mode="nearest")
    return np.argwhere((snr == local_max) & (snr > threshold))


def _signed_distance(
    shape: tuple[int, int], p0: tuple[float, float], p1: tuple[float, float]
) -> np.ndarray:
    """Signed distance (pixels) of every pixel to the line through p0, p1 (x, y)."""
    (x0, y0), (x1, y1) = p0, p1
    length = math.hypot(x1 - x0, y1 - y0) or 1.0
    ny, nx = shape
    yy, xx = np.ogrid[:ny, :nx]
    return ((y1 - y0) * xx - (x1 - x0) * yy + (x1 * y0 - y1 * x0)) / length


def _trail_extent(
    image: np.ndarray, distance: np.ndarray, half_width: float, nsigma: float = 3.0
) -> tuple[float, float] | None:
    """Measure where a trail stands out across its full-resolution profile.

    The median of the pixels in 1-pixel bins of distance to the line gives the
    trail's cross-section; the trail is the run of bins around its peak (within
    ``half_width`` of the line) that exceed the outer bins' median by
    ``nsigma`` times their scatter. Returns the (low, high) distances, or None.
    """
    from scipy import ndimage

    reach = int(math.ceil(2 * max(half_width, 4.0)))
    select = np.isfinite(image) & (np.abs(distance) < reach)
    if np.count_nonzero(select) < 10 * reach:
        return None
    index = np.floor(distance[select]).astype(int) + reach
    nbin = 2 * reach
    profile = np.asarray(
        ndimage.median(image[select], labels=index, index=np.arange(nbin)), dtype=float
    )
    centres = np.arange(nbin) - reach + 0.5
    outer = (np.abs(centres) > max(half_width, 2.0)) & np.isfinite(profile)
    inner = np.flatnonzero((np.abs(centres) <= max(half_width, 2.0)) & np.isfinite(profile))
    if outer.sum() < 4 or inner.size == 0:
        return None
    base = np.median(profile[outer])
    noise = 1.4826 * np.median(np.abs(profile[outer] - base))
    if not noise > 0:
        return None
    above = np.nan_to_num(profile - base, nan=-np.inf) > nsigma * noise
    peak = inner[np.argmax(profile[inner])]
    if not above[peak]:
        return None
    lo = hi = peak
    while lo > 0 and above[lo - 1]:
        lo -= 1
    while hi < nbin - 1 and above[hi + 1]:
        hi += 1
    return float(centres[lo] - 0.5), float(centres[hi] + 0.5)


def detect_trails(
    data: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    threshold: float,
    min_length_pix: float,
    dilate_pix: float,
    binsize: int | None = None,
    max_binned_pix: int,
    max_width_pix: float = 75,
    theta_step: float,
    min_persistence: float = 0.5,
    persistence_chunk_pix: float = 400,
    max_candidates: int = 20,
) -> np.ndarray:
    """Detect satellite and aircraft trails with a median Radon transform.

    The image is block-averaged (``binsize``; by default the smallest factor
    that brings the long side to ``max_binned_pix``), a running-median
    background is removed, and ``acstools.findsat_mrt.TrailFinder`` computes
    the median Radon transform (MRT) and its S/N. Peaks of the S/N above
    ``threshold`` are the trail candidates; acstools' ``filter_sources``
    keeps those with a Gaussian cross-section of S/N > ``threshold``, width <
    ``max_width_pix`` and detected along at least ``min_persistence`` of their
    length. Each kept trail is masked at full resolution over the band where
    its median cross-section stands 3 sigma above the local sky (the binned
    3-sigma width if that measurement fails), plus ``dilate_pix`` on each
    side.

    ``TrailFinder.find_mrt_sources`` needs photutils (not a SPICA dependency);
    the peak search is done here with a maximum filter instead, everything
    else is acstools'.

    Parameters
    ----------
    data : ndarray
        Image (any units; sky may or may not be subtracted).
    mask : ndarray of bool, optional
        Pixels to ignore (bad columns, saturated stars, cosmic rays).
        Non-finite pixels are always ignored.
    threshold : float
        Minimum S/N of a trail, in the MRT and in its cross-section.
    min_length_pix : float
        Minimum length of a trail (full-resolution pixels): Radon lines shorter
        than that across the image are not searched.
    dilate_pix : float
        Margin added on each side of the measured trail width.
    binsize : int, optional
        Block-averaging factor; None chooses it from ``max_binned_pix``.
    max_binned_pix : int
        Target long side of the binned image (sets the run time: ~1.5 s for
        256 x 128 on one core).
    max_width_pix : float
        Widest trail kept (full-resolution pixels).
    theta_step : float
        Angular step of the Radon transform, degrees.

    ``threshold``, ``min_length_pix``, ``dilate_pix``, ``max_binned_pix`` and
    ``theta_step`` have no defaults: config ``step1.weights.trails`` holds them.
    min_persistence : float
        Minimum fraction of the trail length along which it is detected.
    persistence_chunk_pix : float
        Length of the sections in which persistence is tested (full-resolution
        pixels).
    max_candidates : int
        Only the brightest MRT peaks are vetted (bounds the run time on
        crowded fields).

    Returns
    -------
    ndarray of bool
        True on trail pixels.
    """
    from acstools.findsat_mrt import TrailFinder
    from acstools.utils_findsat_mrt import filter_sources, streak_endpoints
    from astropy.table import Table

    image = np.array(data, dtype=np.float64)
    shape = image.shape
    bad = ~np.isfinite(image)
    if mask is not None:
        bad |= np.asarray(mask, dtype=bool)
    out = np.zeros(shape, dtype=bool)
    if bad.all():
        return out
    image[bad] = np.nan

    if binsize is None:
        binsize = max(1, math.ceil(max(shape) / max_binned_pix))
    binned = _bin_nanmean(image, binsize)
    binned = _subtract_background(binned, box=max(15, round(binned.shape[0] / 8)))

    min_length = max(5.0, min_length_pix / binsize)
    with _quiet_acstools():
        finder = TrailFinder(
            binned,
            processes=1,
            min_length=min_length,
            max_width=max(3.0, max_width_pix / binsize),
            buffer=max(10, round(250 / binsize)),
            threshold=threshold,
            theta=np.arange(0.0, 180.0, theta_step),
            save_catalog=False,
            save_diagnostic=False,
            plot=False,
        )
        finder.run_mrt()
        snr = finder.mrt / finder.mrt_err
        peaks = _mrt_peaks(snr, threshold, separation=10)
        if len(peaks) == 0:
            return out
        order = np.argsort(-snr[peaks[:, 0], peaks[:, 1]], kind="stable")
        peaks = peaks[order[:max_candidates]]

        theta = finder.theta[peaks[:, 1]]
        rho = finder.rho[peaks[:, 0]]
        sources = Table(
            {
                "id": np.arange(1, len(peaks) + 1),
                "xcentroid": peaks[:, 1].astype(float),
                "ycentroid": peaks[:, 0].astype(float),
                "theta": theta,
                "rho": rho,
            }
        )
        sources["endpoints"] = [
            streak_endpoints(r, -t, binned.shape) for r, t in zip(rho, theta)
        ]
        sources["status"] = np.zeros(len(sources), dtype=int)
        # TrailFinder.filter_sources() with a persistence chunk scaled to the
        # binning (its fixed 100 px leaves two chunks on a binned CCD, so a
        # single poor chunk rejects a real trail)
        # One candidate at a time: acstools' profile fit raises ValueError
        # ("Initial guess is outside of provided bounds") on some candidates,
        # which must reject that candidate only, not the CCD.
        filtered = []
        for index in range(len(sources)):
            try:
                filtered.append(
                    filter_sources(
                        binned,
                        sources["endpoints"][index : index + 1],
                        max_width=finder.max_width,
                        buffer=finder.buffer,
                        min_length=finder.min_length,
                        minsnr=threshold,
                        check_persistence=True,
                        min_persistence=min_persistence,
                        persistence_chunk=max(10, round(persistence_chunk_pix / binsize)),
                    )
                )
            except (ValueError, RuntimeError):
                filtered.append(None)
        for column in ("width", "snr", "persistence", "status", "mean flux"):
            values = [np.nan if f is None or column not in f.colnames else f[column][0]
                      for f in filtered]
            if column == "status":
                values = [0 if not np.isfinite(v) else int(v) for v in values]
            sources[column] = values

    for row in sources:
        if row["status"] != 2 or not np.isfinite(row["width"]):
            continue
        # binned pixel centre i -> full-resolution coordinate (i + 0.5) b - 0.5
        (bx0, by0), (bx1, by1) = np.asarray(row["endpoints"], dtype=float)
        p0 = ((bx0 + 0.5) * binsize - 0.5, (by0 + 0.5) * binsize - 0.5)
        p1 = ((bx1 + 0.5) * binsize - 0.5, (by1 + 0.5) * binsize - 0.5)
        distance = _signed_distance(shape, p0, p1)
        # the binned fit gives a coarse 3-sigma width; measure the band again
        # at full resolution, falling back on the coarse one
        coarse = 0.5 * float(row["width"]) * binsize
        extent = _trail_extent(image, distance, coarse)
        lo, hi = extent if extent is not None else (-coarse, coarse)
        out |= (distance >= lo - dilate_pix) & (distance <= hi + dilate_pix)
    return out


def defect_flags(
    data: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    gain: float,
    readnoise: float,
    saturate: float | None,
    cosmics: Mapping[str, Any],
    trails: Mapping[str, Any],
) -> np.ndarray:
    """Return the 8-bit defect flags of one CCD.

    Sets :data:`FLAG_BITS` ``saturated`` (2), ``cosmic_ray`` (4), ``trail``
    (8) and ``nonfinite`` (32); bits 1 and 16 are WeightWatcher's.

    Parameters
    ----------
    data : ndarray
        Image in ADU (after BSCALE/BZERO), sky not subtracted.
    mask : ndarray of bool, optional
        Known bad pixels (Elixir mask, outside DATASEC) to keep out of the
        detections; they are *not* flagged here.
    gain, readnoise : float
        ``GAIN`` (e-/ADU) and ``RDNOISE`` (e-) of the CCD.
    saturate : float or None
        ``SATURATE`` of the CCD (ADU).
    cosmics : mapping
        Keyword arguments of :func:`detect_cosmics` (config
        ``step1.weights.cosmics``); an ``enabled: false`` entry skips it.
    trails : mapping
        Keyword arguments of :func:`detect_trails` (config
        ``step1.weights.trails``); an ``enabled: false`` entry skips it.

    Returns
    -------
    ndarray of uint8
    """
    data = np.asarray(data)
    flags = np.zeros(data.shape, dtype=np.uint8)
    nonfinite = ~np.isfinite(data)
    saturated = saturation_mask(data, saturate)
    flags[saturated] |= FLAG_BITS["saturated"]
    flags[nonfinite] |= FLAG_BITS["nonfinite"]
    known = nonfinite if mask is None else (nonfinite | np.asarray(mask, dtype=bool))

    cosmics = dict(cosmics)
    if cosmics.pop("enabled", True):
        crs = detect_cosmics(
            data, known, gain=gain, readnoise=readnoise, satlevel=saturate, **cosmics
        )
        flags[crs] |= FLAG_BITS["cosmic_ray"]
    else:
        crs = np.zeros(data.shape, dtype=bool)

    trails = dict(trails)
    if trails.pop("enabled", True):
        trail = detect_trails(data, known | saturated | crs, **trails)
        flags[trail] |= FLAG_BITS["trail"]
    return flags


def write_defect_map(
    exposure_path: str | Path,
    out_path: str | Path,
    *,
    cosmics: Mapping[str, Any],
    trails: Mapping[str, Any],
    mask_path: str | Path | None = None,
    use_datasec: bool = True,
) -> dict[str, dict[str, int]]:
    """Write the 8-bit defect map (MEF) of an exposure for WeightWatcher.

    Reads the exposure one CCD at a time (BSCALE/BZERO applied, ``.fits.fz``
    tile-compressed extensions decompressed by astropy), computes
    :func:`defect_flags` with the CCD's ``GAIN``, ``RDNOISE`` and
    ``SATURATE``, and writes an uncompressed MEF with the same EXTNAMEs, in the
    same order, BITPIX 8.

    Parameters
    ----------
    exposure_path : str or Path
        Elixir exposure (``546891p.fits`` or ``.fits.fz``).
    out_path : str or Path
        Defect map to write (``546891p_defects.fits``); overwritten.
    cosmics, trails : mapping
        Config ``step1.weights.cosmics`` / ``step1.weights.trails``.
    mask_path : str or Path, optional
        Elixir bad-pixel mask (1 = good): its bad pixels are kept out of the
        detections (they get bit 1 from WeightWatcher, not from here).
    use_datasec : bool
        Run the detections on the header's ``DATASEC`` only (MegaCam CCDs carry
        overscan columns that would otherwise look like trails).

    Returns
    -------
    dict
        Per EXTNAME: pixel counts ``saturated``, ``cosmic_ray``, ``trail``,
        ``nonfinite`` and ``npix``.
    """
    from astropy.io import fits

    counts: dict[str, dict[str, int]] = {}
    out_path = Path(out_path)
    primary = fits.PrimaryHDU()
    primary.header["ORIGIN"] = ("SPICA", "spica.step1.defects.write_defect_map")
    primary.header["SRCIMAGE"] = (Path(exposure_path).name, "exposure analysed")
    for name, bit in FLAG_BITS.items():
        primary.header[f"FLAGBIT{bit.bit_length() - 1}"] = (bit, name)
    primary.writeto(out_path, overwrite=True)

    with fits.open(exposure_path) as hdul, _open_optional(mask_path) as mask_hdul:
        for index, hdu in enumerate(headers.image_hdus(hdul)):
            header = hdu.header
            extname = str(header.get("EXTNAME", f"EXT{index + 1}")).strip()
            data = np.asarray(hdu.data, dtype=np.float32)
            known = np.zeros(data.shape, dtype=bool)
            if mask_hdul is not None:
                bpm = np.asarray(mask_hdul[extname].data)
                if bpm.shape != data.shape:
                    raise ValueError(
                        f"{mask_path}[{extname}] is {bpm.shape}, image is {data.shape}"
                    )
                known |= bpm < 0.5
            flags = np.zeros(data.shape, dtype=np.uint8)
            rows, cols = headers.section_slices(header.get("DATASEC") if use_datasec else None, data.shape)
            flags[rows, cols] = defect_flags(
                data[rows, cols],
                known[rows, cols],
                gain=float(header.get("GAIN", 1.0) or 1.0),
                readnoise=float(header.get("RDNOISE", 5.0) or 5.0),
                saturate=_header_float(header, "SATURATE"),
                cosmics=cosmics,
                trails=trails,
            )
            # outside DATASEC: saturation and non-finite still flagged
            outside = np.ones(data.shape, dtype=bool)
            outside[rows, cols] = False
            flags[outside & saturation_mask(data, _header_float(header, "SATURATE"))] |= (
                FLAG_BITS["saturated"]
            )
            flags[outside & ~np.isfinite(data)] |= FLAG_BITS["nonfinite"]

            ccd_counts = {
                name: int(np.count_nonzero(flags & FLAG_BITS[name]))
                for name in ("saturated", "cosmic_ray", "trail", "nonfinite")
            }
            ccd_counts["npix"] = int(flags.size)
            counts[extname] = ccd_counts

            out_header = fits.Header()
            out_header["EXTNAME"] = extname
            out_header["NSATUR"] = (ccd_counts["saturated"], "pixels flagged saturated (2)")
            out_header["NCOSMIC"] = (ccd_counts["cosmic_ray"], "pixels flagged cosmic ray (4)")
            out_header["NTRAIL"] = (ccd_counts["trail"], "pixels flagged trail (8)")
            out_header["NNONFIN"] = (ccd_counts["nonfinite"], "pixels flagged non-finite (32)")
            fits.append(out_path, flags, out_header)
            del data, flags, known
    return counts


def _header_float(header: Any, key: str) -> float | None:
    value = header.get(key)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@contextmanager
def _open_optional(path: str | Path | None) -> Iterator[Any]:
    if path is None:
        yield None
        return
    from astropy.io import fits

    with fits.open(path) as hdul:
        yield hdul
