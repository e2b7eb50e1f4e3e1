"""QualityFITS-in summary products: the ``_diag.fits`` table and the ``NNNNNNp.xml`` VOTable.

``546891p_diag.fits``
    * HDU 0 (primary): exposure keywords copied from the Elixir primary
      header (EXPNUM, OBJECT, FILTER, EXPTIME, AIRMASS, MJD-OBS, RA, DEC when
      present) and the whole-field summary: ``QAGRADE`` (provisional grade),
      ``QAREAS1..n`` (reasons), ``NCCD``, ``FWHM`` (arcsec), ``FWHMPIX``,
      ``ELONG``, ``ELLIP``, ``NSTARS``, ``NGALAX``, ``BKGADU``, ``BKGRMS``,
      ``BKGMAG``, ``NOISEMAG`` (mag/arcsec^2), ``FMASKED``.
    * HDU 1 ``CCD_DIAG``: one row per CCD, columns :data:`CCD_COLUMNS`.
    * HDU 2 ``FIELD_DIAG``: one row, columns :data:`FIELD_COLUMNS` plus
      ``grade`` and ``grade_reasons`` (reasons joined by ``" | "``).

``546891p.xml`` (VOTable 1.4, written with :mod:`astropy.io.votable`)::

    <VOTABLE>
     <RESOURCE name="QualityFITS-in" type="results">
      <INFO name="software" value="SPICA <version>"/>
      <INFO name="date" value="<ISO date of the assessment>"/>
      <PARAM name="Exposure" datatype="char" value="546891p"/>
      <PARAM name="EXPNUM" datatype="long"/>  FILTER, EXPTIME, AIRMASS ...
      <PARAM name="Grade" datatype="char" value="A|B|C|D"/>
      <PARAM name="Grade_Reasons" datatype="char" value="... | ..."/>
      <TABLE name="Field">   one row, columns FIELD_COLUMNS
      <TABLE name="CCDs">    one row per CCD, columns CCD_COLUMNS
      <TABLE name="Grade">   one row per reason: grade, rule, message
     </RESOURCE>
    </VOTABLE>

Units: background and noise in ADU and mag/arcsec^2, FWHM in px and arcsec,
fractions in [0, 1], astrometric offsets in arcsec.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.io.votable import from_table
from astropy.io.votable.tree import Info, Param, TableElement
from astropy.table import Table

__all__ = ["CCD_COLUMNS", "FIELD_COLUMNS", "ccd_table", "field_table", "write_diag", "write_qa_xml"]

#: Columns of the per-CCD diagnostic table (name, unit, description).
CCD_COLUMNS: list[tuple[str, str, str]] = [
    ("ccd", "", "0-based image extension index"),
    ("extname", "", "EXTNAME of the CCD"),
    ("naxis1", "pix", "image width"),
    ("naxis2", "pix", "image height"),
    ("pixel_scale", "arcsec", "pixel scale"),
    ("zeropoint", "mag", "2.5log10(EXPTIME)+PHOT_C+PHOT_K(AIRMASS-1)"),
    ("calibrated", "", "PHOT_C was available"),
    ("background", "adu", "SExtractor background level"),
    ("background_rms", "adu", "SExtractor background RMS"),
    ("background_mag", "mag/arcsec2", "sky surface brightness"),
    ("noise_mag", "mag/arcsec2", "1-sigma per-pixel noise as surface brightness"),
    ("n_detected", "", "SExtractor sources"),
    ("n_stars", "", "stars (stellar locus, S/N>=10, unsaturated)"),
    ("n_galaxies", "", "galaxies (above the locus, S/N>=10)"),
    ("n_saturated", "", "saturated sources"),
    ("n_artifacts", "", "sources below the locus (cosmics, hot pixels)"),
    ("rh_star", "pix", "FLUX_RADIUS of the stellar locus"),
    ("fwhm_psfex", "pix", "PSFEx PSF_FWHM"),
    ("fwhm_stars", "pix", "median FWHM_IMAGE of stars"),
    ("fwhm_px", "pix", "adopted FWHM (PSFEx, else stars)"),
    ("fwhm_arcsec", "arcsec", "adopted FWHM"),
    ("elongation", "", "median ELONGATION of stars"),
    ("ellipticity", "", "median ELLIPTICITY of stars"),
    ("psfex_ellipticity", "", "PSFEx mean ellipticity"),
    ("psfex_loaded", "", "PSFEx stars loaded"),
    ("psfex_accepted", "", "PSFEx stars accepted"),
    ("psfex_chi2", "", "PSFEx reduced chi2"),
    ("psfex_ok", "", "a valid PSF model exists"),
    ("multiple_image_fraction", "", "bright sources with a twin at the common offset"),
    ("multiple_image_dx", "pix", "common twin offset x"),
    ("multiple_image_dy", "pix", "common twin offset y"),
    ("frac_defect", "", "pixel fraction flagged bad (bit 1)"),
    ("frac_saturated", "", "pixel fraction saturated (bit 2)"),
    ("frac_cosmic", "", "pixel fraction cosmic ray (bit 4)"),
    ("frac_trail", "", "pixel fraction satellite trail (bit 8)"),
    ("frac_flat", "", "pixel fraction flat out of range (bit 16)"),
    ("frac_nonfinite", "", "pixel fraction non-finite (bit 32)"),
    ("frac_masked", "", "pixel fraction flagged or zero weight"),
    ("weight_median", "", "median non-zero weight"),
    ("weight_rms", "", "relative RMS of non-zero weights"),
    ("frac_weight_zero", "", "pixel fraction with zero weight"),
    ("astrometric_offset", "arcsec", "WCS offset from the DETSEC layout of the other CCDs"),
    ("ra_center", "deg", "RA of the CCD centre (header WCS)"),
    ("dec_center", "deg", "Dec of the CCD centre (header WCS)"),
]

#: Columns of the whole-field row (name, unit, description).
FIELD_COLUMNS: list[tuple[str, str, str]] = [
    ("exposure", "", "exposure name"),
    ("expnum", "", "odometer"),
    ("object", "", "OBJECT"),
    ("filter", "", "FILTER"),
    ("exptime", "s", "EXPTIME"),
    ("airmass", "", "AIRMASS"),
    ("mjd_obs", "d", "MJD-OBS"),
    ("n_ccd", "", "number of CCDs"),
    ("area_deg2", "deg2", "unmasked area"),
    ("background", "adu", "median CCD background"),
    ("background_rms", "adu", "median CCD background RMS"),
    ("background_mag", "mag/arcsec2", "median sky surface brightness"),
    ("noise_mag", "mag/arcsec2", "median 1-sigma noise surface brightness"),
    ("fwhm_px", "pix", "median CCD FWHM"),
    ("fwhm_arcsec", "arcsec", "median CCD FWHM"),
    ("fwhm_psfex_px", "pix", "median PSFEx FWHM"),
    ("fwhm_stars_px", "pix", "median star FWHM_IMAGE"),
    ("fwhm_scatter", "", "relative scatter of CCD FWHM"),
    ("elongation", "", "median stellar elongation"),
    ("ellipticity", "", "median stellar ellipticity"),
    ("psfex_ellipticity", "", "median PSFEx ellipticity"),
    ("n_detected", "", "sources"),
    ("n_stars", "", "stars"),
    ("n_galaxies", "", "galaxies"),
    ("n_saturated", "", "saturated sources"),
    ("n_psfex_failed", "", "CCDs without PSF model"),
    ("multiple_image_fraction", "", "median CCD twin fraction"),
    ("max_astrometric_offset", "arcsec", "largest CCD WCS offset"),
    ("frac_defect", "", "pixel fraction bit 1"),
    ("frac_saturated", "", "pixel fraction bit 2"),
    ("frac_cosmic", "", "pixel fraction bit 4"),
    ("frac_trail", "", "pixel fraction bit 8"),
    ("frac_flat", "", "pixel fraction bit 16"),
    ("frac_nonfinite", "", "pixel fraction bit 32"),
    ("frac_masked", "", "masked pixel fraction"),
    ("frac_weight_zero", "", "zero-weight pixel fraction"),
    ("weight_median", "", "median CCD weight"),
]


def _table(rows: Sequence[Mapping[str, object]], columns: Sequence[tuple[str, str, str]]) -> Table:
    t = Table()
    for name, unit, desc in columns:
        values = [r.get(name) for r in rows]
        sample = next((v for v in values if v is not None), 0.0)
        if isinstance(sample, (bool, np.bool_)):
            col = np.array([bool(v) for v in values], bool)
        elif isinstance(sample, (int, np.integer)):
            col = np.array([int(v) if v is not None else -1 for v in values], np.int64)
        elif isinstance(sample, str):
            col = np.array([str(v or "") for v in values], dtype=str)
        else:
            col = np.array([float(v) if v is not None else math.nan for v in values], np.float64)
        t[name] = col
        if unit:
            t[name].unit = unit
        t[name].description = desc
    return t


def ccd_table(ccds: Sequence[Mapping[str, object]]) -> Table:
    """Per-CCD diagnostic table (one row per CCD, :data:`CCD_COLUMNS`)."""
    return _table(ccds, CCD_COLUMNS)


def field_table(field: Mapping[str, object], grade: str, reasons: Sequence[str]) -> Table:
    """One-row whole-field table (:data:`FIELD_COLUMNS` + grade and reasons)."""
    t = _table([field], FIELD_COLUMNS)
    t["grade"] = [grade]
    t["grade_reasons"] = [" | ".join(reasons)]
    return t


def _finite_or(v: object, default: float = -99.0) -> object:
    if isinstance(v, float) and not math.isfinite(v):
        return default
    return v


def write_diag(
    path: str | Path,
    ccds: Sequence[Mapping[str, object]],
    field: Mapping[str, object],
    grade: str,
    reasons: Sequence[str],
    primary: fits.Header | None = None,
) -> None:
    """Write ``_diag.fits`` (layout in the module docstring)."""
    ph = fits.Header()
    for key in ("EXPNUM", "OBJECT", "FILTER", "EXPTIME", "AIRMASS", "MJD-OBS", "DATE-OBS", "RA", "DEC"):
        if primary is not None and key in primary:
            ph[key] = primary[key]
    ph["QAGRADE"] = (grade, "QualityFITS-in provisional grade")
    for i, r in enumerate(reasons, 1):
        ph[f"QAREAS{i}"] = r[:68]
    for key, fkey, comment in [
        ("NCCD", "n_ccd", "number of CCDs"),
        ("FWHM", "fwhm_arcsec", "[arcsec] median CCD FWHM"),
        ("FWHMPIX", "fwhm_px", "[pix] median CCD FWHM"),
        ("ELONG", "elongation", "median stellar elongation"),
        ("ELLIP", "ellipticity", "median stellar ellipticity"),
        ("NSTARS", "n_stars", "number of stars"),
        ("NGALAX", "n_galaxies", "number of galaxies"),
        ("BKGADU", "background", "[adu] median background"),
        ("BKGRMS", "background_rms", "[adu] median background RMS"),
        ("BKGMAG", "background_mag", "[mag/arcsec2] sky brightness"),
        ("NOISEMAG", "noise_mag", "[mag/arcsec2] 1-sigma noise"),
        ("FMASKED", "frac_masked", "masked pixel fraction"),
    ]:
        ph[key] = (_finite_or(field.get(fkey, -99.0)), comment)
    hdus = [fits.PrimaryHDU(header=ph)]
    ct = fits.table_to_hdu(ccd_table(ccds))
    ct.name = "CCD_DIAG"
    ft = fits.table_to_hdu(field_table(field, grade, reasons))
    ft.name = "FIELD_DIAG"
    hdus += [ct, ft]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fits.HDUList(hdus).writeto(path, overwrite=True)


def write_qa_xml(
    path: str | Path,
    ccds: Sequence[Mapping[str, object]],
    field: Mapping[str, object],
    grade: str,
    reasons: Sequence[str],
    software: str = "SPICA",
) -> None:
    """Write the ``NNNNNNp.xml`` VOTable summary (layout in the module docstring)."""
    vot = from_table(field_table(field, grade, reasons))
    resource = vot.resources[0]
    resource.ID = "QualityFITS-in"
    resource.name = "QualityFITS-in"
    resource.type = "results"
    resource.tables[0].name = "Field"
    resource.tables[0].ID = "Field"
    ccd_vot = TableElement.from_table(vot, ccd_table(ccds))
    ccd_vot.name = "CCDs"
    ccd_vot.ID = "CCDs"
    resource.tables.append(ccd_vot)
    gt = Table(
        {
            "grade": np.array([r.split(":", 1)[0] for r in reasons] or [""], dtype=str)[: len(reasons)],
            "rule": np.array([r.split(":")[1].strip() for r in reasons] or [""], dtype=str)[: len(reasons)],
            "message": np.array([r.split(":", 2)[-1].strip() for r in reasons] or [""], dtype=str)[: len(reasons)],
        }
    )
    g_vot = TableElement.from_table(vot, gt)
    g_vot.name = "Grade"
    g_vot.ID = "Grade"
    resource.tables.append(g_vot)
    resource.infos.append(Info(name="software", value=software))
    resource.infos.append(Info(name="date", value=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")))

    def add(name: str, value: object) -> None:
        if isinstance(value, str):
            resource.params.append(Param(vot, name=name, datatype="char", arraysize="*", value=value))
        elif isinstance(value, (bool, np.bool_)):
            resource.params.append(Param(vot, name=name, datatype="boolean", value=bool(value)))
        elif isinstance(value, (int, np.integer)):
            resource.params.append(Param(vot, name=name, datatype="long", value=int(value)))
        else:
            resource.params.append(Param(vot, name=name, datatype="double", value=float(value)))

    add("Exposure", str(field.get("exposure", "")))
    add("EXPNUM", int(field.get("expnum", -1)))  # type: ignore[arg-type]
    add("FILTER", str(field.get("filter", "")))
    add("EXPTIME", float(field.get("exptime", math.nan)))  # type: ignore[arg-type]
    add("AIRMASS", float(field.get("airmass", math.nan)))  # type: ignore[arg-type]
    add("Grade", grade)
    add("Grade_Reasons", " | ".join(reasons))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    vot.to_xml(str(path))


def read_summary(path: str | Path) -> dict[str, object]:
    """Read the whole-field figures and grade back from an ``NNNNNNp.xml``.

    Returns
    -------
    dict
        The ``Field`` table's single row (column -> value), plus ``expnum``,
        ``grade`` and ``grade_reasons`` (list) from the PARAMs.
    """
    from astropy.io.votable import parse

    votable = parse(str(path))
    resource = votable.resources[0]
    params = {param.name: param.value for param in resource.params}
    field = resource.tables[0].to_table()
    summary: dict[str, object] = {}
    for name in field.colnames:
        value = field[name][0]
        summary[name] = value.item() if hasattr(value, "item") else value
    reasons = str(params.get("Grade_Reasons") or "")
    summary.update(
        expnum=int(params["EXPNUM"]),
        grade=str(params["Grade"]),
        grade_reasons=[r.strip() for r in reasons.split(" | ") if r.strip()],
    )
    return summary
