"""Snakemake's log records -> rows of the job-events table.

Snakemake (>= 9) hands every log record to the logger plugins named with
``--logger``; the records of interest carry an ``event`` attribute
(:class:`snakemake_interface_logger_plugins.common.LogEvent`) and structured
fields: ``workflow_started`` (host, config files), ``job_info`` (job id, rule,
wildcards: the job starts), ``job_finished`` (job id), ``job_error`` (job id,
rule), ``progress`` (done, total). :class:`EventRecorder` turns them into rows
of :data:`spica.monitor.store.EVENTS`; the thin plugin
:mod:`snakemake_logger_plugin_spica` only passes it ``record.__dict__``.

The SLURM executor plugin (2.x) reports a submission only in the text of an
info record, "Job 12 has been submitted with SLURM jobid 3456 (log: ...)";
that one message is matched (:data:`SLURM_SUBMITTED_RE`) to fill
``slurm_job_id``; everything else comes from structured fields.
"""

from __future__ import annotations

import os
import platform
import re
import sys
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from spica import paths
from spica.monitor.progress import products_of
from spica.monitor.store import MonitorError, engine_for, write_events

__all__ = ["SLURM_SUBMITTED_RE", "monitor_config", "EventRecorder"]

#: The SLURM executor plugin's submission message (snakemake-executor-plugin-slurm 2.x).
#: A job is named by its number, a group job (``group-components``) by the uuid of its
#: last member, which ``group_info`` records let us map to the group's jobs.
SLURM_SUBMITTED_RE = re.compile(
    r"Job (?P<job>[\w-]+) has been submitted with SLURM jobid (?P<slurm>[\w.]+)")


