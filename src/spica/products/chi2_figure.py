"""The figure of a chi-squared tile: ``<tile>_chi2.png`` and ``<tile>_chi2.ps``.

The seed's plots come as PNG and PostScript (``%s_chi2.ps`` beside the PNG).
Both files are one figure, drawn by :func:`spica.products.thumbnails.write_thumbnails`
(the stack thumbnails' ``m`` view: binned image, asinh stretch), once per format:
its figure writer picks the format from the file name; the PostScript page is the
figure's own size (``ps.papersize: figure``: a tile's figure is larger than a
letter page, which would put it off the page). A module of its own, so
that the chi-squared figure can change without rerunning the stack thumbnails.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

from spica.products.thumbnails import write_thumbnails

__all__ = ["write_chi2_figure"]


def write_chi2_figure(image: str | Path, weight: str | Path, *, png: str | Path, ps: str | Path,
                      title: str = "") -> tuple[Path, Path]:
    """Write the chi-squared image's figure as PNG and as PostScript.

    Parameters
    ----------
    image, weight : path
        The tile's ``_chi2.fits`` and ``_chi2_weight.fits``.
    png, ps : path
        The two files to write (``_chi2.png``, ``_chi2.ps``).
    title : str
        The tile's name, printed above the image.

    Returns
    -------
    tuple of Path
        ``(png, ps)``.
    """
    write_thumbnails(image, weight, {"m": png}, title=title)
    with matplotlib.rc_context({"ps.papersize": "figure"}):  # the image is read again: binned, banded
        write_thumbnails(image, weight, {"m": ps}, title=title)
    return Path(png), Path(ps)
