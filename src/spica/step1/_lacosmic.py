"""L.A.Cosmic evaluated only where a cosmic ray can be: the fast path of step 1.

``astroscrappy.detect_cosmics`` (van Dokkum 2001, as implemented by
astroscrappy 1.3 with its defaults ``sepmed=True``, ``fsmode="median"``,
``cleantype="meanmask"``) filters the *whole* image with four separable
medians per iteration (7x7 noise model, 7x7 Laplacian background, 5x5 and 9x9
fine structure): about 5 s of CPU per iteration on a 2048 x 4612 MegaCam CCD,
although a cosmic-ray pixel needs them only where its Laplacian stands out.

This module computes the same quantities pixel by pixel, where they matter:

1. ``L+`` (the Laplacian of the 2x subsampled image, negative values clipped,
   rebinned), directly at the original resolution, and never as a whole
   image: a cheap upper bound of it (the largest of the four terms it
   averages) is computed everywhere, ``L+`` itself only where the bound
   passes (about 1 % of the pixels) and in the patches step 3 needs.
2. Candidates: pixels where ``L+ / (2 noise)`` could exceed the detection
   limit, with a *lower* bound of the noise (the sky's own, from block
   medians) and a margin (``prefilter`` x ``sigclip``). Because
   ``S' = S - median(S) <= S`` and the noise model is never below the sky's
   noise by more than the margin, every pixel astroscrappy would test
   positive is a candidate.
3. At the candidates only: the noise model (7x7 separable median of the
   variance), then, where ``L+ / (2 noise)`` (an upper bound of ``S'``)
   passes, ``S'`` (``L+`` minus its 7x7 separable median, over twice the
   noise), the fine-structure contrast (5x5 separable median minus its 9x9
   separable median) and the two growth steps (``sigclip`` then
   ``sigfrac x sigclip``), by gathering small patches around each pixel.
4. Later iterations clean the detected pixels (5x5 mean of the good
   neighbours, astroscrappy's ``meanmask``) and look again only near them:
   far from a detection the cleaned image is unchanged, so is the answer.

One approximation: ``S'`` divides the 7x7 Laplacian background by the noise at
the pixel itself instead of each neighbour's (the noise model is a 7x7 median:
the two agree except across bright-star profiles, where the contrast test
rejects the pixel anyway). Image borders are handled by repeating the edge
pixels. On the demo survey and on full-size CCDs the result agrees with
astroscrappy on the simulated cosmic-ray pixels (``tests/step1/test_defects.py``
and ``bench/step1.py``).
"""

from __future__ import annotations

import numpy as np

from spica.step1._blocks import sparse_flatnonzero

__all__ = ["laplacian_plus", "detect_cosmics_sparse"]


def laplacian_plus(image: np.ndarray) -> np.ndarray:
    """L.A.Cosmic's ``L+`` at the original resolution.

    Subsampling by 2, convolving with the Laplacian kernel
    ``[[0, -1, 0], [-1, 4, -1], [0, -1, 0]]``, clipping at 0 and averaging each
    2x2 block back is, for a pixel ``v`` with neighbours left ``l``, right
    ``r``, below ``d`` and above ``u``, the mean of
    ``max(0, 2v - l - d)``, ``max(0, 2v - r - d)``, ``max(0, 2v - l - u)`` and
    ``max(0, 2v - r - u)`` (each sub-pixel sees its own pixel twice).

    Parameters
    ----------
    image : ndarray
        2-D float image.

    Returns
    -------
    ndarray of float32
    """
    p = np.pad(np.asarray(image, dtype=np.float32), 1, mode="edge")
    c = p[1:-1, 1:-1]
    two = c + c
    t_l = two - p[1:-1, :-2]
    t_r = two - p[1:-1, 2:]
    down, up = p[:-2, 1:-1], p[2:, 1:-1]
    out = np.maximum(t_l - down, 0)
    out += np.maximum(t_l - up, 0)
    del t_l
    out += np.maximum(t_r - down, 0)
    out += np.maximum(t_r - up, 0)
    out *= 0.25
    return out


