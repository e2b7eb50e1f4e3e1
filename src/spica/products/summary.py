"""The SPICA summary of a release product (``<stem>_spica.xml``, seed 4.4 and 6.2).

The seed shows, for each stack, the tables SPICA gave the release control
team: the files stacked together (object, position, seeing, SkyProbe,
photometric flag, airmass, grade, exposure time, run, release and observing
dates), the stack itself (centre, release version, total exposure time, zero
point, seeing, background, SkyProbe), the files of the global astrometric
solution with their filter and sky distribution, and SCAMP's astrometric and
photometric statistics. :func:`product_summary` builds them as one VOTable
(astropy writes and reads it; any VO tool opens it), one ``TABLE`` each
(:data:`SUMMARY_TABLES`):

``Stack``
    one row: the product.
``Stacked_Files``
    one row per exposure of the stack list, ``stacked`` F for those the accept
    summary rejected.
``Astrometric_Files``
    one row per exposure of the astrometric list: filter, position, SCAMP
    group and instruments, zero-point correction.
``Filters``
    the astrometric list per filter: count and sky extent.
``Astrometry``, ``Photometry``
    SCAMP's statistics per field group (internal / reference, all and high
    S/N): dispersions, chi2, detection counts.
``SCAMP_Run``
    the seed's SCAMP run summary (4.4, "scamp (completed on ...)"): one row,
    the SCAMP version and date, the numbers of field groups, fields,
    astrometric instruments and photometric instruments, and of warnings.
``SCAMP_Instruments``
    the seed's instrument key table: one row per astrometric (``A1``...) and
    photometric (``P1``...) instrument SCAMP identified, with its number of
    fields, the header keys that define it (``FILTER = r.MP9601, QRUNID =
    04AQ02``) and, for a photometric one, its output zero point.
``SCAMP_Photometric_Statistics``
    the seed's per-photometric-instrument statistics (P1...Pn): one row per
    field group and photometric instrument, internal and external (reference)
    dispersion, chi2/dof and detections, all and high S/N.
``QualityFITS_out``
    the product's QualityFITS-out figures (seed 6.2, "SPICA/SCAMP/QualityFITS-out
    output quality assessment summary table"): seeing, PSF FWHM and
    elongation over the field, background, star and galaxy counts, galaxy-count
    peak, masked fraction, 50 % and 80 % completeness magnitudes; one row (none
    when QualityFITS-out was not given). Then the grades
    (:data:`spica.qualityfits_out.grading.GRADE_COLUMNS`): QualityFITS-out's
    provisional grade and its reason, marked provisional, and the release control
    team's grade, comment and, for C or D, the problem report.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.io.votable import from_table, parse
from astropy.io.votable.tree import Resource
from astropy.io.votable.tree import TableElement as VOTableTable
from astropy.table import Table

from spica.astromatic.scamp import parse_scamp_xml
from spica.calibration.accept import read_accept_summary
from spica.paths import exposure_filename, parse_step1_name
from spica.qualityfits_out.completeness import read_completeness
from spica.qualityfits_out.masks import read_masked_fraction
from spica.qualityfits_out.figures import FIGURES, read_figures
from spica.qualityfits_out.grading import GRADE_COLUMNS, grade_columns, grading_figures, read_multiple_image_fraction
from spica.sky import format_dec_rounded, format_ra_rounded

__all__ = [
    "SUMMARY_TABLES",
    "product_summary",
    "write_product_summary",
    "read_product_summary",
    "summarise_product",
]

#: Names of the tables of ``_spica.xml``, in file order.
SUMMARY_TABLES = ("Stack", "Stacked_Files", "Astrometric_Files", "Filters", "Astrometry", "Photometry",
                  "SCAMP_Run", "SCAMP_Instruments", "SCAMP_Photometric_Statistics", "QualityFITS_out")

#: Completeness columns of ``QualityFITS_out`` after :data:`spica.qualityfits_out.figures.FIGURES`.
_COMPLETENESS_COLUMNS = (("completeness_50_mag", "m50", "50 % completeness magnitude (simulated stars)"),
                         ("completeness_80_mag", "m80", "80 % completeness magnitude (simulated stars)"))

#: Registry export columns -> ``Stacked_Files`` columns (the seed's table, 6.2).
_INPUT_COLUMNS = {
    "object": "object", "ra_deg": "ra_deg", "dec_deg": "dec_deg", "qa_fwhm_arcsec": "seeing_arcsec",
    "skyprobe": "skyprobe", "airmass": "airmass", "grade": "grade", "exptime": "exptime",
    "runid": "runid", "qrunid": "qrunid", "rel_date": "rel_date", "date_obs": "date_obs",
    "utc_obs": "utc_obs", "qa_background_mag": "background_mag",
}


def _photometric_letter(value: object) -> str:
    """The seed's ``Photom Flag``: P for a photometric night, A otherwise."""
    return "P" if str(value).strip().lower() in ("true", "t", "1", "1.0") else "A"


