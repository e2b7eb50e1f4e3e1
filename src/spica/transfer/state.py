"""The transfer records: arrivals, deliveries and the files sent, in the registry database.

They live in the registry (``registry.url``: SQLite or PostgreSQL, opened by
:func:`spica.registry.open_database`), in tables of their own that the
registry rebuild (rule ``build_registry``, which drops and rewrites only
``exposures``, ``ccds`` and ``quarantine``) never touches. A restarted
watcher or transfer resumes from them, and the operation interface reads
them (:func:`sent_files`, the "Sent to CADC" column; :func:`arrivals`).

The transfer commands leave ``<results>/transfer/registry.url`` (mode 0600,
:func:`state_path`): it names the database holding the records of that
results tree, so a reader given only the results tree (the operation
interface, SkyWatcher) finds them; without it, ``<results>/registry.sqlite``
(the default ``registry.url``) is read. The records of an older SPICA,
``<results>/transfer/transfer.sqlite``, are imported once by the first
transfer command (the file is then renamed ``transfer.sqlite.imported``);
until then the readers read it as it is.

Tables
------
``arrivals``
    One row per file taken from the incoming area: ``file``, ``expnum``,
    ``size``, ``sha256``, ``arrived`` (UTC, ISO 8601), ``how`` (``checksum``
    or ``settled``), ``step1`` (``pending``, ``done`` or ``failed``) and
    ``step1_at``.
``deliveries``
    One row per delivery folder: ``delivery`` (its path under the staging
    area, e.g. ``step1/751000p``, ``step1/751000p_v2`` for a rerun step 1,
    ``T0002/CFHTLS_D_r_141927+524056_T0002``), ``area`` (``main`` or
    ``pi/<RUNID>``), ``kind`` (``step1`` or ``release``), ``product``,
    ``release``, ``release_date``, ``runid``, ``status`` (``staged``,
    ``sent``, ``resend``, ``superseded``: a damaged copy whose products were
    rerun since), ``staged_at``, ``sent_at``, ``superseded_by`` (the later
    release whose product replaces it, or the later delivery of a rerun
    step 1).
``files``
    One row per delivered file: ``delivery``, ``file`` (relative to the
    delivery folder), ``size``, ``sha256``, ``product``, ``release``,
    ``release_date``, ``staged_at``, ``sent_at`` (verified at the
    destination), ``purged_at`` (removed from staging), and the product it
    was made from: ``source`` (path), ``source_size``, ``source_mtime_ns``,
    ``source_sha256`` (how a rerun step 1 is recognised).
``incoming_seen``
    Incoming files not yet taken: the size and modification time last seen
    and since when they have been unchanged (the settle test).
"""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from sqlalchemy import MetaData

    from spica.transfer.settings import TransferSettings

__all__ = ["STATE_FILE", "LEGACY_FILE", "TABLES", "Records", "records_schema", "records_url", "state_path",
           "connect", "utc_now", "sent_files", "arrivals", "deliveries"]

log = logging.getLogger("spica.transfer")

#: The locator of the records (the registry URL holding them), relative to the results tree.
STATE_FILE = Path("transfer") / "registry.url"
#: Where an older SPICA kept the records (imported once, then renamed ``.imported``).
LEGACY_FILE = Path("transfer") / "transfer.sqlite"
#: The transfer tables of the registry database.
TABLES = ("arrivals", "deliveries", "files", "incoming_seen")



@functools.cache
def records_schema() -> MetaData:
    """The transfer tables (:data:`TABLES`) as SQLAlchemy ``Table`` definitions."""
    from sqlalchemy import BigInteger, Column, Float, MetaData, Table, Text

    def text(*names: str) -> list[Column]:
        return [Column(name, Text) for name in names]

    metadata = MetaData()
    Table("arrivals", metadata, Column("file", Text, primary_key=True), Column("expnum", BigInteger),
          Column("size", BigInteger), *text("sha256", "arrived", "how", "step1", "step1_at"))
    Table("deliveries", metadata, Column("delivery", Text, primary_key=True),
          *text("area", "kind", "product", "release", "release_date", "runid", "status", "staged_at",
                "sent_at", "superseded_by"))
    Table("files", metadata, Column("delivery", Text, primary_key=True), Column("file", Text, primary_key=True),
          Column("size", BigInteger), *text("sha256", "product", "release", "release_date", "staged_at",
                                            "sent_at", "purged_at", "source"),
          Column("source_size", BigInteger), Column("source_mtime_ns", BigInteger), Column("source_sha256", Text))
    Table("incoming_seen", metadata, Column("file", Text, primary_key=True), Column("size", BigInteger),
          Column("mtime_ns", BigInteger), Column("since", Float))
    return metadata


