"""What the interface reads: the registry, the release plans, the grades CSV, the files.

The registry is read with SQLAlchemy and pandas (never Django models: the
workflow drops and rebuilds its tables), once per change: a
:class:`Survey` snapshot is cached and rebuilt when the registry file, a
plan or the grades CSV changes (for a server database, at most every
:data:`SERVER_TTL` seconds). What changes while a release runs (a product
finished, its summary written) is looked up on disk at each request
(:meth:`Survey.progress`), so the pages are never one run behind.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from spica.paths import exposure_name, product_path
from spica.registry import read_grades
from spica.release.planning import read_plan
from spica.release.selection import program_code, survey_component
from spica.web.config import WebConfig

__all__ = ["Survey", "Progress", "survey", "clear_cache", "SERVER_TTL", "EXPOSURE_COLUMNS"]

#: Seconds a snapshot of a server (non-SQLite) registry is kept.
SERVER_TTL = 10.0
#: Seconds the finished-products lookup (:meth:`Survey.progress`) is kept.
PROGRESS_TTL = 2.0

#: Registry columns the pages use.
EXPOSURE_COLUMNS = [
    "expnum", "file", "status", "reason", "object", "runid", "pi_name", "filter", "band", "exptime",
    "airmass", "date_obs", "utc_obs", "mjd_obs", "ra_deg", "dec_deg", "rel_date", "skyprobe",
    "photometric", "qa_fwhm_arcsec", "qa_background_mag", "qa_elongation", "qa_n_stars",
    "provisional_grade", "provisional_reason", "grade", "grade_provisional", "grade_comment",
    "graded_by", "grade_date",
]


@dataclass
class Progress:
    """What is done now: finished products (image exists) and summarised ones (``_spica.xml``)."""

    done: set[str]
    summarised: set[str]
    processed: pd.Series  # exposure row -> bool (in a finished product)
    output_qa: pd.Series  # exposure row -> bool (in a summarised product)
    sent: pd.Series  # exposure row -> bool (its step 1 products sent: spica.transfer.sent_files)
    arrived: pd.Series  # exposure row -> arrival time (spica.transfer.arrivals), "" if unknown


@dataclass
class Survey:
    """A snapshot of the survey: exposures, planned products, their lists.

    Attributes
    ----------
    exposures : DataFrame
        Registry rows (:data:`EXPOSURE_COLUMNS`) plus ``component`` (D, W,
        Pre-W, VW, PI), ``cfhtls`` (RUNID of a CFHTLS programme), ``program``,
        ``year`` (from the RUNID), ``node`` (of its first planned product) and
        the grade in force from the grades CSV.
    products : DataFrame
        One row per planned product of every release: ``release``, ``stem``,
        the plan's columns (``name``, ``mode``, ``survey``, ``filter``, ``ra``,
        ``dec``, ``node``, ``n_scamp``, ``n_swarp``).
    stack_lists, astrometric_lists : dict
        ``(release, stem)`` -> frozenset of EXPNUMs.
    members : DataFrame
        ``expnum``, ``release``, ``stem``: every exposure of every stack list.
    """

    config: WebConfig
    exposures: pd.DataFrame
    products: pd.DataFrame
    stack_lists: dict[tuple[str, str], frozenset[int]]
    astrometric_lists: dict[tuple[str, str], frozenset[int]]
    members: pd.DataFrame
    solutions: dict[tuple[str, str], str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    _paths: list[tuple[str, str]] | None = field(default=None, repr=False)
    _progress: tuple[float, Progress] | None = field(default=None, repr=False)

    def product(self, release: str, stem: str) -> pd.Series | None:
        """The product row, or None."""
        rows = self.products[(self.products["release"] == release) & (self.products["stem"] == stem)]
        return rows.iloc[0] if len(rows) else None

    def progress(self) -> Progress:
        """Which products are finished and summarised now (one ``stat`` per product).

        Kept for :data:`PROGRESS_TTL` seconds, so one page asks the disk once.
        """
        now = time.monotonic()
        cached = self._progress
        if cached is not None and now - cached[0] < PROGRESS_TTL:
            return cached[1]
        if self._paths is None:
            results = self.config.results
            self._paths = [(str(product_path(results, r, s, "image")), str(product_path(results, r, s, "summary")))
                           for r, s in zip(self.products["release"], self.products["stem"])]
        exists = os.path.exists
        done_mask = np.fromiter((exists(image) for image, _ in self._paths), bool, count=len(self._paths))
        summary_mask = np.fromiter((bool(d) and exists(summary) for d, (_, summary) in zip(done_mask, self._paths)),
                                   bool, count=len(self._paths))
        keys = list(zip(self.products["release"], self.products["stem"]))
        done = {k for k, d in zip(keys, done_mask) if d}
        summarised = {k for k, d in zip(keys, summary_mask) if d}
        processed = np.zeros(len(self.exposures), bool)
        output_qa = np.zeros(len(self.exposures), bool)
        rows, pids = self.members["erow"].to_numpy(), self.members["pid"].to_numpy()
        known = rows >= 0
        np.logical_or.at(processed, rows[known], done_mask[pids[known]])
        np.logical_or.at(output_qa, rows[known], summary_mask[pids[known]])
        sent_names, arrival = _transfer_state(self.config)
        sent = self.exposures["name"].isin(sent_names)
        arrived = self.exposures["expnum"].astype("float").map(arrival).fillna("").astype(str) if arrival \
            else pd.Series("", index=self.exposures.index)
        progress = Progress(done=done, summarised=summarised,
                            processed=pd.Series(processed, index=self.exposures.index),
                            output_qa=pd.Series(output_qa, index=self.exposures.index), sent=sent,
                            arrived=arrived)
        self._progress = (now, progress)
        return progress


def _transfer_state(config: WebConfig) -> tuple[set[str], dict[float, str]]:
    """From :mod:`spica.transfer`'s records in the registry: the exposures (``751000p``)
    whose current step 1 delivery is sent and verified (every file of it; a delivery
    superseded by a rerun's no longer counts), and the arrival time of each exposure
    (EXPNUM -> UTC text)."""
    if not (config.results / "transfer").is_dir():
        return set(), {}
    try:
        from spica.transfer import arrivals, sent_files

        files, arrived = sent_files(config), arrivals(config)
    except Exception:  # noqa: BLE001 - no readable transfer records: nothing sent, no arrival known
        return set(), {}
    sent = set()
    if len(files):
        current = files[(files["release"] == "step1")
                        & files["superseded_by"].fillna("").astype(str).eq("")]
        complete = current.groupby("product")["sent"].all()
        sent = set(complete.index[complete.to_numpy(bool)].astype(str))
    arrival = {}
    if len(arrived):
        known = arrived.dropna(subset=["expnum"]).drop_duplicates("expnum", keep="last")
        arrival = {float(e): str(a) for e, a in zip(known["expnum"], known["arrived"])}
    return sent, arrival


def _signature(config: WebConfig) -> tuple:
    def mtime(path: Path) -> float:
        try:
            return path.stat().st_mtime_ns
        except OSError:
            return -1

    url = config.registry_url
    if url.startswith("sqlite:///"):
        registry = mtime(Path(url[len("sqlite:///"):]))
    else:
        registry = int(time.monotonic() // SERVER_TTL)
    releases = config.results / "releases"
    plans = tuple(sorted((str(p), mtime(p)) for p in releases.glob("[TV][0-9]*/[TV][0-9]*_*.*")
                         if p.name.endswith(("_plan.csv", "_lists.json")))) if releases.is_dir() else ()
    return (url, registry, mtime(config.grades), plans)


def _read_exposures(config: WebConfig) -> pd.DataFrame:
    from sqlalchemy import inspect

    from spica.registry import open_database

    if config.registry_url.startswith("sqlite:///") and not Path(config.registry_url[len("sqlite:///"):]).is_file():
        return pd.DataFrame(columns=EXPOSURE_COLUMNS)  # not built yet: never create an empty file
    engine = open_database(config.registry_url)
    try:
        if not inspect(engine).has_table("exposures"):
            return pd.DataFrame(columns=EXPOSURE_COLUMNS)
        frame = pd.read_sql_table("exposures", engine)
    finally:
        engine.dispose()
    for column in EXPOSURE_COLUMNS:
        if column not in frame:
            frame[column] = None
    return frame[EXPOSURE_COLUMNS]


def _derive(frame: pd.DataFrame, config: WebConfig, grades: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["expnum"] = pd.to_numeric(frame["expnum"], errors="coerce").astype("Int64")
    for column in ("exptime", "airmass", "mjd_obs", "ra_deg", "dec_deg", "skyprobe", "qa_fwhm_arcsec",
                   "qa_background_mag", "qa_elongation"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
    text = ["file", "status", "object", "runid", "filter", "band", "date_obs", "utc_obs", "grade",
            "provisional_grade", "provisional_reason", "pi_name", "grade_comment", "graded_by", "grade_date", "rel_date"]
    for column in text:
        frame[column] = frame[column].astype(object).where(frame[column].notna(), "").astype(str)
    frame["runid"] = frame["runid"].str.strip().str.upper()
    prefix = config.raw.get("survey", {}).get("pre_survey_object_prefix", "")
    frame["program"] = [program_code(r) or "" for r in frame["runid"]]
    frame["cfhtls"] = frame["program"].isin(set(config.runid_programs))
    frame["component"] = [survey_component(r, o, config.runid_programs, prefix) if r else ""
                          for r, o in zip(frame["runid"], frame["object"])]
    frame["year"] = ["20" + r[:2] if len(r) >= 2 and r[:2].isdigit() else "" for r in frame["runid"]]
    frame["date"] = pd.to_datetime(frame["date_obs"], errors="coerce", format="mixed")
    # the grade in force: the grades CSV (what graders saved, maybe since the last registry build)
    if len(grades):
        human = grades.assign(expnum=pd.to_numeric(grades["expnum"], errors="coerce")).dropna(subset=["expnum"])
        human = human.set_index(human["expnum"].astype("int64"))
        has = frame["expnum"].isin(human.index) & (frame["status"] == "ok")
        keys = frame.loc[has, "expnum"].astype("int64")
        frame.loc[has, "grade"] = human.loc[keys, "grade"].to_numpy()
        frame.loc[has, "grade_comment"] = human.loc[keys, "comment"].to_numpy()
        frame.loc[has, "graded_by"] = human.loc[keys, "graded_by"].to_numpy()
        frame.loc[has, "grade_date"] = human.loc[keys, "date"].to_numpy()
        frame.loc[has, "grade_provisional"] = False
    frame["input_qa"] = (frame["status"] == "ok") & (frame["provisional_grade"] != "")
    frame["name"] = [exposure_name(e) if pd.notna(e) else "" for e in frame["expnum"]]
    return frame.reset_index(drop=True)


def _read_products(config: WebConfig, errors: list[str]):
    rows, stack_lists, astro_lists, members, solutions = [], {}, {}, [], {}
    releases = config.results / "releases"
    # the releases (T0002) and the automatic image mode (V0001)
    for folder in sorted(releases.glob("[TV][0-9][0-9][0-9][0-9]")) if releases.is_dir() else []:
        release = folder.name
        if not (folder / f"{release}_plan.csv").is_file():
            continue
        try:
            plan = read_plan(folder, release=release)
        except (OSError, ValueError, KeyError) as error:
            errors.append(f"release {release}: plan unreadable ({error})")
            continue
        products = plan.products()
        stacks = plan.stacks.assign(release=release)
        stacks["stem"] = [plan.stem_of(str(n)) for n in stacks["name"]]
        rows.append(stacks)
        for stem, product in products.items():
            stack_lists[(release, stem)] = frozenset(plan.stack_lists.get(product.name, []))
            astro_lists[(release, stem)] = frozenset(plan.astrometric_lists.get(product.name, []))
            solutions[(release, stem)] = product.solution
            members += [(e, release, stem) for e in plan.stack_lists.get(product.name, [])]
    columns = ["release", "stem", "name", "mode", "version", "survey", "filter", "band", "ra", "dec",
               "size_deg", "n_scamp", "n_swarp", "node"]
    products = pd.concat(rows, ignore_index=True)[columns] if rows else pd.DataFrame(columns=columns)
    members = pd.DataFrame(members, columns=["expnum", "release", "stem"])
    return products, stack_lists, astro_lists, members, solutions


_CACHE: dict[str, tuple[tuple, Survey]] = {}
_LOCK = threading.Lock()


def survey(config: WebConfig) -> Survey:
    """The current :class:`Survey` snapshot of ``config`` (re-read when its files change)."""
    signature = _signature(config)
    key = str(config.results) + "|" + config.registry_url
    with _LOCK:
        cached = _CACHE.get(key)
        if cached and cached[0] == signature:
            return cached[1]
        errors: list[str] = []
        try:
            grades = read_grades(config.grades)
        except (ValueError, OSError) as error:
            errors.append(f"grades CSV unreadable: {error}")
            grades = read_grades(None)
        try:
            exposures = _read_exposures(config)
        except Exception as error:  # noqa: BLE001 - any database error is shown, never a 500
            errors.append(f"registry unreadable ({config.registry_url}): {type(error).__name__}: {error}")
            exposures = pd.DataFrame(columns=EXPOSURE_COLUMNS)
        exposures = _derive(exposures, config, grades)
        products, stack_lists, astro_lists, members, solutions = _read_products(config, errors)
        position = pd.Series(range(len(products)), index=pd.MultiIndex.from_frame(products[["release", "stem"]]))
        members["pid"] = position.reindex(pd.MultiIndex.from_frame(members[["release", "stem"]])).to_numpy() \
            if len(members) else pd.Series(dtype="int64")
        row_of = pd.Series(range(len(exposures)), index=exposures["expnum"].astype("float"))
        row_of = row_of[~row_of.index.duplicated()]
        members["erow"] = members["expnum"].astype(float).map(row_of).fillna(-1).astype(int) if len(members) \
            else pd.Series(dtype="int64")
        # the node of an exposure: that of its first planned product
        if len(members):
            nodes = members.merge(products[["release", "stem", "node"]], on=["release", "stem"])
            first = nodes.drop_duplicates("expnum").set_index("expnum")["node"]
            exposures["node"] = exposures["expnum"].map(first).fillna("").astype(str)
        else:
            exposures["node"] = ""
        snapshot = Survey(config=config, exposures=exposures, products=products, stack_lists=stack_lists,
                          astrometric_lists=astro_lists, members=members, solutions=solutions, errors=errors)
        _CACHE[key] = (signature, snapshot)
        return snapshot


def clear_cache() -> None:
    """Forget every snapshot (tests)."""
    with _LOCK:
        _CACHE.clear()