def _flag(value: object) -> bool:
    """A verdict of the accept summary: True only when it says so (None/NaN: not said)."""
    return bool(pd.notna(value) and value)


def _stacked_files(registry: pd.DataFrame, stack_list: Sequence[int], accept: pd.DataFrame) -> Table:
    rows = registry.set_index("expnum").reindex([int(e) for e in stack_list])
    verdicts = accept.set_index("expnum") if len(accept) else pd.DataFrame(columns=["accepted", "anchored"])
    table = Table()
    table["file"] = [exposure_filename(e) for e in rows.index]
    for source, name in _INPUT_COLUMNS.items():
        column = rows[source] if source in rows else pd.Series([None] * len(rows), index=rows.index)
        if name in ("ra_deg", "dec_deg", "seeing_arcsec", "skyprobe", "airmass", "exptime", "background_mag"):
            table[name] = pd.to_numeric(column, errors="coerce").to_numpy(float)
        else:
            table[name] = [("" if pd.isna(v) else str(v)) for v in column]
    table["ra"] = [format_ra_rounded(v) if np.isfinite(v) else "" for v in table["ra_deg"]]
    table["dec"] = [format_dec_rounded(v) if np.isfinite(v) else "" for v in table["dec_deg"]]
    photometric = rows["photometric"] if "photometric" in rows else pd.Series([False] * len(rows))
    table["photom_flag"] = [_photometric_letter(v) for v in photometric]
    table["stacked"] = [_flag(verdicts["accepted"].get(e)) for e in rows.index]
    table["zp_anchored"] = [_flag(verdicts["anchored"].get(e)) for e in rows.index]
    table["file"].description = "input exposure (Elixir-detrended MEF)"
    table["photom_flag"].description = "P: photometric night (observing metadata), A: not"
    table["grade"].description = "TERAPIX grade (A/B/C/D)"
    table["stacked"].description = "F: rejected by the accept summary (_scamp_accept.xml)"
    table["zp_anchored"].description = "zero point tied to a photometric exposure by SCAMP"
    for name, unit in (("ra_deg", "deg"), ("dec_deg", "deg"), ("seeing_arcsec", "arcsec"),
                       ("exptime", "s"), ("background_mag", "mag / arcsec2")):
        table[name].unit = unit
    return table


def _stack_row(name: str, release: str, header: fits.Header, stacked: Table) -> Table:
    used = stacked[stacked["stacked"]]
    table = Table()
    table["name"] = [name]
    table["ra"] = [format_ra_rounded(header["CRVAL1"])]
    table["dec"] = [format_dec_rounded(header["CRVAL2"])]
    table["ra_deg"], table["dec_deg"] = [float(header["CRVAL1"])], [float(header["CRVAL2"])]
    table["release"] = [release]
    table["release_version"] = [release[1:]]  # the seed's "0002"
    table["filter"] = [str(header.get("FILTER", ""))]
    table["ncombine"] = [int(header.get("NCOMBINE", len(used)))]
    table["exptime_total"] = [float(header.get("EXPTIME", np.nan))]
    table["zeropoint"] = [float(header.get("MAGZERO", np.nan))]
    table["seeing_arcsec"] = [float(header.get("SEEING", np.nan))]
    table["background_adu"] = [float(header.get("BACKMEAN", np.nan))]
    magnitudes = np.asarray(used["background_mag"], float)
    table["background_mag"] = [float(np.nanmean(magnitudes)) if np.isfinite(magnitudes).any() else np.nan]
    skyprobe = np.asarray(used["skyprobe"], float)
    table["skyprobe"] = [float(np.nanmean(skyprobe)) if np.isfinite(skyprobe).any() else np.nan]
    table["photcal"] = [bool(header.get("PHOTCAL", False))]
    table["rel_date"] = [str(header.get("REL_DATE", ""))]
    table["naxis1"], table["naxis2"] = [int(header["NAXIS1"])], [int(header["NAXIS2"])]
    table["exptime_total"].unit, table["seeing_arcsec"].unit = "s", "arcsec"
    table["background_mag"].unit = "mag / arcsec2"
    table["background_mag"].description = "mean sky brightness of the stacked inputs (QualityFITS-in)"
    table["skyprobe"].description = "mean SkyProbe attenuation of the stacked inputs"
    return table


