"""PNG thumbnails of release images (seed 3.2.2): binned image, weight map, background.

``write_thumbnails`` draws ``_m.png``, ``_m_med.png``, ``_wmm.png``,
``_wmm_med.png`` and ``_bkg_m.png`` of a stack (and the PNG of a chi-squared
image) with the QualityFITS-in plotting code (:mod:`spica.step1.qa.plots`), reading
the image in bands of rows so that a 19354 x 19354 stack never sits in memory.
It lives apart from :mod:`spica.coaddition` so that a change of the plotting
code reruns the thumbnails, not the stacks.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

__all__ = ["write_thumbnails"]


def _block_reduce(path: str | Path, factor: int, reducer=np.nanmean) -> np.ndarray:
    """Block-reduce a (possibly huge) image by ``factor``, one band of rows at a time."""
    from astropy.io import fits

    with fits.open(path, memmap=True) as hdul:
        data = hdul[0].data
        ny, nx = data.shape
        out_ny, out_nx = ny // factor, nx // factor
        out = np.empty((out_ny, out_nx), np.float32)
        for row in range(out_ny):
            band = np.asarray(data[row * factor:(row + 1) * factor, : out_nx * factor], np.float32)
            out[row] = reducer(band.reshape(factor, out_nx, factor), axis=(0, 2))
    return out


def write_thumbnails(
    image: str | Path,
    weight: str | Path,
    outputs: Mapping[str, str | Path],
    *,
    title: str = "",
    mesh: int = 64,
) -> None:
    """PNG thumbnails of a stack (seed 3.2.2): ``m`` (binned image), ``m_med``
    (medium), ``wmm``/``wmm_med`` (weight map), ``bkg_m`` (background on a
    ``mesh``-pixel grid) — keys of ``outputs``; missing keys are skipped.
    Memory stays bounded: the image is read in bands of rows."""
    import warnings

    from spica.step1.qa.plots import mosaic_thumbnail

    side = max(_shape(image))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # empty (uncovered) blocks
        for key, source, size, stretch in (
            ("m", image, 1200, "asinh"), ("m_med", image, 600, "asinh"),
            ("wmm", weight, 1200, "linear"), ("wmm_med", weight, 600, "linear"),
        ):
            if key in outputs:
                binned = _block_reduce(source, max(1, int(np.ceil(side / size))))
                mosaic_thumbnail(binned, [], [], outputs[key], max_pixels=size,
                                 title=f"{title} {key}", stretch=stretch)
        if "bkg_m" in outputs:
            background = _block_reduce(image, mesh, np.nanmedian)
            mosaic_thumbnail(background, [], [], outputs["bkg_m"], max_pixels=600,
                             title=f"{title} background", stretch="linear", cmap="viridis")


def _shape(path: str | Path) -> tuple[int, int]:
    from astropy.io import fits

    header = fits.getheader(path)
    return int(header["NAXIS2"]), int(header["NAXIS1"])
