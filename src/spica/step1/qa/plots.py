"""QualityFITS-in plots and thumbnails (matplotlib, Agg backend).

Every function takes already-measured figures / arrays and one output path
(or a PNG and a PS path) and writes exactly that file; nothing is read here.
Keys and suffixes are those of :data:`spica.paths.QA_PLOTS`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from astropy.visualization import AsinhStretch, ImageNormalize, ZScaleInterval  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from spica.plotting import fit_title, save_figure  # noqa: E402
from spica.step1.qa.measure import CCDGeometry, block_mean, resample_nearest  # noqa: E402

__all__ = [
    "mosaic",
    "histogram_plot",
    "counts_plot",
    "half_mag_counts",
    "rhmag_plot",
    "mosaic_thumbnail",
    "psf_mosaic_plot",
    "ellipticity_plot",
]


#: Titles at matplotlib's default height, given explicitly: a title placed by hand skips
#: matplotlib's automatic placement (a bounding-box pass over the axes' decorations at
#: every draw, a fifth of the QA figures' CPU), which on these axes (no top tick labels)
#: leaves it at this same height anyway.
_TITLE_Y = 1.0


def _fixed_layout(fig: plt.Figure, twin: bool = False) -> None:
    """Fixed margins for the 6 x 4.5 inch plots (``tight_layout`` costs more than drawing)."""
    fig.subplots_adjust(left=0.12, right=0.88 if twin else 0.96, bottom=0.11, top=0.92)


def mosaic(
    images: Sequence[np.ndarray | None], geometries: Sequence[CCDGeometry], binning: int
) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Assemble per-CCD images into the focal plane (DETSEC layout), binned.

    Each image is resampled (nearest) onto its CCD's binned footprint and
    flipped where DETSEC runs backwards. Gaps are NaN.

    Returns
    -------
    canvas : numpy.ndarray
    boxes : list of tuple
        ``(x0, x1, y0, y1)`` of each CCD in canvas pixels (for borders).
    """
    umin = min(g.bbox[0] for g in geometries)
    vmin = min(g.bbox[2] for g in geometries)
    umax = max(g.bbox[1] for g in geometries)
    vmax = max(g.bbox[3] for g in geometries)
    canvas = np.full((int(math.ceil((vmax - vmin) / binning)), int(math.ceil((umax - umin) / binning))), np.nan, np.float32)
    boxes = []
    for img, g in zip(images, geometries):
        u0, u1, v0, v1 = g.bbox
        x0, y0 = int((u0 - umin) // binning), int((v0 - vmin) // binning)
        w = max(1, min(int(round((u1 - u0) / binning)), canvas.shape[1] - x0))
        h = max(1, min(int(round((v1 - v0) / binning)), canvas.shape[0] - y0))
        boxes.append((x0, x0 + w, y0, y0 + h))
        if img is None or np.size(img) == 0:
            continue
        tile = resample_nearest(np.asarray(img, np.float32), (h, w))
        sx, sy = g.flips
        tile = tile[:: sy, :: sx]
        canvas[y0 : y0 + h, x0 : x0 + w] = tile
    return canvas, boxes


def mosaic_thumbnail(
    canvas: np.ndarray,
    boxes: Sequence[tuple[int, int, int, int]],
    labels: Sequence[str],
    path: Path | str,
    *,
    max_pixels: int = 1200,
    title: str = "",
    stretch: str = "asinh",
    cmap: str = "gray",
) -> None:
    """Write a PNG thumbnail of a focal-plane mosaic with CCD borders and names.

    Parameters
    ----------
    canvas : numpy.ndarray
        From :func:`mosaic`.
    max_pixels : int
        Long side of the image area in output pixels (medium thumbnails use less).
    stretch : {"asinh", "linear"}
        ZScale interval with an asinh stretch (science), or min-max (weights).
    """
    # bin the canvas to about the output resolution first: imshow would
    # resample the full canvas for nothing
    factor = max(1, int(max(canvas.shape) // max_pixels))
    if factor > 1:
        canvas = block_mean(canvas, factor)
        boxes = [tuple(b / factor for b in box) for box in boxes]
    ny, nx = canvas.shape
    fig_w = max_pixels / 100 * (nx / max(nx, ny)) + 0.4
    fig_h = max_pixels / 100 * (ny / max(nx, ny)) + 0.6
    fig = plt.figure(figsize=(fig_w, fig_h))
    ax = fig.add_axes((0.2 / fig_w, 0.2 / fig_h, 1 - 0.4 / fig_w, 1 - 0.6 / fig_h))
    finite = canvas[np.isfinite(canvas)]
    norm = None
    if finite.size:
        if stretch == "asinh":
            vmin, vmax = ZScaleInterval().get_limits(finite[:: max(1, finite.size // 200_000)])
            norm = ImageNormalize(vmin=vmin, vmax=vmax if vmax > vmin else vmin + 1, stretch=AsinhStretch(0.1))
        else:
            lo, hi = np.percentile(finite, [0.5, 99.5])
            norm = ImageNormalize(vmin=lo, vmax=hi if hi > lo else lo + 1)
    cm = plt.get_cmap(cmap).with_extremes(bad="#402020")  # masked pixels and gaps
    ax.imshow(canvas, origin="lower", cmap=cm, norm=norm, interpolation="nearest")
    small = max_pixels < 600
    for (x0, x1, y0, y1), lab in zip(boxes, labels):
        # add_artist: the borders lie within the image, whose extent sets the limits, so the
        # data limits add_patch would update (a path extent per patch) change nothing
        ax.add_artist(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, ec="tab:orange", lw=0.6))
        if not small:
            ax.text(x0 + 2, y0 + 2, lab, color="tab:orange", fontsize=6, va="bottom")
    ax.set_axis_off()
    fit_title(ax, title, 8, y=_TITLE_Y)
    save_figure(fig, [path])


def histogram_plot(
    values: np.ndarray,
    paths: Sequence[Path | str | None],
    *,
    xlabel: str,
    title: str,
    limit: float | None = None,
    extra: np.ndarray | None = None,
    extra_label: str = "",
) -> None:
    """Histogram of per-CCD values (background, FWHM), optionally with a limit line.

    ``extra`` (e.g. FWHM of individual stars) is drawn as a normalised step
    histogram on a twin axis.
    """
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    if values.size:
        lo, hi = values.min(), values.max()
        span = hi - lo if hi > lo else max(abs(hi) * 0.05, 1e-3)
        bins = np.linspace(lo - 0.1 * span, hi + 0.1 * span, max(5, min(30, values.size + 2)))
        ax.hist(values, bins=bins, color="#8fbbd9", ec="tab:blue", label="per CCD")
    if extra is not None:
        e = np.asarray(extra, float)
        e = e[np.isfinite(e)]
        if e.size:
            ax2 = ax.twinx()
            ax2.hist(e, bins=40, histtype="step", color="tab:gray", density=True, label=extra_label)
            ax2.set_ylabel(extra_label, color="tab:gray")
    if limit is not None and np.isfinite(limit):
        ax.axvline(limit, color="tab:red", ls="--", label=f"limit {limit:g}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("number of CCDs")
    ax.legend(fontsize=7, loc="upper left")
    _fixed_layout(fig, twin=extra is not None)
    fit_title(ax, title, 9, y=_TITLE_Y)
    save_figure(fig, paths)


def half_mag_counts(mags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Number counts in 0.5 mag bins on the half-magnitude grid: the centres and
    numbers of the non-empty bins, over the finite magnitudes below 90 (SExtractor's
    99 marks a failed measurement)."""
    mags = np.asarray(mags, float)
    mags = mags[np.isfinite(mags) & (mags < 90)]
    if not mags.size:
        return np.empty(0), np.empty(0, int)
    bins = np.arange(math.floor(mags.min() * 2) / 2, math.ceil(mags.max() * 2) / 2 + 0.5, 0.5)
    n, edges = np.histogram(mags, bins=bins)
    centre = 0.5 * (edges[1:] + edges[:-1])
    return centre[n > 0], n[n > 0]


def counts_plot(
    mags: np.ndarray, area_deg2: float, paths: Sequence[Path | str | None], *, title: str, color: str, label: str
) -> None:
    """Differential number counts ``log10 N / 0.5 mag / deg^2`` over the whole field."""
    centre, n = half_mag_counts(mags)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    if n.size and area_deg2 > 0:
        ax.errorbar(centre, np.log10(n / area_deg2), yerr=0.434 / np.sqrt(n), fmt="o-", color=color, label=label)
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no sources", transform=ax.transAxes, ha="center")
    ax.set_xlabel("magnitude (AB, Elixir zero-point)")
    ax.set_ylabel("log₁₀ N / 0.5 mag / deg²")
    _fixed_layout(fig)
    fit_title(ax, title, 9, y=_TITLE_Y)
    save_figure(fig, paths)


_CLASS_STYLE = {
    "star": ("tab:red", "stars"),
    "galaxy": ("tab:blue", "galaxies"),
    "saturated": ("tab:orange", "saturated"),
    "artifact": ("tab:green", "artefacts"),
    "faint": ("0.7", "low S/N"),
}


def rhmag_plot(
    sources: pd.DataFrame,
    paths: Sequence[Path | str | None],
    *,
    classes: Sequence[str],
    title: str,
    rh_star: float | None = None,
) -> None:
    """Half-light radius (FLUX_RADIUS) versus magnitude diagram of the chosen classes."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    if len(sources):
        for cls in classes:
            sel = sources[sources["cls"] == cls]
            if len(sel):
                color, lab = _CLASS_STYLE.get(cls, ("k", cls))
                ax.scatter(sel["mag"], sel["FLUX_RADIUS"], s=3, color=color, label=f"{lab} ({len(sel)})", lw=0)
        rh = sources["FLUX_RADIUS"].to_numpy(float)
        rh = rh[np.isfinite(rh) & (rh > 0)]
        if rh.size:
            ax.set_ylim(0, min(np.percentile(rh, 99) * 1.5, 30))
        if rh_star is not None and np.isfinite(rh_star):
            ax.axhline(rh_star, color="k", lw=0.5, ls=":")
        ax.legend(fontsize=7, markerscale=3)
    ax.set_xlabel("magnitude (MAG_AUTO + zero-point)")
    ax.set_ylabel("FLUX_RADIUS (pixels)")
    _fixed_layout(fig)
    fit_title(ax, title, 9, y=_TITLE_Y)
    save_figure(fig, paths)


def _layout_boxes(geometries: Sequence[CCDGeometry], pad: float = 0.04) -> list[tuple[float, float, float, float]]:
    """Each CCD's box ``(left, bottom, width, height)`` in figure fraction, as the focal plane."""
    umin = min(g.bbox[0] for g in geometries)
    umax = max(g.bbox[1] for g in geometries)
    vmin = min(g.bbox[2] for g in geometries)
    vmax = max(g.bbox[3] for g in geometries)
    su, sv = (umax - umin) * (1 + pad), (vmax - vmin) * (1 + pad)
    boxes = []
    for g in geometries:
        u0, u1, v0, v1 = g.bbox
        boxes.append((0.02 + 0.96 * (u0 - umin) / su, 0.02 + 0.9 * (v0 - vmin) / sv,
                      0.96 * (u1 - u0) / su, 0.9 * (v1 - v0) / sv))
    return boxes


def psf_mosaic_plot(
    psf_images: Sequence[np.ndarray | None],
    geometries: Sequence[CCDGeometry],
    labels: Sequence[str],
    fwhm_arcsec: Sequence[float],
    path: Path | str,
    *,
    title: str = "",
) -> None:
    """One PSFEx model image per CCD (at the CCD centre), laid out as the focal plane.

    Drawn on one axes spanning the figure (figure-fraction coordinates), each
    model in its CCD's box (the boxes of :func:`_layout_boxes`, framed, titled
    with the CCD's name and FWHM): the layout of one axes per CCD, without the
    cost of 36 axes.
    """
    fig = plt.figure(figsize=(8, 8 * _aspect(geometries) + 0.3))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_axis_off()
    for (x0, y0, w, h), img, g, lab, fw in zip(_layout_boxes(geometries), psf_images, geometries, labels,
                                               fwhm_arcsec):
        if img is None:
            ax.add_artist(Rectangle((x0, y0), w, h, facecolor="0.85", edgecolor="none"))  # limits set above
            ax.text(x0 + w / 2, y0 + h / 2, "no PSF", ha="center", va="center", fontsize=6)
        else:
            sx, sy = g.flips
            img = np.asarray(img, float)[:: sy, :: sx]
            peak = np.nanmax(img)
            ax.imshow(np.arcsinh(np.clip(img / peak, 0, None) / 0.01), origin="lower", cmap="viridis",
                      aspect="auto", extent=(x0, x0 + w, y0, y0 + h), interpolation="antialiased")
        ax.add_artist(Rectangle((x0, y0), w, h, fill=False, edgecolor="black", lw=0.8))
        ax.annotate(f"{lab} {fw:.2f}\"" if np.isfinite(fw) else lab, (x0 + w / 2, y0 + h), xytext=(0, 1),
                    textcoords="offset points", ha="center", va="bottom", fontsize=5)
    fig.suptitle(title, fontsize=9)
    save_figure(fig, [path])


def _aspect(geometries: Sequence[CCDGeometry]) -> float:
    du = max(g.bbox[1] for g in geometries) - min(g.bbox[0] for g in geometries)
    dv = max(g.bbox[3] for g in geometries) - min(g.bbox[2] for g in geometries)
    return float(np.clip(dv / du, 0.2, 3.0))


def ellipticity_plot(
    stars: pd.DataFrame,
    geometries: Sequence[CCDGeometry],
    labels: Sequence[str],
    path: Path | str,
    *,
    title: str = "",
) -> None:
    """Ellipticity whiskers of stars over the focal plane (DETSEC coordinates).

    Whisker length is proportional to ELLIPTICITY, orientation follows
    THETA_IMAGE corrected for DETSEC flips.
    """
    fig, ax = plt.subplots(figsize=(8, 8 * _aspect(geometries) + 0.5))
    for g, lab in zip(geometries, labels):
        u0, u1, v0, v1 = g.bbox
        ax.add_patch(Rectangle((u0, v0), u1 - u0, v1 - v0, fill=False, ec="0.6", lw=0.5))
        ax.text(u0, v1, lab, fontsize=6, color="0.4", va="top")
    umin = min(g.bbox[0] for g in geometries)
    umax = max(g.bbox[1] for g in geometries)
    scale = 0.4 * (umax - umin)  # an ellipticity of 0.1 spans 4 % of the field width
    if len(stars) and "ELLIPTICITY" in stars and "THETA_IMAGE" in stars:
        theta = np.radians(stars["THETA_IMAGE"].to_numpy(float))
        sx = np.array([geometries[int(c)].flips[0] for c in stars["ccd"]])
        sy = np.array([geometries[int(c)].flips[1] for c in stars["ccd"]])
        e = stars["ELLIPTICITY"].to_numpy(float)
        dx, dy = sx * np.cos(theta) * e * scale, sy * np.sin(theta) * e * scale
        ax.quiver(
            stars["u"], stars["v"], dx, dy, angles="xy", scale_units="xy", scale=1,
            headwidth=0, headlength=0, headaxislength=0, pivot="middle", width=0.002, color="tab:blue",
        )
        ax.quiver(
            [umin + 0.05 * (umax - umin)], [min(g.bbox[2] for g in geometries) - 0.04 * (umax - umin)],
            [0.1 * scale], [0], angles="xy", scale_units="xy", scale=1,
            headwidth=0, headlength=0, headaxislength=0, pivot="tail", width=0.003, color="k",
        )
        ax.text(umin + 0.17 * (umax - umin), min(g.bbox[2] for g in geometries) - 0.04 * (umax - umin), "e = 0.1",
                fontsize=7, va="center")
    ax.set_aspect("equal")
    ax.autoscale_view()
    ax.set_xlabel("DETSEC x (pixels)")
    ax.set_ylabel("DETSEC y (pixels)")
    fig.subplots_adjust(left=0.1, right=0.97, bottom=0.08, top=0.94)
    fit_title(ax, title, 9, y=_TITLE_Y)
    save_figure(fig, [path])
