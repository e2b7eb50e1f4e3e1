"""The incoming watcher (SNOOPPIX's role, seed 2.1, 3.4): take complete arrivals, run step 1.

A file of the incoming area is taken only once it is complete:

* its checksum sidecar (``<file><checksum_suffix>``, the hex SHA-256 the
  sender writes after the file) matches its content; or, without a sidecar,
* its size and modification time have stayed unchanged for
  ``settle_seconds`` since the watcher first saw them (so at least two polls
  see it; a file still being written changes between them). Only ``stat``
  is called on a file that is not yet taken: its content is never read
  before it settles (a sidecar is read only once it exists, i.e. after the
  sender finished).

Taking a file copies it (through a hidden partial name, renamed when
complete and checked against the SHA-256 of the source) into the workflow's
``inputs.exposures`` folder, read-only, and records its arrival (UTC time,
size, SHA-256) in the registry (the ``arrivals`` table, :mod:`spica.transfer.state`). Then step
1 (``transfer.step1_command``: ``snakemake qualityfits_in``) runs once for
everything taken; arrivals whose step 1 has not succeeded are retried on the
next poll, so a watcher restarted at any point resumes without redoing or
missing a file. The incoming file itself is left in place, untouched.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from spica.paths import parse_exposure_filename
from spica.provenance import file_sha256
from spica.transfer.settings import TransferSettings
from spica.transfer.state import connect, utc_now

__all__ = ["IncomingError", "PollResult", "poll", "watch", "run_step1"]

log = logging.getLogger("spica.transfer")


class IncomingError(RuntimeError):
    """A complete incoming file cannot be taken (e.g. another file of that name is already in the inputs)."""


@dataclass
class PollResult:
    """What one poll did."""

    taken: list[str] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    step1: str | None = None  # None: not run; "done" or "failed"


def _read_sidecar(path: Path) -> str | None:
    try:
        words = path.read_text().split()
    except OSError:
        return None
    return words[0].lower() if words else None


def _take(settings: TransferSettings, source: Path) -> tuple[int, str]:
    """Copy ``source`` into the inputs, read-only; return its size and SHA-256."""
    target = settings.exposures / source.name
    settings.exposures.mkdir(parents=True, exist_ok=True)
    digest = file_sha256(source)
    if target.exists():
        if file_sha256(target) != digest:
            raise IncomingError(f"{source.name}: the inputs already hold a different file of that name "
                                f"({target}); left in the incoming area")
        return target.stat().st_size, digest
    folder_mode = settings.exposures.stat().st_mode
    writable = bool(folder_mode & stat.S_IWUSR)
    if not writable:  # the inputs are read-only: open them for the copy only
        settings.exposures.chmod(folder_mode | stat.S_IWUSR)
    try:
        partial = settings.exposures / f".{source.name}.partial"
        shutil.copyfile(source, partial)
        if file_sha256(partial) != digest:
            partial.unlink()
            raise IncomingError(f"{source.name}: changed while it was copied; left in the incoming area")
        partial.chmod(0o444)
        os.replace(partial, target)
    finally:
        if not writable:
            settings.exposures.chmod(folder_mode)
    return target.stat().st_size, digest


def run_step1(settings: TransferSettings, argv: Sequence[str] | None = None) -> bool:
    """Run step 1 (``transfer.step1_command``) in the workflow's folder; True on success.

    Its output goes to ``<results>/transfer/logs/step1_<UTC time>.log``.
    """
    from spica.astromatic._run import run_tool

    argv = list(argv) if argv is not None else settings.step1_argv()
    logs = settings.results / "transfer" / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    path = logs / f"step1_{utc_now().replace(':', '')}.log"
    with open(path, "a") as handle:
        try:
            run_tool(argv, log=handle, cwd=settings.root)
        except (OSError, subprocess.CalledProcessError) as error:
            log.error("step 1 failed (%s), see %s; retried on the next poll", error, path)
            return False
    return True


def poll(
    settings: TransferSettings,
    *,
    now: float | None = None,
    step1: Callable[[TransferSettings], bool] = run_step1,
) -> PollResult:
    """One look at the incoming area: take what is complete, then run step 1 if needed.

    Parameters
    ----------
    settings
        The transfer settings.
    now
        The time of the poll (``time.time()``; tests pass their own).
    step1
        Runs step 1 and says whether it succeeded (default: the configured
        command, :func:`run_step1`).
    """
    now = time.time() if now is None else now
    result = PollResult()
    suffix = settings.checksum_suffix
    if not settings.incoming.is_dir():
        log.warning("incoming area %s does not exist: nothing to take", settings.incoming)
        names = []
    else:
        names = sorted(p.name for p in settings.incoming.iterdir())
    with connect(settings) as db:
        taken = {row["file"] for row in db.execute("SELECT file FROM arrivals")}
        for name in names:
            path = settings.incoming / name
            if name.startswith(".") or (suffix and name.endswith(suffix)) or name in taken:
                continue
            expnum = parse_exposure_filename(name)
            if expnum is None or not path.is_file():
                continue  # not an exposure (NNNNNNp.fits[.fz]): left alone
            info = path.stat()
            key = (info.st_size, info.st_mtime_ns)
            how = None
            expected = _read_sidecar(path.with_name(name + suffix)) if suffix else None
            if expected is not None:
                if file_sha256(path) == expected:
                    how = "checksum"
            else:
                row = db.execute("SELECT size, mtime_ns, since FROM incoming_seen WHERE file = ?",
                                 (name,)).fetchone()
                if row is None or (row["size"], row["mtime_ns"]) != key:
                    db.execute("DELETE FROM incoming_seen WHERE file = ?", (name,))
                    db.execute("INSERT INTO incoming_seen (file, size, mtime_ns, since) VALUES (?, ?, ?, ?)",
                               (name, *key, now))
                    db.commit()
                elif now - row["since"] >= settings.settle_seconds:
                    how = "settled"
            if how is None:
                result.waiting.append(name)
                continue
            try:
                size, digest = _take(settings, path)
            except IncomingError as error:
                result.refused[name] = str(error)
                log.error("%s", error)
                continue
            db.execute("INSERT INTO arrivals (file, expnum, size, sha256, arrived, how, step1) "
                       "VALUES (?, ?, ?, ?, ?, ?, 'pending')", (name, expnum, size, digest, utc_now(), how))
            db.execute("DELETE FROM incoming_seen WHERE file = ?", (name,))
            db.commit()  # recorded before step 1: a crash from here on resumes with step 1
            result.taken.append(name)
            log.info("took %s (%d bytes, %s)", name, size, how)
        pending = [row["file"] for row in db.execute("SELECT file FROM arrivals WHERE step1 != 'done'")]
    if pending:
        ok = step1(settings)
        result.step1 = "done" if ok else "failed"
        with connect(settings) as db:
            db.executemany("UPDATE arrivals SET step1 = ?, step1_at = ? WHERE file = ?",
                           [(result.step1, utc_now(), name) for name in pending])
        log.info("step 1 %s for %s", result.step1, ", ".join(pending))
    return result


def watch(settings: TransferSettings, *, once: bool = False, interval: float | None = None,
          step1: Callable[[TransferSettings], bool] = run_step1) -> PollResult:
    """Poll every ``interval`` seconds (``transfer.poll_seconds``) until interrupted, or once."""
    interval = settings.poll_seconds if interval is None else interval
    while True:
        result = poll(settings, step1=step1)
        if once:
            return result
        time.sleep(interval)
