"""Saving a grade into the graders' CSV the workflow reads (``inputs.grades``).

The CSV (columns of :func:`spica.registry.read_grades`: expnum, grade,
comment, graded_by, date) is rewritten atomically: under an exclusive
``fcntl.flock`` on ``<grades>.lock``, the current file is re-read, the row of
the exposure replaced (or added), the result written to a temporary file in
the same folder and moved over the CSV with :func:`os.replace`. Two graders
saving at the same moment are serialised by the lock, and each re-reads what
the other wrote, so no grade is lost; a reader never sees a half-written file.
"""

from __future__ import annotations

import csv
import fcntl
import io
import os
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from spica.registry import GRADES, read_grades

__all__ = ["GRADE_COLUMNS", "save_grade", "grades_lock"]

GRADE_COLUMNS = ["expnum", "grade", "comment", "graded_by", "date"]


@contextmanager
def grades_lock(path: Path):
    """Hold the exclusive lock of the grades CSV ``path`` (``<path>.lock``)."""
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as stream:
        fcntl.flock(stream.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(stream.fileno(), fcntl.LOCK_UN)


def save_grade(path: str | Path, *, expnum: int, grade: str, comment: str, graded_by: str,
               date: datetime | None = None) -> str | None:
    """Set the grade of ``expnum`` in the grades CSV; return its previous grade (None if none).

    Raises
    ------
    ValueError
        If the grade is not one of :data:`spica.registry.GRADES`, or the CSV is unreadable.
    """
    grade = grade.strip().upper()
    if grade not in GRADES:
        raise ValueError(f"grade must be one of {', '.join(GRADES)}, not {grade!r}")
    path = Path(path)
    stamp = (date or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with grades_lock(path):
        current = read_grades(path)
        previous = None
        rows = []
        for row in current.to_dict("records"):
            if int(row["expnum"]) == int(expnum):
                previous = row["grade"]
                continue
            rows.append({k: row[k] for k in GRADE_COLUMNS})
        rows.append({"expnum": int(expnum), "grade": grade, "comment": " ".join(comment.split()),
                     "graded_by": graded_by, "date": stamp})
        rows.sort(key=lambda r: int(r["expnum"]))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, GRADE_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(handle, "w") as stream:
                stream.write(buffer.getvalue())
                stream.flush()
                os.fsync(stream.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return previous