def state_path(results: str | Path) -> Path:
    """The file that shows a results tree has transfer records (present once a transfer command
    ran): the locator, or an older SPICA's ``transfer.sqlite`` not imported yet."""
    locator, legacy = Path(results) / STATE_FILE, Path(results) / LEGACY_FILE
    return legacy if legacy.is_file() and not locator.is_file() else locator


def _results_and_url(where: TransferSettings | str | Path) -> tuple[Path, str | None]:
    results = getattr(where, "results", None)
    if results is not None:
        return Path(results), where.registry_url
    return Path(where), None


def records_url(where: TransferSettings | str | Path) -> str:
    """The database holding the transfer records: the settings' ``registry.url``; for a results
    tree, the URL its locator names (:func:`state_path`), else ``sqlite:///<results>/registry.sqlite``."""
    results, url = _results_and_url(where)
    if url is not None:
        return url
    locator = Path(results) / STATE_FILE
    try:
        named = locator.read_text().strip()
    except OSError:
        named = ""
    return named or f"sqlite:///{Path(results).resolve() / 'registry.sqlite'}"


class Records:
    """A transaction on the transfer tables (what :func:`connect` yields).

    ``execute(sql, params)`` takes SQL with ``?`` placeholders and a sequence
    of values (or ``:name`` placeholders and a mapping), on SQLite and
    PostgreSQL alike; rows come back as mappings (``row["file"]``).
    """

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    @staticmethod
    def _bind(sql: str, params: Sequence[Any] | Mapping[str, Any] | None) -> tuple[Any, dict]:
        from sqlalchemy import text

        if params is None or isinstance(params, Mapping):
            return text(sql), dict(params or {})
        parts = sql.split("?")
        if len(parts) - 1 != len(params):
            raise ValueError(f"{len(parts) - 1} placeholders, {len(params)} values: {sql}")
        named = parts[0] + "".join(f":p{i}{part}" for i, part in enumerate(parts[1:]))
        return text(named), {f"p{i}": value for i, value in enumerate(params)}

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None) -> Any:
        """Run one statement; a query's rows are mappings."""
        statement, bound = self._bind(sql, params)
        result = self.connection.execute(statement, bound)
        return result.mappings() if result.returns_rows else result

    def executemany(self, sql: str, rows: Iterable[Sequence[Any] | Mapping[str, Any]]) -> None:
        """Run one statement for each row of values."""
        rows = list(rows)
        if rows:
            statement, _ = self._bind(sql, rows[0])
            self.connection.execute(statement, [self._bind(sql, row)[1] for row in rows])

    def commit(self) -> None:
        """Commit what is done so far (a crash from here on keeps it)."""
        self.connection.commit()


def _engine(url: str):
    from spica.registry import database_url, open_database

    options = {"connect_args": {"timeout": 60}} if database_url(url).get_backend_name() == "sqlite" else {}
    return open_database(url, **options)


def _write_locator(results: Path, url: str) -> None:
    locator = results / STATE_FILE
    locator.parent.mkdir(parents=True, exist_ok=True)
    try:
        if locator.read_text().strip() == url:
            return
    except OSError:
        pass
    partial = locator.with_name(f".{locator.name}.{os.getpid()}")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it may hold a password
    with os.fdopen(descriptor, "w") as handle:
        handle.write(url + "\n")
    os.replace(partial, locator)