def _astrometric_files(registry: pd.DataFrame, astrometric_list: Sequence[int], fields: pd.DataFrame) -> Table:
    rows = registry.set_index("expnum").reindex([int(e) for e in astrometric_list])
    by_catalogue = {}
    for row in fields.itertuples():
        try:
            by_catalogue[parse_step1_name(str(row.catalog))[0]] = row
        except ValueError:  # not a step 1 catalogue of this pipeline
            continue
    table = Table()
    table["file"] = [exposure_filename(e) for e in rows.index]
    table["filter"] = [("" if pd.isna(v) else str(v)) for v in rows.get("filter", [None] * len(rows))]
    table["ra_deg"] = pd.to_numeric(rows.get("ra_deg"), errors="coerce").to_numpy(float)
    table["dec_deg"] = pd.to_numeric(rows.get("dec_deg"), errors="coerce").to_numpy(float)
    table["qrunid"] = [("" if pd.isna(v) else str(v)) for v in rows.get("qrunid", [None] * len(rows))]
    table["photom_flag"] = [_photometric_letter(v) for v in rows.get("photometric", [False] * len(rows))]
    solved = [by_catalogue.get(e) for e in rows.index]
    table["group"] = [int(s.group) if s is not None and pd.notna(s.group) else 0 for s in solved]
    table["astr_instrument"] = [str(s.astr_instrument) if s is not None else "" for s in solved]
    table["phot_instrument"] = [str(s.phot_instrument) if s is not None else "" for s in solved]
    table["ndetect"] = [int(s.ndetect) if s is not None and pd.notna(s.ndetect) else 0 for s in solved]
    table["zeropoint_corr"] = [float(s.zeropoint_corr) if s is not None else np.nan for s in solved]
    table["astrom_sigma_reference"] = [float(s.astrom_sigma_reference) if s is not None else np.nan
                                       for s in solved]
    table["ra_deg"].unit = table["dec_deg"].unit = "deg"
    table["zeropoint_corr"].unit = "mag"
    table["astrom_sigma_reference"].unit = "arcsec"
    table["group"].description = "SCAMP field group (0: not solved)"
    return table


def _filters(astrometric: Table) -> Table:
    frame = astrometric.to_pandas()
    rows = []
    for name, group in frame.groupby("filter", sort=True):
        ra = np.unwrap(np.radians(group["ra_deg"].dropna().to_numpy()))
        rows.append({"filter": name, "nfiles": len(group),
                     "ra_min_deg": round(float(np.degrees(ra.min()) % 360), 7) if len(ra) else np.nan,
                     "ra_max_deg": round(float(np.degrees(ra.max()) % 360), 7) if len(ra) else np.nan,
                     "dec_min_deg": float(group["dec_deg"].min()),
                     "dec_max_deg": float(group["dec_deg"].max())})
    return Table(rows=rows, names=["filter", "nfiles", "ra_min_deg", "ra_max_deg", "dec_min_deg",
                                   "dec_max_deg"], dtype=[str, int, float, float, float, float])


def _group_statistics(groups: pd.DataFrame, prefix: str) -> Table:
    columns = ["group", "nfields"] + [c for c in groups.columns if c.startswith(prefix)]
    frame = groups[columns] if len(groups) else pd.DataFrame(columns=columns)
    table = Table.from_pandas(frame.astype({"group": str}))
    for name in table.colnames:
        if "sigma" in name:
            table[name].unit = "arcsec" if prefix == "astrom_" else "mag"
    return table


