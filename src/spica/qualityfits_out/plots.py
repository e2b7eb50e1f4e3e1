"""QualityFITS-out plots that QualityFITS-in does not draw (matplotlib, Agg backend).

The plots the two share (radius-magnitude diagrams, star counts, ellipticity
map) are :mod:`spica.step1.qa.plots`'; here are the product's own: the PSF
map sampled on a sky grid, the stars' FWHM histogram, the galaxy counts with
a reference law and the count peak, and the completeness curve. Each function
takes measured figures and the paths to write (PNG and/or PS), nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from spica.plotting import fit_title, save_figure  # noqa: E402

__all__ = ["psf_map_plot", "fwhm_histogram_plot", "galaxy_counts_plot", "completeness_plot"]


def psf_map_plot(
    grid: Sequence[Sequence[np.ndarray]], fwhm_arcsec: np.ndarray, step_arcmin: float, path: Path | str, *,
    title: str,
) -> None:
    """The PSF model at each node of a sky grid ``step_arcmin`` apart (``grid[j][i]``,
    row 0 at the bottom), each normalised to its peak (asinh stretch) and labelled
    with its FWHM (arcsec): one image, the nodes side by side."""
    n = len(grid)
    tiles = []
    for line in grid:
        row = []
        for image in line:
            image = np.asarray(image, float)
            peak = np.nanmax(image) if image.size else 0.0
            row.append(np.arcsinh(np.clip(image / peak, 0, None) / 0.01) if peak > 0 else np.zeros_like(image))
        tiles.append(np.hstack(row))
    mosaic = np.vstack(tiles)
    size = mosaic.shape[0] / n
    fig, ax = plt.subplots(figsize=(6.5, 7))
    ax.imshow(mosaic, origin="lower", cmap="viridis", interpolation="nearest")
    for k in range(1, n):
        ax.axhline(k * size - 0.5, color="w", lw=0.5)
        ax.axvline(k * size - 0.5, color="w", lw=0.5)
    for j in range(n):
        for i in range(n):
            fw = float(np.asarray(fwhm_arcsec)[j][i]) if np.size(fwhm_arcsec) else math.nan
            if np.isfinite(fw):
                ax.text(i * size + 1, j * size + 1, f'{fw:.2f}"', color="w", fontsize=6, va="bottom")
    ax.set_xticks([])
    ax.set_yticks([])
    fig.subplots_adjust(left=0.03, right=0.97, bottom=0.03, top=0.92)
    fit_title(ax, f"{title}\nPSFEx model every {step_arcmin:.3g}' (x right, y up)", 9)
    save_figure(fig, [path])


def fwhm_histogram_plot(
    star_fwhm_arcsec: np.ndarray, psf_fwhm_arcsec: float, paths: Sequence[Path | str | None], *, title: str,
) -> None:
    """Histogram of the stars' FWHM (arcsec) with the PSFEx model's FWHM marked."""
    values = np.asarray(star_fwhm_arcsec, float)
    values = values[np.isfinite(values) & (values > 0)]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    if values.size:
        hi = np.percentile(values, 99) * 1.3
        ax.hist(values, bins=np.linspace(0, hi, 40), color="#8fbbd9", ec="tab:blue",
                label=f"stars ({values.size}), median {np.median(values):.2f}\"")
    if np.isfinite(psf_fwhm_arcsec):
        ax.axvline(psf_fwhm_arcsec, color="tab:red", ls="--", label=f'PSFEx model {psf_fwhm_arcsec:.2f}"')
    ax.set_xlabel("FWHM (arcsec)")
    ax.set_ylabel("number of stars")
    ax.legend(fontsize=7)
    fig.subplots_adjust(left=0.12, right=0.96, bottom=0.11, top=0.92)
    fit_title(ax, title, 9)
    save_figure(fig, paths)


def galaxy_counts_plot(
    mags: np.ndarray, area_deg2: float, paths: Sequence[Path | str | None], *, title: str, peak: float,
    reference: Mapping[str, object] | None, fit_range: tuple[float, float] = (3.0, 1.0),
) -> None:
    """Galaxy counts (log10 N / 0.5 mag / deg^2) with the count peak marked and the
    reference law overlaid: its slope (``reference["slope"]``, source named in the
    legend) normalised on the counts ``fit_range`` magnitudes brighter than the peak."""
    from spica.step1.qa.plots import half_mag_counts

    centre, n = half_mag_counts(mags)
    fig, ax = plt.subplots(figsize=(6, 4.5))
    if n.size and area_deg2 > 0:
        ax.errorbar(centre, np.log10(n / area_deg2), yerr=0.434 / np.sqrt(n), fmt="o-", color="tab:blue",
                    label="galaxies")
        if np.isfinite(peak):
            ax.axvline(peak, color="tab:green", ls=":", label=f"peak {peak:.2f}")
        if reference is not None and np.isfinite(peak):
            fit = (centre >= peak - fit_range[0]) & (centre <= peak - fit_range[1])
            if np.any(fit):
                slope = float(reference["slope"])
                zero = float(np.mean(np.log10(n[fit] / area_deg2) - slope * centre[fit]))
                line = np.array([centre.min(), centre.max()])
                ax.plot(line, zero + slope * line, "--", color="0.3",
                        label=f"reference slope {slope:.2f} ({reference['source']}, {reference['source_band']})")
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no galaxies", transform=ax.transAxes, ha="center")
    ax.set_xlabel("magnitude (MAG_AUTO, AB)")
    ax.set_ylabel("log₁₀ N / 0.5 mag / deg²")
    fig.subplots_adjust(left=0.12, right=0.96, bottom=0.11, top=0.92)
    fit_title(ax, title, 9)
    save_figure(fig, paths)


def completeness_plot(
    magnitude: np.ndarray, fraction: np.ndarray, m50: float, m80: float, paths: Sequence[Path | str | None], *,
    title: str,
) -> None:
    """Recovered fraction (%) of simulated stars against magnitude, 50 % and 80 % marked."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(magnitude, 100 * np.asarray(fraction, float), "o-", color="tab:blue", ms=3)
    for level, value, color in ((50, m50, "tab:red"), (80, m80, "tab:orange")):
        ax.axhline(level, color=color, lw=0.5, ls=":")
        if np.isfinite(value):
            ax.axvline(value, color=color, ls="--", label=f"{level} %: {value:.2f}")
    ax.set_ylim(-2, 105)
    ax.set_xlabel("magnitude")
    ax.set_ylabel("completeness (%)")
    ax.legend(fontsize=8, loc="lower left")
    fig.subplots_adjust(left=0.12, right=0.96, bottom=0.11, top=0.92)
    fit_title(ax, title, 9)
    save_figure(fig, paths)
