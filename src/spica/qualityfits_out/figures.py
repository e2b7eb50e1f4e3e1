"""The QualityFITS-out figures of a product: their columns, their HDU in ``_diag.fits``
and their reader (no plotting import: the SPICA summary reads them)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import Table

__all__ = ["DEFAULT_ZEROPOINT", "FIGURES", "figures_hdu", "read_figures"]

#: Zero point of a release product without ``MAGZERO`` (seed 3.2.2); here (light) so
#: that the completeness job need not import the measurement.
DEFAULT_ZEROPOINT = 30.0

#: Columns of the ``QUALITYFITS_OUT`` table of ``_diag.fits`` (name, unit, description):
#: the figures the ``_spica.xml`` QualityFITS-out table carries, completeness aside.
FIGURES: list[tuple[str, str, str]] = [
    ("seeing_arcsec", "arcsec", "median FWHM_IMAGE of the stars"),
    ("psf_fwhm_arcsec", "arcsec", "PSFEx model FWHM (pixel-free), mean over the field"),
    ("psf_fwhm_min_arcsec", "arcsec", "PSFEx model FWHM, minimum over the field"),
    ("psf_fwhm_max_arcsec", "arcsec", "PSFEx model FWHM, maximum over the field"),
    ("psf_ellipticity_mean", "", "PSFEx model ellipticity, mean over the field"),
    ("psf_ellipticity_max", "", "PSFEx model ellipticity, maximum over the field"),
    ("elongation", "", "median ELONGATION of the stars"),
    ("ellipticity", "", "median ELLIPTICITY of the stars"),
    ("background_adu", "adu", "SExtractor background level"),
    ("background_rms_adu", "adu", "SExtractor background RMS"),
    ("background_mag", "mag/arcsec2", "sky surface brightness"),
    ("area_deg2", "deg2", "area with non-zero weight"),
    ("n_stars", "", "stars (stellar locus, S/N >= min_snr)"),
    ("n_galaxies", "", "galaxies (above the locus, S/N >= min_snr)"),
    ("star_density_deg2", "1/deg2", "stars per square degree"),
    ("galaxy_density_deg2", "1/deg2", "galaxies per square degree"),
    ("galaxy_peak_mag", "mag", "peak of the galaxy counts (0.5 mag bins)"),
    ("masked_fraction", "", "pixel fraction with zero weight"),
    ("psfex_accepted", "", "stars PSFEx accepted"),
]


def figures_hdu(figures: Mapping[str, float]) -> fits.BinTableHDU:
    """The ``QUALITYFITS_OUT`` table HDU of ``_diag.fits``: one row, :data:`FIGURES`."""
    table = Table()
    for name, unit, description in FIGURES:
        value = figures[name]
        table[name] = np.array([value], np.int64 if isinstance(value, int) else np.float64)
        if unit:
            table[name].unit = unit
        table[name].description = description
    hdu = fits.table_to_hdu(table)
    hdu.name = "QUALITYFITS_OUT"
    return hdu


def read_figures(diag: str | Path) -> dict[str, float]:
    """The QualityFITS-out figures of a product's ``_diag.fits`` (:data:`FIGURES`)."""
    with fits.open(diag, memmap=False) as hdul:
        row = hdul["QUALITYFITS_OUT"].data[0]
        return {name: row[name].item() for name, _, _ in FIGURES}
