"""The registry: the survey database of exposures, QA figures, grades, quarantine.

The seed stores in "a local data base" the location of every image and its
maps, FITS header information, the night-by-night observing metadata and the
QualityFITS figures; the graders read and write grades there. Here the
database is built by one rule from the per-exposure products, so it can always
be rebuilt from files. SQLite by default; any SQLAlchemy URL works
(``postgresql://user@host/spica``).

Tables
------
``exposures``
    One row per incoming file: header metadata, observing metadata
    (``skyprobe``, ``photometric``), whole-field QA figures, the provisional
    grade and its reason, the grade in force (``grade``) and whether it is
    provisional (``grade_provisional``), status and quarantine reason.
``ccds``
    One row per CCD of every accepted exposure (the ``_diag.fits`` tables).
``quarantine``
    The quarantined files and their reasons.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd
from astropy.table import Table

__all__ = [
    "merge_grades", "read_grades", "read_metadata", "build_registry", "load_calibration", "GRADES",
]

#: Grades of the seed (3.2.1): only A and B enter a release.
GRADES = ("A", "B", "C", "D")

_INFO_COLUMNS = [
    "object", "runid", "qrunid", "crunid", "pi_name", "filter", "band", "exptime",
    "airmass", "date_obs", "utc_obs", "mjd_obs", "ra_deg", "dec_deg", "rel_date",
]


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
    return pd.DataFrame(rows).astype({"expnum": "Int64"})


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

    Returns
    -------
    dict
        Row counts per table.
    """
    from sqlalchemy import create_engine

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
    exposures = _exposure_rows(inventory, verdicts, summaries)
    exposures = exposures.merge(read_metadata(metadata_csv), on="expnum", how="left")
    exposures = merge_grades(exposures, read_grades(grades_csv))
    # quarantined files are never graded
    exposures.loc[exposures["status"] != "ok", ["grade", "grade_provisional"]] = [None, False]

    ccd_tables = []
    for path in diag:
        table = Table.read(path, hdu=1)
        names = [name for name in table.colnames if len(table[name].shape) <= 1]
        ccd_tables.append(table[names].to_pandas())
    ccds = pd.concat(ccd_tables, ignore_index=True) if ccd_tables else pd.DataFrame()
    quarantine = exposures[exposures["status"] != "ok"][
        ["expnum", "file", "reason", "message"]
    ]

    engine = create_engine(url)
    with engine.begin() as connection:
        exposures.to_sql("exposures", connection, if_exists="replace", index=False)
        ccds.to_sql("ccds", connection, if_exists="replace", index=False)
        quarantine.to_sql("quarantine", connection, if_exists="replace", index=False)
    engine.dispose()
    Path(export_csv).parent.mkdir(parents=True, exist_ok=True)
    exposures.to_csv(export_csv, index=False)
    return {"exposures": len(exposures), "ccds": len(ccds), "quarantine": len(quarantine)}


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
    from sqlalchemy import create_engine, inspect, text

    from spica.astromatic.scamp import parse_scamp_xml
    from spica.paths import parse_exposure_prefix

    fields, groups = [], []
    for stack, path in sorted(scamp_xml.items()):
        solution = parse_scamp_xml(path)
        fields.append(solution["fields"].assign(release=release, stack=stack))
        groups.append(solution["groups"].assign(release=release, stack=stack))
    tables = {
        "scamp_fields": pd.concat(fields, ignore_index=True) if fields else pd.DataFrame(),
        "scamp_groups": pd.concat(groups, ignore_index=True) if groups else pd.DataFrame(),
    }
    if "catalog" in tables["scamp_fields"]:
        catalogs = tables["scamp_fields"]["catalog"]
        tables["scamp_fields"]["expnum"] = pd.array([parse_exposure_prefix(str(c)) for c in catalogs], dtype="Int64")
    engine = create_engine(url)
    with engine.begin() as connection:
        existing = set(inspect(connection).get_table_names())
        for name, table in tables.items():
            if name in existing:
                connection.execute(text(f"DELETE FROM {name} WHERE release = :r"), {"r": release})
            table.to_sql(name, connection, if_exists="append", index=False)
    engine.dispose()
    Path(export_csv).parent.mkdir(parents=True, exist_ok=True)
    tables["scamp_fields"].to_csv(export_csv, index=False)
    return {name: len(table) for name, table in tables.items()}
