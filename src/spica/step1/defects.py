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

import functools
import logging
import math
import warnings
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from spica import headers
from spica.step1._blocks import block_sum as _block_sum
from spica.step1._blocks import sparse_flatnonzero
from spica.step1._memory import paused_collector
from spica.step1._pixels import raw_integer_image

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



def _all_finite(data: np.ndarray) -> bool:
    """Whether every pixel is finite: from the float32 sum (one reduction, no mask; a
    NaN or infinity makes it non-finite, an overflow only sends to the full test)."""
    data = np.asarray(data)
    if data.dtype.kind in "iub":
        return True
    if np.isfinite(data.sum(dtype=np.float32)):
        return True
    return bool(np.isfinite(data).all())


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
    engine: str = "sparse",
    finite: bool | None = None,
    overwrite: bool = False,
    saturated: np.ndarray | None = None,
) -> np.ndarray:
    """Detect cosmic-ray hits with L.A.Cosmic (van Dokkum 2001).

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
    engine : {"sparse", "astroscrappy"}
        ``"sparse"`` (config ``step1.weights.cosmics.engine``): L.A.Cosmic
        evaluated at the candidate pixels only
        (:func:`spica.step1._lacosmic.detect_cosmics_sparse`, about 20x
        faster on a MegaCam CCD); ``"astroscrappy"``: astroscrappy's
        whole-image filters (the reference implementation, same settings).
    finite : bool, optional
        True if every pixel of ``data`` is known to be finite (the caller
        tested it), False if not; None: tested here.
    overwrite : bool
        ``data`` may be modified when it is a C-contiguous float32 array (its
        non-finite pixels filled, its cosmic-ray pixels cleaned: no copy of
        the image); otherwise a copy is worked on.
    saturated : ndarray of int, optional
        The sorted flat indices of the pixels at or above ``satlevel / gain`` when the
        caller has them (:func:`defect_flags`: one comparison for both); used by the
        ``"sparse"`` engine on finite data only.

    Returns
    -------
    ndarray of bool
        True on cosmic-ray pixels.
    """
    in_place = overwrite and isinstance(data, np.ndarray) and data.dtype == np.float32 \
        and data.flags.c_contiguous and data.flags.writeable
    image = data if in_place else np.array(data, dtype=np.float32)  # filled, and cleaned in place
    has_bad = not (_all_finite(image) if finite is None else finite)
    bad = ~np.isfinite(image) if has_bad else None
    if has_bad:
        image[bad] = np.median(image[~bad]) if not bad.all() else 0.0
    if mask is None:
        inmask = bad if has_bad else np.zeros(image.shape, dtype=bool)
    else:
        inmask = np.asarray(mask, dtype=bool)
        if has_bad:
            inmask = bad | inmask
    level = float(satlevel) if satlevel and satlevel > 0 else float(np.inf)
    settings = dict(sigclip=float(sigclip), sigfrac=float(sigfrac), objlim=float(objlim),
                    gain=float(gain), readnoise=float(readnoise), satlevel=level, niter=int(niter))
    if engine == "sparse":
        from spica.step1._lacosmic import detect_cosmics_sparse

        crmask = detect_cosmics_sparse(image, inmask, overwrite=True,
                                       saturated=None if has_bad else saturated, **settings)
    elif engine == "astroscrappy":
        import astroscrappy

        crmask, _ = astroscrappy.detect_cosmics(image, inmask=inmask, verbose=False, **settings)
        crmask = np.asarray(crmask, dtype=bool)
    else:
        raise ValueError(f"unknown cosmic-ray engine {engine!r}: 'sparse' or 'astroscrappy'")
    if has_bad:
        crmask &= ~bad
    return crmask


#: acstools' width (6 sigma of a Gaussian fit to the trail's binned, rotated
#: cross-section, in binned pixels) of an unresolved trail: a trail straddles
#: two binned pixels, rotation interpolation spreads it further, and the fit
#: gives 4.5-5.5 (measured on full-size MegaCam CCDs, binned 19 x 19). The
#: width test never rejects below this, however coarse the binning.
_UNRESOLVED_WIDTH = 8.0