def _scamp_run(scamp: dict) -> Table:
    """The seed's SCAMP run summary: one row (version, date, groups, fields, instruments)."""
    summary = scamp.get("summary", {})
    table = Table()
    table["software"] = ["SCAMP"]
    table["version"] = [str(summary.get("version") or "")]
    table["date"] = [str(summary.get("date") or "")]
    for name, key, description in (
        ("ngroups", "ngroups", "number of field groups"),
        ("nfields", "nfields", "number of fields (exposures)"),
        ("n_astr_instruments", "n_astr_instruments", "number of astrometric instruments"),
        ("n_phot_instruments", "n_phot_instruments", "number of photometric instruments"),
    ):
        table[name] = np.array([int(summary.get(key, 0))], np.int64)
        table[name].description = description
    table["n_warnings"] = np.array([len(summary.get("warnings", []))], np.int64)
    table["date"].description = "date SCAMP completed the run"
    return table


_KEY_RE = re.compile(r"([A-Za-z0-9_-]+)\s*=\s*('(?:[^']|'')*'|[^,]*)")


def _instrument_keys(text: object) -> str:
    """SCAMP's ``Keys`` of an instrument as ``FILTER = r.MP9601, QRUNID = 04AQ02``."""
    pairs = [(key, value.strip().strip("'").replace("''", "'").strip())
             for key, value in _KEY_RE.findall(str(text if isinstance(text, str) else ""))]
    return ", ".join(f"{key} = {value}" for key, value in pairs)


def _scamp_instruments(scamp: dict) -> Table:
    """The seed's instrument key table: astrometric then photometric instruments."""
    rows = []
    for kind, key in (("astrometric", "Astrometric_Instruments"), ("photometric", "Photometric_Instruments")):
        frame = scamp.get("tables", {}).get(key, pd.DataFrame())
        for _, instrument in frame.iterrows():
            zeropoint = instrument.get("MagZeroPoint_Output", np.nan) if kind == "photometric" else np.nan
            rows.append({"name": str(instrument.get("Name", "")), "kind": kind,
                         "nfields": int(instrument.get("NFields", 0)),
                         "keys": _instrument_keys(instrument.get("Keys", "")),
                         "magzero": float(zeropoint) if pd.notna(zeropoint) else np.nan})
    table = Table(rows=rows, names=["name", "kind", "nfields", "keys", "magzero"],
                  dtype=[str, str, np.int64, str, np.float64])
    table["name"].description = "SCAMP instrument (A: astrometric, P: photometric)"
    table["keys"].description = "header keywords whose values define the instrument"
    table["magzero"].unit = "mag"
    table["magzero"].description = "output zero point of a photometric instrument"
    return table


#: Statistics of ``SCAMP_Photometric_Statistics``: column suffix -> SCAMP's FGroups field suffix.
_PHOT_STATISTICS = {f"{where}{hisn}": f"{source}{high}"
                    for where, source in (("internal", "Internal"), ("reference", "Reference"))
                    for hisn, high in (("", ""), ("_hisn", "_HighSN"))}


def _values(value: object) -> list:
    """A SCAMP per-instrument cell as a list (one instrument: a scalar)."""
    if isinstance(value, list | tuple | np.ndarray):
        return list(value)
    return [value]


def _photometric_statistics(scamp: dict) -> Table:
    """The seed's statistics per photometric instrument: one row per (group, instrument)."""
    groups = scamp.get("tables", {}).get("FGroups", pd.DataFrame())
    instruments = scamp.get("tables", {}).get("Photometric_Instruments", pd.DataFrame())
    nfields = {str(row.get("Name")): int(row.get("NFields", 0)) for _, row in instruments.iterrows()}
    rows = []
    for _, group in groups.iterrows():
        names = [n.strip() for n in str(group.get("PhotInstru_Name") or "").split(",") if n.strip()]
        for index, name in enumerate(names):
            row = {"group": str(group.get("Name", "")), "instrument": name, "nfields": nfields.get(name, 0)}
            for suffix, source in _PHOT_STATISTICS.items():
                for stat, field in (("sigma", "PhotSigma"), ("chi2", "PhotChi2"), ("ndets", "PhotNDets")):
                    values = _values(group.get(f"{field}_{source}", np.nan))
                    value = values[index] if index < len(values) else np.nan
                    missing = not pd.notna(value)
                    row[f"{stat}_{suffix}"] = ((0 if missing else int(value)) if stat == "ndets"
                                               else (np.nan if missing else float(value)))
            rows.append(row)
    columns = ["group", "instrument", "nfields"] + [f"{stat}_{suffix}" for suffix in _PHOT_STATISTICS
                                                    for stat in ("sigma", "chi2", "ndets")]
    table = Table(rows=rows or None, names=columns,
                  dtype=[str, str, np.int64] + [np.int64 if c.startswith("ndets") else np.float64
                                                for c in columns[3:]])
    for name in table.colnames:
        if name.startswith("sigma"):
            table[name].unit = "mag"
        where = "external (reference catalogue)" if "reference" in name else "internal (overlaps)"
        sample = ", high S/N" if name.endswith("_hisn") else ", all"
        if name.startswith("sigma"):
            table[name].description = f"photometric dispersion, {where}{sample}"
        elif name.startswith("chi2"):
            table[name].description = f"chi2 per degree of freedom, {where}{sample}"
        elif name.startswith("ndets"):
            table[name].description = f"detections, {where}{sample}"
    return table


