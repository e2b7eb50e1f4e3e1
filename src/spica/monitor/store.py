"""The job-events table and the reads of the in-progress view.

One table, ``job_events``, declared once (:data:`EVENTS`), in its own database
(config key ``monitor.url``, SQLite under the results tree by default): the
workflow rebuilds the registry, never this one. Snakemake's logger plugin
``spica`` (:mod:`snakemake_logger_plugin_spica`, through
:class:`spica.monitor.recorder.EventRecorder`) appends rows while a run goes;
the operation interface reads them with :func:`in_progress`.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
from collections.abc import Iterable, Mapping
from pathlib import Path

from sqlalchemy import (JSON, Column, DateTime, Integer, MetaData, String, Table, create_engine,
                        select)
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from spica.monitor.progress import progress

__all__ = [
    "MonitorError",
    "METADATA",
    "EVENTS",
    "EVENT_KINDS",
    "engine_for",
    "write_events",
    "read_events",
    "runs",
    "run_progress",
    "in_progress",
]


class MonitorError(ValueError):
    """A job-events database that cannot be used (bad URL, unreachable server)."""


#: Kinds of event rows: a run starts and ends; a job starts (Snakemake hands it
#: to its executor), is submitted to SLURM (``slurm_job_id``), finishes or fails.
EVENT_KINDS = ("run_started", "job_started", "job_submitted", "job_finished", "job_failed",
               "run_finished")

METADATA = MetaData()

#: The events table: one row per event and product (a SCAMP solution job shared
#: by two products gives two rows); jobs of no product have ``product`` NULL.
EVENTS = Table(
    "job_events",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(36), nullable=False, index=True,
           comment="one Snakemake invocation (uuid4)"),
    Column("time", DateTime(timezone=True), nullable=False, comment="UTC"),
    Column("kind", String(16), nullable=False, index=True, comment="one of EVENT_KINDS"),
    Column("job_id", Integer, comment="Snakemake's job id within the run"),
    Column("rule", String(64)),
    Column("wildcards", JSON),
    Column("product", String(64), index=True,
           comment="exposure, release product stem or chi-squared tile (spica.monitor.progress)"),
    Column("product_kind", String(16), comment="exposure, stack, image or chi2"),
    Column("host", String(128), comment="host of the Snakemake process"),
    Column("pid", Integer, comment="process id of Snakemake (run_started)"),
    Column("slurm_job_id", String(32), comment="SLURM job id, when submitted through SLURM"),
    Column("status", String(16),
           comment="running, done, failed; run_finished: success, incomplete or failed"),
)


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _parse(url: str) -> tuple[URL, Path | None]:
    """The URL (``postgresql://`` read as psycopg 3's, the driver SPICA installs) and
    the file of a SQLite URL (None for another database or in memory)."""
    from spica.registry import database_url

    try:
        parsed = database_url(url)
    except ArgumentError as err:
        raise MonitorError(f"not a database URL: {url!r} ({err})") from None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return parsed, None
    return parsed, Path(parsed.database)


def engine_for(url: str, *, create: bool = True) -> Engine | None:
    """SQLAlchemy engine of the events database, its table created if needed.

    Parameters
    ----------
    url
        SQLAlchemy URL (``sqlite:///results/logs/events.sqlite``,
        ``postgresql://user@host/db``, read with psycopg 3); a relative SQLite
        path is relative to the working directory, as the registry's.
    create
        Create the SQLite file (and its folder) and the table. Readers pass
        False: a missing SQLite file gives None.

    Raises
    ------
    MonitorError
        If ``url`` is not a database URL or the database cannot be reached.
    """
    parsed, path = _parse(url)
    if path is not None:
        if not create and not path.is_file():
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # SQLite: each write is one short transaction; a reader waits for it (timeout, s).
        # No write-ahead log: it does not work on network file systems.
        engine = create_engine(parsed, connect_args={"timeout": 30} if path is not None else {})
        if create:
            METADATA.create_all(engine)
    except (SQLAlchemyError, ImportError) as err:
        raise MonitorError(f"job-events database {url!r}: {err}") from None
    return engine


def write_events(engine: Engine, rows: Iterable[Mapping[str, object]]) -> int:
    """Append event rows (columns of :data:`EVENTS`; ``time`` defaults to now)."""
    rows = [{"time": _now(), **row} for row in rows]
    if rows:
        with engine.begin() as connection:
            connection.execute(EVENTS.insert(), rows)
    return len(rows)


def read_events(url: str, *, run_ids: Iterable[str] | None = None,
                kinds: Iterable[str] | None = None) -> list[dict]:
    """Event rows in order, all or those of some runs or kinds (empty when the
    database does not exist yet)."""
    engine = engine_for(url, create=False)
    if engine is None:
        return []
    query = select(EVENTS).order_by(EVENTS.c.id)
    if run_ids is not None:
        query = query.where(EVENTS.c.run_id.in_(list(run_ids)))
    if kinds is not None:
        query = query.where(EVENTS.c.kind.in_(list(kinds)))
    try:
        with engine.connect() as connection:
            if not engine.dialect.has_table(connection, EVENTS.name):
                return []
            return [dict(row._mapping) for row in connection.execute(query)]
    except SQLAlchemyError as err:
        raise MonitorError(f"job-events database {url!r}: {err}") from None
    finally:
        engine.dispose()


def _alive(host: object, pid: object) -> bool:
    """False only when the run's process is known dead (same host, no such pid)."""
    if host != platform.node() or not isinstance(pid, int) or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def runs(events: Iterable[Mapping[str, object]]) -> dict[str, dict]:
    """Runs seen in event rows, run id -> ``{"started", "ended", "status", "host", "active"}``.

    A run is active until its ``run_finished`` row, or until its Snakemake
    process is found dead on this host (killed: no row was written).
    """
    found: dict[str, dict] = {}
    for row in events:
        run = found.setdefault(str(row["run_id"]), {"started": row["time"], "ended": None,
                                                     "status": "running", "host": row.get("host"),
                                                     "pid": None})
        if row["kind"] == "run_started":
            run.update(started=row["time"], host=row.get("host"), pid=row.get("pid"))
        elif row["kind"] == "run_finished":
            run.update(ended=row["time"], status=row.get("status") or "finished")
    for run in found.values():
        run["active"] = run["ended"] is None and _alive(run["host"], run["pid"])
        if run["ended"] is None and not run["active"]:
            run["status"] = "killed"
    return found


def run_progress(url: str, run_id: str | None = None) -> list[dict]:
    """Steps of every product of one run, running or not (the latest run by default).

    Returns
    -------
    list of dict
        As :func:`in_progress`, plus ``"running"`` (bool) and ``"run_id"``.
    """
    known = runs(read_events(url, kinds=("run_started", "run_finished")))
    if not known:
        return []
    if run_id is None:
        run_id = max(known, key=lambda r: known[r]["started"])
    if run_id not in known:
        return []
    rows = read_events(url, run_ids=[run_id])
    return [{**entry, "run_id": run_id}
            for entry in progress(rows, run_active=known[run_id]["active"])]


def in_progress(url: str) -> list[dict]:
    """Each product with a running job, its steps and the current one.

    Parameters
    ----------
    url
        SQLAlchemy URL of the job-events database (config ``monitor.url``).

    Returns
    -------
    list of dict
        One per product that has a running job in a run still going, in order
        of its first event: ``{"product": str, "host": str, "steps": [{"label":
        str, "rule": str, "state": "done" | "running" | "pending" | "failed"}],
        "current": str | None}`` (``current``: label of the running step).
        Empty when the database does not exist yet.

    Raises
    ------
    MonitorError
        If ``url`` is not a database URL or the database cannot be read.
    """
    markers = read_events(url, kinds=("run_started", "run_finished"))
    active = sorted(run_id for run_id, run in runs(markers).items() if run["active"])
    events = read_events(url, run_ids=active) if active else []
    out = []
    for run_id in active:
        rows = [e for e in events if e["run_id"] == run_id]
        for entry in progress(rows, run_active=True):
            if entry["running"]:
                out.append({key: entry[key] for key in ("product", "host", "steps", "current")})
    return out