def _import_legacy(results: Path, records: Records) -> None:
    """Copy the rows of ``<results>/transfer/transfer.sqlite`` the registry lacks; rename the file."""
    legacy = results / LEGACY_FILE
    if not legacy.is_file():
        return
    renames = {"seen": "incoming_seen"}
    counts = {}
    with closing(sqlite3.connect(legacy, timeout=60)) as old:
        present = {row[0] for row in old.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for old_name in ("arrivals", "deliveries", "files", "seen"):
            if old_name not in present:
                continue
            name = renames.get(old_name, old_name)
            table = records_schema().tables[name]
            keys = [column.name for column in table.primary_key.columns]
            frame = pd.read_sql_query(f"SELECT * FROM {old_name}", old)
            frame = frame[[column for column in frame.columns if column in table.columns]]
            have = pd.read_sql_query(f"SELECT {', '.join(keys)} FROM {name}", records.connection)
            known = set(map(tuple, have[keys].astype(str).to_numpy()))
            new = frame[[tuple(key) not in known for key in frame[keys].astype(str).to_numpy()]]
            rows = [{k: (None if pd.isna(v) else v.item() if hasattr(v, "item") else v) for k, v in row.items()}
                    for row in new.to_dict("records")]
            if rows:
                records.connection.execute(table.insert(), rows)
            counts[name] = len(rows)
    records.commit()
    try:
        os.replace(legacy, legacy.with_name(legacy.name + ".imported"))
    except FileNotFoundError:  # another process imported it at the same time
        pass
    log.info("imported the transfer records of %s into the registry: %s", legacy, counts)


@contextmanager
def connect(where: TransferSettings | str | Path) -> Iterator[Records]:
    """Open the transfer records (creating their tables if needed); commit on success, roll back on error.

    Parameters
    ----------
    where
        The transfer settings (their ``registry.url``; the locator is
        written and older records imported), or a results tree (the database
        its locator names, :func:`records_url`).
    """
    results, _ = _results_and_url(where)
    url = records_url(where)
    (results / "transfer").mkdir(parents=True, exist_ok=True)
    engine = _engine(url)
    try:
        with engine.connect() as connection:
            records = Records(connection)
            try:
                records_schema().create_all(connection, checkfirst=True)
                connection.commit()
                _import_legacy(results, records)
                if getattr(where, "results", None) is not None:
                    _write_locator(results, url)
                yield records
                connection.commit()
            except BaseException:
                connection.rollback()
                raise
    finally:
        engine.dispose()


def utc_now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _columns(table: str, extra: Sequence[str] = ()) -> list[str]:
    return [column.name for column in records_schema().tables[table].columns] + list(extra)


def _table(where: TransferSettings | str | Path, query: str, columns: list[str]) -> pd.DataFrame:
    """Run a read-only query on the records; an empty frame when there are none (nothing is created)."""
    from sqlalchemy import inspect

    from spica.registry import sqlite_file

    results, _ = _results_and_url(where)
    legacy = results / LEGACY_FILE
    if legacy.is_file():  # not imported yet: read as it is
        with closing(sqlite3.connect(f"file:{legacy}?mode=ro", uri=True, timeout=60)) as old:
            return pd.read_sql_query(query.replace("incoming_seen", "seen"), old)
    url = records_url(where)
    database = sqlite_file(url)
    if database is not None and not database.is_file():
        return pd.DataFrame(columns=columns)
    engine = _engine(url)
    try:
        with engine.connect() as connection:
            names = set(inspect(connection).get_table_names())
            if not {"arrivals", "deliveries", "files"} <= names:
                return pd.DataFrame(columns=columns)
            return pd.read_sql_query(query, connection)
    finally:
        engine.dispose()


def sent_files(where: TransferSettings | str | Path) -> pd.DataFrame:
    """Every delivered file and whether it is sent (the interface's "Sent to CADC" column).

    Parameters
    ----------
    where
        The results tree (``results:`` of the configuration), or the transfer settings.

    Returns
    -------
    DataFrame
        One row per file of every delivery: ``delivery``, ``file``, ``size``,
        ``sha256``, ``product``, ``release``, ``release_date``, ``staged_at``,
        ``sent_at`` (UTC time its copy at the destination was verified; empty
        until then), ``purged_at``, ``sent`` (bool), ``superseded_by``,
        ``area``. Empty (with these columns) before anything was staged.
    """
    keep = ["delivery", "file", "size", "sha256", "product", "release", "release_date", "staged_at",
            "sent_at", "purged_at"]
    frame = _table(where, f"SELECT {', '.join('f.' + c for c in keep)}, d.superseded_by, d.area FROM files f "
                          "JOIN deliveries d ON d.delivery = f.delivery ORDER BY f.delivery, f.file",
                   [*keep, "superseded_by", "area"])
    frame.insert(frame.columns.get_loc("purged_at") + 1, "sent", frame["sent_at"].notna().astype(bool))
    return frame


def arrivals(where: TransferSettings | str | Path) -> pd.DataFrame:
    """Files the watcher took from the incoming area, with their arrival time (UTC) and step 1 state."""
    return _table(where, "SELECT * FROM arrivals ORDER BY arrived, file", _columns("arrivals"))


def deliveries(where: TransferSettings | str | Path) -> pd.DataFrame:
    """Every delivery: status, release, release date, PI area, superseded by."""
    return _table(where, "SELECT * FROM deliveries ORDER BY delivery", _columns("deliveries"))
