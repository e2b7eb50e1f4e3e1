"""The figure writer every QA plot goes through (step 1, QualityFITS-out, colours).

Light on purpose (matplotlib only, Agg backend): a job that only draws a few
plots need not import step 1's measurement code to write them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["fit_title", "save_figure"]


def fit_title(ax: plt.Axes, title: str, fontsize: float, *, y: float | None = None) -> None:
    """Set the axes' ``title`` at ``fontsize``, smaller if it would run past the figure's
    edges (long titles, a Pre-Wide stack's completeness, a step 1 background histogram's
    with both medians, were clipped). Call it once the axes are placed: the title is
    centred over them. One text measurement, no draw of the figure.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        The axes.
    title : str
        The title (may hold several lines).
    fontsize : float
        Its size in points when it fits.
    y : float, optional
        Its height in axes fraction (None: matplotlib places it).
    """
    text = ax.set_title(title, fontsize=fontsize, **({} if y is None else {"y": y}))
    renderer = ax.figure.canvas.get_renderer()
    for _ in range(4):  # glyph widths round with the size: measured again
        extent = text.get_window_extent(renderer)
        centre, half = (extent.x0 + extent.x1) / 2, extent.width / 2
        room = min(centre, ax.figure.bbox.width - centre) - 2  # pixels, to the nearer edge
        if half <= room or room <= 0:
            break
        text.set_fontsize(text.get_fontsize() * 0.98 * room / half)


def save_figure(fig: plt.Figure, paths: Sequence[Path | str | None], dpi: int = 100) -> None:
    """Write ``fig`` to each path, PostScript for ``.ps`` and PNG otherwise, then close it.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure, closed afterwards.
    paths : sequence of path or None
        Where to write it (``None`` entries are skipped); folders are made.
    dpi : int
        Resolution of the PNG files. PNG is written at zlib level 1: a third of
        the encoding time, for files a little larger.
    """
    for p in paths:
        if p is None:
            continue
        p = Path(p)
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.suffix == ".ps":
            fig.savefig(p, format="ps", dpi=dpi)
        else:
            fig.savefig(p, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    plt.close(fig)
