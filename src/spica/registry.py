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
``product_quality``
    The QualityFITS-out figures of each release product (``release``,
    ``product`` unique), as its ``_spica.xml`` gives them
    (:func:`spica.products.quality.load_product_quality`).
"""

from __future__ import annotations

import functools
import json
import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from astropy.table import Table

if TYPE_CHECKING:
    from sqlalchemy import MetaData
    from sqlalchemy.engine import URL, Engine

__all__ = [
    "GRADES",
    "PRODUCT_GRADE_COLUMNS",
    "PRODUCT_TABLES",
    "RegistryError",
    "TableError",
    "TableWarning",
    "build_registry",
    "conform",
    "database_url",
    "open_database",
    "empty_survey_message",
    "load_calibration",
    "merge_grades",
    "read_grades",
    "read_metadata",
    "read_product_grades",
    "schema",
    "sqlite_file",
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

# the ``QualityFITS_out`` table of ``_spica.xml`` (spica.qualityfits_out.figures.FIGURES and the
# completeness magnitudes), keyed by release and product
_PRODUCT_KEY = [("release", _TEXT), ("product", _TEXT)]
_COMPLETENESS = [("completeness_50_mag", _FLOAT), ("completeness_80_mag", _FLOAT)]

#: Tables written by :func:`build_registry` (rebuilt each time); :func:`load_calibration`
#: writes the SCAMP ones, release by release, and
#: :func:`spica.products.quality.load_product_quality` ``product_quality``.
STEP1_TABLES = ("exposures", "ccds", "quarantine")
SCAMP_TABLES = ("scamp_fields", "scamp_groups")
PRODUCT_TABLES = ("product_quality",)


@functools.cache
def schema() -> MetaData:
    """The registry's tables, as SQLAlchemy ``Table`` definitions (built once).

    ``exposures`` (``expnum`` unique; files without an odometer have none),
    ``ccds`` (unique ``expnum``, ``ccd``), ``quarantine`` (``file`` unique),
    ``scamp_fields``, ``scamp_groups`` and ``product_quality`` (unique
    ``release``, ``product``); columns in the order the CSV exports give them.
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

    from spica.qualityfits_out.figures import FIGURES
    from spica.qualityfits_out.grading import GRADE_COLUMNS
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
    quality = [*_PRODUCT_KEY,
               *((name, _INT if name.startswith(("n_", "psfex_")) else _FLOAT) for name, _, _ in FIGURES),
               *_COMPLETENESS, ("reg_masked_fraction", _FLOAT),
               *((name, _BOOL if name == "provisional" else _TEXT) for name in GRADE_COLUMNS)]
    Table("product_quality", metadata, *columns(quality), UniqueConstraint("release", "product"))
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


