"""QualityFITS-out measurements of one release product (a stack or an image-by-image image).

The product is one image with its own weight map; QualityFITS-out measures
it as QualityFITS-in measures one CCD: :func:`load_product` reads the
product's tool outputs into :class:`spica.step1.qa.measure.ExposureInputs`
with a single "CCD" (the whole product), and
:func:`spica.step1.qa.measure.measure_exposure` derives the same figures
(seeing, stellar locus, star and galaxy classes, background, elongation,
masked fraction). What only a product has is here, as pure functions: the
PSFEx model's FWHM and ellipticity over the field, the PSF snapshot grid, the
galaxy-count peak and the reference counts law.

Magnitudes: the QualityFITS-out catalogue is instrumental (``MAG_ZEROPOINT 0``,
as in step 1) and the product is at zero point ``MAGZERO`` (30, seed 3.2.2), so
the measurement header carries ``EXPTIME = 1``, ``PHOT_C = MAGZERO``,
``PHOT_K = 0``: :func:`spica.step1.qa.measure.zeropoint` then gives ``MAGZERO``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits

from spica.astromatic.psfex import read_psf_extensions, read_psf_models
from spica.astromatic.sextractor import read_extension_data, read_ldac
from spica.qualityfits_out.figures import DEFAULT_ZEROPOINT
from spica.step1.qa.measure import (
    CCDInput,
    ExposureInputs,
    celestial_wcs,
    ccd_geometry,
    flag_fractions,
    measure_exposure,
    weight_statistics,
)

__all__ = [
    "DEFAULT_ZEROPOINT",
    "measurement_header",
    "load_product",
    "measure_product",
    "snapshot_grid",
    "count_peak",
    "reference_counts",
    "REFERENCE_COUNTS",
]


#: The reference galaxy counts law (slopes per band, with their source).
REFERENCE_COUNTS = Path(__file__).parent / "data" / "galaxy_counts.csv"


def measurement_header(header: fits.Header) -> fits.Header:
    """The product header as QualityFITS-in's measurement reads a CCD header.

    ``EXPTIME = 1``, ``PHOT_C = MAGZERO`` (default :data:`DEFAULT_ZEROPOINT`),
    ``PHOT_K = 0``, ``AIRMASS = 1``: calibrated magnitudes are then
    ``MAG_AUTO(ZP=0) + MAGZERO``.
    """
    out = header.copy()
    zeropoint = float(header.get("MAGZERO", DEFAULT_ZEROPOINT))
    out["EXPTIME"] = 1.0
    out["PHOT_C"] = zeropoint
    out["PHOT_K"] = 0.0
    out["AIRMASS"] = 1.0
    return out


def load_product(
    *,
    image: str | Path,
    weight: str | Path,
    ldac: str | Path,
    sex_xml: str | Path | None = None,
    psf: str | Path | None = None,
    psfex_xml: str | Path | None = None,
) -> ExposureInputs:
    """Read a release product's QualityFITS-out inputs as a one-CCD exposure.

    Parameters
    ----------
    image, weight : path
        The product and its weight map (single-image FITS).
    ldac : path
        Its QualityFITS-out SExtractor catalogue (FITS-LDAC).
    sex_xml, psf, psfex_xml : path, optional
        SExtractor XML, PSFEx model and XML of the same run.

    Returns
    -------
    spica.step1.qa.measure.ExposureInputs
        ``ccds`` holds one entry, the whole product; ``primary`` its header.

    Raises
    ------
    ValueError
        If the catalogue holds no table or the image and weight differ in size.
    """
    header = fits.getheader(image)
    catalogs = read_ldac(ldac)
    if not catalogs:
        raise ValueError(f"{ldac}: no LDAC_OBJECTS table")
    with fits.open(weight, memmap=True) as hdul:
        data = np.asarray(hdul[0].data, dtype=np.float32)
        if data.shape != (int(header["NAXIS2"]), int(header["NAXIS1"])):
            raise ValueError(f"{weight}: weight map {data.shape[::-1]} does not match the product "
                             f"({header['NAXIS1']}, {header['NAXIS2']})")
        flags = flag_fractions(np.zeros(data.shape, np.uint8), data)
        weights = weight_statistics(data)
        del data
    figures, model = (read_psf_models(psf) or [({}, None)])[0]
    sex_rows = read_extension_data(sex_xml)
    psfex_rows = read_psf_extensions(psfex_xml)
    head, table = catalogs[0]
    name = Path(image).name.removesuffix(".fits")
    ccd = CCDInput(
        index=0,
        extname=name,
        header=measurement_header(header),
        geometry=ccd_geometry(header),
        wcs=celestial_wcs(header),
        thumb=np.zeros((0, 0), np.float32),
        weight_thumb=np.zeros((0, 0), np.float32),
        minibkg=None,
        flags=flags,
        weights=weights,
        catalog=table,
        ldac_header=head,
        sex=next(iter(sex_rows.values()), {}),
        psfex=next(iter(psfex_rows.values()), {}),
        psf_header=figures,
        psf_image=model,
    )
    return ExposureInputs(name=name, primary=header, ccds=[ccd], binning=1)


def measure_product(inputs: ExposureInputs, *, min_snr: float) -> tuple[dict, pd.DataFrame, dict]:
    """QualityFITS-in's figures of a product (:func:`spica.step1.qa.measure.measure_exposure`).

    Returns
    -------
    row : dict
        The product's "CCD" row (:data:`spica.step1.qa.report.CCD_COLUMNS`).
    sources : pandas.DataFrame
        Sources with calibrated ``mag`` and class ``cls`` (star, galaxy...).
    field : dict
        Whole-product figures (:data:`spica.step1.qa.report.FIELD_COLUMNS`).
    """
    rows, sources, field = measure_exposure(inputs, min_snr=min_snr, astrometry_tolerance=math.inf)
    return rows[0], sources, field


def snapshot_grid(snapshots: np.ndarray, nsnap: int) -> list[list[np.ndarray]]:
    """Split PSFEx's SNAPSHOTS check image into its ``nsnap x nsnap`` PSF images.

    ``grid[j][i]`` is the PSF at the i-th column (x) and j-th row (y) of the
    grid, row 0 at the bottom (FITS order).

    Raises
    ------
    ValueError
        If the image is not ``nsnap`` square tiles per axis.
    """
    ny, nx = snapshots.shape
    if nsnap < 1 or nx % nsnap or ny % nsnap:
        raise ValueError(f"a {nx}x{ny} snapshot image is not {nsnap}x{nsnap} PSF images")
    sx, sy = nx // nsnap, ny // nsnap
    return [[snapshots[j * sy:(j + 1) * sy, i * sx:(i + 1) * sx] for i in range(nsnap)] for j in range(nsnap)]


def count_peak(mags: np.ndarray, *, bin_width: float = 0.5) -> float:
    """Magnitude of the peak of differential counts (centre of the fullest bin).

    Bins are ``bin_width`` wide on a grid aligned on multiples of ``bin_width``
    (those of :func:`spica.step1.qa.plots.counts_plot`); among equally full bins
    the faintest wins. NaN without sources.
    """
    mags = np.asarray(mags, float)
    mags = mags[np.isfinite(mags) & (mags < 90)]
    if mags.size == 0:
        return math.nan
    edges = np.arange(math.floor(mags.min() / bin_width) * bin_width,
                      math.ceil(mags.max() / bin_width) * bin_width + bin_width, bin_width)
    counts, edges = np.histogram(mags, bins=edges)
    k = int(np.flatnonzero(counts == counts.max())[-1])
    return float(0.5 * (edges[k] + edges[k + 1]))


def reference_counts(band: str, *, table: str | Path = REFERENCE_COUNTS) -> Mapping[str, object]:
    """The reference counts law of ``band`` (slope and source, :data:`REFERENCE_COUNTS`).

    Raises
    ------
    KeyError
        If the table has no row for ``band``.
    """
    frame = pd.read_csv(table, comment="#")
    rows = frame[frame["band"] == band]
    if rows.empty:
        raise KeyError(f"no reference galaxy counts for band {band!r} in {table}")
    return rows.iloc[0].to_dict()