def _lplus_at(image: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """:func:`laplacian_plus` at the pixels ``(ys, xs)`` only (any shape; edges repeated)."""
    ny, nx = image.shape
    flat = image.reshape(-1)
    centre = ys * nx + xs
    v = flat.take(centre)
    left = flat.take(centre - (xs > 0))
    right = flat.take(centre + (xs < nx - 1))
    down = flat.take(centre - nx * (ys > 0))
    up = flat.take(centre + nx * (ys < ny - 1))
    t_l, t_r = 2 * v - left, 2 * v - right
    return 0.25 * (
        np.maximum(t_l - down, 0) + np.maximum(t_l - up, 0)
        + np.maximum(t_r - down, 0) + np.maximum(t_r - up, 0)
    )  # fmt: skip


def _patches(image: np.ndarray, ys: np.ndarray, xs: np.ndarray, radius: int) -> np.ndarray:
    """Square patches of side ``2 radius + 1`` centred on each pixel, edges repeated.

    The patches away from the edges are picked from the image's sliding-window
    view (one fancy index of a strided view: half the CPU of a ``take`` with a
    precomputed index per patch pixel, the same values); only the pixels within
    ``radius`` of an edge go through clipped 2-D indices.
    """
    from numpy.lib.stride_tricks import sliding_window_view

    ny, nx = image.shape
    side = 2 * radius + 1
    inner = (ys >= radius) & (ys < ny - radius) & (xs >= radius) & (xs < nx - radius)
    if ny < side or nx < side:
        inner[:] = False  # no whole window fits
    elif inner.all():
        return sliding_window_view(image, (side, side))[ys - radius, xs - radius]
    out = np.empty((ys.size, side, side), dtype=image.dtype)
    if inner.any():
        out[inner] = sliding_window_view(image, (side, side))[ys[inner] - radius, xs[inner] - radius]
    if not inner.all():
        offsets = np.arange(-radius, radius + 1)
        edge = ~inner
        rows = np.clip(ys[edge][:, None] + offsets, 0, ny - 1)
        cols = np.clip(xs[edge][:, None] + offsets, 0, nx - 1)
        out[edge] = image[rows[:, :, None], cols[:, None, :]]
    return out


#: Median selection networks (Devillard's ``opt_med7`` and ``opt_med9``, after
#: Paeth): compare-exchanges after which the middle element is the median.
#: Exact (checked on every 0/1 input, which proves a min/max network).
_MEDIAN_NETWORKS: dict[int, tuple[tuple[int, int], ...]] = {
    7: ((0, 5), (0, 3), (1, 6), (2, 4), (0, 1), (3, 5), (2, 6), (2, 3), (3, 6), (4, 5),
        (1, 4), (1, 3), (3, 4)),
    9: ((1, 2), (4, 5), (7, 8), (0, 1), (3, 4), (6, 7), (1, 2), (4, 5), (7, 8), (0, 3),
        (5, 8), (4, 7), (3, 6), (1, 4), (2, 5), (4, 7), (4, 2), (6, 4), (4, 2)),
}


def _median_last(values: np.ndarray) -> np.ndarray:
    """Median along the last axis, of odd length.

    Lengths 7 and 9 (the 7x7 and 9x9 separable medians) go through a
    selection network of element-wise minima and maxima (2-3x faster than
    ``np.partition`` on short rows, the same values for finite input);
    other lengths through ``np.partition`` (3x ``np.median``).
    """
    size = values.shape[-1]
    network = _MEDIAN_NETWORKS.get(size)
    if network is None:
        half = size // 2
        return np.partition(values, half, axis=-1)[..., half]
    x = [values[..., i] for i in range(size)]
    for i, j in network:
        x[i], x[j] = np.minimum(x[i], x[j]), np.maximum(x[i], x[j])
    return x[size // 2]


def _sepmed_centre(patches: np.ndarray) -> np.ndarray:
    """Separable median (rows first, then the column of row medians) at each patch centre."""
    return _median_last(_median_last(patches))


def _median5(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Element-wise median of five arrays (a min/max network: no sort)."""
    low = np.maximum(np.minimum(a, b), np.minimum(c, d))
    high = np.minimum(np.maximum(a, b), np.maximum(c, d))
    return np.maximum(np.minimum(e, low), np.minimum(np.maximum(e, low), high))


def _sepmed5_windows(patches: np.ndarray) -> np.ndarray:
    """Separable 5x5 median at every position of each (n, h, w) patch where it fits."""
    h, w = patches.shape[1] - 4, patches.shape[2] - 4
    rows = _median5(*(patches[:, :, i : i + w] for i in range(5)))
    return _median5(*(rows[:, i : i + h, :] for i in range(5)))


def _mark(shape: tuple[int, int], ys: np.ndarray, xs: np.ndarray, radius: int) -> np.ndarray:
    """Boolean image true within ``radius`` (Chebyshev) of the given pixels."""
    ny, nx = shape
    out = np.zeros(shape, dtype=bool)
    if ys.size == 0:
        return out
    for dy in range(-radius, radius + 1):
        yy = np.clip(ys + dy, 0, ny - 1)
        for dx in range(-radius, radius + 1):
            out[yy, np.clip(xs + dx, 0, nx - 1)] = True
    return out


def _grow1(mask: np.ndarray) -> np.ndarray:
    """3x3 dilation of a boolean image (edges clipped): from the list of its pixels
    when they are few (an Elixir mask's bad columns, a few per thousand), else by
    shifted ORs; exact either way."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim == 2 and mask.size >= 4096:
        listed = sparse_flatnonzero(mask, limit=mask.size // 64)
        if listed is not None:
            ys, xs = np.divmod(listed, mask.shape[1])
            return _mark(mask.shape, ys, xs, 1)
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    rows = out.copy()
    out[:, 1:] |= rows[:, :-1]
    out[:, :-1] |= rows[:, 1:]
    return out


def _noise_floor(image: np.ndarray, bad: np.ndarray, block: int = 64) -> float:
    """Low sky level of the image: 5th percentile of 64 x 64 block medians (of 1/16 of the pixels).

    The medians of the good samples of each block by one sort (NaN last), not
    ``np.nanmedian`` (masked arrays on short rows: 4x the CPU), the same values.
    """
    step = 4
    sample = image[::step, ::step]
    good = ~bad[::step, ::step]
    size = block // step
    by, bx = max(1, sample.shape[0] // size), max(1, sample.shape[1] // size)
    h, w = (sample.shape[0] // by) * by, (sample.shape[1] // bx) * bx
    values = np.where(good[:h, :w], sample[:h, :w], np.float32(np.nan)).astype(np.float32, copy=False)
    blocks = values.reshape(by, h // by, bx, w // bx).transpose(0, 2, 1, 3).reshape(by * bx, -1)
    ordered = np.sort(blocks, axis=1)
    count = np.count_nonzero(np.isfinite(blocks), axis=1)
    rows = np.arange(blocks.shape[0])
    low = ordered[rows, np.maximum((count - 1) // 2, 0)]
    high = ordered[rows, np.minimum(count // 2, blocks.shape[1] - 1)]
    medians = (low + high) / np.asarray(2, ordered.dtype)  # np.median's mean of the middle two
    medians = medians[(count > 0) & np.isfinite(medians)]
    return float(np.percentile(medians, 5)) if medians.size else 0.0


def _strong_pixels(image: np.ndarray, threshold: float, rows: int = 64) -> np.ndarray:
    """Flat indices where :func:`laplacian_plus` exceeds ``threshold``, without computing it everywhere.

    ``L+`` is the mean of four clipped terms ``2v - (left or right) - (down or
    up)``, so it never exceeds the largest, ``2v - min(left, right) - min(down,
    up)``: that bound (5 operations a pixel instead of 13), computed in strips
    of ``rows`` rows that stay in the processor's cache, selects about 1 % of
    the pixels, where ``L+`` itself is then computed (:func:`_lplus_at`, the
    same float32 operations, hence the same values as :func:`laplacian_plus`).
    """
    ny, nx = image.shape
    # the largest term computed as L+ computes it (rounding is monotonic: L+ <= it), with
    # a margin all the same
    bound = threshold * (1 - 1e-3)
    found = []
    for y0 in range(0, ny, rows):
        y1 = min(ny, y0 + rows)
        if y0 == 0 or y1 == ny or nx < 2:  # the image's first or last rows: edges repeated by a padded copy
            a, b = max(0, y0 - 1), min(ny, y1 + 1)
            p = np.pad(image[a:b], ((1 if a == y0 else 0, 1 if b == y1 else 0), (1, 1)), mode="edge")
            c = p[1:-1, 1:-1]
            term = c + c
            term -= np.minimum(p[1:-1, :-2], p[1:-1, 2:])
            term -= np.minimum(p[:-2, 1:-1], p[2:, 1:-1])
        else:  # inside: the rows above and below are the image's own (no padded copy)
            c = image[y0:y1]
            side = np.empty_like(c)  # min(left, right), the edge columns their own neighbours
            np.minimum(c[:, :-2], c[:, 2:], out=side[:, 1:-1])
            np.minimum(c[:, 0], c[:, 1], out=side[:, 0])
            np.minimum(c[:, -2], c[:, -1], out=side[:, -1])
            term = c + c
            term -= side
            term -= np.minimum(image[y0 - 1 : y1 - 1], image[y0 + 1 : y1 + 1], out=side)
        found.append(np.flatnonzero(term > bound) + y0 * nx)
    candidates = np.concatenate(found)
    ys, xs = np.divmod(candidates, nx)
    return candidates[_lplus_at(image, ys, xs) > threshold]


def _lplus_patches(image: np.ndarray, ys: np.ndarray, xs: np.ndarray, radius: int) -> np.ndarray:
    """:func:`laplacian_plus` in square patches of side ``2 radius + 1`` around each pixel
    (edges repeated, as :func:`_patches` of the whole ``L+`` image would give), from the
    image's patches: the same float32 operations, the same values."""
    ny, nx = image.shape
    side = 2 * radius + 1
    out = np.empty((ys.size, side, side), dtype=np.float32)
    reach = radius + 1
    inner = (ys >= reach) & (ys < ny - reach) & (xs >= reach) & (xs < nx - reach)
    if inner.any():
        p = _patches(image, ys[inner], xs[inner], reach)
        c = p[:, 1:-1, 1:-1]
        two = c + c
        t_l = two - p[:, 1:-1, :-2]
        t_r = two - p[:, 1:-1, 2:]
        down, up = p[:, :-2, 1:-1], p[:, 2:, 1:-1]
        o = np.maximum(t_l - down, 0)
        o += np.maximum(t_l - up, 0)
        o += np.maximum(t_r - down, 0)
        o += np.maximum(t_r - up, 0)
        o *= 0.25
        out[inner] = o
    if not inner.all():  # within reach of an edge: L+ of the clipped positions
        edge = ~inner
        offsets = np.arange(-radius, radius + 1)
        rows = np.clip(ys[edge][:, None, None] + offsets[None, :, None], 0, ny - 1)
        cols = np.clip(xs[edge][:, None, None] + offsets[None, None, :], 0, nx - 1)
        rows, cols = np.broadcast_arrays(rows, cols)
        out[edge] = _lplus_at(image, rows, cols)
    return out


def _neighbours(flat: np.ndarray, radius: int, shape: tuple[int, int], scratch: np.ndarray) -> np.ndarray:
    """Unique flat indices within ``radius`` (Chebyshev) of the given ones.

    Deduplicated without sorting: each candidate writes its position into
    ``scratch`` (an uninitialised integer image, only the written cells are
    read) and keeps itself if it was the last writer.
    """
    ny, nx = shape
    ys, xs = np.divmod(flat, nx)
    offsets = np.arange(-radius, radius + 1)
    yy = np.clip(ys[:, None, None] + offsets[None, :, None], 0, ny - 1)
    xx = np.clip(xs[:, None, None] + offsets[None, None, :], 0, nx - 1)
    every = (yy * nx + xx).ravel()
    order = np.arange(every.size)
    scratch[every] = order
    return every[scratch[every] == order]


def detect_cosmics_sparse(
    data: np.ndarray,
    mask: np.ndarray,
    *,
    gain: float,
    readnoise: float,
    satlevel: float,
    sigclip: float,
    sigfrac: float,
    objlim: float,
    niter: int,
    prefilter: float = 0.7,
    overwrite: bool = False,
    saturated: np.ndarray | None = None,
) -> np.ndarray:
    """Cosmic-ray mask of L.A.Cosmic, computed at candidate pixels only.

    Same parameters and meaning as ``astroscrappy.detect_cosmics`` (with its
    defaults ``sepmed=True``, ``fsmode="median"``, ``cleantype="meanmask"``).

    Parameters
    ----------
    data : ndarray
        Image in ADU, finite everywhere (fill non-finite pixels and mask them).
    mask : ndarray of bool
        Pixels never flagged nor used for cleaning (astroscrappy's ``inmask``).
    gain, readnoise : float
        e-/ADU and e-.
    satlevel : float
        astroscrappy's ``satlevel``, compared as astroscrappy does with the
        image in electrons: saturated-star cores (and 4 pixels around them) are
        masked. ``inf`` disables it.
    sigclip, sigfrac, objlim, niter : float, float, float, int
        L.A.Cosmic settings.
    prefilter : float
        Margin of the candidate search: a pixel is examined when
        ``L+ / (2 noise_sky) > prefilter x sigclip``. Smaller is safer and
        slower; the noise model is at least the sky's, so any value well
        below 1 finds every detection.
    overwrite : bool
        ``data`` (float32) may be modified: the detected pixels are cleaned in
        it between iterations, which saves a copy of the image.
    saturated : ndarray of int, optional
        The sorted flat indices of the pixels ``>= satlevel / gain`` if the caller
        has them (the same comparison: not made again).

    Returns
    -------
    ndarray of bool
    """
    gain = float(gain)
    image = np.asarray(data, dtype=np.float32)
    if not overwrite and int(niter) > 1:
        image = image.copy()
    shape = image.shape
    nx = shape[1]
    rn2 = float(readnoise) ** 2

    # astroscrappy's update_mask: input mask grown by 1, saturated-star cores by 4
    bad = _grow1(np.asarray(mask, dtype=bool))
    if np.isfinite(satlevel):
        if saturated is None:
            saturated = sparse_flatnonzero(image >= satlevel / gain)
        if saturated.size:
            sy, sx = np.divmod(saturated, nx)
            core = _sepmed_centre(_patches(image, sy, sx, 3)) > satlevel / 10.0 / gain
            bad |= _mark(shape, sy[core], sx[core], 4)
    flat_bad = bad.ravel()

    # noise in ADU: sqrt(gain x level + rn^2) / gain, never below the sky's
    floor = _noise_floor(image, bad)
    noise_floor = np.sqrt(max(gain * floor + rn2, 1e-5)) / gain
    threshold = 2.0 * noise_floor * prefilter * sigclip
    # L+ is computed where it is needed only (no L+ image): the candidates' and, for S',
    # their 7 x 7 neighbourhoods; from the current (cleaned) image at every iteration
    strong = _strong_pixels(image, threshold)
    crmask = np.zeros(shape, dtype=bool)
    flat_cr = crmask.ravel()
    # for _neighbours: only the cells just written are read; 9 entries per pixel at most
    scratch = np.empty(crmask.size, dtype=np.int32 if 9 * crmask.size < 2**31 else np.int64)
    marks = np.zeros(crmask.size, dtype=bool)
    sigcliplow = sigfrac * sigclip

    for iteration in range(int(niter)):
        cand = strong[~flat_bad[strong]]
        if cand.size == 0:
            break
        cy, cx = np.divmod(cand, nx)
        noise, sp = _sprime(image, cy, cx, rn2, gain, sigclip)
        seed = sp > sigclip
        if seed.any():
            idx = np.flatnonzero(seed)
            fine = _fine_structure(image, cy[idx], cx[idx]) / noise[idx]
            seed[idx[~(sp[idx] / np.maximum(fine, 0.01) > objlim)]] = False
        if not seed.any():
            break
        # growth 1: neighbours of seeds with S' > sigclip (all of them are candidates)
        around = _neighbours(cand[seed], 1, shape, scratch)
        marks[around] = True  # a scratch mask, cleared after use: no image-sized zeroing
        first = cand[(sp > sigclip) & marks[cand]]
        marks[around] = False
        # growth 2: neighbours of those with S' > sigfrac x sigclip; S' <= L+ / (2 noise_sky)
        near = _neighbours(first, 1, shape, scratch)
        near = near[~flat_bad[near]]
        ny_, nx_ = np.divmod(near, nx)
        keep = _lplus_at(image, ny_, nx_) > 2.0 * noise_floor * prefilter * sigcliplow
        near, ny_, nx_ = near[keep], ny_[keep], nx_[keep]
        _, sp2 = _sprime(image, ny_, nx_, rn2, gain, sigcliplow)
        found = near[sp2 > sigcliplow]
        found = found[~flat_cr[found]]
        if found.size == 0:
            break
        flat_cr[found] = True
        if iteration + 1 == int(niter):
            break
        # clean every detection so far, then look again only near them: L+
        # changes within 1 pixel of a cleaned pixel, S' and the fine
        # structure within a few
        all_cr = sparse_flatnonzero(flat_cr)
        all_y, all_x = np.divmod(all_cr, nx)
        _clean_meanmask(image, crmask, bad, all_y, all_x, fallback=floor)
        touched = _neighbours(all_cr, 1, shape, scratch)
        # candidates now: the first ones and the touched pixels, in 8 x 8 blocks
        # next to a detection (>= 8 pixels away: farther than anything changes)
        blocks = np.zeros((shape[0] // 8 + 1, shape[1] // 8 + 1), dtype=bool)
        blocks[all_y // 8, all_x // 8] = True
        blocks = _grow1(blocks)
        strong = np.concatenate([strong, touched])
        order = np.arange(strong.size)
        scratch[strong] = order
        strong = strong[scratch[strong] == order]
        sy, sx = np.divmod(strong, nx)
        near_cr = blocks[sy // 8, sx // 8]
        strong, sy, sx = strong[near_cr], sy[near_cr], sx[near_cr]
        strong = strong[_lplus_at(image, sy, sx) > threshold]
    return crmask


def _sprime(
    image: np.ndarray, ys: np.ndarray, xs: np.ndarray, rn2: float, gain: float, limit: float
) -> tuple[np.ndarray, np.ndarray]:
    """Noise model (ADU) and S' (Laplacian S/N minus its 7x7 separable median) at the pixels.

    Only comparisons ``S' > limit`` are made of the result: since the median of
    ``L+ >= 0`` is never negative, ``S' <= L+ / (2 noise)``, and where that
    bound is not above ``limit`` it is returned instead of S' (the same
    comparison, without the 7x7 patch of L+: most candidates, on bright
    stars whose noise is far above the sky's).
    """
    if ys.size == 0:
        empty = np.zeros(0, np.float32)
        return empty, empty
    out_noise = np.empty(ys.size, np.float32)
    out_sp = np.empty(ys.size, np.float32)
    chunk = 50_000  # bounds the patches' memory (81 values per pixel)
    for start in range(0, ys.size, chunk):
        y, x = ys[start : start + chunk], xs[start : start + chunk]
        var = gain * _sepmed_centre(_patches(image, y, x, 3)) + rn2  # e-^2
        noise = (np.sqrt(np.maximum(var, 1e-5)) / gain).astype(np.float32)
        bound = _lplus_at(image, y, x) / (2.0 * noise)  # S' with a zero background
        test = np.flatnonzero(bound > limit)
        if test.size:
            lplus = _lplus_patches(image, y[test], x[test], 3)
            bound[test] = (lplus[:, 3, 3] - _sepmed_centre(lplus)) / (2.0 * noise[test])
        out_noise[start : start + chunk] = noise
        out_sp[start : start + chunk] = bound
    return out_noise, out_sp


def _fine_structure(image: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Fine structure at the pixels: 5x5 separable median minus its 9x9 separable median."""
    out = np.empty(ys.size, np.float32)
    chunk = 20_000  # 169 values per pixel
    for start in range(0, ys.size, chunk):
        y, x = ys[start : start + chunk], xs[start : start + chunk]
        med5 = _sepmed5_windows(_patches(image, y, x, 6))  # (n, 9, 9) around each pixel
        out[start : start + chunk] = med5[:, 4, 4] - _sepmed_centre(med5)
    return out


def _clean_meanmask(
    image: np.ndarray,
    crmask: np.ndarray,
    bad: np.ndarray,
    ys: np.ndarray,
    xs: np.ndarray,
    *,
    fallback: float,
) -> None:
    """Replace the cosmic-ray pixels by the mean of their good 5x5 neighbours (in place).

    ``fallback`` (the sky level) replaces a pixel without any good neighbour.
    """
    if ys.size == 0:
        return
    values = _patches(image, ys, xs, 2)
    usable = ~(_patches(crmask, ys, xs, 2) | _patches(bad, ys, xs, 2))
    count = usable.sum(axis=(1, 2))
    total = np.where(usable, values, 0).sum(axis=(1, 2))
    image[ys, xs] = np.where(count > 0, total / np.maximum(count, 1), fallback)
