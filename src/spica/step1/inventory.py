"""Incoming exposures: discovery, calibration look-up, inventory and quarantine.

The seed's step 1 starts with "each incoming file is first tested for
integrity and content and then registered". This module finds the incoming
files, adds to the integrity verdict (:mod:`spica.step1.integrity`) the look-up of
the Elixir flat and mask each CCD names (``IMRED_FF``/``IMRED_MK``), and
gathers all verdicts into the inventory table and the quarantine list.

A file that fails is never modified, moved or deleted: it is listed with a
named reason and the rest of the survey goes on.
"""

from __future__ import annotations

import csv
import gzip
import json
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from astropy.io import fits

from spica import paths

__all__ = [
    "Discovery",
    "discover_exposures",
    "locate_calibrations",
    "find_calibration_file",
    "stage_calibration",
    "COMPRESSED_SUFFIXES",
    "CalibrationError",
    "check_exposure_and_calibrations",
    "check_calibration_file",
    "write_exposure_ahead",
    "write_inventory",
    "read_inventory",
    "INVENTORY_COLUMNS",
]

INVENTORY_COLUMNS = ["expnum", "path", "status", "reason", "message"]


@dataclass
class Discovery:
    """Files found in the incoming directory.

    Attributes
    ----------
    files
        Odometer -> the exposure file to process.
    rejected
        ``(path, reason, message)`` for files that cannot be processed by name
        alone: unrecognised names and second copies of an odometer.
    """

    files: dict[int, Path] = field(default_factory=dict)
    rejected: list[tuple[str, str, str]] = field(default_factory=list)


def discover_exposures(directory: str | Path) -> Discovery:
    """List the Elixir exposures of an incoming directory.

    ``NNNNNNp.fits`` is preferred to ``NNNNNNp.fits.fz`` when both exist; the
    other copy is reported as ``duplicate_expnum``. Files whose names follow no
    convention are reported as ``unrecognised_name`` (hidden files ignored); a
    folder or a dangling symbolic link named like an exposure as ``unreadable``
    (other folders are ignored).
    A missing directory gives an empty discovery.
    """
    found = Discovery()
    directory = Path(directory)
    if not directory.is_dir():
        return found
    for path in sorted(directory.iterdir()):
        if path.name.startswith("."):
            continue
        expnum = paths.parse_exposure_filename(path)
        if not path.is_file():  # a folder, a dangling link, a device: no check job can read it
            if expnum is not None:
                what = (f"dangling symbolic link to {path.readlink()}" if path.is_symlink()
                        and not path.exists() else "not a regular file (a directory or a device)")
                found.rejected.append((str(path), "unreadable", what))
            continue
        if expnum is None:
            found.rejected.append(
                (str(path), "unrecognised_name", "file name is not NNNNNNp.fits[.fz]")
            )
        elif expnum in found.files:
            found.rejected.append(
                (str(path), "duplicate_expnum",
                 f"odometer {expnum} already provided by {found.files[expnum].name}")
            )
        else:
            found.files[expnum] = path
    return found


class CalibrationError(ValueError):
    """An exposure's Elixir flat or mask is missing, inconsistent or broken.

    Attributes
    ----------
    reason
        ``missing_calibration`` (a keyword or the file named is absent),
        ``inconsistent_calibration`` (the CCDs name several files) or
        ``broken_calibration`` (the file is not a readable FITS file of the
        exact size its headers declare, or lacks a CCD the exposure needs).
    """

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


def _strip_extension(reference: str) -> str:
    return reference.split("[", 1)[0].strip()


#: Elixir calibration files may be stored gzip- or tile-compressed.
COMPRESSED_SUFFIXES = ("", ".gz", ".fz")


def find_calibration_file(name: str, calibration_dir: str | Path) -> Path | None:
    """Return the file holding calibration ``name`` (plain, ``.gz`` or ``.fz``), or None."""
    for suffix in COMPRESSED_SUFFIXES:
        path = Path(calibration_dir) / (name + suffix)
        if path.is_file():
            return path
    return None


