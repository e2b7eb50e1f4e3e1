"""The figure writer shared by the QA plots (spica.plotting)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("kind", ["step1 background histogram", "QualityFITS-out completeness"])
def test_a_long_title_is_shrunk_to_the_figure_and_a_short_one_kept(kind, monkeypatch, tmp_path):
    """Long titles ran past the figure's right edge and were clipped (a seven-digit
    exposure's background histogram with both medians; a Pre-Wide stack's completeness):
    they are now drawn smaller, within the figure (spica.plotting.fit_title)."""
    from spica.qualityfits_out import plots as qfo_plots
    from spica.step1.qa import plots

    drawn = []

    def keep(fig, paths):  # the figure as it would be written, not closed
        fig.canvas.draw()
        title = fig.axes[0].title
        drawn.append((title.get_window_extent(), fig.bbox, title.get_fontsize()))

    if kind.startswith("step1"):
        monkeypatch.setattr(plots, "save_figure", keep)
        long = "1234567p r.MP9601 grade A: background, median 12345.6 ADU = 19.99 mag/arcsec² (and more)"

        def draw(title):
            plots.histogram_plot(np.array([1.0, 2.0, 3.0]), [tmp_path / "a.png"], xlabel="x", title=title)
    else:
        monkeypatch.setattr(qfo_plots, "save_figure", keep)
        long = "CFHTLS_Pre-W_r_142023+523540_T0002 r.MP9601: completeness (1074 simulated stars)"

        def draw(title):
            qfo_plots.completeness_plot(np.array([20.0, 21.0]), np.array([1.0, 0.5]), 21.0, 20.5,
                                        [tmp_path / "a.png"], title=title)
    draw(long)
    draw("751000p short")
    (extent, figure, size), (_, _, short_size) = drawn
    assert extent.x0 >= figure.x0 and extent.x1 <= figure.x1, (extent, figure)
    assert 5 < size < 9  # shrunk, still readable
    assert short_size == 9
