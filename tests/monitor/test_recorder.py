"""Snakemake log records -> the events table -> in_progress (spica.monitor), without Snakemake.

The records carry the fields Snakemake 9 gives them (snakemake/jobs.py
``log_info``, ``get_log_error_info``; scheduling/job_scheduler.py); the SLURM
submission message is the one of snakemake-executor-plugin-slurm 2.x.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest
import yaml

from spica import paths
from spica.monitor import (EventRecorder, MonitorError, in_progress, monitor_config, read_events,
                           run_progress, runs)
from spica.release.planning import plan_files

STACK = "CFHTLS_D_r_141927+524056_T0002"
OTHER = "CFHTLS_D_g_141927+524056_T0002"
SOLUTION = "CFHTLS_D_141927+524056_T0002_1a2b3c4d"


def job_info(jobid: int, rule: str, **wildcards: str) -> dict:
    return {"event": "job_info", "jobid": jobid, "rule_name": rule, "wildcards": wildcards,
            "msg": f" Rule: {rule}, Jobid: {jobid}"}


def finished(jobid: int) -> dict:
    return {"event": "job_finished", "job_id": jobid}


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'ops' / 'events.sqlite'}"


def test_a_run_from_start_to_end(url, tmp_path):
    recorder = EventRecorder(url, host="node1")
    recorder.handle({"event": "workflow_started", "configfiles": []})
    assert in_progress(url) == []
    recorder.handle({"event": "job_started", "jobs": [3]})
    recorder.handle(job_info(3, "coadd_stack", release="T0002", stem=STACK))
    recorder.handle(job_info(4, "check_exposure", expnum="751000"))
    recorder.handle(job_info(5, "plan_release", release="T0002"))

    now = in_progress(url)
    assert [p["product"] for p in now] == [STACK, "751000p"]
    assert now[0]["current"] == "Running swarp" and now[0]["host"] == "node1"
    assert set(now[0]) == {"product", "host", "steps", "current"}
    assert now[1]["steps"][0] == {"label": "Checking the exposure (integrity), its .ahead header",
                                  "rule": "check_exposure", "state": "running"}

    recorder.handle(finished(4))
    recorder.handle({"event": "progress", "done": 1, "total": 3})
    assert [p["product"] for p in in_progress(url)] == [STACK]   # 751000p runs no job now
    recorder.handle(finished(3))
    recorder.handle(finished(5))
    recorder.handle({"event": "progress", "done": 3, "total": 3})
    recorder.close()
    recorder.close()   # Snakemake may close twice: one end

    assert in_progress(url) == []
    after = {p["product"]: p for p in run_progress(url)}
    assert after[STACK]["steps"][1] == {"label": "Running swarp", "rule": "coadd_stack", "state": "done"}
    assert after["751000p"]["steps"][0]["state"] == "done"
    rows = read_events(url)
    assert [r["kind"] for r in rows].count("run_finished") == 1
    assert runs(rows)[recorder.run_id]["status"] == "success"
    by_job = {r["job_id"]: r for r in rows if r["kind"] == "job_started"}
    assert by_job[3]["wildcards"] == {"release": "T0002", "stem": STACK}
    assert by_job[5]["product"] is None and by_job[5]["rule"] == "plan_release"


def test_a_failed_job_and_the_run_status(url):
    recorder = EventRecorder(url)
    recorder.handle({"event": "workflow_started", "configfiles": []})
    recorder.handle(job_info(1, "reduce_exposure", expnum="751000"))
    recorder.handle({"event": "job_error", "jobid": 1, "rule_name": "reduce_exposure"})
    recorder.close()
    (entry,) = run_progress(url)
    assert [s["state"] for s in entry["steps"]] == ["done", "failed"]  # check, the one step 1 job
    assert runs(read_events(url))[recorder.run_id]["status"] == "failed"


def test_slurm_job_ids_of_jobs_and_group_jobs(url):
    class Job:  # what a group_info record carries: snakemake.jobs.Job objects
        def __init__(self, jobid: int, uuid: str) -> None:
            self.jobid, self._uuid = jobid, uuid

        def uuid(self) -> str:
            return self._uuid

    recorder = EventRecorder(url, host="login1")
    recorder.handle({"event": "workflow_started", "configfiles": []})
    recorder.handle(job_info(8, "coadd_stack", release="T0002", stem=STACK))
    recorder.handle({"msg": "Job 8 has been submitted with SLURM jobid 4242 (log: /x/4242.log)."})
    members = [Job(11, "aaaa-1"), Job(12, "bbbb-2")]
    recorder.handle({"event": "group_info", "group_id": "step1", "jobs": members})
    recorder.handle(job_info(11, "check_exposure", expnum="751000"))
    recorder.handle(job_info(12, "reduce_exposure", expnum="751000"))
    recorder.handle({"msg": "Job bbbb-2 has been submitted with SLURM jobid 4243 (log: x)."})
    recorder.handle({"msg": "Job 99 was not submitted with SLURM"})
    rows = [r for r in read_events(url) if r["kind"] == "job_submitted"]
    assert [(r["job_id"], r["rule"], r["product"], r["slurm_job_id"]) for r in rows] == [
        (8, "coadd_stack", STACK, "4242"), (11, "check_exposure", "751000p", "4243"),
        (12, "reduce_exposure", "751000p", "4243")]
    hosts = {p["product"]: p["host"] for p in in_progress(url)}
    assert hosts == {STACK: "login1, SLURM job 4242", "751000p": "login1, SLURM job 4243"}


def test_the_url_and_results_come_from_the_config_files(tmp_path, monkeypatch):
    """Without --logger-spica-url: monitor.url of the run's config files, merged as
    Snakemake merges them (the Snakefile's own files first, then the --configfile
    files in their order, the last winning), whatever order Snakemake lists them in."""
    from tests.conftest import REPO

    monkeypatch.chdir(tmp_path)
    own = REPO / "config" / "config.yaml"
    demo_url = yaml.safe_load(own.read_text())["monitor"]["url"]
    (tmp_path / "cli.yaml").write_text("monitor: {url: 'sqlite:///cli/events.sqlite'}\n")
    (tmp_path / "config.yaml").write_text(
        "results: out\nmonitor: {url: 'sqlite:///out/operations/events.sqlite'}\n")
    assert monitor_config(["config.yaml"]) == ("sqlite:///out/operations/events.sqlite", "out")
    assert monitor_config(["config.yaml", "cli.yaml", "missing.yaml"]) == (
        "sqlite:///cli/events.sqlite", "out")
    # `--configfile config/config.yaml my.yaml`, listed before the Snakefile's own files
    assert monitor_config([own, "cli.yaml", own])[0] == "sqlite:///cli/events.sqlite"
    assert monitor_config(["cli.yaml", own])[0] == "sqlite:///cli/events.sqlite"
    assert monitor_config([own]) == (demo_url, "results")
    # the plan's solutions give a SCAMP job to every product sharing it
    lists = plan_files(paths.release_path("out", "T0002", "plan").parent, "T0002")["lists"]
    lists.parent.mkdir(parents=True)
    lists.write_text(json.dumps({"release": "T0002", "solutions": {SOLUTION: [STACK, OTHER]}}))
    recorder = EventRecorder()
    recorder.handle({"event": "workflow_started", "configfiles": ["config.yaml"]})
    recorder.handle(job_info(2, "solve_astrometry", release="T0002", solution=SOLUTION))
    url = "sqlite:///out/operations/events.sqlite"
    assert [(p["product"], p["current"]) for p in in_progress(url)] == [
        (OTHER, "Scamp running"), (STACK, "Scamp running")]
    recorder.close()


def test_a_bad_database_never_stops_the_run(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    recorder = EventRecorder(f"sqlite:///{blocker}/events.sqlite")
    recorder.handle({"event": "workflow_started", "configfiles": []})
    recorder.handle(job_info(1, "check_exposure", expnum="751000"))
    recorder.close()
    assert recorder.disabled
    assert capsys.readouterr().err.count("SPICA monitor: job events not recorded") == 1
    # records without the fields Snakemake 9 gives: skipped, one line said
    odd = EventRecorder(f"sqlite:///{tmp_path / 'odd.sqlite'}")
    odd.handle({"event": "workflow_started", "configfiles": []})
    odd.handle({"event": "job_info", "rule_name": "coadd_stack"})
    odd.handle({"event": "job_finished", "job_id": "x"})
    odd.handle(job_info(1, "check_exposure", expnum="751000"))
    assert capsys.readouterr().err.count("SPICA monitor: a job_info record skipped (KeyError") == 1
    assert [p["product"] for p in in_progress(f"sqlite:///{tmp_path / 'odd.sqlite'}")] == ["751000p"]
    # no URL at all (no monitor key in the config): nothing written, nothing raised
    quiet = EventRecorder()
    quiet.handle({"event": "workflow_started", "configfiles": []})
    quiet.handle(job_info(1, "check_exposure", expnum="751000"))
    quiet.close()


def test_reading_bad_or_missing_databases(tmp_path):
    assert in_progress(f"sqlite:///{tmp_path / 'none.sqlite'}") == []
    assert not (tmp_path / "none.sqlite").exists()   # a read creates nothing
    assert run_progress(f"sqlite:///{tmp_path / 'none.sqlite'}") == []
    with pytest.raises(MonitorError, match="not a database URL"):
        in_progress("not a url")
    with pytest.raises(MonitorError):
        in_progress("nosuchdialect://host/db")


def test_a_killed_run_is_not_in_progress(url):
    """Snakemake killed (no run_finished): its jobs stop showing once its process is gone."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    recorder = EventRecorder(url, pid=int(dead.stdout), host=platform.node())
    recorder.handle({"event": "workflow_started", "configfiles": []})
    recorder.handle(job_info(1, "coadd_stack", release="T0002", stem=STACK))
    assert in_progress(url) == []
    (entry,) = run_progress(url)
    assert entry["current"] is None
    assert entry["steps"][1] == {"label": "Running swarp", "rule": "coadd_stack", "state": "failed"}
    assert runs(read_events(url))[recorder.run_id]["status"] == "killed"
    # the same events from another host's Snakemake: it cannot be checked, it shows
    other = EventRecorder(url, pid=int(dead.stdout), host="elsewhere")
    other.handle({"event": "workflow_started", "configfiles": []})
    other.handle(job_info(1, "coadd_stack", release="T0002", stem=STACK))
    assert [p["host"] for p in in_progress(url)] == ["elsewhere"]