def stage_calibration(source: str | Path, target: str | Path) -> None:
    """Write an uncompressed copy of an Elixir calibration MEF (WeightWatcher reads no .gz/.fz).

    The raw file is only read.
    """
    source, target = Path(source), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.suffix == ".fz":
        with fits.open(source, do_not_scale_image_data=True) as hdul:
            hdus = [fits.PrimaryHDU(header=hdul[0].header)]
            hdus += [fits.ImageHDU(hdu.data, hdu.header, do_not_scale_image_data=True)
                     for hdu in hdul[1:]]
            fits.HDUList(hdus).writeto(target, overwrite=True)
        return
    opener = gzip.open if source.suffix == ".gz" else open
    with opener(source, "rb") as raw, open(target, "wb") as copy:
        shutil.copyfileobj(raw, copy, length=16 << 20)


def locate_calibrations(
    headers: Iterable[fits.Header], calibration_dir: str | Path
) -> dict[str, str]:
    """Find the flat and bad-pixel mask named by the CCD headers.

    Parameters
    ----------
    headers
        Extension headers of one exposure (one per CCD).
    calibration_dir
        Directory holding the Elixir calibration MEF files.

    Returns
    -------
    dict
        ``{"flat": path, "mask": path}``.

    Raises
    ------
    CalibrationError
        If a keyword is absent, the CCDs name different files, or a file is
        missing.
    """
    located: dict[str, str] = {}
    for kind, keyword in (("flat", "IMRED_FF"), ("mask", "IMRED_MK")):
        names = set()
        for header in headers:
            if keyword not in header:
                raise CalibrationError(
                    "missing_calibration", f"{header.get('EXTNAME', '?')}: no {keyword}"
                )
            names.add(_strip_extension(str(header[keyword])))
        if len(names) != 1:
            raise CalibrationError(
                "inconsistent_calibration", f"{keyword} names several files: {sorted(names)}"
            )
        name = names.pop()
        path = find_calibration_file(name, calibration_dir)
        if path is None:
            raise CalibrationError(
                "missing_calibration", f"{keyword}: {name} not found in {calibration_dir}"
            )
        located[kind] = str(path)
    return located


def check_calibration_file(path: str | Path, extnames: Iterable[str]) -> None:
    """Check that a calibration file can be read: a whole FITS file (the size its headers
    declare) holding every CCD ``extnames`` (a ``.gz`` file: its gzip signature only, it
    would have to be decompressed whole). Only headers are read.

    Raises
    ------
    CalibrationError
        ``broken_calibration``, naming the file and the fault.
    """
    path = Path(path)
    if path.suffix == ".gz":
        with open(path, "rb") as handle:
            if handle.read(2) != b"\x1f\x8b":
                raise CalibrationError("broken_calibration", f"{path.name}: not a gzip file")
        return
    try:
        with fits.open(path, memmap=False, lazy_load_hdus=False) as hdul:
            declared = max(i["datLoc"] + i["datSpan"] for i in (h.fileinfo() for h in hdul) if i)
            names = {str(h.header.get("EXTNAME", "")).strip().lower() for h in hdul[1:]}
    except Exception as error:  # astropy raises OSError, ValueError, VerifyError...
        raise CalibrationError("broken_calibration", f"{path.name}: not readable ({error})") from None
    size = path.stat().st_size
    if size != declared:
        raise CalibrationError("broken_calibration", f"{path.name}: {size} bytes on disk, its "
                               f"headers declare {declared} (truncated or corrupt)")
    missing = sorted({name.lower() for name in extnames} - names)
    if missing:
        raise CalibrationError("broken_calibration", f"{path.name}: no extension {missing[0]} "
                               f"({len(missing)} CCD(s) of the exposure missing)")


