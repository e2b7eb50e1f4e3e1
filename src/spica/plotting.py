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

__all__ = ["save_figure"]


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