def database_url(url: str) -> URL:
    """``url`` as SQLAlchemy reads it, ``postgresql://`` with psycopg 3 (the driver
    SPICA installs; SQLAlchemy's default for that scheme is psycopg2)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def open_database(url: str, **options) -> Engine:
    """The SQLAlchemy engine of a database URL (:func:`database_url`): the one place
    the registry, the operation interface, SkyWatcher and the job events open one."""
    from sqlalchemy import create_engine

    return create_engine(database_url(url), **options)


def sqlite_file(url: str) -> Path | None:
    """The database file of an SQLite URL (``sqlite:///results/registry.sqlite`` ->
    ``results/registry.sqlite``, relative to the working directory); None for a
    server (``postgresql://...``) or an in-memory database."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def empty_survey_message(n_quarantined: int, quarantine_csv: str | Path) -> str:
    """The warning of a survey where no exposure passed the integrity check."""
    return (f"no exposure passed the integrity check: {n_quarantined} quarantined, "
            f"see {quarantine_csv}")


class TableError(ValueError):
    """A bad row of an input table (grades, observing metadata, an inventory or check file).

    The message names the file, the line (the header is line 1) and the column.

    Attributes
    ----------
    file, line, column
        Where the problem is (``line`` None: the whole file; ``column`` None: the row).
    """

    def __init__(self, file: str | Path, line: int | None, column: str | None, problem: str):
        where = str(file) + (f", line {line}" if line is not None else "") + (
            f", column {column}" if column is not None else "")
        super().__init__(f"{where}: {problem}")
        self.file, self.line, self.column = str(file), line, column


class TableWarning(UserWarning):
    """A row of an input table that is kept out but stops nothing (a grade or metadata of an
    exposure the survey does not have: removed from the incoming set, or not delivered yet);
    the message names the file, the line and the column, like :class:`TableError`."""


class RegistryError(RuntimeError):
    """The registry would lose or mix up an exposure's records (a join that dropped or
    duplicated a row, an exposure whose header metadata went missing): never written."""


_ODOMETER_RE = re.compile(r"^\d+$")  # a CFHT odometer (6-7 digits in practice)
_TRUE = {"true", "t", "1", "yes", "y"}
_FALSE = {"false", "f", "0", "no", "n"}
GRADE_COLUMNS = ["expnum", "grade", "comment", "graded_by", "date"]
METADATA_COLUMNS = ["expnum", "skyprobe", "photometric"]


def _read_table(path: str | Path, columns: list[str]) -> pd.DataFrame:
    """A CSV as text, every cell stripped; the columns checked; ``line`` = file line of each row."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise TableError(path, None, None, f"not a readable CSV table ({error})") from None
    except pd.errors.EmptyDataError:
        raise TableError(path, None, None, f"empty file (expected the columns {columns})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise TableError(path, 1, missing[0], f"missing column(s) {missing} (has {list(table.columns)})")
    table = table[columns].apply(lambda column: column.str.strip())
    table.index = pd.RangeIndex(2, len(table) + 2, name="line")
    return table


def _odometers(table: pd.DataFrame, path: str | Path) -> pd.Series:
    """The ``expnum`` column as integers; a non-odometer or a repeat raises :class:`TableError`."""
    for line, value in table["expnum"].items():
        if not _ODOMETER_RE.match(value):
            raise TableError(path, line, "expnum", f"{value!r} is not an odometer (an integer)")
    expnums = table["expnum"].astype("int64")
    repeated = expnums[expnums.duplicated(keep=False)]
    if len(repeated):
        lines = repeated.index[repeated == repeated.iloc[0]].tolist()
        raise TableError(path, lines[1], "expnum", f"exposure {repeated.iloc[0]} repeats line "
                         f"{lines[0]}: one row per exposure")
    return expnums


def _unknown(expnums: pd.Series, path: str | Path, known: Iterable[int] | None) -> pd.Series:
    """Which rows name an exposure not in ``known`` (each warned about, by line); all False
    when ``known`` is None."""
    if known is None:
        return pd.Series(False, index=expnums.index)
    unknown = ~expnums.isin(set(int(e) for e in known))
    for line, expnum in expnums[unknown].items():
        warnings.warn(TableWarning(f"{path}, line {line}, column expnum: exposure {expnum} is not "
                                   "in the survey (no incoming file has this odometer): row ignored"),
                      stacklevel=3)
    return unknown


def read_grades(path: str | Path | None, *, known: Iterable[int] | None = None) -> pd.DataFrame:
    """Read the graders' CSV (expnum, grade, comment, graded_by, date).

    A missing file means no human grade yet. Every row is checked: an
    ``expnum`` that is no odometer or repeats another row's and a grade other
    than A-D (any case) raise :class:`TableError` naming the file, the line
    and the column. With ``known`` (the survey's odometers), a row of another
    exposure is left out with a :class:`TableWarning` naming its line (a file
    removed from the incoming set keeps its grade in the graders' table).
    """
    if path is None or not Path(path).is_file():
        return pd.DataFrame(columns=GRADE_COLUMNS)
    grades = _read_table(path, GRADE_COLUMNS)
    expnums = _odometers(grades, path)
    grades["grade"] = grades["grade"].str.upper()
    for line, grade in grades["grade"].items():
        if grade not in GRADES:
            raise TableError(path, line, "grade", f"invalid grade {grade!r} (one of {', '.join(GRADES)})")
    unknown = _unknown(expnums, path, known)
    return grades.assign(expnum=expnums)[~unknown].reset_index(drop=True)


#: Columns of the release control team's product grades (``inputs.product_grades``).
PRODUCT_GRADE_COLUMNS = ["product", "grade", "comment", "graded_by", "date"]


def read_product_grades(path: str | Path | None) -> pd.DataFrame:
    """Read the release control team's product grades (product, grade, comment,
    graded_by, date), as :func:`read_grades` reads the exposures'.

    ``product`` is a stem (``CFHTLS_D_r_141927+524056_T0002``) or ``<release>/<stem>``;
    a product named twice keeps its last row. ``provisional`` is True where
    ``graded_by`` is empty. A missing file means no product graded yet.

    Raises
    ------
    TableError
        A missing column or a grade other than A-D (any case), naming the file,
        the line and the column.
    """
    if path is None or not Path(path).is_file():
        return pd.DataFrame(columns=[*PRODUCT_GRADE_COLUMNS, "provisional"])
    grades = _read_table(path, PRODUCT_GRADE_COLUMNS)
    grades["grade"] = grades["grade"].str.upper()
    for line, grade in grades["grade"].items():
        if grade not in GRADES:
            raise TableError(path, line, "grade", f"invalid grade {grade!r} (one of {', '.join(GRADES)})")
    grades["provisional"] = grades["graded_by"] == ""
    return grades.drop_duplicates("product", keep="last").reset_index(drop=True)


def read_metadata(path: str | Path | None) -> pd.DataFrame:
    """Read the observing metadata CSV (expnum, skyprobe, photometric); None: none yet.

    Every row is checked: an ``expnum`` that is no odometer or repeats another
    row's, a ``skyprobe`` that is not a number (empty: unknown) and a
    ``photometric`` that is not a boolean (true/false, t/f, yes/no, y/n, 1/0)
    raise :class:`TableError` naming the file, the line and the column. Rows of
    exposures not (yet) delivered are kept: the metadata of a night may come
    before its files (:func:`build_registry` reports them).
    """
    if path is None or not Path(path).is_file():
        return pd.DataFrame({"expnum": pd.Series(dtype="int64"), "skyprobe": pd.Series(dtype=float),
                             "photometric": pd.Series(dtype=bool)})
    metadata = _read_table(path, METADATA_COLUMNS)
    expnums = _odometers(metadata, path)
    skyprobe = pd.to_numeric(metadata["skyprobe"].replace("", "nan"), errors="coerce")
    for line in skyprobe.index[skyprobe.isna() & ~metadata["skyprobe"].str.lower().isin(["", "nan"])]:
        raise TableError(path, line, "skyprobe", f"{metadata.at[line, 'skyprobe']!r} is not a number")
    flags = metadata["photometric"].str.lower()
    for line, flag in flags.items():
        if flag not in _TRUE | _FALSE:
            raise TableError(path, line, "photometric",
                             f"{metadata.at[line, 'photometric']!r} is not a boolean (true/false)")
    return pd.DataFrame({"expnum": expnums, "skyprobe": skyprobe.astype(float),
                         "photometric": flags.isin(_TRUE)}).reset_index(drop=True)


def merge_grades(exposures: pd.DataFrame, grades: pd.DataFrame) -> pd.DataFrame:
    """Set the grade in force: the human grade, else the provisional one (one grade per
    exposure: a join that would repeat an exposure raises).

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
    merged = exposures.merge(human, on="expnum", how="left", validate="many_to_one")
    if len(merged) != len(exposures):  # pragma: no cover - validate guards it
        raise RegistryError("the grades join changed the number of exposure rows")
    has_human = merged["human_grade"].notna() & (merged["human_grade"] != "")
    merged["grade"] = merged["human_grade"].where(has_human, merged["provisional_grade"])
    merged["grade_provisional"] = ~has_human & merged["provisional_grade"].notna()
    return merged.drop(columns=["human_grade"])


def _exposure_rows(
    inventory: pd.DataFrame, verdicts: Mapping[str, dict], summaries: Mapping[int, dict],
    inventory_csv: str | Path,
) -> pd.DataFrame:
    """One row per inventory row: a file's verdict is found by its path (the file), never
    by an odometer another file may claim; the two must name the same exposure."""
    rows = []
    for line, record in zip(range(2, len(inventory) + 2), inventory.to_dict("records")):
        expnum = int(record["expnum"]) if str(record["expnum"]).strip() else None
        verdict = verdicts.get(record["path"], {})
        if verdict and verdict.get("expnum") != expnum:
            raise TableError(inventory_csv, line, "expnum",
                             f"{record['path']} is exposure {expnum} here but its check says "
                             f"{verdict.get('expnum')}")
        if record["status"] == "ok" and not verdict:
            raise TableError(inventory_csv, line, "path",
                             f"accepted file {record['path']} has no integrity verdict")
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


#: Header columns every accepted exposure has (the contract's keywords): a join that
#: loses them fails (:func:`_validate_exposures`).
_REQUIRED_INFO = ("object", "runid", "filter", "exptime", "ra_deg", "dec_deg", "mjd_obs")


def _validate_exposures(exposures: pd.DataFrame, verdicts: Mapping[str, dict], n_files: int) -> None:
    """After the joins: one row per file, one per odometer, every accepted exposure with its
    own verdict's CCD count and header metadata. Raises :class:`RegistryError`."""
    if len(exposures) > n_files:
        raise RegistryError(f"{len(exposures)} exposure rows from {n_files} files: a join repeated rows")
    numbered = exposures["expnum"].dropna()
    repeated = sorted(set(numbered[numbered.duplicated()].astype(int)))
    if repeated:
        raise RegistryError(f"two registry rows for exposure(s) {repeated}")
    for row in exposures[exposures["status"] == "ok"].to_dict("records"):
        verdict = verdicts[row["file"]]
        if row["n_ccd"] != verdict.get("n_ccd"):
            raise RegistryError(f"exposure {row['expnum']}: {row['n_ccd']} CCDs in the registry, "
                                f"{verdict.get('n_ccd')} in its verdict ({row['file']})")
        lost = [c for c in _REQUIRED_INFO if row.get(c) is None or pd.isna(row.get(c))]
        if lost:
            raise RegistryError(f"exposure {row['expnum']} ({row['file']}) lost its header "
                                f"metadata {lost} in a join")


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
    from spica.paths import parse_exposure_prefix
    from spica.step1.qa import read_summary

    inventory = pd.read_csv(inventory_csv, dtype=str, keep_default_na=False)
    # every record is keyed by its own file: a verdict by the file it checked (and its
    # check file's odometer must be the verdict's), QA by its file name's odometer
    verdicts: dict[str, dict] = {}
    for path in checks:
        verdict = json.loads(Path(path).read_text())
        own = parse_exposure_prefix(Path(path).name)
        if own is not None and verdict.get("expnum") != own:
            raise TableError(path, None, "expnum", f"the check of exposure {own} says expnum "
                             f"{verdict.get('expnum')} ({verdict.get('path')})")
        if verdict["path"] in verdicts:
            raise TableError(path, None, "path", f"a second verdict for {verdict['path']}")
        verdicts[verdict["path"]] = verdict
    summaries = {}
    for path in qa_xml:
        summary = read_summary(path)
        own = parse_exposure_prefix(Path(path).name)
        if own is None or int(summary["expnum"]) != own:
            raise TableError(path, None, "expnum", f"QA summary of {summary['expnum']} in the "
                             f"file of exposure {own}")
        summaries[own] = summary
    files = _exposure_rows(inventory, verdicts, summaries, inventory_csv)
    quarantine = files[files["status"] != "ok"][["expnum", "file", "reason", "message"]]
    exposures = _one_row_per_exposure(files)
    known = set(int(e) for e in files["expnum"].dropna())
    metadata = read_metadata(metadata_csv)
    undelivered = sorted(set(metadata["expnum"]) - known)
    if undelivered:
        warnings.warn(TableWarning(f"{metadata_csv}: metadata of {len(undelivered)} exposure(s) "
                                   f"without an incoming file, not in the registry: {undelivered[:10]}"),
                      stacklevel=2)
    exposures = exposures.merge(metadata, on="expnum", how="left", validate="many_to_one")
    exposures = merge_grades(exposures, read_grades(grades_csv, known=known))
    # quarantined files are never graded
    exposures.loc[exposures["status"] != "ok", ["grade", "grade_provisional"]] = [None, False]
    _validate_exposures(exposures, verdicts, len(files))

    accepted = {int(e): row for e, row in zip(exposures["expnum"], exposures.to_dict("records"))
                if row["status"] == "ok"}
    ccd_tables = []
    for path in diag:
        table = Table.read(path, hdu=1)
        names = [name for name in table.colnames if len(table[name].shape) <= 1]
        expnum = parse_exposure_prefix(Path(path).name)
        if expnum not in accepted or len(table) != accepted[expnum]["n_ccd"]:
            raise RegistryError(f"{path}: {len(table)} CCD rows for exposure {expnum}, which "
                                + (f"has {accepted[expnum]['n_ccd']} CCDs" if expnum in accepted
                                   else "is not an accepted exposure"))
        ccd_tables.append(table[names].to_pandas().assign(expnum=expnum))
    ccds = pd.concat(ccd_tables, ignore_index=True) if ccd_tables else pd.DataFrame()
    tables = {"exposures": conform(exposures, "exposures"), "ccds": conform(ccds, "ccds"),
              "quarantine": conform(quarantine, "quarantine")}

    engine = open_database(url)
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
    from sqlalchemy import delete

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
    engine = open_database(url)
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