def check_exposure_and_calibrations(
    exposure: str | Path,
    calibration_dir: str | Path,
    *,
    fitsverify: str | None,
    limits: dict,
) -> dict:
    """Integrity check of one exposure plus the look-up of its calibrations.

    Returns the JSON-ready verdict of :func:`spica.step1.integrity.check_exposure`
    with a ``calibrations`` entry (flat and mask paths) when the file passed.
    """
    from spica.step1.integrity import check_exposure  # heavy import kept local

    result = check_exposure(exposure, fitsverify=fitsverify, **limits).to_dict()
    result["calibrations"] = None
    if result["ok"]:
        try:
            with fits.open(exposure) as hdul:
                headers = [hdu.header for hdu in hdul[1:]]
                located = locate_calibrations(headers, calibration_dir)
                extnames = [str(h.get("EXTNAME", "")).strip() for h in headers]
            for path in located.values():
                check_calibration_file(path, extnames)
            result["calibrations"] = located
        except CalibrationError as error:
            result.update(ok=False, reason=error.reason, message=str(error))
            result.setdefault("details", {}).setdefault("failures", []).append(
                {"reason": error.reason, "message": str(error)}
            )
    return result


def write_exposure_ahead(verdict: dict, exposure: str | Path, ahead: str | Path, *,
                         photometric: bool) -> dict:
    """Write the ``.ahead`` of an exposure that passed its check
    (:func:`spica.calibration.ahead.write_ahead`); an empty file for one that did not
    (it gets no catalogue, SCAMP never reads it).

    Returns
    -------
    dict
        ``verdict``, turned into an ``unreadable`` failure if the headers that passed
        the check still could not be written as an ``.ahead`` (never a crash).
    """
    from spica.calibration.ahead import write_ahead

    ahead = Path(ahead)
    ahead.parent.mkdir(parents=True, exist_ok=True)
    if verdict["ok"]:
        try:
            write_ahead(exposure, ahead, photometric=bool(photometric))
            return verdict
        except (OSError, ValueError, KeyError, TypeError) as error:
            message = f"its .ahead (SCAMP's header keywords) could not be written: {error}"
            verdict = {**verdict, "ok": False, "reason": "unreadable", "message": message}
            verdict.setdefault("details", {}).setdefault("failures", []).append(
                {"reason": "unreadable", "message": message})
    ahead.write_text("")
    return verdict


def write_inventory(
    checks: Iterable[str | Path],
    rejected: Iterable[tuple[str, str, str]],
    inventory_csv: str | Path,
    quarantine_csv: str | Path,
) -> tuple[int, int]:
    """Gather per-exposure verdicts into the inventory and the quarantine list.

    Duplicated odometers (two files whose headers claim the same ``EXPNUM``,
    or byte-identical files) are caught here, across exposures.

    Returns
    -------
    tuple
        Numbers of accepted and quarantined files.
    """
    from spica.step1.integrity import CheckResult, find_duplicates

    verdicts = [CheckResult.from_dict(json.loads(Path(p).read_text())) for p in checks]
    rows = [
        {"expnum": verdict.expnum, "path": verdict.path,
         "status": "ok" if verdict.ok else "quarantined",
         "reason": verdict.reason or "", "message": verdict.message if not verdict.ok else ""}
        for verdict in find_duplicates(verdicts)
    ]
    for path, reason, message in rejected:
        rows.append({"expnum": paths.parse_exposure_filename(path) or "", "path": path,
                     "status": "quarantined", "reason": reason, "message": message})
    for target in (inventory_csv, quarantine_csv):
        Path(target).parent.mkdir(parents=True, exist_ok=True)
    with open(inventory_csv, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=INVENTORY_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    quarantined = [row for row in rows if row["status"] != "ok"]
    with open(quarantine_csv, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=INVENTORY_COLUMNS)
        writer.writeheader()
        writer.writerows(quarantined)
    return len(rows) - len(quarantined), len(quarantined)


def read_inventory(inventory_csv: str | Path) -> list[dict[str, str]]:
    """Read the inventory table written by :func:`write_inventory`."""
    with open(inventory_csv, newline="") as handle:
        return list(csv.DictReader(handle))
