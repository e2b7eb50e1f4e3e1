"""Outgoing staging (seed 3.4): deliveries of step 1 and release products, with manifests.

A *delivery* is one folder of the staging area holding the files of one
exposure's step 1 (``step1/751000p/``) or of one release product
(``T0002/CFHTLS_D_r_141927+524056_T0002/``, its heads folder and
``scamp/`` kept) and ``manifest.csv`` (:data:`MANIFEST_COLUMNS`: file, size,
SHA-256, product, release, release date). FITS images go RICE-compressed
(``.fits.fz``, :mod:`spica.transfer.fpack`), everything else as it is.

* Step 1 products go as soon as an exposure's step 1 is done (the registry
  says ``ok`` and every configured product exists); release date: the
  exposure's ``REL_DATE`` (seed 3.3).
* A release product goes once the release control team graded it A or B
  in ``inputs.product_grades`` (columns product, grade, comment,
  graded_by, date; a row without ``graded_by`` is provisional and never
  sends); release date: its image's ``REL_DATE``. A product of the automatic
  image mode (``releases/V0001/``) goes as soon as it is made (seed 6.2),
  unless the team graded it C or D.
* PI data (a RUNID whose program is not in ``survey.runid_programs``; PI
  stacks) go only to ``<pi_outgoing>/<RUNID>/``.
* A delivery is built in ``<outgoing>/.partial/`` and renamed into place
  when complete, so the staging area never holds half a delivery; if it
  would take the staging area over ``transfer.quota_bytes``, it is removed
  and staging pauses (:class:`QuotaExceeded`).
* Releases are kept: a product of T0003 never overwrites T0002's delivery of
  the same stack (another folder); the older delivery is marked
  ``superseded_by`` in the registry, and the newer one's ``delivery.json``
  names what it supersedes.
* A rerun step 1 is staged again: the SHA-256 of the products each step 1
  delivery was made from is recorded (``files.source_sha256``; a product is
  read again only when its size or modification time changed). When an
  exposure's products differ from those of its latest delivery (step 1 ran
  again, e.g. after a software fix), they go out as a new delivery
  (``step1/751000p_v2``, then ``_v3``...) beside the earlier one, which is
  kept and marked ``superseded_by`` the new delivery, never overwritten.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from spica import paths
from spica.provenance import file_sha256
from spica.transfer import fpack
from spica.transfer.settings import TransferSettings
from spica.transfer.state import connect, utc_now

__all__ = ["MANIFEST", "MANIFEST_COLUMNS", "QuotaExceeded", "StagingError", "Delivery", "StageResult",
           "read_manifest", "read_product_grades", "step1_deliveries", "release_deliveries", "stage",
           "staging_usage", "delivery_folder"]

log = logging.getLogger("spica.transfer")

MANIFEST = "manifest.csv"
DELIVERY_JSON = "delivery.json"
MANIFEST_COLUMNS = ["file", "size", "sha256", "product", "release", "release_date"]
_PARTIAL = ".partial"
_RELEASE_RE = re.compile(r"T\d{4}")
#: The automatic image mode's folders (``image_mode.version``, seed 6.2).
_IMAGE_MODE_RE = re.compile(r"V\d{4}")


class StagingError(RuntimeError):
    """A delivery cannot be built (unreadable product, bad grades file)."""


class QuotaExceeded(RuntimeError):
    """Staging a delivery would take the staging area over its quota: staging pauses."""


@dataclass
class Delivery:
    """One delivery to build: its id, where it goes and the files ``(source, name in the folder)``."""

    delivery: str
    kind: str
    product: str
    release: str
    release_date: str
    runid: str | None
    pi: bool
    files: list[tuple[Path, str]]
    lineage: str = ""

    @property
    def area(self) -> str:
        return f"pi/{self.runid}" if self.pi else "main"


@dataclass
class StageResult:
    """What one ``stage`` did."""

    staged: list[str] = field(default_factory=list)
    superseded: dict[str, str] = field(default_factory=dict)
    paused: str | None = None  # the quota message, when staging paused


def delivery_folder(settings: TransferSettings, delivery: str, area: str) -> Path:
    """The staging folder of a delivery (``<outgoing>/<id>`` or ``<pi_outgoing>/<RUNID>/<id>``)."""
    if area == "main":
        return settings.outgoing / delivery
    return settings.pi_outgoing / area.split("/", 1)[1] / delivery


def destination_folder(settings: TransferSettings, delivery: str, area: str) -> Path:
    """Where a delivery goes: ``<destination>/<id>``, or ``<destination>/pi/<RUNID>/<id>``."""
    return settings.destination / (delivery if area == "main" else f"{area}/{delivery}")


def read_manifest(folder: str | Path) -> pd.DataFrame:
    """The manifest of a delivery folder."""
    return pd.read_csv(Path(folder) / MANIFEST, dtype={"file": str, "sha256": str, "product": str,
                                                       "release": str, "release_date": str},
                       keep_default_na=False)


def read_product_grades(path: str | Path) -> pd.DataFrame:
    """The release control team's grades (:func:`spica.registry.read_product_grades`).

    Raises
    ------
    StagingError
        A bad grades file (missing column, grade other than A-D), naming its line.
    """
    from spica.registry import TableError
    from spica.registry import read_product_grades as read

    try:
        return read(path)
    except TableError as error:
        raise StagingError(str(error)) from error


def _is_pi(runid: str | None, settings: TransferSettings) -> bool:
    from spica.release.selection import program_code

    code = program_code(runid) if runid else None
    return code is not None and code not in settings.runid_programs


def _registry_exposures(settings: TransferSettings) -> pd.DataFrame:
    from sqlalchemy import inspect

    from spica.registry import open_database

    engine = open_database(settings.registry_url)
    try:
        if not inspect(engine).has_table("exposures"):
            return pd.DataFrame(columns=["expnum", "status", "runid", "rel_date"])
        with engine.connect() as connection:
            return pd.read_sql_query("SELECT expnum, status, runid, rel_date FROM exposures", connection)
    finally:
        engine.dispose()


def step1_deliveries(settings: TransferSettings) -> Iterator[Delivery]:
    """A delivery per exposure whose step 1 is done (registry ``ok``, every configured product present)."""
    url = settings.registry_url
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///"):]).is_file():
        return
    exposures = _registry_exposures(settings)
    for row in exposures[exposures["status"] == "ok"].sort_values("expnum").itertuples():
        expnum = int(row.expnum)
        files = [(paths.step1_path(settings.results, expnum, key), paths.step1_name(expnum, key))
                 for key in settings.step1_products]
        if not all(source.is_file() for source, _ in files):
            continue  # step 1 not finished
        runid = row.runid if isinstance(row.runid, str) and row.runid else None
        name = paths.exposure_name(expnum)
        yield Delivery(delivery=f"step1/{name}", kind="step1", product=name, release="step1",
                       release_date=str(row.rel_date or ""), runid=runid, pi=_is_pi(runid, settings),
                       files=files, lineage=f"step1/{name}")


def _release_date(image: Path) -> str:
    from astropy.io import fits

    try:
        return str(fits.getheader(image).get("REL_DATE", ""))
    except OSError as error:
        raise StagingError(f"{image}: unreadable ({error})") from error


def _product_files(settings: TransferSettings, release: str, stem: str) -> list[tuple[Path, str]]:
    files: list[tuple[Path, str]] = []
    for key in settings.release_products:
        if key == "heads":
            heads = paths.product_path(settings.results, release, stem, "heads")
            files += [(p, f"{heads.name}/{p.name}") for p in sorted(heads.glob("*")) if p.is_file()]
        elif key == "scamp":
            plots = paths.scamp_folder(settings.results, release, stem)
            files += [(p, f"{paths.SCAMP_FOLDER}/{p.name}") for p in sorted(plots.glob("*"))
                      if p.suffix in (".png", ".ps")]
        elif key == "chi2":
            for tile in _chi2_tiles(settings, release, stem):
                for part in ("image", "weight", "png", "ps"):
                    source = paths.chi2_path(settings.results, release, tile, part)
                    if source.is_file():
                        files.append((source, source.name))
        elif key == "qualityfits_out":  # the seed's QualityFITS-out products, masks included
            for name in paths.QUALITYFITS_OUT_DELIVERED:
                source = paths.product_path(settings.results, release, stem, name)
                if source.is_file():
                    files.append((source, source.name))
            for tile in _chi2_tiles(settings, release, stem):  # the tile's colour diagrams
                files += [(p, p.name) for p in paths.colour_paths(settings.results, release, tile) if p.is_file()]
        else:
            source = paths.product_path(settings.results, release, stem, key)
            if source.is_file():
                files.append((source, source.name))
    return files


def _chi2_tiles(settings: TransferSettings, release: str, stem: str) -> list[str]:
    tile = paths.tile_stem(stem)
    root = settings.results / "releases" / release
    if tile is None:  # image by image: 546891p_r_V0001
        expnum, version = paths.parse_image_stem(stem)
        pattern = f"{paths.exposure_name(expnum)}_?_{version}"
        return sorted(p.name for p in root.glob(pattern) if p.is_dir())
    band = paths.parse_stack_name(stem.rsplit("_", 1)[0]).bands
    return sorted(p.name for p in root.glob(tile.format(bands="*"))
                  if p.is_dir() and band in paths.parse_stack_name(p.name.rsplit("_", 1)[0]).bands)


def _lineage(stem: str) -> str:
    """What a product replaces across releases: the stack without its release, or the exposure."""
    if re.fullmatch(paths.IMAGE_STEM_RE, stem):
        return "image/" + stem.split("_")[0]
    return "stack/" + stem.rsplit("_", 1)[0]


def _sendable(grades: pd.DataFrame, release: str, stem: str) -> bool:
    """Whether a finished product may go out: a release product (``T0002``) once the team
    graded it A or B; an automatic image mode product (``V0001``, seed 6.2: "sent out right
    away") unless the team graded it C or D. Provisional grades never count. The row is
    found as the summaries find it (:func:`spica.qualityfits_out.grading.team_grade`)."""
    from spica.qualityfits_out.grading import team_grade

    grade = team_grade(grades, release, stem).get("grade", "").upper()
    if _IMAGE_MODE_RE.fullmatch(release):
        return grade not in ("C", "D")
    return grade in ("A", "B")


def release_deliveries(settings: TransferSettings) -> Iterator[Delivery]:
    """A delivery per finished release product graded A or B by the team (not provisional),
    and per finished automatic image mode product not graded C or D (:func:`_sendable`)."""
    grades = read_product_grades(settings.product_grades)
    releases = settings.results / "releases"
    if not releases.is_dir():
        return
    registry = None
    for folder in sorted(releases.iterdir()):
        if not (folder.is_dir() and (_RELEASE_RE.fullmatch(folder.name) or _IMAGE_MODE_RE.fullmatch(folder.name))):
            continue
        release = folder.name
        for product in sorted(folder.iterdir()):
            stem = product.name
            if not product.is_dir() or not _sendable(grades, release, stem):
                continue
            image = paths.product_path(settings.results, release, stem, "image")
            required = [paths.product_path(settings.results, release, stem, key)
                        for key in ("image", "weight", "ldac", "cmd", "xml", "summary")]
            if not all(p.is_file() for p in required):
                continue  # not finished
            if registry is None:
                registry = _registry_exposures(settings)
            runid, pi = _product_runid(settings, registry, release, stem)
            yield Delivery(delivery=f"{release}/{stem}", kind="release", product=stem, release=release,
                           release_date=_release_date(image), runid=runid, pi=pi,
                           files=_product_files(settings, release, stem), lineage=_lineage(stem))


def _product_runid(settings: TransferSettings, registry: pd.DataFrame, release: str,
                   stem: str) -> tuple[str | None, bool]:
    """The RUNID of a product's exposures and whether it is PI data."""
    from spica.release.planning import read_exposure_list

    if re.fullmatch(paths.IMAGE_STEM_RE, stem):
        expnums = [paths.parse_image_stem(stem)[0]]
    else:
        stack_list = paths.product_path(settings.results, release, stem, "stack_list")
        expnums = read_exposure_list(stack_list) if stack_list.is_file() else []
    found = registry[registry["expnum"].isin(expnums)]["runid"]
    runids = sorted({r for r in found if isinstance(r, str) and r})
    pi_runids = [r for r in runids if _is_pi(r, settings)]
    is_pi_stack = "_PI_" in stem
    if pi_runids or is_pi_stack:
        if len(pi_runids) != 1:
            raise StagingError(f"{release}/{stem}: PI product whose exposures carry {len(pi_runids)} PI "
                               f"RUNIDs ({pi_runids}): cannot choose the PI's area")
        return pi_runids[0], True
    return (runids[0] if runids else None), False


def _folder_bytes(folder: Path, skip: Path | None = None) -> int:
    total = 0
    if not folder.is_dir():
        return 0
    for dirpath, dirnames, filenames in os.walk(folder):
        if skip is not None and Path(dirpath) == skip.parent:
            dirnames[:] = [d for d in dirnames if Path(dirpath) / d != skip]
        total += sum((Path(dirpath) / f).stat().st_size for f in filenames)
    return total


def staging_usage(settings: TransferSettings) -> int:
    """Bytes held in the staging areas (main and PI), deliveries being built excluded."""
    partial = settings.outgoing / _PARTIAL
    total = _folder_bytes(settings.outgoing, skip=partial)
    if not settings.pi_outgoing.resolve().is_relative_to(settings.outgoing.resolve()):
        total += _folder_bytes(settings.pi_outgoing)
    return total


def _stored_name(source: Path, name: str) -> str:
    """A file's name in its delivery folder: images get ``.fz`` (RICE-compressed)."""
    if not fpack.is_image(source):
        return name
    return Path(name).with_name(fpack.compressed_name(Path(name).name)).as_posix()


def _build(settings: TransferSettings, delivery: Delivery, work: Path) -> list[dict]:
    """Write a delivery's files and manifest into ``work``; return the manifest rows."""
    rows = []
    for source, name in delivery.files:
        target = work / _stored_name(source, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        source_sha256 = file_sha256(source)
        if fpack.is_image(source):
            fpack.compress(source, target, quantize_level=settings.quantize_level)
        else:
            shutil.copyfile(source, target)
        rows.append({"file": target.relative_to(work).as_posix(), "size": target.stat().st_size,
                     "sha256": file_sha256(target), "product": delivery.product,
                     "release": delivery.release, "release_date": delivery.release_date,
                     "_source_sha256": source_sha256})
    with open(work / MANIFEST, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return rows


def _quota_message(settings: TransferSettings, delivery: Delivery, used: int, needed: int) -> str:
    return (f"staging paused: delivery {delivery.delivery} needs {needed} bytes, the staging area holds "
            f"{used} of its {settings.quota_bytes} bytes (transfer.quota_bytes); nothing of it was staged. "
            "Send and purge what is staged (bin/spica transfer push), then stage again.")


def _source_rows(settings: TransferSettings, delivery: Delivery) -> dict[str, dict]:
    """The products a delivery is made from: path (relative to the results tree) -> size, mtime, SHA-256."""
    rows = {}
    for source, _ in delivery.files:
        info = source.stat()
        rows[_source_key(settings, source)] = {"source_size": info.st_size, "source_mtime_ns": info.st_mtime_ns,
                                               "source_sha256": None, "path": source}
    return rows


def _source_key(settings: TransferSettings, source: Path) -> str:
    try:
        return source.resolve().relative_to(settings.results).as_posix()
    except ValueError:
        return str(source.resolve())


def _step1_changed(settings: TransferSettings, db, delivery: Delivery, latest: str) -> bool:
    """Whether an exposure's step 1 products differ from those its latest delivery was made from.

    A product whose size and modification time are those recorded is the same
    (not read again); one whose stamp changed is read, and its new stamp kept
    when the SHA-256 is the same. Deliveries recorded without their sources
    (by an older SPICA) are compared through the files copied as they are
    (catalogues, XML), and their sources recorded.
    """
    recorded = {row["file"]: dict(row) for row in db.execute(
        "SELECT file, sha256, source, source_size, source_mtime_ns, source_sha256 FROM files WHERE delivery = ?",
        (latest,))}
    current = _source_rows(settings, delivery)
    by_source = {row["source"]: row for row in recorded.values() if row["source"]}
    if not by_source:  # recorded by an older SPICA: compare what went out as it is
        stored = {_stored_name(source, name): source for source, name in delivery.files}
        if set(stored) != set(recorded):
            return True
        for name, source in stored.items():
            digest = file_sha256(source)
            if not fpack.is_image(source) and digest != recorded[name]["sha256"]:
                return True
            key = _source_key(settings, source)
            db.execute("UPDATE files SET source = ?, source_size = ?, source_mtime_ns = ?, source_sha256 = ? "
                       "WHERE delivery = ? AND file = ?", (key, current[key]["source_size"],
                                                           current[key]["source_mtime_ns"], digest, latest, name))
        return False
    if set(current) != set(by_source):
        return True
    for key, info in current.items():
        old = by_source[key]
        if (info["source_size"], info["source_mtime_ns"]) == (old["source_size"], old["source_mtime_ns"]):
            continue
        if file_sha256(info["path"]) != old["source_sha256"]:
            return True
        db.execute("UPDATE files SET source_size = ?, source_mtime_ns = ? WHERE delivery = ? AND source = ?",
                   (info["source_size"], info["source_mtime_ns"], latest, key))
    return False


def _plan(settings: TransferSettings, db, delivery: Delivery) -> tuple[Delivery | None, list[str]]:
    """What to stage for a candidate: the delivery (None: nothing) and the deliveries it supersedes."""
    if delivery.kind == "release":
        row = db.execute("SELECT status FROM deliveries WHERE delivery = ?", (delivery.delivery,)).fetchone()
        if row is not None and row["status"] != "resend":
            return None, []
        return delivery, []
    earlier = db.execute("SELECT delivery, status FROM deliveries WHERE kind = 'step1' AND product = ? "
                         "AND superseded_by IS NULL", (delivery.product,)).fetchall()
    if not earlier:
        return delivery, []
    latest = max(earlier, key=lambda row: _version(row["delivery"]))
    if _step1_changed(settings, db, delivery, latest["delivery"]):
        versions = [_version(row["delivery"]) for row in db.execute(
            "SELECT delivery FROM deliveries WHERE kind = 'step1' AND product = ?", (delivery.product,))]
        return replace(delivery, delivery=f"step1/{delivery.product}_v{max(versions) + 1}"), [latest["delivery"]]
    if latest["status"] == "resend":
        return replace(delivery, delivery=latest["delivery"]), []
    return None, []


def _version(delivery: str) -> int:
    """1 for ``step1/751000p``, n for ``step1/751000p_v<n>``."""
    found = re.search(r"_v(\d+)$", delivery)
    return int(found[1]) if found else 1


def stage(settings: TransferSettings) -> StageResult:
    """Stage every delivery that is due and not staged yet (see the module docstring).

    Returns
    -------
    StageResult
        The deliveries staged, the ones they supersede, and the quota message
        if staging paused (the remaining deliveries wait for the next run).
    """
    result = StageResult()
    candidates = [*step1_deliveries(settings), *release_deliveries(settings)]
    with connect(settings) as db:
        plans = [plan for plan in (_plan(settings, db, candidate) for candidate in candidates) if plan[0]]
    for delivery, replaces in plans:
        sources = _source_rows(settings, delivery)
        work = settings.outgoing / _PARTIAL / delivery.delivery.replace("/", "__")
        if work.exists():
            shutil.rmtree(work)  # left by an interrupted run
        work.mkdir(parents=True)
        try:
            rows = _build(settings, delivery, work)
            needed = _folder_bytes(work)
            used = staging_usage(settings)
            if used + needed > settings.quota_bytes:
                result.paused = _quota_message(settings, delivery, used, needed)
                log.warning("%s", result.paused)
                break
            supersedes = replaces + _supersede(settings, delivery)
            (work / DELIVERY_JSON).write_text(json.dumps(
                {"delivery": delivery.delivery, "product": delivery.product, "release": delivery.release,
                 "release_date": delivery.release_date, "area": delivery.area, "supersedes": supersedes,
                 "staged_at": utc_now()}, indent=1) + "\n")
            final = delivery_folder(settings, delivery.delivery, delivery.area)
            if final.exists():
                shutil.rmtree(final)  # an earlier partial resend of this very delivery
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(work, final)
        finally:
            if work.exists():
                shutil.rmtree(work)
        now = utc_now()
        for (source, _), row in zip(delivery.files, rows):
            info = sources[_source_key(settings, source)]
            row.update(source=_source_key(settings, source), source_size=info["source_size"],
                       source_mtime_ns=info["source_mtime_ns"], source_sha256=row.pop("_source_sha256"))
        with connect(settings) as db:
            old = db.execute("SELECT superseded_by FROM deliveries WHERE delivery = ?", (delivery.delivery,)).fetchone()
            db.execute("DELETE FROM deliveries WHERE delivery = ?", (delivery.delivery,))
            db.execute("INSERT INTO deliveries (delivery, area, kind, product, release, release_date, runid, status, "
                       "staged_at, superseded_by) VALUES (?, ?, ?, ?, ?, ?, ?, 'staged', ?, ?)",
                       (delivery.delivery, delivery.area, delivery.kind, delivery.product, delivery.release,
                        delivery.release_date, delivery.runid, now,
                        old["superseded_by"] if old else None))  # a resend keeps its mark
            db.execute("DELETE FROM files WHERE delivery = ?", (delivery.delivery,))
            db.executemany("INSERT INTO files (delivery, file, size, sha256, product, release, release_date, "
                           "staged_at, source, source_size, source_mtime_ns, source_sha256) "
                           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           [(delivery.delivery, r["file"], r["size"], r["sha256"], r["product"], r["release"],
                             r["release_date"], now, r["source"], r["source_size"], r["source_mtime_ns"],
                             r["source_sha256"]) for r in rows])
            for earlier in supersedes:
                mark = delivery.release if delivery.kind == "release" else delivery.delivery
                db.execute("UPDATE deliveries SET superseded_by = ? WHERE delivery = ?", (mark, earlier))
                if delivery.kind == "step1":  # a damaged copy of products rerun since: the new delivery replaces it
                    db.execute("UPDATE deliveries SET status = 'superseded' WHERE delivery = ? AND status = 'resend'",
                               (earlier,))
                result.superseded[earlier] = delivery.delivery
        result.staged.append(delivery.delivery)
        log.info("staged %s (%d files)", delivery.delivery, len(rows))
    return result


def _supersede(settings: TransferSettings, delivery: Delivery) -> list[str]:
    """Earlier releases' deliveries of the same stack or exposure (release products only)."""
    if delivery.kind != "release":
        return []
    with connect(settings) as db:
        rows = db.execute("SELECT delivery, product, release FROM deliveries WHERE kind = 'release' "
                          "AND release < ?", (delivery.release,)).fetchall()
    return [row["delivery"] for row in rows if _lineage(row["product"]) == delivery.lineage]
