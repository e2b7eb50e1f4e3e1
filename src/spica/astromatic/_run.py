"""Running an AstrOmatic binary: the one ``subprocess`` call of the tool homes."""

from __future__ import annotations

import errno
import os
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from spica.provenance import ToolRun

#: A file system with less free space than this (bytes) after a tool ran is full:
#: the tool failed for want of space, or wrote truncated files without saying so.
FULL_DISK_BYTES = 1 << 20


def _existing(path: Path) -> Path:
    """``path`` or its nearest existing parent."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _mount_point(path: Path) -> Path:
    """The mount point of the file system holding ``path``."""
    path = _existing(Path(path)).resolve()
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def full_disks(paths: Iterable[str | Path], *, minimum: int = FULL_DISK_BYTES) -> list[Path]:
    """The folders among ``paths`` (or their nearest existing parent) on a file system
    with less than ``minimum`` bytes free, one per file system, in the order given."""
    full, seen = [], set()
    for path in paths:
        folder = _existing(Path(path))
        device = folder.stat().st_dev
        if device in seen:
            continue
        seen.add(device)
        stats = os.statvfs(folder)
        if stats.f_bavail * stats.f_frsize < minimum:
            full.append(folder)
    return full


#: How an AstrOmatic tool reports a failed write (``QFWRITE``): the file it was writing.
_WRITE_ERROR = re.compile(r"\*Error\* while writing (\S+)")


def _failed_write(log: Any) -> Path | None:
    """The file a tool could not write, from the tail of its log (a file), if it says so."""
    name = getattr(log, "name", None)
    if not isinstance(name, str) or not Path(name).is_file():
        return None
    log.flush()
    with open(name, "rb") as handle:
        handle.seek(max(0, Path(name).stat().st_size - 16384))
        tail = handle.read().decode(errors="replace")
    found = _WRITE_ERROR.findall(tail)
    return Path(found[-1]) if found else None


def _no_space(command: Sequence[str], folder: Path, what: str) -> OSError:
    """The error, also printed to the process' original stderr (the terminal of the
    Snakemake run: the job's log may sit on the full disk itself and stay empty)."""
    message = (f"no space left on device: {folder} ({Path(command[0]).name} {what}; "
               "free space there and run the workflow again)")
    if sys.__stderr__ is not None:
        print(f"SPICA: {message}", file=sys.__stderr__, flush=True)
    return OSError(errno.ENOSPC, message)


def run_tool(
    command: Sequence[str],
    *,
    log: Any = None,
    cwd: str | Path | None = None,
    scratch: bool = False,
    outputs: Sequence[str | Path] = (),
) -> ToolRun:
    """Run ``command`` (in ``cwd``), its output and errors to ``log``; return the run.

    The file systems of ``cwd`` and of the ``outputs`` are checked when the tool
    ends: full (:data:`FULL_DISK_BYTES`), the run fails with ``ENOSPC`` naming
    the folder, whether the tool failed or not (a tool that ignores a short
    write leaves a truncated product that would otherwise count as done).

    Raises
    ------
    subprocess.CalledProcessError
        If the tool exits with an error.
    OSError
        ``ENOSPC``, "no space left on device: <folder>", when a file system it
        writes to is full.
    """
    import subprocess

    folders = ([cwd] if cwd is not None else [Path.cwd()]) + [Path(o).parent for o in outputs]
    try:
        subprocess.run(list(command), check=True, stdout=log, stderr=log, cwd=cwd)
    except subprocess.CalledProcessError as error:
        full = full_disks(folders)
        if full:
            raise _no_space(command, _mount_point(full[0]), f"failed with exit status {error.returncode}") from error
        # the tool could not write into a folder it may write to: the disk filled, and
        # the tool removed its temporary files on the way out (SWarp does)
        unwritten = _failed_write(log)
        if unwritten is not None and os.access(_existing(unwritten.parent), os.W_OK):
            stats = os.statvfs(_existing(unwritten.parent))
            raise _no_space(command, _mount_point(unwritten.parent),
                            f"could not write {unwritten.name}; "
                            f"{stats.f_bavail * stats.f_frsize / 1e6:.0f} MB free once it exited") from error
        raise
    full = full_disks(folders)
    if full:
        raise _no_space(command, _mount_point(full[0]), "ended with the disk full: its outputs may be truncated")
    return ToolRun(command=list(command), cwd=None if cwd is None else str(cwd), scratch=scratch,
                   outputs=[str(output) for output in outputs])