def _quality_table(figures: dict | None, completeness: dict | None, grades: dict | None = None,
                   masks: dict | None = None) -> Table:
    """The ``QualityFITS_out`` table: one row of figures, or no row when not given; then
    the provisional and the team's grades (:func:`spica.qualityfits_out.grading.grade_columns`)."""
    table = Table()
    for name, unit, description in FIGURES:
        value = [] if figures is None else [figures[name]]
        table[name] = np.array(value, np.int64 if name.startswith(("n_", "psfex_")) else np.float64)
        table[name].unit = unit or None
        table[name].description = description
    for name, key, description in _COMPLETENESS_COLUMNS:
        value = [] if figures is None else [np.nan if completeness is None else completeness[key]]
        table[name] = np.array(value, np.float64)
        table[name].unit = "mag"
        table[name].description = description
    # the automatic masks' masked fraction (spica.qualityfits_out.masks.read_masked_fraction)
    table["reg_masked_fraction"] = np.array(
        [] if figures is None else [np.nan if masks is None else masks["masked"]], np.float64)
    table["reg_masked_fraction"].description = (
        "fraction of the product's pixels inside its automatic masks (_reg.txt: halos, spikes, "
        "bleed trails, low-weight borders)")
    for name, values in (grades or grade_columns(None, None, None)).items():
        table[name] = np.array(values, bool if name == "provisional" else str)
        table[name].description = GRADE_COLUMNS[name]
    return table


def _grades(quality: dict | None, completeness: dict | None, stacked: Table, groups: pd.DataFrame,
            limits: dict | None, team: dict | None) -> dict:
    """The grade columns of ``QualityFITS_out``: the figures, the seeing of the inputs
    stacked (all of them if the accept summary kept none) and SCAMP's reference chi2."""
    used = stacked[stacked["stacked"]] if np.any(stacked["stacked"]) else stacked
    chi2 = groups["astrom_chi2_reference"] if "astrom_chi2_reference" in groups else []
    figures = grading_figures(quality, completeness, np.asarray(used["seeing_arcsec"], float),
                              pd.to_numeric(pd.Series(chi2, dtype=object), errors="coerce").tolist())
    return grade_columns(figures, limits, team)


