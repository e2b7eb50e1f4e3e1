"""The status page's plots (matplotlib, PNG), drawn from the visible exposures only.

Step 1 keeps two statistics "continuously updated" (seed 2.1): the image
quality history (seeing and sky background against date, per filter) and the
observing time per programme and per filter.
"""

from __future__ import annotations

import io

import pandas as pd

__all__ = ["PLOTS", "render_plot"]

#: Plot name -> title.
PLOTS = {
    "seeing": "Seeing history (FWHM, arcsec)",
    "background": "Sky background history (mag/arcsec²)",
    "time_programme": "Observing time per programme (h)",
    "time_filter": "Observing time per filter (h)",
}


def render_plot(name: str, exposures: pd.DataFrame) -> bytes:
    """Draw plot ``name`` (a key of :data:`PLOTS`) of ``exposures`` as PNG bytes.

    Raises
    ------
    KeyError
        If ``name`` is not a plot.
    """
    title = PLOTS[name]
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 3.4), dpi=90)
    axes = figure.add_subplot()
    ok = exposures[exposures["status"] == "ok"]
    if name in ("seeing", "background"):
        column = "qa_fwhm_arcsec" if name == "seeing" else "qa_background_mag"
        data = ok.dropna(subset=["date", column])
        for band, group in data.groupby("band"):
            axes.plot(group["date"], group[column], "o", ms=4, label=band or "?")
        axes.set_xlabel("date of observation")
        if name == "background":
            axes.invert_yaxis()
        if len(data):
            axes.legend(title="filter", fontsize=8)
            figure.autofmt_xdate()
    else:
        key = "runid" if name == "time_programme" else "filter"
        hours = ok.groupby(key)["exptime"].sum().sort_index() / 3600.0
        axes.bar([k or "?" for k in hours.index], hours.to_numpy(), color="#4a7ab5")
        axes.tick_params(axis="x", labelrotation=45, labelsize=8)
        axes.set_ylabel("hours")
    if not len(ok):
        axes.text(0.5, 0.5, "no data", ha="center", va="center", transform=axes.transAxes)
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
