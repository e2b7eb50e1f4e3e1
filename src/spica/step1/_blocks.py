"""Block sums of images: the binning kernel shared by the defect masks and the QA thumbnails."""

from __future__ import annotations

import numpy as np

__all__ = ["block_sum"]


def block_sum(values: np.ndarray, size: int, axis: int, dtype: type) -> np.ndarray:
    """Sums of ``size`` consecutive rows (axis 0) or columns (axis 1); the last block may be short.

    The ``size`` strided slices are added up (no reshape reduction over a
    short middle axis, numpy's slow path); no copy of the image.

    Parameters
    ----------
    values : numpy.ndarray
        2-D array (any numeric or boolean-as-uint8 type).
    size : int
        Block length.
    axis : {0, 1}
        Rows (0) or columns (1).
    dtype : type
        Accumulator type (e.g. float32 within a block, float64 across blocks).

    Returns
    -------
    numpy.ndarray
        ``ceil(n / size)`` sums along ``axis``.
    """
    values = values if axis == 0 else values.T
    length = values.shape[0]
    full = (length // size) * size
    out = np.zeros((-(-length // size),) + values.shape[1:], dtype=dtype)
    if full:
        head = out[: full // size]
        for k in range(size):
            head += values[k:full:size]
    if full < length:
        out[-1] = values[full:].sum(axis=0, dtype=dtype)
    return out if axis == 0 else out.T