def product_summary(
    *,
    name: str,
    release: str,
    header: fits.Header,
    registry: pd.DataFrame,
    stack_list: Sequence[int],
    astrometric_list: Sequence[int],
    accept: pd.DataFrame,
    scamp: dict,
    quality: dict | None = None,
    completeness: dict | None = None,
    grading: dict | None = None,
    product_grade: dict | None = None,
    masks: dict | None = None,
) -> dict[str, Table]:
    """The tables of a product's ``_spica.xml``, by name (:data:`SUMMARY_TABLES`).

    Parameters
    ----------
    name : str
        The stack name (``CFHTLS_W_i_143007+533430``) or image name (``546891p_V0001``).
    release : str
        ``T0002``.
    header : astropy.io.fits.Header
        The product's primary header (``CRVAL``, ``EXPTIME``, ``MAGZERO``,
        ``SEEING``, ``BACKMEAN``, ``PHOTCAL``, ``REL_DATE``...).
    registry : pandas.DataFrame
        The registry export (one row per exposure: observing metadata, QA, grade).
    stack_list, astrometric_list : sequence of int
        The product's two lists (seed 3.2.1).
    accept : pandas.DataFrame
        :func:`spica.astrometry.read_accept_summary` of the product.
    scamp : dict
        :func:`spica.astrometry.parse_scamp_xml` of the product's SCAMP run.
    quality : dict, optional
        The product's QualityFITS-out figures (:func:`spica.qualityfits_out.figures.read_figures`).
    completeness : dict, optional
        Its completeness (:func:`spica.qualityfits_out.completeness.read_completeness`:
        ``m50``, ``m80``).
    grading : dict, optional
        Config ``qualityfits_out.grading``: the limits of the provisional grade
        (:func:`spica.qualityfits_out.grading.provisional_product_grade`).
    product_grade : dict, optional
        The release control team's grade (:func:`spica.qualityfits_out.grading.team_grade`).
    masks : dict, optional
        The masked fractions of its ``_reg.txt``
        (:func:`spica.qualityfits_out.masks.read_masked_fraction`: ``masked``...).

    Returns
    -------
    dict of str to astropy.table.Table
    """
    registry = registry.dropna(subset=["expnum"]).astype({"expnum": int})
    stacked = _stacked_files(registry, stack_list, accept)
    astrometric = _astrometric_files(registry, astrometric_list, scamp["fields"])
    return {
        "Stack": _stack_row(name, release, header, stacked),
        "Stacked_Files": stacked,
        "Astrometric_Files": astrometric,
        "Filters": _filters(astrometric),
        "Astrometry": _group_statistics(scamp["groups"], "astrom_"),
        "Photometry": _group_statistics(scamp["groups"], "phot_"),
        "SCAMP_Run": _scamp_run(scamp),
        "SCAMP_Instruments": _scamp_instruments(scamp),
        "SCAMP_Photometric_Statistics": _photometric_statistics(scamp),
        "QualityFITS_out": _quality_table(quality, completeness, _grades(
            quality, completeness, stacked, scamp["groups"], grading, product_grade), masks=masks),
    }


def write_product_summary(tables: dict[str, Table], path: str | Path) -> Path:
    """Write :func:`product_summary`'s tables as one VOTable, one ``TABLE`` each."""
    votable = from_table(tables[SUMMARY_TABLES[0]], table_id=SUMMARY_TABLES[0])
    resource: Resource = votable.resources[0]
    resource.tables[0].name = SUMMARY_TABLES[0]
    for key in SUMMARY_TABLES[1:]:
        element = VOTableTable.from_table(votable, tables[key])
        element.ID = element.name = key
        resource.tables.append(element)
    votable.to_xml(str(path))
    return Path(path)


def read_product_summary(path: str | Path) -> dict[str, Table]:
    """Read a ``_spica.xml`` back into its tables, by name."""
    votable = parse(str(path))
    return {table.name: table.to_table() for table in votable.iter_tables()}


def summarise_product(
    *,
    name: str,
    release: str,
    image: str | Path,
    registry_csv: str | Path,
    stack_list: str | Path,
    astrometric_list: str | Path,
    accept_xml: str | Path,
    scamp_xml: str | Path,
    out: str | Path,
    qualityfits_out_diag: str | Path | None = None,
    completeness: str | Path | None = None,
    grading: dict | None = None,
    product_grade: dict | None = None,
    regions: str | Path | None = None,
) -> Path:
    """Read a product's files and write its summary ``_spica.xml`` (the file edge of
    :func:`product_summary`); return the path written."""
    from spica.release.planning import read_exposure_list

    tables = product_summary(
        name=name,
        release=release,
        header=fits.getheader(image),
        registry=pd.read_csv(registry_csv, dtype={"expnum": "Int64"}),
        stack_list=read_exposure_list(stack_list),
        astrometric_list=read_exposure_list(astrometric_list),
        accept=read_accept_summary(accept_xml),
        scamp=parse_scamp_xml(scamp_xml),
        quality=({**read_figures(qualityfits_out_diag),
                  "multiple_image_fraction": read_multiple_image_fraction(qualityfits_out_diag)}
                 if qualityfits_out_diag else None),
        completeness=read_completeness(completeness) if completeness else None,
        grading=grading,
        product_grade=product_grade,
        masks=read_masked_fraction(regions) if regions else None,
    )
    return write_product_summary(tables, out)

