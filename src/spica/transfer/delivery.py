"""Sending deliveries (seed 3.4): the transfer command, verification at the destination, purge.

``push`` runs ``transfer.command`` (rsync by default; ``{source}`` is the
staging folder, ``{destination}`` the delivery's folder at the destination,
``{rsh}`` the remote shell) for every staged delivery, then checks every
file of its manifest at the destination. Verified files are marked sent in
the registry (``files.sent_at``, :func:`spica.transfer.state.sent_files`)
and only then removed from staging; a file that does not verify
(interrupted transfer, corrupted copy) stays staged and is sent again, up to
``attempts`` times in one push and on every later push. A delivery whose
files are all sent leaves the staging area (its folder, manifest included,
is at the destination) and is ``sent``.

``verify`` checks the destination copies of sent deliveries again; a file
found changed is marked unsent and its delivery ``resend``: the next
``stage`` builds it again (the compression is deterministic, so the same
bytes) and the next ``push`` sends it.

Where the copies are checked (:func:`destination_checksums`):

* a local path (a mounted archive, or the local folder standing in for
  it): size and SHA-256 of each file, read here;
* ``[user@]host:path`` (rsync's remote syntax, the real CADC case):
  ``transfer.remote_checksum`` (``sha256sum --``) runs on the host through
  ``transfer.remote_shell`` (``ssh``, also rsync's ``-e``) with the files
  appended, and its ``<sha256>  <file>`` lines are compared with the
  manifest's SHA-256, file by file; no mount is needed. (rsync's own
  ``--checksum`` compares MD5/xxhash with the staging copy, which is gone
  after the purge: it is not what verifies.) The delivery's folders are made
  there first (``mkdir -p`` through the remote shell).
"""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from spica.provenance import file_sha256
from spica.transfer.settings import TransferSettings
from spica.transfer.staging import DELIVERY_JSON, MANIFEST, delivery_folder, destination_folder
from spica.transfer.state import connect, utc_now

__all__ = ["PushResult", "transfer_argv", "destination_spec", "destination_checksums", "verify_delivery", "push",
           "verify", "purge"]

log = logging.getLogger("spica.transfer")

#: Files per remote checksum command (keeps its command line short).
REMOTE_BATCH = 200


@dataclass
class PushResult:
    """What one ``push`` (or ``verify``) found."""

    sent: list[str] = field(default_factory=list)  # deliveries complete at the destination
    verified: int = 0  # files verified in this run
    failed: dict[str, str] = field(default_factory=dict)  # delivery -> why it is not complete
    purged: int = 0  # files removed from staging


def destination_spec(settings: TransferSettings, folder: Path) -> str:
    """A destination folder as the transfer command names it: ``host:path`` or a local path."""
    return f"{settings.destination_host}:{folder}" if settings.destination_host else str(folder)


def transfer_argv(settings: TransferSettings, source: Path, destination: Path) -> list[str]:
    """The configured transfer command for one delivery (``{rsh}``: the remote shell as one word)."""
    return [word.format(source=source, destination=destination_spec(settings, destination),
                        rsh=shlex.join(settings.remote_shell)) for word in settings.command]


def _remote(settings: TransferSettings, words: Sequence[str]) -> tuple[str | None, str]:
    """Run ``words`` on the destination host through the remote shell.

    Returns
    -------
    (str or None, str)
        Why it failed (None on success) and what it printed (output and errors).
    """
    from spica.astromatic._run import run_tool

    # the remote shell joins its arguments into one command line for the host's shell: quote each word
    argv = [*settings.remote_shell, str(settings.destination_host), shlex.join(words)]
    problem = None
    with tempfile.TemporaryFile("w+") as output:
        try:
            run_tool(argv, log=output)
        except subprocess.CalledProcessError as error:
            problem = f"{shlex.join(words[:1])} on {settings.destination_host} exited with {error.returncode}"
        except OSError as error:
            problem = f"remote shell {settings.remote_shell[0]!r} failed: {error}"
        output.seek(0)
        return problem, output.read()


def destination_checksums(settings: TransferSettings, folder: Path,
                          names: Sequence[str]) -> dict[str, tuple[int | None, str | None, str]]:
    """Size, SHA-256 and a note for each of ``names`` in a destination folder.

    A local destination is read here (size and SHA-256); on ``host:path`` the
    remote checksum command prints the SHA-256 (size None). A file without a
    checksum (missing there, unreadable, the host unreachable) gets None and
    the reason in the note.
    """
    found: dict[str, tuple[int | None, str | None, str]] = {}
    if not settings.destination_host:
        for name in names:
            copy = folder / name
            found[name] = ((copy.stat().st_size, file_sha256(copy), "") if copy.is_file()
                           else (None, None, "missing at the destination"))
        return found
    for first in range(0, len(names), REMOTE_BATCH):
        batch = list(names[first:first + REMOTE_BATCH])
        paths = {str(folder / name): name for name in batch}
        problem, output = _remote(settings, [*settings.remote_checksum, *paths])
        sums = {}
        for line in output.splitlines():
            digest, _, path = line.partition("  ")
            if len(digest) == 64 and path in paths:
                sums[paths[path]] = digest.lower()
        why = "missing or unreadable at the destination" + (f" ({problem})" if problem else "")
        for name in batch:
            found[name] = (None, sums[name], "") if name in sums else (None, None, why)
    return found


