"""The registry: the survey database of exposures, QA figures, grades, quarantine.

The seed stores in "a local data base" the location of every image and its
maps, FITS header information, the night-by-night observing metadata and the
QualityFITS figures; the graders read and write grades there. Here the
database is built by one rule from the per-exposure products, so it can always
be rebuilt from files. SQLite by default; any SQLAlchemy URL works
(``postgresql://user@host/spica``).

Tables
------
Their columns and types are declared once, in :func:`schema` (SQLAlchemy
``Table`` definitions): an input set where every exposure is quarantined
still gives every table with its real columns, and a frame with a column the
schema does not declare is refused.

``exposures``
    One row per exposure (``expnum`` unique) and per file without an
    odometer: header metadata, observing metadata (``skyprobe``,
    ``photometric``), whole-field QA figures (``qa_*``, the ``Field`` table
    of ``NNNNNNp.xml``), the provisional grade and its reason, the grade in
    force (``grade``) and whether it is provisional (``grade_provisional``),
    status and quarantine reason. When several files claim one odometer
    (``751000p.fits`` and ``751000p.fits.fz``), the row is the file kept; the
    others are in ``quarantine``.
``ccds``
    One row per CCD of every accepted exposure (``expnum``, then the columns
    of the ``_diag.fits`` table, :data:`spica.step1.qa.report.CCD_COLUMNS`).
``quarantine``
    One row per quarantined file (``file`` unique) and its reason.
``scamp_fields``, ``scamp_groups``
    The SCAMP solutions of each release (:func:`load_calibration`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from astropy.table import Table

if TYPE_CHECKING:
    from sqlalchemy import MetaData

__all__ = [
    "GRADES",
    "build_registry",
    "conform",
    "empty_survey_message",
    "load_calibration",
    "merge_grades",
    "read_grades",
    "read_metadata",
    "schema",
]

#: Grades of the seed (3.2.1): only A and B enter a release.
GRADES = ("A", "B", "C", "D")

_INFO_COLUMNS = [
    "object", "runid", "qrunid", "crunid", "pi_name", "filter", "band", "exptime",
    "airmass", "date_obs", "utc_obs", "mjd_obs", "ra_deg", "dec_deg", "rel_date",
]

# --------------------------------------------------------------------------
# The schema: every table's columns and types, declared once
# --------------------------------------------------------------------------

#: Column kinds of :func:`schema` (``float`` when a column is not listed).
_TEXT, _INT, _BOOL, _FLOAT = "text", "int", "bool", "float"

_EXPOSURE_HEAD = [("expnum", _INT), ("file", _TEXT), ("status", _TEXT), ("reason", _TEXT),
                  ("message", _TEXT), ("n_ccd", _INT), ("sha256", _TEXT)]
_INFO_KINDS = {"exptime": _FLOAT, "airmass": _FLOAT, "mjd_obs": _FLOAT, "ra_deg": _FLOAT,
               "dec_deg": _FLOAT}  # the other header columns are text
# whole-field QA figures (spica.step1.qa.report.FIELD_COLUMNS) that are not floats
_QA_KINDS = {"exposure": _TEXT, "object": _TEXT, "filter": _TEXT, "expnum": _INT, "n_ccd": _INT,
             "n_detected": _INT, "n_stars": _INT, "n_galaxies": _INT, "n_saturated": _INT,
             "n_psfex_failed": _INT}
_EXPOSURE_TAIL = [("provisional_grade", _TEXT), ("provisional_reason", _TEXT),
                  ("skyprobe", _FLOAT), ("photometric", _BOOL), ("grade_comment", _TEXT),
                  ("graded_by", _TEXT), ("grade_date", _TEXT), ("grade", _TEXT),
                  ("grade_provisional", _BOOL)]
# per-CCD figures (spica.step1.qa.report.CCD_COLUMNS) that are not floats
_CCD_KINDS = {"ccd": _INT, "extname": _TEXT, "naxis1": _INT, "naxis2": _INT, "calibrated": _BOOL,
              "n_detected": _INT, "n_stars": _INT, "n_galaxies": _INT, "n_saturated": _INT,
              "n_artifacts": _INT, "psfex_loaded": _INT, "psfex_accepted": _INT, "psfex_ok": _BOOL}
_QUARANTINE = [("expnum", _INT), ("file", _TEXT), ("reason", _TEXT), ("message", _TEXT)]
# spica.astromatic.scamp.parse_scamp_xml's ``fields`` and ``groups``, keyed by release and stack
_SCAMP_FIELDS = [
    ("catalog", _TEXT), ("group", _INT), ("astr_instrument", _TEXT), ("phot_instrument", _TEXT),
    ("photometric", _BOOL), ("photometric_link", _BOOL), ("ndetect", _INT),
    *((name, _FLOAT) for name in (
        "exposure_time", "airmass", "zeropoint_corr", "flux_scale", "astrom_sigma_internal",
        "astrom_sigma_reference", "astrom_offset_reference", "chi2_internal", "chi2_internal_hisn",
        "chi2_reference", "chi2_reference_hisn")),
    ("release", _TEXT), ("stack", _TEXT), ("expnum", _INT),
]
_SCAMP_GROUPS = [
    ("group", _TEXT), ("nfields", _INT),
    *((f"{kind}_{stat}_{where}{hisn}", _FLOAT)
      for where in ("internal", "reference")
      for kind, stat, hisn in (
          ("astrom", "sigma", ""), ("astrom", "sigma", "_hisn"), ("astrom", "chi2", ""),
          ("astrom", "chi2", "_hisn"), ("astrom", "ndets", ""), ("astrom", "ndets", "_hisn"),
          ("phot", "sigma", ""), ("phot", "sigma", "_hisn"), ("phot", "chi2", ""),
          ("phot", "ndets", ""))),
    ("release", _TEXT), ("stack", _TEXT),
]

#: Tables written by :func:`build_registry` (rebuilt each time); :func:`load_calibration`
#: writes the SCAMP ones, release by release.
STEP1_TABLES = ("exposures", "ccds", "quarantine")
SCAMP_TABLES = ("scamp_fields", "scamp_groups")


@functools.cache
def schema() -> MetaData:
    """The registry's tables, as SQLAlchemy ``Table`` definitions (built once).

    ``exposures`` (``expnum`` unique; files without an odometer have none),
    ``ccds`` (unique ``expnum``, ``ccd``), ``quarantine`` (``file`` unique),
    ``scamp_fields`` and ``scamp_groups``; columns in the order the CSV
    exports give them.
    """
    from sqlalchemy import (
        BigInteger,
        Boolean,
        Column,
        Float,
        MetaData,
        Table,
        Text,
        UniqueConstraint,
    )

    from spica.step1.qa.report import CCD_COLUMNS, FIELD_COLUMNS

    types = {_TEXT: Text, _INT: BigInteger, _BOOL: Boolean, _FLOAT: Float}

    def columns(spec: Iterable[tuple[str, str]]) -> list[Column]:
        return [Column(name, types[kind]()) for name, kind in spec]

    exposures = [
        *_EXPOSURE_HEAD,
        *((name, _INFO_KINDS.get(name, _TEXT)) for name in _INFO_COLUMNS),
        *((f"qa_{name}", _QA_KINDS.get(name, _FLOAT)) for name, _, _ in FIELD_COLUMNS),
        *_EXPOSURE_TAIL,
    ]
    ccds = [("expnum", _INT), *((name, _CCD_KINDS.get(name, _FLOAT)) for name, _, _ in CCD_COLUMNS)]
    metadata = MetaData()
    Table("exposures", metadata, *columns(exposures), UniqueConstraint("expnum"))
    Table("ccds", metadata, *columns(ccds), UniqueConstraint("expnum", "ccd"))
    Table("quarantine", metadata, *columns(_QUARANTINE), UniqueConstraint("file"))
    Table("scamp_fields", metadata, *columns(_SCAMP_FIELDS))
    Table("scamp_groups", metadata, *columns(_SCAMP_GROUPS))
    return metadata


def conform(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """``frame`` with exactly the columns of registry table ``table``, in order and typed.

    Columns the frame lacks are added empty (an empty survey has no QA
    figures); integers become nullable ``Int64``, booleans ``boolean``, text
    ``object`` with None for missing values.

    Raises
    ------
    ValueError
        If ``frame`` has a column the schema does not declare.
    """
    from sqlalchemy import BigInteger, Boolean, Float

    columns = schema().tables[table].columns
    unknown = [name for name in frame.columns if name not in columns]
    if unknown:
        raise ValueError(f"registry table {table}: columns not in its schema: {unknown}")
    result = pd.DataFrame(index=frame.index)
    for column in columns:
        values = frame[column.name] if column.name in frame else pd.Series(None, index=frame.index,
                                                                             dtype=object)
        if isinstance(column.type, BigInteger):
            result[column.name] = pd.to_numeric(values, errors="raise").astype("Int64")
        elif isinstance(column.type, Boolean):
            result[column.name] = values.astype("boolean")
        elif isinstance(column.type, Float):
            result[column.name] = pd.to_numeric(values, errors="raise").astype(float)
        else:
            result[column.name] = values.astype(object).where(values.notna(), None)
    return result.reset_index(drop=True)


def _write_tables(connection, frames: Mapping[str, pd.DataFrame], *, replace: bool) -> None:
    """Write conformed frames into their tables; ``replace``: drop and recreate them first."""
    tables = [schema().tables[name] for name in frames]
    if replace:
        schema().drop_all(connection, tables=tables, checkfirst=True)
    schema().create_all(connection, tables=tables, checkfirst=True)
    for name, frame in frames.items():
        if len(frame):
            frame.to_sql(name, connection, if_exists="append", index=False)


def empty_survey_message(n_quarantined: int, quarantine_csv: str | Path) -> str:
    """The warning of a survey where no exposure passed the integrity check."""
    return (f"no exposure passed the integrity check: {n_quarantined} quarantined, "
            f"see {quarantine_csv}")


def read_grades(path: str | Path | None) -> pd.DataFrame:
    """Read the graders' CSV (expnum, grade, comment, graded_by, date).

    Unknown grades raise ValueError naming the row; a missing file means no
    human grade yet.
    """
    columns = ["expnum", "grade", "comment", "graded_by", "date"]
    if path is None or not Path(path).is_file():
        return pd.DataFrame(columns=columns)
    grades = pd.read_csv(path, dtype={"grade": str, "comment": str, "graded_by": str,
                                      "date": str}, keep_default_na=False)
    missing = set(columns) - set(grades.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    grades["grade"] = grades["grade"].str.strip().str.upper()
    bad = grades[~grades["grade"].isin(GRADES)]
    if len(bad):
        raise ValueError(f"{path}: invalid grade(s) {bad[['expnum', 'grade']].to_dict('records')}")
    return grades[columns].drop_duplicates("expnum", keep="last")


def read_metadata(path: str | Path | None) -> pd.DataFrame:
    """Read the observing metadata CSV (expnum, skyprobe, photometric); None: none yet."""
    if path is None or not Path(path).is_file():
        return pd.DataFrame(columns=["expnum", "skyprobe", "photometric"])
    metadata = pd.read_csv(path)
    metadata["photometric"] = metadata["photometric"].astype(str).str.lower().isin(
        ["true", "t", "1", "yes", "y"]
    )
    return metadata[["expnum", "skyprobe", "photometric"]]


def merge_grades(exposures: pd.DataFrame, grades: pd.DataFrame) -> pd.DataFrame:
    """Set the grade in force: the human grade, else the provisional one.

    Parameters
    ----------
    exposures
        Needs ``expnum`` and ``provisional_grade`` (and optionally
        ``provisional_reason``).
    grades
        The graders' table from :func:`read_grades`.

    Returns
    -------
    DataFrame
        ``exposures`` with ``grade``, ``grade_provisional``, ``grade_comment``,
        ``graded_by`` and ``grade_date``.
    """
    human = grades.rename(columns={"comment": "grade_comment", "date": "grade_date",
                                   "grade": "human_grade"})
    merged = exposures.merge(human, on="expnum", how="left")
    has_human = merged["human_grade"].notna() & (merged["human_grade"] != "")
    merged["grade"] = merged["human_grade"].where(has_human, merged["provisional_grade"])
    merged["grade_provisional"] = ~has_human & merged["provisional_grade"].notna()
    return merged.drop(columns=["human_grade"])


def _exposure_rows(
    inventory: pd.DataFrame, verdicts: Mapping[int, dict], summaries: Mapping[int, dict]
) -> pd.DataFrame:
    rows = []
    for record in inventory.to_dict("records"):
        expnum = int(record["expnum"]) if str(record["expnum"]).strip() else None
        verdict = verdicts.get(expnum, {}) if expnum else {}
        info = verdict.get("info") or {}
        summary = summaries.get(expnum, {}) if record["status"] == "ok" else {}
        row = {
            "expnum": expnum,
            "file": record["path"],
            "status": record["status"],
            "reason": record["reason"] or None,
            "message": record["message"] or None,
            "n_ccd": verdict.get("n_ccd"),
            "sha256": verdict.get("sha256"),
            **{column: info.get(column) for column in _INFO_COLUMNS},
            **{f"qa_{key}": value for key, value in summary.items()
               if key not in ("grade", "grade_reasons") and not isinstance(value, (list, dict))},
            "provisional_grade": summary.get("grade"),
            "provisional_reason": "; ".join(summary.get("grade_reasons", []) or []) or None,
        }
        rows.append(row)
    empty = [name for name, _ in _EXPOSURE_HEAD] + _INFO_COLUMNS + ["provisional_grade",
                                                                    "provisional_reason"]
    return pd.DataFrame(rows, columns=None if rows else empty).astype({"expnum": "Int64"})


def _one_row_per_exposure(exposures: pd.DataFrame) -> pd.DataFrame:
    """Keep, of the files claiming one odometer, the accepted one (else the first listed)."""
    numbered = exposures["expnum"].notna()
    rank = pd.Series(range(len(exposures)), index=exposures.index)
    order = (exposures["status"] != "ok").astype(int) * len(exposures) + rank
    kept = exposures[numbered].loc[order[numbered].sort_values().index]
    kept = kept.drop_duplicates("expnum", keep="first")
    return exposures.loc[exposures.index.isin(kept.index) | ~numbered]


def build_registry(
    *,
    url: str,
    inventory_csv: str | Path,
    checks: Iterable[str | Path],
    qa_xml: Iterable[str | Path],
    diag: Iterable[str | Path],
    metadata_csv: str | Path | None,
    grades_csv: str | Path | None,
    export_csv: str | Path,
) -> dict[str, int]:
    """Build (or rebuild) the registry database and a CSV export of ``exposures``.

    Every table is rebuilt with the columns of :func:`schema`, also when no
    exposure passed the integrity check (then ``exposures`` holds only the
    quarantined files and ``ccds`` is empty).

    Returns
    -------
    dict
        Row counts per table (``exposures``, ``ccds``, ``quarantine``).
    """
    from sqlalchemy import create_engine

    from spica.paths import parse_exposure_prefix
    from spica.step1.qa import read_summary

    inventory = pd.read_csv(inventory_csv, dtype=str, keep_default_na=False)
    verdicts = {}
    for path in checks:
        verdict = json.loads(Path(path).read_text())
        verdicts[int(verdict["expnum"])] = verdict
    summaries = {}
    for path in qa_xml:
        summary = read_summary(path)
        summaries[int(summary["expnum"])] = summary
    files = _exposure_rows(inventory, verdicts, summaries)
    quarantine = files[files["status"] != "ok"][["expnum", "file", "reason", "message"]]
    exposures = _one_row_per_exposure(files)
    exposures = exposures.merge(read_metadata(metadata_csv), on="expnum", how="left")
    exposures = merge_grades(exposures, read_grades(grades_csv))
    # quarantined files are never graded
    exposures.loc[exposures["status"] != "ok", ["grade", "grade_provisional"]] = [None, False]

    ccd_tables = []
    for path in diag:
        table = Table.read(path, hdu=1)
        names = [name for name in table.colnames if len(table[name].shape) <= 1]
        ccd_tables.append(table[names].to_pandas().assign(
            expnum=parse_exposure_prefix(Path(path).name)))
    ccds = pd.concat(ccd_tables, ignore_index=True) if ccd_tables else pd.DataFrame()
    tables = {"exposures": conform(exposures, "exposures"), "ccds": conform(ccds, "ccds"),
              "quarantine": conform(quarantine, "quarantine")}

    engine = create_engine(url)
    with engine.begin() as connection:
        _write_tables(connection, tables, replace=True)
    engine.dispose()
    Path(export_csv).parent.mkdir(parents=True, exist_ok=True)
    tables["exposures"].to_csv(export_csv, index=False)
    return {name: len(table) for name, table in tables.items()}


def load_calibration(
    *,
    url: str,
    release: str,
    scamp_xml: Mapping[str, str | Path],
    export_csv: str | Path,
) -> dict[str, int]:
    """Load the SCAMP solutions of a release into the registry.

    Tables ``scamp_fields`` (one row per exposure and stack: zero-point
    correction, flux scale, detections, reference dispersion, chi2) and
    ``scamp_groups`` (internal and external astrometric and photometric
    dispersion, chi2 and numbers of detections), both keyed by ``release`` and
    ``stack``; rows of the release are replaced. ``export_csv`` receives the
    fields table.
    """
    from sqlalchemy import create_engine, delete

    from spica.astromatic.scamp import parse_scamp_xml
    from spica.paths import parse_exposure_prefix

    fields, groups = [], []
    for stack, path in sorted(scamp_xml.items()):
        solution = parse_scamp_xml(path)
        fields.append(solution["fields"].assign(release=release, stack=stack))
        groups.append(solution["groups"].assign(release=release, stack=stack))
    found = {
        "scamp_fields": pd.concat(fields, ignore_index=True) if fields else pd.DataFrame(),
        "scamp_groups": pd.concat(groups, ignore_index=True) if groups else pd.DataFrame(),
    }
    if "catalog" in found["scamp_fields"]:
        catalogs = found["scamp_fields"]["catalog"]
        found["scamp_fields"]["expnum"] = pd.array([parse_exposure_prefix(str(c)) for c in catalogs], dtype="Int64")
    tables = {name: conform(table, name) for name, table in found.items()}
    engine = create_engine(url)
    with engine.begin() as connection:
        schema().create_all(connection, tables=[schema().tables[n] for n in tables], checkfirst=True)
        for name in tables:
            table = schema().tables[name]
            connection.execute(delete(table).where(table.c.release == release))
        _write_tables(connection, tables, replace=False)
    engine.dispose()
    Path(export_csv).parent.mkdir(parents=True, exist_ok=True)
    tables["scamp_fields"].to_csv(export_csv, index=False)
    return {name: len(table) for name, table in tables.items()}
