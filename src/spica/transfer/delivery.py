"""Sending deliveries (seed 3.4): the transfer command, verification at the destination, purge.

``push`` runs ``transfer.command`` (rsync by default; ``{source}`` is the
staging folder, ``{destination}`` the delivery's folder at the destination)
for every staged delivery, then checks every file of its manifest at the
destination (size and SHA-256). Verified files are marked sent in the state
(``files.sent_at``, :func:`spica.transfer.state.sent_files`) and only then
removed from staging; a file that does not verify (interrupted transfer,
corrupted copy) stays staged and is sent again, up to ``attempts`` times in
one push and on every later push. A delivery whose files are all sent
leaves the staging area (its folder, manifest included, is at the
destination) and is ``sent``.

``verify`` checks the destination copies of sent deliveries again; a file
found changed is marked unsent and its delivery ``resend``: the next
``stage`` builds it again (the compression is deterministic, so the same
bytes) and the next ``push`` sends it.

The destination is checked as a local path: a mounted archive, or the local
folder standing in for it.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from spica.provenance import file_sha256
from spica.transfer.settings import TransferSettings
from spica.transfer.staging import DELIVERY_JSON, MANIFEST, delivery_folder, destination_folder
from spica.transfer.state import connect, utc_now

__all__ = ["PushResult", "transfer_argv", "verify_delivery", "push", "verify", "purge"]

log = logging.getLogger("spica.transfer")


@dataclass
class PushResult:
    """What one ``push`` (or ``verify``) found."""

    sent: list[str] = field(default_factory=list)  # deliveries complete at the destination
    verified: int = 0  # files verified in this run
    failed: dict[str, str] = field(default_factory=dict)  # delivery -> why it is not complete
    purged: int = 0  # files removed from staging


def transfer_argv(settings: TransferSettings, source: Path, destination: Path) -> list[str]:
    """The configured transfer command for one delivery."""
    return [word.format(source=source, destination=destination) for word in settings.command]


def verify_delivery(settings: TransferSettings, delivery: str, area: str) -> tuple[list[str], dict[str, str]]:
    """Check the destination copy of a delivery's files against the recorded manifest.

    Returns
    -------
    (list of str, dict)
        The files that verify, and file -> reason for those that do not.
    """
    target = destination_folder(settings, delivery, area)
    good, bad = [], {}
    with connect(settings.results) as db:
        rows = db.execute("SELECT file, size, sha256 FROM files WHERE delivery = ?", (delivery,)).fetchall()
    for row in rows:
        copy = target / row["file"]
        if not copy.is_file():
            bad[row["file"]] = "missing at the destination"
        elif copy.stat().st_size != row["size"]:
            bad[row["file"]] = f"size {copy.stat().st_size} != {row['size']}"
        elif file_sha256(copy) != row["sha256"]:
            bad[row["file"]] = "SHA-256 differs"
        else:
            good.append(row["file"])
    return good, bad


def _run(argv: Sequence[str]) -> str | None:
    """Run the transfer command; None on success, else why it failed."""
    from spica.astromatic._run import run_tool

    try:
        run_tool(argv, log=subprocess.DEVNULL)
    except subprocess.CalledProcessError as error:
        return f"transfer command exited with {error.returncode}"
    except OSError as error:
        return f"transfer command failed: {error}"
    return None


def _mark_sent(settings: TransferSettings, delivery: str, files: Sequence[str]) -> None:
    now = utc_now()
    with connect(settings.results) as db:
        db.executemany("UPDATE files SET sent_at = ? WHERE delivery = ? AND file = ? AND sent_at IS NULL",
                       [(now, delivery, name) for name in files])


def _purge_delivery(settings: TransferSettings, delivery: str, area: str) -> int:
    """Remove the sent files of a delivery from staging; the folder once all are sent."""
    folder = delivery_folder(settings, delivery, area)
    now = utc_now()
    purged = 0
    with connect(settings.results) as db:
        rows = db.execute("SELECT file, sent_at FROM files WHERE delivery = ?", (delivery,)).fetchall()
        for row in rows:
            if row["sent_at"] is None:
                continue
            path = folder / row["file"]
            if path.exists():
                path.unlink()
                purged += 1
            db.execute("UPDATE files SET purged_at = COALESCE(purged_at, ?) WHERE delivery = ? AND file = ?",
                       (now, delivery, row["file"]))
        if rows and all(row["sent_at"] for row in rows):
            # the manifest and delivery.json are at the destination too (checked here)
            target = destination_folder(settings, delivery, area)
            if all((target / name).is_file() and (folder / name).exists()
                   and file_sha256(target / name) == file_sha256(folder / name) for name in (MANIFEST, DELIVERY_JSON)):
                shutil.rmtree(folder)
                db.execute("UPDATE deliveries SET status = 'sent', sent_at = ? WHERE delivery = ?", (now, delivery))
            elif not folder.exists():
                db.execute("UPDATE deliveries SET status = 'sent', sent_at = ? WHERE delivery = ?", (now, delivery))
    return purged


def push(settings: TransferSettings, *, attempts: int = 2, purge_sent: bool = True) -> PushResult:
    """Send every staged delivery, verify it at the destination, purge what verified.

    Parameters
    ----------
    attempts
        Transfer-and-verify rounds per delivery in this run.
    purge_sent
        Remove verified files from staging (default).
    """
    result = PushResult()
    with connect(settings.results) as db:
        staged = db.execute("SELECT delivery, area FROM deliveries WHERE status = 'staged' "
                            "ORDER BY delivery").fetchall()
    for row in staged:
        delivery, area = row["delivery"], row["area"]
        source = delivery_folder(settings, delivery, area)
        target = destination_folder(settings, delivery, area)
        problem = None
        for _ in range(max(1, attempts)):
            if not source.is_dir():
                problem = f"staging folder {source} is missing"
                break
            target.mkdir(parents=True, exist_ok=True)
            problem = _run(transfer_argv(settings, source, target))
            good, bad = verify_delivery(settings, delivery, area)
            _mark_sent(settings, delivery, good)
            result.verified += len(good)
            if problem is None and bad:
                problem = "; ".join(f"{name}: {why}" for name, why in sorted(bad.items()))
            if problem is None:
                break
            log.warning("%s: %s", delivery, problem)
        if purge_sent:
            result.purged += _purge_delivery(settings, delivery, area)
        if problem is None:
            result.sent.append(delivery)
        else:
            result.failed[delivery] = problem
    return result


def verify(settings: TransferSettings) -> PushResult:
    """Check the destination copies of every sent file again; changed ones are sent again.

    A file that no longer verifies loses its ``sent_at`` and its delivery
    becomes ``resend`` (``stage`` rebuilds it, ``push`` sends it).
    """
    result = PushResult()
    with connect(settings.results) as db:
        rows = db.execute("SELECT DISTINCT d.delivery, d.area FROM deliveries d JOIN files f USING (delivery) "
                          "WHERE f.sent_at IS NOT NULL ORDER BY d.delivery").fetchall()
    for row in rows:
        good, bad = verify_delivery(settings, row["delivery"], row["area"])
        result.verified += len(good)
        if bad:
            result.failed[row["delivery"]] = "; ".join(f"{n}: {w}" for n, w in sorted(bad.items()))
            with connect(settings.results) as db:
                db.executemany("UPDATE files SET sent_at = NULL, purged_at = NULL WHERE delivery = ? AND file = ?",
                               [(row["delivery"], name) for name in bad])
                db.execute("UPDATE deliveries SET status = 'resend', sent_at = NULL WHERE delivery = ?",
                           (row["delivery"],))
        else:
            result.sent.append(row["delivery"])
    return result


def purge(settings: TransferSettings) -> PushResult:
    """Remove from staging every file whose destination copy is verified (``push`` does it too)."""
    result = PushResult()
    with connect(settings.results) as db:
        rows = db.execute("SELECT delivery, area FROM deliveries WHERE status = 'staged'").fetchall()
    for row in rows:
        result.purged += _purge_delivery(settings, row["delivery"], row["area"])
    return result