def _bin_masked_mean(data: np.ndarray, bad: np.ndarray, binsize: int, finite: bool = False) -> np.ndarray:
    """Block-average ``data`` by ``binsize`` over the pixels not ``bad`` (NaN where none).

    With ``finite`` data (no NaN or infinity) and few bad pixels of moderate
    value, every pixel is summed and the listed bad ones are subtracted (no
    masked copy of the image): for integer-valued data (Elixir's ADU) the
    sums are exact, the means those of the masked sums.
    """
    if binsize == 1:
        return np.where(bad, np.nan, np.asarray(data, dtype=np.float64))
    listed = sparse_flatnonzero(bad, limit=bad.size // 64) if finite else None
    if listed is not None:
        image = np.asarray(data, dtype=np.float32)
        values = image.reshape(-1)[listed].astype(np.float64)
        if not values.size or np.abs(values).max() * binsize < 2**24:
            total = _block_sum(_block_sum(image, binsize, 0, np.float32), binsize, 1, np.float64)
            ny, nx = image.shape
            rows = np.full(total.shape[0], binsize, np.int32)
            rows[-1] = ny - binsize * (rows.size - 1)
            cols = np.full(total.shape[1], binsize, np.int32)
            cols[-1] = nx - binsize * (cols.size - 1)
            number = np.multiply.outer(rows, cols)
            if listed.size:
                ys, xs = np.divmod(listed, nx)
                block = (ys // binsize) * total.shape[1] + xs // binsize
                number = number - np.bincount(block, minlength=total.size).reshape(total.shape)
                total -= np.bincount(block, weights=values, minlength=total.size).reshape(total.shape)
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(number > 0, total / number, np.nan)
    values = np.where(bad, np.float32(0), np.asarray(data, dtype=np.float32))
    good = ~bad
    total = _block_sum(_block_sum(values, binsize, 0, np.float32), binsize, 1, np.float64)
    number = _block_sum(_block_sum(good.view(np.uint8), binsize, 0, np.uint16), binsize, 1, np.int32)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(number > 0, total / number, np.nan)


def _subtract_background(binned: np.ndarray, box: int) -> np.ndarray:
    """Remove a running-median background (kills gradients that fake trails).

    A separable running median (rows, then columns, as astroscrappy's sepmed:
    2 x box values per pixel instead of box**2), edges mirrored as
    ``scipy.ndimage.median_filter(mode="reflect")``; numpy only, so a CCD
    without a trail candidate never imports scipy.
    """
    finite = np.isfinite(binned)
    if not finite.any():
        return binned
    filled = np.where(finite, binned, np.median(binned[finite]))
    box = max(3, min(box, *binned.shape) | 1)
    background = _running_median(filled, box, axis=1)
    background = _running_median(background, box, axis=0)
    return np.where(finite, binned - background, np.nan)


def _running_median(values: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Running median of odd ``size`` along ``axis``, edges mirrored (scipy's "reflect")."""
    from numpy.lib.stride_tricks import sliding_window_view

    half = size // 2
    pad = [(0, 0), (0, 0)]
    pad[axis] = (half, half)
    windows = sliding_window_view(np.pad(values, pad, mode="symmetric"), size, axis=axis)
    return np.partition(windows, half, axis=-1)[..., half]


def _running_max(values: np.ndarray, size: int) -> np.ndarray:
    """Square maximum filter of odd ``size``, edges repeated (scipy's "nearest"): rows then columns."""
    from numpy.lib.stride_tricks import sliding_window_view

    half = size // 2
    out = values
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (half, half)
        out = sliding_window_view(np.pad(out, pad, mode="edge"), size, axis=axis).max(axis=-1)
    return out


def _findsat_utils() -> Any:
    """``acstools.utils_findsat_mrt`` (the trail vetting), by a plain import.

    The CCDs of an exposure are searched on several threads, which may import it at
    the same moment: Python's import lock makes that safe. (Stop 23 tried loading it
    without ``acstools/__init__``, 0.45 s less on an exposure with a trail candidate,
    under a stand-in package put in ``sys.modules`` outside that lock: two threads
    then met a half-initialised module, and the demo's step 1 failed.) The import,
    about 650 modules, runs without cyclic collections
    (:func:`spica.step1._memory.paused_collector`: 1.3 s of CPU instead of 1.5 s on a
    full-size exposure's first trail candidate); the import itself is unchanged.
    """
    with paused_collector():
        from acstools import utils_findsat_mrt

    return utils_findsat_mrt


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


def _nanmedian_rows(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Median of the finite values of each row and their number.

    One sort per call (NaN sort last) instead of ``np.nanmedian``, which on
    short rows falls back on masked arrays and costs ten times more.
    """
    ordered = np.sort(values, axis=1)
    count = np.count_nonzero(np.isfinite(values), axis=1)
    rows = np.arange(values.shape[0])
    low = np.maximum((count - 1) // 2, 0)
    high = np.minimum(count // 2, values.shape[1] - 1)
    median = 0.5 * (ordered[rows, low] + ordered[rows, high])
    median[count == 0] = np.nan
    return median, count


def _median_radon(
    image: np.ndarray, theta: np.ndarray, *, cache: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Median Radon transform of ``image`` (NaN = no data) and its line lengths.

    The geometry of ``acstools.utils_findsat_mrt.radon`` (the image padded to a
    square of its diagonal, rotated about the centre, medians along columns;
    row ``i`` is rho = ``i - (n / 2 - 0.5)``, column ``j`` is ``theta[j]``), with
    nearest-pixel sampling from precomputed indices and sort-based medians:
    about 10x faster than acstools' bilinear ``skimage.warp`` + masked-array
    median. Outside the image counts as no data (acstools counts it as zeros).
    ``cache=False`` does not keep the sampling pattern (one-off angles, such as
    :func:`_refine_peak`'s, would evict the CCD grid's from the cache).
    """
    sampler = _radon_samples if cache else _radon_samples.__wrapped__
    n, before, samples = sampler(image.shape, tuple(float(t) for t in theta))
    padded = np.full((n, n), np.nan, dtype=np.float32)
    padded[before[0] : before[0] + image.shape[0], before[1] : before[1] + image.shape[1]] = image
    flat = np.append(padded.ravel(), np.float32(np.nan))  # index n*n: outside
    mrt = np.full((n, len(theta)), np.nan)
    length = np.zeros((n, len(theta)))
    for index, (c0, c1, take) in enumerate(samples):
        mrt[c0:c1, index], length[c0:c1, index] = _nanmedian_rows(flat[take])
    return mrt, length


def _radon_may_exceed(image: np.ndarray, theta: np.ndarray, scale: float, min_length: float) -> bool:
    """Whether a line of :func:`_median_radon` may have ``median * sqrt(length) > scale``.

    The exact pre-screen of :func:`detect_trails`: a line of ``length``
    finite samples whose median exceeds ``t = scale / sqrt(length)`` has at
    least ``ceil(length / 2)`` samples above ``t`` (its upper half), which
    counting decides without sorting (about twice as fast as the transform).
    False means that no line of ``length >= min_length`` reaches the
    candidate S/N, so the transform has no candidate; True, only that one
    may (the transform decides). The limit is loosened by 1e-6 against
    rounding.

    Without NaN in ``image`` every line's length is its geometric one (cached
    with the sampling pattern) and ``t`` decreases with it, so each pixel is
    coded once by the shortest length whose ``t`` it exceeds: a line counts
    its samples whose code is at most its length, in 16-bit codes (a third
    of the CPU of gathering and comparing float32 values, the same answer).
    """
    angles = tuple(float(t) for t in theta)
    n, before, samples = _radon_samples(image.shape, angles)
    rows = slice(before[0], before[0] + image.shape[0])
    cols = slice(before[1], before[1] + image.shape[1])
    lengths, longest = _radon_lengths(image.shape, angles)
    if longest < np.iinfo(np.uint16).max and np.isfinite(image).all():
        limits = ((scale * (1 - 1e-6)) / np.sqrt(np.arange(1, longest + 1))).astype(np.float32)  # as below
        # v exceeds the limits of the lengths >= longest - k + 1, k = the number of limits below v
        below = np.searchsorted(limits[::-1], image.astype(np.float32, copy=False), side="left")
        code = np.full((n, n), np.iinfo(np.uint16).max, dtype=np.uint16)  # outside the image: never
        code[rows, cols] = longest + 1 - below
        code = np.append(code.ravel(), np.uint16(np.iinfo(np.uint16).max))  # index n*n: outside
        for (_, _, take), length in zip(samples, lengths):
            long_enough = length >= min_length
            if not long_enough.any():
                continue
            # summed as bytes into uint16 (a count never exceeds longest): np.count_nonzero
            # along an axis sums booleans into intp, 15 % more CPU
            above = np.add.reduce((code.take(take) <= length[:, None]).view(np.uint8), axis=1,
                                  dtype=np.uint16)
            if np.any(long_enough & (2 * above >= length)):
                return True
        return False
    padded = np.full((n, n), np.nan, dtype=np.float32)
    padded[rows, cols] = image
    flat = np.append(padded.ravel(), np.float32(np.nan))  # index n*n: outside
    for _, _, take in samples:
        values = flat[take]
        length = np.count_nonzero(np.isfinite(values), axis=1)
        limit = (scale * (1 - 1e-6)) / np.sqrt(np.maximum(length, 1))
        above = np.count_nonzero(values > limit[:, None].astype(np.float32), axis=1)  # NaN: never above
        if np.any((length >= min_length) & (2 * above >= length)):
            return True
    return False


@functools.lru_cache(maxsize=4)
def _radon_lengths(shape: tuple[int, int], theta: tuple[float, ...]) -> tuple[list[np.ndarray], int]:
    """Per angle of :func:`_radon_samples`, the number of samples of each line inside the
    image (uint16), and the largest."""
    n, before, samples = _radon_samples(shape, theta)
    inside = np.zeros((n, n), dtype=bool)
    inside[before[0] : before[0] + shape[0], before[1] : before[1] + shape[1]] = True
    inside = np.append(inside.ravel(), False)  # index n*n: outside
    lengths = [np.count_nonzero(inside[take], axis=1).astype(np.uint16) for _, _, take in samples]
    for length in lengths:
        length.setflags(write=False)
    return lengths, max(int(length.max()) for length in lengths)


@functools.lru_cache(maxsize=4)
def _radon_samples(
    shape: tuple[int, int], theta: tuple[float, ...]
) -> tuple[int, tuple[int, int], list[tuple[int, int, np.ndarray]]]:
    """Sampling pattern of :func:`_median_radon` for an image shape: the same for every CCD.

    Returns the side ``n`` of the padded square, the image's offset in it and,
    per angle, the output columns ``c0:c1`` it reaches and the flat indices of
    its samples laid out (column, row), ``n * n`` meaning outside the image.
    Each angle only samples the bounding box of the rotated image (the rest of
    the square is no data): 2-3x fewer samples than the full square.
    """
    diagonal = math.sqrt(2) * max(shape)
    pad = [math.ceil(diagonal - s) for s in shape]
    before = [(s + p) // 2 - s // 2 for s, p in zip(shape, pad)]
    n = shape[0] + pad[0]
    centre = n // 2
    top, left = before[0] - centre, before[1] - centre
    corners = np.array([[top, left], [top, left + shape[1] - 1],
                        [top + shape[0] - 1, left],
                        [top + shape[0] - 1, left + shape[1] - 1]], float)  # fmt: skip
    index_type = np.int32 if n * n < 2**31 - 1 else np.intp
    samples = []
    for angle in np.deg2rad(theta):
        cos_a, sin_a = math.cos(angle), math.sin(angle)
        # output (row, col) -> input pixel, as skimage.warp with acstools' matrix;
        # the inverse rotation of the corners bounds the output rows and columns
        out_rows = cos_a * corners[:, 0] + sin_a * corners[:, 1]
        out_cols = -sin_a * corners[:, 0] + cos_a * corners[:, 1]
        r0 = max(0, int(math.floor(out_rows.min())) - 1 + centre)
        r1 = min(n, int(math.ceil(out_rows.max())) + 2 + centre)
        c0 = max(0, int(math.floor(out_cols.min())) - 1 + centre)
        c1 = min(n, int(math.ceil(out_cols.max())) + 2 + centre)
        # samples laid out (column, row): the medians run along contiguous memory
        rows = (np.arange(r0, r1, dtype=np.float64) - centre)[None, :]
        cols = (np.arange(c0, c1, dtype=np.float64) - centre)[:, None]
        src_row = np.rint(cos_a * rows - sin_a * cols + centre).astype(np.intp)
        src_col = np.rint(sin_a * rows + cos_a * cols + centre).astype(np.intp)
        inside = (src_row >= 0) & (src_row < n) & (src_col >= 0) & (src_col < n)
        take = np.where(inside, src_row * n + src_col, n * n).astype(index_type)
        take.setflags(write=False)
        samples.append((c0, c1, take))
    return n, (before[0], before[1]), samples


def _mrt_peaks(snr: np.ndarray, threshold: float, separation: int) -> np.ndarray:
    """Local maxima of the Radon S/N image above ``threshold``, as (row, col)."""
    snr = np.where(np.isfinite(snr), snr, 0.0)
    size = 2 * separation + 1
    # theta wraps around (0 deg == 180 deg with rho -> -rho); "nearest" is a
    # good enough edge treatment for finding peaks.
    local_max = _running_max(snr, size)
    return np.argwhere((snr == local_max) & (snr > threshold))


def _refine_peak(
    binned: np.ndarray,
    row: int,
    theta0: float,
    theta_step: float,
    min_length: float,
    steps: int = 8,
    reach: int = 3,
) -> tuple[int, float]:
    """Sharpen the angle of an MRT peak to ``theta_step / steps``.

    The angle grid misses a trail's angle by up to ``theta_step / 2``: the
    grid's line crosses the trail, moving ``length * tan(theta_step / 2)``
    across it from end to end (up to 40 px on a 4612 px MegaCam CCD at 1 deg,
    7 px on an 800 px demo CCD). The trail's binned cross-section then looks
    several binned pixels wide (acstools' width test rejects it) and the
    full-resolution band drawn along that line is too wide and misplaced. The
    median Radon transform is recomputed at ``steps`` sub-steps on each side
    of ``theta0``; its best line (largest ``median * sqrt(length)``, the S/N
    up to a constant) within ``reach`` rows of ``row`` is returned.

    Returns
    -------
    row : int
        MRT row (rho index) of the refined line.
    theta : float
        Its angle, degrees.
    """
    fine = theta0 + theta_step * np.arange(-steps, steps + 1) / steps
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mrt, length = _median_radon(binned, fine, cache=False)
        lo = max(0, row - reach)
        score = mrt[lo : row + reach + 1] * np.sqrt(length[lo : row + reach + 1])
        score[length[lo : row + reach + 1] < min_length] = np.nan
    if not np.isfinite(score).any():
        return row, float(theta0)
    best_row, best_col = np.unravel_index(np.nanargmax(score), score.shape)
    return lo + int(best_row), float(fine[best_col])


def _signed_distance(
    shape: tuple[int, int], p0: tuple[float, float], p1: tuple[float, float]
) -> np.ndarray:
    """Signed distance (pixels) of every pixel to the line through p0, p1 (x, y)."""
    (x0, y0), (x1, y1) = p0, p1
    length = math.hypot(x1 - x0, y1 - y0) or 1.0
    ny, nx = shape
    yy, xx = np.ogrid[:ny, :nx]
    return ((y1 - y0) * xx - (x1 - x0) * yy + (x1 * y0 - y1 * x0)) / length


def _band_pixels(
    shape: tuple[int, int], p0: tuple[float, float], p1: tuple[float, float], half: float
) -> tuple[np.ndarray, np.ndarray]:
    """The pixels ``(ys, xs)`` (row by row, ascending) of a band holding every pixel whose
    :func:`_signed_distance` to the line through p0, p1 is at most ``half`` in absolute
    value (a pixel or two more on each side of each row: callers test the distance).

    A trail's band is a few percent of the CCD: its pixels, not the whole CCD, are the
    ones whose distance is computed.
    """
    (x0, y0), (x1, y1) = p0, p1
    length = math.hypot(x1 - x0, y1 - y0) or 1.0
    ny, nx = shape
    rows = np.arange(ny)
    a, b, c = y1 - y0, x1 - x0, x1 * y0 - y1 * x0  # distance = (a x - b y + c) / length
    if a == 0:  # parallel to the rows: whole rows or none
        near = np.abs((c - b * rows) / length) <= half + 2
        start = np.where(near, 0, nx).astype(np.intp)
        stop = np.full(ny, nx, np.intp)
    else:
        ends = np.stack([(-half * length + b * rows - c) / a, (half * length + b * rows - c) / a])
        start = np.clip(np.floor(ends.min(axis=0)) - 2, 0, nx).astype(np.intp)
        stop = np.clip(np.ceil(ends.max(axis=0)) + 3, 0, nx).astype(np.intp)
    count = np.maximum(stop - start, 0)
    ys = np.repeat(rows, count)
    offset = np.arange(ys.size) - np.repeat(np.cumsum(count) - count, count)
    return ys, np.repeat(start, count) + offset


def _binned_medians(values: np.ndarray, labels: np.ndarray, nbin: int) -> np.ndarray:
    """``scipy.ndimage.median(values, labels, range(nbin))``, the same values, by one
    stable sort of the small integer labels (linear) and a partition per label instead
    of scipy's sort of every (label, value) pair: 6x cheaper on a trail's 10^6 pixels.

    As scipy: the mean of the two middle values (in the values' type) for an even
    count; for a label without values, the smallest value of the lowest label present.
    """
    values = np.asarray(values)
    labels = np.asarray(labels)
    floating = np.issubdtype(values.dtype, np.floating)
    out = np.empty(nbin, dtype=values.dtype if floating else np.float64)
    if values.size == 0:
        out[:] = 0
        return out
    small = np.int16 if 0 <= labels.min() and labels.max() < 2**15 - 1 else np.intp
    order = np.argsort(labels.astype(small), kind="stable")
    ordered = values[order]
    counts = np.bincount(labels, minlength=nbin)
    ends = np.cumsum(counts)
    starts = ends - counts
    first = int(np.flatnonzero(counts)[0])
    empty = ordered[starts[first] : ends[first]].min()
    for label in range(nbin):
        count = int(counts[label]) if label < counts.size else 0
        if count == 0:
            out[label] = empty
            continue
        group = ordered[starts[label] : ends[label]]
        lo, hi = (count - 1) // 2, count // 2
        part = np.partition(group, (lo, hi) if hi != lo else lo)
        out[label] = (part[lo] + part[hi]) / 2.0 if floating else (float(part[lo]) + float(part[hi])) / 2.0
    return out


def _trail_extent(
    image: np.ndarray, distance: np.ndarray, half_width: float, nsigma: float = 3.0
) -> tuple[float, float] | None:
    """Measure where a trail stands out across its full-resolution profile.

    The median of the pixels in 1-pixel bins of distance to the line gives the
    trail's cross-section; the trail is the run of bins around its peak (within
    ``half_width`` of the line) that exceed the outer bins' median by
    ``nsigma`` times their scatter. Returns the (low, high) distances, or None.
    """
    return _trail_extent_at(np.ravel(image), np.ravel(distance), half_width, nsigma)


def _trail_reach(half_width: float) -> int:
    """Half-width (pixels) of the cross-section :func:`_trail_extent_at` measures."""
    return int(math.ceil(2 * max(half_width, 4.0)))


def _trail_extent_at(
    values: np.ndarray, distance: np.ndarray, half_width: float, nsigma: float = 3.0
) -> tuple[float, float] | None:
    """:func:`_trail_extent` from pixel values and their distances to the line, for any
    set of pixels holding every pixel within :func:`_trail_reach` of it (the medians do
    not depend on the pixels' order): the same answer as from the whole image."""
    reach = _trail_reach(half_width)
    select = np.isfinite(values) & (np.abs(distance) < reach)
    if np.count_nonzero(select) < 10 * reach:
        return None
    index = np.floor(distance[select]).astype(int) + reach
    nbin = 2 * reach
    profile = np.asarray(_binned_medians(values[select], index, nbin), dtype=float)
    centres = np.arange(nbin) - reach + 0.5
    outer = (np.abs(centres) > max(half_width, 2.0)) & np.isfinite(profile)
    inner = np.flatnonzero((np.abs(centres) <= max(half_width, 2.0)) & np.isfinite(profile))
    if outer.sum() < 4 or inner.size == 0:
        return None
    base = np.median(profile[outer])
    noise = 1.4826 * np.median(np.abs(profile[outer] - base))
    if not noise > 0:
        # integer data (raw ADU) along a long trail: the medians of thousands
        # of pixels are all the same integer, their MAD is 0; their scatter
        # (the quantisation) is then the noise
        noise = float(np.std(profile[outer]))
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
    min_mrt_snr: float | None = None,
    min_persistence: float = 0.5,
    persistence_chunk_pix: float = 400,
    max_candidates: int = 20,
    finite: bool | None = None,
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
    min_mrt_snr : float, optional
        S/N of an MRT peak to be a candidate (default ``threshold``). The
        MRT's S/N model (1.25 sigma / sqrt(length)) is optimistic: on demo
        CCDs without a trail, noise and star-field peaks reach S/N 7-11 and
        some pass acstools' profile test as wide false trails; real trails
        stand at S/N 50-1000.

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
    finite : bool, optional
        True if every pixel of ``data`` is known to be finite, False if not;
        None: tested here.

    Returns
    -------
    ndarray of bool
        True on trail pixels.
    """
    data = np.asarray(data)
    shape = data.shape
    finite = _all_finite(data) if finite is None else finite
    if finite:
        bad = np.zeros(shape, dtype=bool) if mask is None else np.array(mask, dtype=bool)
    else:
        bad = ~np.isfinite(data)
        if mask is not None:
            bad |= np.asarray(mask, dtype=bool)
    out = np.zeros(shape, dtype=bool)
    if bad.all():
        return out

    if binsize is None:
        binsize = max(1, math.ceil(max(shape) / max_binned_pix))
    binned = _bin_masked_mean(data, bad, binsize, finite=finite)
    binned = _subtract_background(binned, box=max(15, round(binned.shape[0] / 8)))

    # acstools.findsat_mrt.TrailFinder's settings, scaled to the binning; its
    # run_mrt() is replaced by _median_radon (same transform, same S/N model)
    min_length = max(5.0, min_length_pix / binsize)
    max_width = max(_UNRESOLVED_WIDTH, max_width_pix / binsize)
    buffer = max(10, round(250 / binsize))
    theta_grid = np.arange(0.0, 180.0, theta_step)
    peak_snr = threshold if min_mrt_snr is None else min_mrt_snr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        stddev = np.nanmedian(np.abs(binned)) / 0.67449
        if (np.isfinite(stddev) and stddev > 0
                and not _radon_may_exceed(binned, theta_grid, 1.25 * stddev * peak_snr, min_length)):
            return out  # no line's median can reach the candidate S/N: no candidate
        mrt, length = _median_radon(binned, theta_grid)
        mrt[length < min_length] = np.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            snr = mrt / (1.25 * stddev / np.sqrt(length))
    peaks = _mrt_peaks(snr, peak_snr, separation=10)
    if len(peaks) == 0:
        return out  # no candidate: acstools is not even imported
    order = np.argsort(-snr[peaks[:, 0], peaks[:, 1]], kind="stable")
    peaks = peaks[order[:max_candidates]]
    rho_grid = np.arange(mrt.shape[0]) - (mrt.shape[0] / 2 - 0.5)

    from astropy.table import Table

    findsat = _findsat_utils()
    filter_sources, streak_endpoints = findsat.filter_sources, findsat.streak_endpoints

    # the angle grid's error smears a long trail: sharpen each candidate's line
    refined = [_refine_peak(binned, int(r), float(theta_grid[c]), theta_step, min_length)
               for r, c in peaks]
    rho = rho_grid[[r for r, _ in refined]]
    theta = np.array([t for _, t in refined])

    with _quiet_acstools():
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
        # The refined line is vetted first; if acstools rejects it (seen on a
        # vertical demo trail refined across the 0/180 deg wrap), the grid's.
        grid_endpoints = [streak_endpoints(rho_grid[r], -theta_grid[c], binned.shape)
                          for r, c in peaks]
        filtered = []
        for index in range(len(sources)):
            kept = None
            for attempt, endpoints in enumerate(
                (sources["endpoints"][index], grid_endpoints[index])
            ):
                try:
                    result = filter_sources(
                        binned,
                        [endpoints],
                        max_width=max_width,
                        buffer=buffer,
                        min_length=min_length,
                        minsnr=threshold,
                        check_persistence=True,
                        min_persistence=min_persistence,
                        persistence_chunk=max(10, round(persistence_chunk_pix / binsize)),
                    )
                except (ValueError, RuntimeError):
                    continue
                kept = result
                if result["status"][0] == 2:
                    if attempt:
                        sources["endpoints"][index] = endpoints
                    break
            filtered.append(kept)
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
        # the binned fit gives a coarse 3-sigma width; measure the band again
        # at full resolution, falling back on the coarse one. Only the pixels of
        # the band that can be measured or masked (within the cross-section's reach
        # plus the dilation: the extent never exceeds the reach) are looked at,
        # NaN where bad, their distances those of _signed_distance.
        coarse = 0.5 * float(row["width"]) * binsize
        ys, xs = _band_pixels(shape, p0, p1, _trail_reach(coarse) + dilate_pix)
        (x0, y0), (x1, y1) = p0, p1
        distance = ((y1 - y0) * xs - (x1 - x0) * ys + (x1 * y0 - y1 * x0)) / (math.hypot(x1 - x0, y1 - y0) or 1.0)
        values = np.asarray(data[ys, xs], dtype=np.float32)
        values[bad[ys, xs]] = np.nan
        extent = _trail_extent_at(values, distance, coarse)
        lo, hi = extent if extent is not None else (-coarse, coarse)
        inside = (distance >= lo - dilate_pix) & (distance <= hi + dilate_pix)
        out[ys[inside], xs[inside]] = True
    return out


def _saturated_pixels(data: np.ndarray, saturate: float | None, gain: float) -> tuple[np.ndarray, np.ndarray] | None:
    """:func:`saturation_mask` and L.A.Cosmic's saturated pixels (at or above
    ``SATURATE / GAIN``, :func:`spica.step1._lacosmic.detect_cosmics_sparse`) from one
    comparison of a finite float32 CCD with the lower of the two levels: the mask and
    the sorted flat indices, or None when that does not apply (the callers then compare
    twice). Each is then the same comparison of the same values as its own."""
    if (not isinstance(saturate, float) or not saturate > 0 or data.dtype != np.float32
            or data.ndim != 2 or not float(gain) > 0):
        return None
    level = float(saturate) / float(gain)  # as detect_cosmics_sparse computes it
    with np.errstate(invalid="ignore"):
        over = sparse_flatnonzero(data >= min(saturate, level))  # rounding is monotonic: a superset
    ys, xs = np.divmod(over, data.shape[1])
    values = data[ys, xs]
    mask = np.zeros(data.shape, dtype=bool)
    at = values >= saturate
    mask[ys[at], xs[at]] = True
    return mask, over[values >= level]


def defect_flags(
    data: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    gain: float,
    readnoise: float,
    saturate: float | None,
    cosmics: Mapping[str, Any],
    trails: Mapping[str, Any],
    overwrite: bool = False,
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
    overwrite : bool
        ``data`` may be modified (:func:`detect_cosmics`' ``overwrite``: its
        non-finite and cosmic-ray pixels, which the trail search ignores).

    Returns
    -------
    ndarray of uint8
    """
    data = np.asarray(data)
    nonfinite = None if _all_finite(data) else ~np.isfinite(data)
    shared = _saturated_pixels(data, saturate, gain) if nonfinite is None else None
    if shared is None:
        saturated, bright = saturation_mask(data, saturate), None
        flags = saturated.view(np.uint8) * np.uint8(FLAG_BITS["saturated"])
    else:  # one comparison for the flag and for L.A.Cosmic's saturated stars
        saturated, bright = shared
        flags = np.zeros(data.shape, dtype=np.uint8)
        flags[saturated] = FLAG_BITS["saturated"]
    known = None if mask is None else np.asarray(mask, dtype=bool)
    if nonfinite is not None:
        np.bitwise_or(flags, FLAG_BITS["nonfinite"], out=flags, where=nonfinite)
        known = nonfinite if known is None else (known | nonfinite)

    cosmics = dict(cosmics)
    crs = None
    if cosmics.pop("enabled", True):
        crs = detect_cosmics(
            data, known, gain=gain, readnoise=readnoise, satlevel=saturate,
            finite=nonfinite is None, overwrite=overwrite, saturated=bright, **cosmics
        )
        np.bitwise_or(flags, FLAG_BITS["cosmic_ray"], out=flags, where=crs)

    trails = dict(trails)
    if trails.pop("enabled", True):
        ignore = saturated if crs is None else (saturated | crs)
        if known is not None:
            ignore |= known
        trail = detect_trails(data, ignore, finite=nonfinite is None, **trails)
        np.bitwise_or(flags, FLAG_BITS["trail"], out=flags, where=trail)
    return flags


def write_defect_map(
    exposure_path: str | Path,
    out_path: str | Path,
    *,
    cosmics: Mapping[str, Any],
    trails: Mapping[str, Any],
    mask_path: str | Path | None = None,
    use_datasec: bool = True,
    threads: int = 1,
    keep: Callable[[int, np.ndarray, float | None, np.ndarray | None], None] | None = None,
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
    threads : int
        CCDs analysed at once (threads: the detections release the GIL). Each
        holds one CCD in float32 plus astroscrappy's work arrays (about
        0.5 GB on a 2048 x 4612 CCD). astroscrappy's own OpenMP threads
        should be 1 (``OMP_NUM_THREADS``): they spin and double its CPU time.
    keep : callable, optional
        Called as ``keep(index, pixels, offset, raw)`` with each CCD's pixels as
        read (float32, BSCALE/BZERO applied, the whole array), in MEF order,
        before they are analysed; ``offset`` is the ``BZERO`` of a 16-bit
        integer CCD with ``BSCALE = 1`` (``pixels - offset`` is then exact in
        int16), else None; ``raw`` the int16 pixels as stored when they were
        read straight from the file (:func:`spica.step1._pixels.raw_integer_image`:
        ``pixels = raw + offset``), else None. The caller keeps what it needs
        (the QA of :func:`spica.step1.reduce.reduce_exposure` keeps the pixels:
        the exposure is read once per job); it must not modify the arrays, and
        must copy ``pixels`` to keep them: the detections then modify them
        (cosmic-ray pixels cleaned in place). ``raw`` is left alone.

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

    def read(hdu: Any, index: int) -> tuple[Any, str, np.ndarray, np.ndarray | None]:
        """Pixels and known-bad mask of one CCD (main thread: FITS reads are not thread-safe)."""
        header = hdu.header
        extname = str(header.get("EXTNAME", f"EXT{index + 1}")).strip()
        offset = _int16_offset(header)  # before the data: astropy then drops BZERO
        raw = raw_integer_image(hdu, exposure_path) if offset is not None else None
        if raw is not None:  # one pass from the file's int16 to float32 (astropy: three)
            data = np.add(raw, np.float32(offset or 0), dtype=np.float32)
        else:
            data = np.asarray(hdu.data, dtype=np.float32)
            del hdu.data  # each CCD is read once and not kept (36 CCDs in float: GBs)
        if keep is not None:
            keep(index, data, offset, raw)
        known = None
        if mask_hdul is not None:
            mask_hdu = mask_hdul[extname]
            # an unscaled integer mask (Elixir's int16) compared as stored: x < 0.5 is x < 1
            raw_mask = raw_integer_image(mask_hdu, mask_path) if _int16_offset(mask_hdu.header) == 0 else None
            bpm = raw_mask if raw_mask is not None else np.asarray(mask_hdu.data)
            if bpm.shape != data.shape:
                raise ValueError(f"{mask_path}[{extname}] is {bpm.shape}, image is {data.shape}")
            known = bpm < 1 if raw_mask is not None else bpm < 0.5
            if raw_mask is None:
                del mask_hdu.data  # read by astropy: not kept
        return header, extname, data, known

    def analyse(
        header: Any, extname: str, data: np.ndarray, known: np.ndarray | None
    ) -> tuple[str, np.ndarray, dict[str, int]]:
        saturate = _header_float(header, "SATURATE")
        rows, cols = headers.section_slices(header.get("DATASEC") if use_datasec else None, data.shape)
        inner = defect_flags(
            data[rows, cols],
            None if known is None else known[rows, cols],
            gain=float(header.get("GAIN", 1.0) or 1.0),
            readnoise=float(header.get("RDNOISE", 5.0) or 5.0),
            saturate=saturate,
            cosmics=cosmics,
            trails=trails,
            overwrite=True,  # the CCD's own float copy: its cosmic-ray pixels may be cleaned
        )
        if inner.shape == data.shape:
            flags = inner
        else:
            # outside DATASEC: saturation and non-finite still flagged
            outside = np.ones(data.shape, dtype=bool)
            outside[rows, cols] = False
            flags = np.zeros(data.shape, dtype=np.uint8)
            flags[outside & saturation_mask(data, saturate)] |= FLAG_BITS["saturated"]
            flags[outside & ~np.isfinite(data)] |= FLAG_BITS["nonfinite"]
            flags[rows, cols] = inner
        del inner
        values = flags.reshape(-1)[sparse_flatnonzero(flags)]  # a few per thousand are set
        ccd_counts = {
            name: int(np.count_nonzero(values & FLAG_BITS[name]))
            for name in ("saturated", "cosmic_ray", "trail", "nonfinite")
        }
        ccd_counts["npix"] = int(flags.size)
        return extname, flags, ccd_counts

    def write(extname: str, flags: np.ndarray, ccd_counts: dict[str, int]) -> None:
        counts[extname] = ccd_counts
        out_header = fits.Header()
        out_header["EXTNAME"] = extname
        out_header["NSATUR"] = (ccd_counts["saturated"], "pixels flagged saturated (2)")
        out_header["NCOSMIC"] = (ccd_counts["cosmic_ray"], "pixels flagged cosmic ray (4)")
        out_header["NTRAIL"] = (ccd_counts["trail"], "pixels flagged trail (8)")
        out_header["NNONFIN"] = (ccd_counts["nonfinite"], "pixels flagged non-finite (32)")
        # streamed to the end of the file: fits.append reopened and verified every
        # HDU already written for each CCD (quadratic: 0.8 s CPU per 36-CCD exposure)
        header = fits.ImageHDU(data=flags, header=out_header).header
        with fits.StreamingHDU(str(out_path), header) as stream:  # str: astropy takes a Path for its name
            stream.write(flags)

    with fits.open(exposure_path) as hdul, _open_optional(mask_path) as mask_hdul:
        ccds = list(headers.image_hdus(hdul))
        if threads <= 1:
            for index, hdu in enumerate(ccds):
                write(*analyse(*read(hdu, index)))
        else:
            # CCDs in parallel threads (astroscrappy, scipy.ndimage and numpy
            # release the GIL), at most `threads` CCDs in memory, written in order
            with ThreadPoolExecutor(max_workers=threads) as pool:
                pending: deque[Future] = deque()
                for index, hdu in enumerate(ccds):
                    pending.append(pool.submit(analyse, *read(hdu, index)))
                    if len(pending) >= threads:
                        write(*pending.popleft().result())
                while pending:
                    write(*pending.popleft().result())
    return counts


def _int16_offset(header: Any) -> float | None:
    """``BZERO`` of a 16-bit integer image stored with ``BSCALE = 1`` and no ``BLANK``
    (its scaled pixels minus it are exact int16), else None."""
    if header.get("BITPIX") != 16 or "BLANK" in header:
        return None
    bscale, bzero = _header_float(header, "BSCALE"), _header_float(header, "BZERO")
    if bscale not in (None, 1.0) or (bzero is not None and not float(bzero).is_integer()):
        return None
    return bzero or 0.0


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