def verify_delivery(settings: TransferSettings, delivery: str, area: str) -> tuple[list[str], dict[str, str]]:
    """Check the destination copy of a delivery's files against the recorded manifest, file by file.

    Returns
    -------
    (list of str, dict)
        The files that verify, and file -> reason for those that do not.
    """
    target = destination_folder(settings, delivery, area)
    good, bad = [], {}
    with connect(settings) as db:
        rows = db.execute("SELECT file, size, sha256 FROM files WHERE delivery = ? ORDER BY file",
                          (delivery,)).fetchall()
    found = destination_checksums(settings, target, [row["file"] for row in rows])
    for row in rows:
        size, digest, why = found[row["file"]]
        if digest is None:
            bad[row["file"]] = why
        elif size is not None and size != row["size"]:
            bad[row["file"]] = f"size {size} != {row['size']}"
        elif digest != row["sha256"]:
            bad[row["file"]] = "SHA-256 differs"
        else:
            good.append(row["file"])
    return good, bad


def _make_folder(settings: TransferSettings, target: Path) -> str | None:
    """Create a delivery's folder (and its parents) at the destination; None, or why it failed."""
    if settings.destination_host:
        problem, output = _remote(settings, ["mkdir", "-p", "--", str(target)])
        return None if problem is None else f"{problem}: {output.strip()[-300:]}"
    target.mkdir(parents=True, exist_ok=True)
    return None


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
    with connect(settings) as db:
        db.executemany("UPDATE files SET sent_at = ? WHERE delivery = ? AND file = ? AND sent_at IS NULL",
                       [(now, delivery, name) for name in files])


def _purge_delivery(settings: TransferSettings, delivery: str, area: str) -> int:
    """Remove the sent files of a delivery from staging; the folder once all are sent."""
    folder = delivery_folder(settings, delivery, area)
    now = utc_now()
    purged = 0
    with connect(settings) as db:
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
            # the manifest and delivery.json are at the destination too (checked there)
            target = destination_folder(settings, delivery, area)
            notes = (MANIFEST, DELIVERY_JSON)
            there = destination_checksums(settings, target, notes) if folder.is_dir() else {}
            if all((folder / name).exists() and there[name][1] == file_sha256(folder / name) for name in notes):
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
    with connect(settings) as db:
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
            problem = _make_folder(settings, target) or _run(transfer_argv(settings, source, target))
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
    becomes ``resend`` (``stage`` rebuilds it, ``push`` sends it); a step 1
    delivery superseded by a rerun becomes ``superseded`` instead (its
    products are gone: the newer delivery replaces it).
    """
    result = PushResult()
    with connect(settings) as db:
        rows = db.execute("SELECT DISTINCT d.delivery, d.area, d.kind, d.superseded_by FROM deliveries d "
                          "JOIN files f ON f.delivery = d.delivery WHERE f.sent_at IS NOT NULL "
                          "ORDER BY d.delivery").fetchall()
    for row in rows:
        good, bad = verify_delivery(settings, row["delivery"], row["area"])
        result.verified += len(good)
        if bad:
            gone = row["kind"] == "step1" and row["superseded_by"]
            result.failed[row["delivery"]] = "; ".join(f"{n}: {w}" for n, w in sorted(bad.items())) + (
                f" (not sent again: superseded by {row['superseded_by']})" if gone else "")
            with connect(settings) as db:
                db.executemany("UPDATE files SET sent_at = NULL, purged_at = NULL WHERE delivery = ? AND file = ?",
                               [(row["delivery"], name) for name in bad])
                db.execute("UPDATE deliveries SET status = ?, sent_at = NULL WHERE delivery = ?",
                           ("superseded" if gone else "resend", row["delivery"]))
        else:
            result.sent.append(row["delivery"])
    return result


def purge(settings: TransferSettings) -> PushResult:
    """Remove from staging every file whose destination copy is verified (``push`` does it too)."""
    result = PushResult()
    with connect(settings) as db:
        rows = db.execute("SELECT delivery, area FROM deliveries WHERE status = 'staged'").fetchall()
    for row in rows:
        result.purged += _purge_delivery(settings, row["delivery"], row["area"])
    return result
