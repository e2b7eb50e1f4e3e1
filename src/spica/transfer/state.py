"""The transfer state: arrivals, deliveries and the files sent, in one SQLite file.

``<results>/transfer/transfer.sqlite`` lives in the results tree, so a
restarted watcher or transfer resumes from it, and the operation interface
reads it (:func:`sent_files`, the "Sent to CADC" column; :func:`arrivals`).

Tables
------
``seen``
    Incoming files not yet taken: the size and modification time last seen
    and since when they have been unchanged (the settle test).
``arrivals``
    One row per file taken from the incoming area: ``file``, ``expnum``,
    ``size``, ``sha256``, ``arrived`` (UTC, ISO 8601), ``step1``
    (``pending``, ``done`` or ``failed``) and ``step1_at``.
``deliveries``
    One row per delivery folder: ``delivery`` (its path under the staging
    area, e.g. ``step1/751000p``, ``T0002/CFHTLS_D_r_141927+524056_T0002``),
    ``area`` (``main`` or ``pi/<RUNID>``), ``kind`` (``step1`` or
    ``release``), ``product``, ``release``, ``release_date``, ``runid``,
    ``status`` (``staged``, ``sent``, ``resend``), ``staged_at``, ``sent_at``,
    ``superseded_by`` (the later release whose product replaces it).
``files``
    One row per delivered file: ``delivery``, ``file`` (relative to the
    delivery folder), ``size``, ``sha256``, ``product``, ``release``,
    ``release_date``, ``staged_at``, ``sent_at`` (verified at the
    destination), ``purged_at`` (removed from staging).
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Iterator

import pandas as pd

__all__ = ["STATE_FILE", "state_path", "connect", "utc_now", "sent_files", "arrivals", "deliveries"]

#: The state database, relative to the results tree.
STATE_FILE = Path("transfer") / "transfer.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    file TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, since REAL);
CREATE TABLE IF NOT EXISTS arrivals (
    file TEXT PRIMARY KEY, expnum INTEGER, size INTEGER, sha256 TEXT, arrived TEXT,
    how TEXT, step1 TEXT, step1_at TEXT);
CREATE TABLE IF NOT EXISTS deliveries (
    delivery TEXT PRIMARY KEY, area TEXT, kind TEXT, product TEXT, release TEXT,
    release_date TEXT, runid TEXT, status TEXT, staged_at TEXT, sent_at TEXT,
    superseded_by TEXT);
CREATE TABLE IF NOT EXISTS files (
    delivery TEXT, file TEXT, size INTEGER, sha256 TEXT, product TEXT, release TEXT,
    release_date TEXT, staged_at TEXT, sent_at TEXT, purged_at TEXT,
    PRIMARY KEY (delivery, file));
"""


def state_path(results: str | Path) -> Path:
    """The state database of a results tree."""
    return Path(results) / STATE_FILE


@contextmanager
def connect(results: str | Path) -> Iterator[sqlite3.Connection]:
    """Open (creating if needed) the state database; commit on success, roll back on error."""
    path = state_path(results)
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=60)
    connection.row_factory = sqlite3.Row
    try:
        connection.executescript(_SCHEMA)
        yield connection
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    finally:
        connection.close()


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _table(results: str | Path, query: str) -> pd.DataFrame:
    with connect(results) as connection:
        return pd.read_sql_query(query, connection)


def sent_files(results: str | Path) -> pd.DataFrame:
    """Every delivered file and whether it is sent (the interface's "Sent to CADC" column).

    Parameters
    ----------
    results
        The results tree (``results:`` of the configuration).

    Returns
    -------
    DataFrame
        One row per file of every delivery: ``delivery``, ``file``, ``size``,
        ``sha256``, ``product``, ``release``, ``release_date``, ``staged_at``,
        ``sent_at`` (UTC time its copy at the destination was verified; empty
        until then), ``purged_at``, ``sent`` (bool), ``superseded_by``,
        ``area``. Empty (with these columns) before anything was staged.
    """
    frame = _table(results, "SELECT f.*, d.superseded_by, d.area FROM files f "
                            "JOIN deliveries d USING (delivery) ORDER BY f.delivery, f.file")
    frame.insert(frame.columns.get_loc("purged_at") + 1, "sent", frame["sent_at"].notna())
    return frame


def arrivals(results: str | Path) -> pd.DataFrame:
    """Files the watcher took from the incoming area, with their arrival time (UTC) and step 1 state."""
    return _table(results, "SELECT * FROM arrivals ORDER BY arrived, file")


def deliveries(results: str | Path) -> pd.DataFrame:
    """Every delivery: status, release, release date, PI area, superseded by."""
    return _table(results, "SELECT * FROM deliveries ORDER BY delivery")
