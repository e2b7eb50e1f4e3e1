"""Compare the products of two runs of the small demo, file by file.

Run from the repository root::

    .venv/bin/python -m tests.e2e.compare_products BEFORE_DIR AFTER_DIR

Each directory is a run's work directory (holding ``results/``) or its
``results/`` folder. Every file of both trees is compared by kind:

FITS (``.fits``, ``.psf``)
    every HDU: the same data — integers exactly, floats within
    :data:`DATA_RTOL` of the array's largest value — and the same header
    cards, but for :data:`RUN_KEYWORDS`; floats in headers within
    :data:`VALUE_RTOL`. SExtractor's ``LDAC_IMHEAD`` (an image header kept as
    a table cell) is compared as a header.
SCAMP and delivered heads (``.head``, ``.ahead``, ``_head.txt``, ``_ahed.txt``)
    card by card, floats within :data:`VALUE_RTOL` (SCAMP run on several
    threads differs at 1e-10).
CSV/TSV and the SQLite registry
    the same columns and rows, numbers within :data:`VALUE_RTOL`.
XML, VOTable and other text
    equal once run dates, absolute paths, temporary folder names and hashes
    are masked (:class:`Masks`) and, in AstrOmatic VOTables, the
    :data:`RUN_FIELDS` (when and how long a tool ran) blanked; failing that,
    equal but for numbers within :data:`VALUE_RTOL` or one unit of their last
    printed digit.
Plots (``.png``, ``.ps``)
    reported only: identical or not, with sizes; a PostScript plot that
    differs only in its ``%%CreationDate`` comment counts as identical.

Run records (``results/logs/``, ``results/benchmarks/``: :data:`spica.paths.RUN_RECORDS`,
what each job printed and how long it took) are not products and are left out.

It prints a summary — identical, equal (after masking or within tolerance),
differing, only in one tree; the first difference of each file — and exits
with 1 when a product other than a plot differs or is missing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import filecmp
import re
import sqlite3
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits

from spica.paths import RUN_RECORDS

__all__ = ["DATA_RTOL", "RUN_FIELDS", "RUN_KEYWORDS", "VALUE_RTOL", "Masks", "Outcome",
           "compare_cards", "compare_file", "compare_trees", "compare_values", "main",
           "mask_votable", "run_dates"]

REPO = Path(__file__).resolve().parents[2]

# Floats in FITS data (pixels, catalogue columns): relative to the array's
# largest |value|. Stacks resampled through heads that differ at 1e-10
# (SCAMP on threads) move pixel values by ~1e-7 of the peak in float32.
DATA_RTOL = 1e-5
# Floats in headers, SCAMP heads, tables and text.
VALUE_RTOL = 1e-9

# FITS keywords that carry when the run happened, not what it made.
RUN_KEYWORDS = {
    "SEXDATE": "SExtractor's extraction date (LDAC_IMHEAD)",
    "SEXTIME": "SExtractor's extraction time (LDAC_IMHEAD)",
    "SEXELAPS": "SExtractor's elapsed seconds (LDAC_IMHEAD)",
    "DATE": "SWarp's start time (stacks); only when it is a run date — "
            "elsewhere DATE is the exposure's and is compared",
}
# AstrOmatic VOTable PARAMs/FIELDs about the run, not the result.
RUN_FIELDS = {
    "Date": "when the tool ran",
    "Time": "when the tool ran",
    "Duration": "how long it ran",
    "User": "who ran it",
    "Host": "where it ran",
}
IGNORED = {
    ".snakemake_timestamp",  # Snakemake's empty marker files
    "step1_seal.json",  # spica.seal: the modification times of this tree's files, a run record
}
PLOTS = {".png", ".ps"}
FITS_SUFFIXES = {".fits", ".psf"}
HEAD_SUFFIXES = (".head", ".ahead", "_head.txt", "_ahed.txt")
TABLE_SEPARATORS = {".csv": ",", ".tsv": "\t"}

# statuses
IDENTICAL, EQUAL, DIFFERING = "identical", "equal", "differing"
ONLY_BEFORE, ONLY_AFTER = "only before", "only after"
PLOT_SAME, PLOT_DIFFERENT = "plot identical", "plot differs"

_NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
_SHA256 = re.compile(r"\b[0-9a-f]{64}\b")
_CODE_HASH = re.compile(r"\b(?=[0-9]*[a-f])[0-9a-f]{16}\b")  # spica.tools code hashes
_TEMP_DIR = re.compile(r"\b((?:swarp|chi2)-|tmp)[a-z0-9_]{8}(?![a-z0-9_])")  # tempfile names


@dataclass(frozen=True)
class Outcome:
    """How one file compares: ``path`` (relative to ``results/``), ``status``, first difference."""

    path: str
    status: str
    detail: str = ""


@dataclass(frozen=True)
class Masks:
    """What is masked in text before comparing.

    Parameters
    ----------
    roots
        ``(absolute path, placeholder)``: each run's work directory, the
        repository; the longest is replaced first.
    dates
        ``YYYY-MM-DD`` days the runs happened on: a date of those days (also
        written ``DD/MM/YYYY``), with its time if one follows, is masked.
    """

    roots: tuple[tuple[str, str], ...] = ()
    dates: frozenset[str] = frozenset()

    def text(self, text: str) -> str:
        """``text`` with run dates, roots, temporary folder names and hashes masked."""
        for root, placeholder in sorted(self.roots, key=lambda r: -len(r[0])):
            text = text.replace(root, placeholder)
        if self.dates:
            days = []
            for day in sorted(self.dates):
                year, month, mday = day.split("-")
                days += [re.escape(day), re.escape(f"{mday}/{month}/{year}")]
            text = re.sub(rf"(?:{'|'.join(days)})(?:[T ]\d{{2}}:\d{{2}}:\d{{2}}(?:\.\d+)?"
                          r"(?:[+-]\d{2}:?\d{2}|Z)?)?", "<RUN DATE>", text)
        text = _SHA256.sub("<SHA256>", text)
        text = _CODE_HASH.sub("<CODE HASH>", text)
        return _TEMP_DIR.sub(r"\1<TMP>", text)

    def is_run_date(self, value: object) -> bool:
        """Whether a header value is a date of the runs."""
        return isinstance(value, str) and self.text(value).startswith("<RUN DATE>")


def run_dates(*trees: Path) -> frozenset[str]:
    """Days (UTC and local) on which the files of ``trees`` were last written."""
    days = set()
    for tree in trees:
        for path in tree.rglob("*"):
            mtime = path.stat().st_mtime
            days.add(dt.datetime.fromtimestamp(mtime, dt.UTC).date().isoformat())
            days.add(dt.datetime.fromtimestamp(mtime).date().isoformat())
    return frozenset(days)


# ------------------------------------------------------------------ values
def _last_digit(token: str) -> float:
    """One unit of the last printed digit of a float token (0 for an integer)."""
    mantissa, _, exponent = token.lower().partition("e")
    if "." not in mantissa and not exponent:
        return 0.0
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def compare_values(before: object, after: object, *, rtol: float = VALUE_RTOL) -> bool:
    """Whether two scalars are equal: floats within ``rtol``, anything else exactly."""
    if isinstance(before, bool) or isinstance(after, bool):
        return type(before) is type(after) and before == after
    if isinstance(before, float) or isinstance(after, float):
        if not isinstance(before, int | float) or not isinstance(after, int | float):
            return False
        if np.isnan(before) and np.isnan(after):
            return True
        return bool(np.isclose(before, after, rtol=rtol, atol=0.0))
    return before == after


def _compare_numbers_in_text(before: str, after: str, rtol: float) -> str | None:
    """First difference of two texts that may differ only in their numbers, or None."""
    words_before, words_after = _NUMBER.split(before), _NUMBER.split(after)
    numbers_before, numbers_after = _NUMBER.findall(before), _NUMBER.findall(after)
    if words_before != words_after or len(numbers_before) != len(numbers_after):
        return _first_line_difference(before, after)
    for a, b in zip(numbers_before, numbers_after):
        if a == b:
            continue
        if not (_last_digit(a) or _last_digit(b)):  # integers: exactly
            return f"{a} != {b}"
        x, y = float(a), float(b)
        if abs(x - y) > max(rtol * max(abs(x), abs(y)), _last_digit(a), _last_digit(b)):
            return f"{a} != {b}"
    return None


def _first_line_difference(before: str, after: str) -> str:
    lines_before, lines_after = before.splitlines(), after.splitlines()
    for number, (a, b) in enumerate(zip(lines_before, lines_after), start=1):
        if a != b:
            return f"line {number}: {a.strip()[:120]!r} != {b.strip()[:120]!r}"
    return f"{len(lines_before)} lines != {len(lines_after)} lines"


def _compare_arrays(before: np.ndarray, after: np.ndarray, what: str) -> str | None:
    """First difference of two arrays: integers and strings exactly, floats within DATA_RTOL."""
    if before.shape != after.shape:
        return f"{what}: shape {before.shape} != {after.shape}"
    if before.dtype.kind != after.dtype.kind:
        return f"{what}: dtype {before.dtype} != {after.dtype}"
    if before.dtype.kind == "f":
        scale = np.nanmax(np.abs(before), initial=0.0)
        close = np.isclose(before, after, rtol=DATA_RTOL, atol=DATA_RTOL * scale, equal_nan=True)
        if not close.all():
            index = tuple(int(i) for i in np.unravel_index(np.argmin(close), close.shape))
            return (f"{what}: {np.count_nonzero(~close)} values differ, first at {index}: "
                    f"{before[index].item()!r} != {after[index].item()!r}")
        return None
    if not np.array_equal(before, after):
        differ = before != after
        index = tuple(int(i) for i in np.unravel_index(np.argmax(differ), differ.shape))
        return f"{what}: first difference at {index}: {before[index].item()!r} != {after[index].item()!r}"
    return None


# ----------------------------------------------------------------- headers
def compare_cards(before: Sequence[fits.Card], after: Sequence[fits.Card], masks: Masks,
                  *, where: str = "") -> str | None:
    """First difference of two card lists, but for :data:`RUN_KEYWORDS`, or None.

    Values compare with :func:`compare_values`; strings and commentary cards
    after masking (:meth:`Masks.text`). The cards compare in their order.
    """
    keys_before = [c.keyword for c in before]
    keys_after = [c.keyword for c in after]
    if keys_before != keys_after:
        gone = [k for k in keys_before if k not in keys_after]
        new = [k for k in keys_after if k not in keys_before]
        return f"{where}keywords differ (only before: {gone[:5]}, only after: {new[:5]})"
    for a, b in zip(before, after):
        key = a.keyword
        if key in RUN_KEYWORDS and (key != "DATE" or masks.is_run_date(a.value)):
            continue
        va, vb = a.value, b.value
        if isinstance(va, str) and isinstance(vb, str):
            same = masks.text(va) == masks.text(vb)
        else:
            same = compare_values(va, vb)
        if not same:
            return f"{where}{key}: {va!r} != {vb!r}"
    return None


def _ldac_header(hdu: fits.BinTableHDU) -> list[fits.Card]:
    text = "".join(np.asarray(hdu.data[0][0]).astype(str).ravel())
    return list(fits.Header.fromstring(text).cards)


def _compare_fits(before: Path, after: Path, masks: Masks) -> str | None:
    with fits.open(before) as hdus_before, fits.open(after) as hdus_after:
        if len(hdus_before) != len(hdus_after):
            return f"{len(hdus_before)} HDUs != {len(hdus_after)}"
        for index, (a, b) in enumerate(zip(hdus_before, hdus_after)):
            where = f"HDU {index} ({a.name}) "
            problem = compare_cards(list(a.header.cards), list(b.header.cards), masks, where=where)
            if problem:
                return problem
            if a.name == "LDAC_IMHEAD":
                problem = compare_cards(_ldac_header(a), _ldac_header(b), masks,
                                        where=f"{where}image header ")
            elif isinstance(a, fits.BinTableHDU | fits.TableHDU):
                problem = _compare_table_hdu(a, b, where)
            elif a.data is not None or b.data is not None:
                if a.data is None or b.data is None:
                    problem = f"{where}data present in one file only"
                else:
                    problem = _compare_arrays(np.asarray(a.data), np.asarray(b.data), f"{where}data")
            if problem:
                return problem
    return None


def _compare_table_hdu(before: fits.BinTableHDU, after: fits.BinTableHDU, where: str) -> str | None:
    if before.columns.names != after.columns.names:
        return f"{where}columns {before.columns.names} != {after.columns.names}"
    for name in before.columns.names:
        problem = _compare_arrays(np.asarray(before.data[name]), np.asarray(after.data[name]),
                                  f"{where}column {name}")
        if problem:
            return problem
    return None


def _head_blocks(path: Path) -> list[list[fits.Card]]:
    """The headers of a SCAMP ``.head``-like text file (blocks ended by ``END``)."""
    blocks, cards = [], []
    for line in path.read_text(errors="replace").splitlines():
        if line.strip() == "END":
            blocks.append(cards)
            cards = []
        elif line.strip():
            cards.append(fits.Card.fromstring(line[:80]))
    return [*blocks, cards] if cards else blocks


def _compare_heads(before: Path, after: Path, masks: Masks) -> str | None:
    blocks_before, blocks_after = _head_blocks(before), _head_blocks(after)
    if len(blocks_before) != len(blocks_after):
        return f"{len(blocks_before)} headers != {len(blocks_after)}"
    for index, (a, b) in enumerate(zip(blocks_before, blocks_after)):
        problem = compare_cards(a, b, masks, where=f"header {index + 1}: ")
        if problem:
            return problem
    return None


# ------------------------------------------------------------------ tables
def _compare_frames(before: pd.DataFrame, after: pd.DataFrame, masks: Masks, where: str = "") -> str | None:
    if list(before.columns) != list(after.columns):
        return f"{where}columns {list(before.columns)} != {list(after.columns)}"
    if len(before) != len(after):
        return f"{where}{len(before)} rows != {len(after)}"
    for name in before.columns:
        a, b = before[name], after[name]
        if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b) \
                and not (pd.api.types.is_bool_dtype(a) or pd.api.types.is_bool_dtype(b)):
            x, y = a.to_numpy(dtype=float), b.to_numpy(dtype=float)
            if pd.api.types.is_integer_dtype(a) and pd.api.types.is_integer_dtype(b):
                close = x == y
            else:
                close = np.isclose(x, y, rtol=VALUE_RTOL, atol=0.0, equal_nan=True)
        else:
            close = np.array([masks.text(str(u)) == masks.text(str(v)) for u, v in zip(a, b)], dtype=bool)
        if not close.all():
            row = int(np.argmin(close))
            return f"{where}row {row}, column {name}: {a.iloc[row]!r} != {b.iloc[row]!r}"
    return None


def _compare_csv(before: Path, after: Path, masks: Masks) -> str | None:
    sep = TABLE_SEPARATORS[before.suffix]
    return _compare_frames(pd.read_csv(before, sep=sep), pd.read_csv(after, sep=sep), masks)


def _sqlite_tables(path: Path) -> dict[str, pd.DataFrame]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        names = [r[0] for r in connection.execute(
            "select name from sqlite_master where type = 'table' order by name")]
        return {name: pd.read_sql(f'select * from "{name}"', connection) for name in names}


def _compare_sqlite(before: Path, after: Path, masks: Masks) -> str | None:
    tables_before, tables_after = _sqlite_tables(before), _sqlite_tables(after)
    if list(tables_before) != list(tables_after):
        return f"tables {list(tables_before)} != {list(tables_after)}"
    for name, table in tables_before.items():
        problem = _compare_frames(table, tables_after[name], masks, where=f"table {name}: ")
        if problem:
            return problem
    return None


# -------------------------------------------------------------------- text
def mask_votable(text: str) -> str:
    """An AstrOmatic VOTable with its :data:`RUN_FIELDS` blanked (PARAM values, TABLEDATA cells).

    Text that does not parse as XML comes back unchanged.
    """
    try:
        root = ET.fromstring(text.encode())
    except ET.ParseError:
        return text

    def local(tag: str) -> str:
        return tag.rpartition("}")[2]

    for element in root.iter():
        if local(element.tag) == "PARAM" and element.get("name") in RUN_FIELDS:
            element.set("value", "<RUN>")
        if local(element.tag) != "TABLE":
            continue
        fields = [f.get("name") for f in element if local(f.tag) == "FIELD"]
        masked = {i for i, name in enumerate(fields) if name in RUN_FIELDS}
        if not masked:
            continue
        for row in (e for e in element.iter() if local(e.tag) == "TR"):
            for index, cell in enumerate(c for c in row if local(c.tag) == "TD"):
                if index in masked:
                    cell.text = "<RUN>"
    return ET.tostring(root, encoding="unicode")


def _compare_text(before: Path, after: Path, masks: Masks) -> str | None:
    a, b = before.read_text(errors="replace"), after.read_text(errors="replace")
    if before.suffix == ".xml":
        a, b = mask_votable(a), mask_votable(b)
    a, b = masks.text(a), masks.text(b)
    if a == b:
        return None
    return _compare_numbers_in_text(a, b, VALUE_RTOL)


# ------------------------------------------------------------------- files
def _kind(name: str) -> str:
    suffix = Path(name).suffix
    if suffix in PLOTS:
        return "plot"
    if suffix in FITS_SUFFIXES:
        return "fits"
    if name.endswith(HEAD_SUFFIXES):
        return "head"
    if suffix in TABLE_SEPARATORS:
        return "csv"
    if suffix == ".sqlite":
        return "sqlite"
    return "text"


_COMPARERS = {"fits": _compare_fits, "head": _compare_heads, "csv": _compare_csv,
              "sqlite": _compare_sqlite, "text": _compare_text}


def _postscript_without_date(path: Path) -> bytes:
    """A PostScript file without its ``%%CreationDate`` comment (matplotlib stamps the run time)."""
    return b"\n".join(line for line in path.read_bytes().split(b"\n")
                      if not line.startswith(b"%%CreationDate:"))


def compare_file(relative: str, before: Path, after: Path, masks: Masks) -> Outcome:
    """Compare ``before`` and ``after`` (the same product of two runs) by its kind."""
    if filecmp.cmp(before, after, shallow=False):
        return Outcome(relative, PLOT_SAME if _kind(relative) == "plot" else IDENTICAL)
    kind = _kind(relative)
    if kind == "plot":
        if relative.endswith(".ps") and _postscript_without_date(before) == _postscript_without_date(after):
            return Outcome(relative, PLOT_SAME, "identical but for %%CreationDate")
        return Outcome(relative, PLOT_DIFFERENT,
                       f"{before.stat().st_size} bytes before, {after.stat().st_size} after")
    try:
        problem = _COMPARERS[kind](before, after, masks)
    except Exception as error:  # noqa: BLE001 -- an unreadable product is a difference, reported
        problem = f"cannot compare ({type(error).__name__}: {error})"
    return Outcome(relative, DIFFERING if problem else EQUAL, problem or "")


def _results(directory: Path) -> Path:
    return directory / "results" if (directory / "results").is_dir() else directory


def _files(tree: Path) -> set[str]:
    """Every product file of a results tree (run records left out), relative to it."""
    records = {tree / folder for folder in RUN_RECORDS.values()}
    return {p.relative_to(tree).as_posix() for p in tree.rglob("*")
            if p.is_file() and p.name not in IGNORED and not records.intersection(p.parents)}


def compare_trees(before: Path, after: Path, *, extra_roots: Iterable[Path] = (),
                  only: Iterable[str] = ()) -> list[Outcome]:
    """Compare every file of two runs' ``results/`` trees (work directories or results folders);
    ``only``: just the files under these folders of the trees (e.g. ``step1/751000p``)."""
    results_before, results_after = _results(before), _results(after)
    roots = []
    for results in (results_before, results_after):
        for path in {results.parent, results.parent.resolve()}:
            roots.append((str(path), "<WORKDIR>"))
    for path in (REPO, *extra_roots):
        roots += [(str(path), "<REPO>"), (str(Path(path).resolve()), "<REPO>")]
    masks = Masks(tuple(dict(roots).items()), run_dates(results_before, results_after))
    names_before, names_after = _files(results_before), _files(results_after)
    folders = tuple(f"{folder.rstrip('/')}/" for folder in only)
    if folders:
        names_before = {n for n in names_before if n.startswith(folders)}
        names_after = {n for n in names_after if n.startswith(folders)}
    outcomes = [Outcome(name, ONLY_BEFORE) for name in sorted(names_before - names_after)]
    outcomes += [Outcome(name, ONLY_AFTER) for name in sorted(names_after - names_before)]
    outcomes += [compare_file(name, results_before / name, results_after / name, masks)
                 for name in sorted(names_before & names_after)]
    return sorted(outcomes, key=lambda o: o.path)


def failed(outcomes: Iterable[Outcome]) -> list[Outcome]:
    """Outcomes that fail the comparison: a product (not a plot) differing or missing."""
    return [o for o in outcomes if o.status in (DIFFERING, ONLY_BEFORE, ONLY_AFTER)
            and _kind(o.path) != "plot"]


def summarise(outcomes: Sequence[Outcome], *, verbose: bool = False) -> str:
    """The report: counts per status, then each file that differs (``verbose``: each not identical)."""
    counts = pd.Series([o.status for o in outcomes], dtype=object).value_counts()
    lines = [f"{len(outcomes)} files: " + ", ".join(f"{n} {s}" for s, n in counts.items())]
    shown = (DIFFERING, ONLY_BEFORE, ONLY_AFTER, PLOT_DIFFERENT) + ((EQUAL,) if verbose else ())
    for status in shown:
        chosen = [o for o in outcomes if o.status == status]
        if chosen:
            lines.append(f"\n{status} ({len(chosen)}):")
            lines += [f"  {o.path}" + (f": {o.detail}" if o.detail else "") for o in chosen]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="work directory (or results/) of the reference run")
    parser.add_argument("after", type=Path, help="work directory (or results/) of the run to check")
    parser.add_argument("--repo", type=Path, action="append", default=[],
                        help="another checkout the runs were made from (its path is masked)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="list the files equal after masking or within tolerance too")
    args = parser.parse_args(argv)
    for directory in (args.before, args.after):
        if not directory.is_dir():
            parser.error(f"not a directory: {directory}")
    outcomes = compare_trees(args.before, args.after, extra_roots=args.repo)
    print(summarise(outcomes, verbose=args.verbose))
    bad = failed(outcomes)
    print(f"\n{'FAIL' if bad else 'OK'}: {len(bad)} product(s) differ or are missing")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