def monitor_config(configfiles: Sequence[str | os.PathLike]) -> tuple[str | None, str | None]:
    """``(monitor.url, results)`` from a run's config files.

    Snakemake loads the Snakefile's ``configfile:`` files (this checkout's
    ``config/config.yaml`` and ``config/releases.yaml``), then the
    ``--configfile`` files in the order given, each later file winning. The
    list it reports puts the command-line files first, so the order of the
    list alone cannot say which win: the Snakefile's own files are recognised
    by their place (``config/`` beside ``src/spica``) and come first, the
    others follow in their order, and the last file that sets a key gives it.
    Unreadable files are skipped.
    """
    defaults = Path(__file__).resolve().parents[3] / "config"
    names = [Path(name) for name in configfiles]
    own = [name for name in names if name.resolve().parent == defaults]
    ordered = own + [name for name in names if name.resolve().parent != defaults]
    url = results = None
    for name in ordered:
        try:
            data = yaml.safe_load(name.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        if not isinstance(data, dict):
            continue
        monitor = data.get("monitor")
        if isinstance(monitor, dict) and isinstance(monitor.get("url"), str):
            url = monitor["url"]
        if isinstance(data.get("results"), str):
            results = data["results"]
    return url, results


def _solutions(results: str | None, release: str) -> dict[str, list[str]]:
    """The SCAMP solutions of a release's plan (id -> product stems), {} if unreadable."""
    import json

    from spica.release.planning import plan_files

    if results is None or not re.fullmatch(paths.WILDCARD_CONSTRAINTS["release"], release):
        return {}
    folder = paths.release_path(results, release, "plan").parent
    try:
        lists = json.loads(plan_files(folder, release)["lists"].read_text())
        return {str(k): [str(s) for s in v] for k, v in lists.get("solutions", {}).items()}
    except (OSError, ValueError, AttributeError):
        return {}


class EventRecorder:
    """Writes the job events of one Snakemake run.

    Parameters
    ----------
    url
        Database URL; None: ``monitor.url`` of the run's config files, read
        when the workflow starts (:func:`monitor_config`).
    run_id, host, pid
        The run's identity (defaults: a new uuid4, this host, this process).

    Notes
    -----
    A database error is reported once on stderr and recording stops: the
    run itself never fails because of its monitor.
    """

    def __init__(self, url: str | None = None, *, run_id: str | None = None,
                 host: str | None = None, pid: int | None = None) -> None:
        self.url = url
        self.run_id = run_id or str(uuid.uuid4())
        self.host = host or platform.node()
        self.pid = os.getpid() if pid is None else pid
        self.results: str | None = None
        self.jobs: dict[int, dict] = {}
        self.groups: dict[str, list[int]] = {}  # a member's uuid -> the group's job ids
        self.done = self.total = 0
        self.failed: set[int] = set()  # jobs whose latest attempt failed
        self.started = self.closed = self.disabled = self.warned = False
        self._engine = None

    # -- writing -----------------------------------------------------------------
    def _write(self, rows: list[dict]) -> None:
        if self.disabled or not rows or self.url is None:
            return
        try:
            if self._engine is None:
                self._engine = engine_for(self.url)
            write_events(self._engine, [{"run_id": self.run_id, "host": self.host, **r} for r in rows])
        except Exception as err:  # noqa: BLE001 - the monitor never stops a run
            self.disabled = True
            message = err if isinstance(err, MonitorError) else f"{type(err).__name__}: {err}"
            print(f"SPICA monitor: job events not recorded any more ({message})", file=sys.stderr)

    def _job_rows(self, job_id: int, kind: str, status: str, **extra: object) -> list[dict]:
        job = self.jobs.get(job_id, {"rule": None, "wildcards": {}, "products": []})
        base = {"kind": kind, "job_id": job_id, "rule": job["rule"], "wildcards": job["wildcards"],
                "status": status, **extra}
        if not job["products"]:
            return [{**base, "product": None, "product_kind": None}]
        return [{**base, "product": name, "product_kind": kind_}
                for kind_, name in job["products"]]

    def _start(self, configfiles: Sequence[str] = ()) -> None:
        if self.started:
            return
        self.started = True
        url, self.results = monitor_config(configfiles)
        if self.url is None:
            self.url = url
        self._write([{"kind": "run_started", "pid": self.pid, "status": "running"}])

    # -- Snakemake records ---------------------------------------------------------
    def handle(self, record: Mapping[str, object]) -> None:
        """Take one log record's attributes (``record.__dict__``).

        A record whose fields are not what Snakemake 9 gives is skipped with one
        line on stderr (the first time): it never stops the run.
        """
        try:
            self._handle(record)
        except (KeyError, TypeError, ValueError) as err:
            if not self.warned:
                self.warned = True
                print(f"SPICA monitor: a {record.get('event') or 'log'} record skipped "
                      f"({type(err).__name__}: {err})", file=sys.stderr)

    def _handle(self, record: Mapping[str, object]) -> None:
        event = str(record.get("event") or "")
        if event == "workflow_started":
            self._start([str(f) for f in record.get("configfiles") or ()])
        elif event == "job_info":
            self._start()
            job_id = int(record["jobid"])
            wildcards = {str(k): str(v) for k, v in dict(record.get("wildcards") or {}).items()}
            solutions = (_solutions(self.results, wildcards.get("release", ""))
                         if "solution" in wildcards else None)
            self.jobs[job_id] = {"rule": str(record.get("rule_name") or ""), "wildcards": wildcards,
                                 "products": products_of(wildcards, solutions)}
            self._write(self._job_rows(job_id, "job_started", "running"))
        elif event == "job_finished":
            self.failed.discard(int(record["job_id"]))   # a retry that worked
            self._write(self._job_rows(int(record["job_id"]), "job_finished", "done"))
        elif event == "job_error":
            job_id = int(record["jobid"])
            self.failed.add(job_id)
            self.jobs.setdefault(job_id, {"rule": str(record.get("rule_name") or ""),
                                          "wildcards": {}, "products": []})
            self._write(self._job_rows(job_id, "job_failed", "failed"))
        elif event == "group_info":
            members = list(record.get("jobs") or ())
            ids = [int(j.jobid) for j in members if isinstance(getattr(j, "jobid", None), int)]
            for job in members:
                uuid_of = getattr(job, "uuid", None)
                if callable(uuid_of):
                    self.groups[str(uuid_of())] = ids
        elif event == "progress":
            self.done, self.total = int(record.get("done") or 0), int(record.get("total") or 0)
        elif not event:
            match = SLURM_SUBMITTED_RE.match(str(record.get("msg") or ""))
            if match:
                job = match["job"]
                ids = [int(job)] if job.isdigit() else self.groups.get(job, [])
                self._write([row for job_id in ids
                             for row in self._job_rows(job_id, "job_submitted", "running",
                                                       slurm_job_id=match["slurm"])])

    def close(self) -> None:
        """Write the end of the run: ``success`` (every job done), ``failed``
        (a job failed) or ``incomplete`` (stopped before the end)."""
        if self.closed or not self.started:
            return
        self.closed = True
        finished = self.done >= self.total if self.total else not self.jobs  # or nothing to do
        status = "failed" if self.failed else "success" if finished else "incomplete"
        self._write([{"kind": "run_finished", "status": status}])
        if self._engine is not None:
            self._engine.dispose()
