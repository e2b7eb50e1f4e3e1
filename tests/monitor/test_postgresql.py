"""The events database by URL on PostgreSQL (``monitor.url: postgresql://...``).

A throwaway PostgreSQL server (Debian's ``postgresql``: initdb, pg_ctl as the
``postgres`` user, a Unix socket in a scratch folder, no TCP) is started and
stopped by the test; skipped when the binaries or the user are missing.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from spica.monitor import EventRecorder, MonitorError, in_progress, run_progress

STACK = "CFHTLS_D_r_141927+524056_T0002"


def _bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


@pytest.fixture
def postgres_url():
    binaries = _bin()
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres user (Debian package postgresql)")
    if binaries is None or os.geteuid() != 0 or not shutil.which("runuser"):
        pytest.skip("PostgreSQL server binaries, root and runuser needed to start a scratch server")
    base = Path(tempfile.mkdtemp(prefix="spica-pg-"))
    base.chmod(0o755)
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    shutil.chown(base, "postgres")
    shutil.chown(sock, "postgres")

    def as_postgres(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run(["runuser", "-u", "postgres", "--", *command], capture_output=True,
                              text=True, check=False, timeout=60)

    started = False
    try:
        run = as_postgres(str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                          "--no-sync")
        assert run.returncode == 0, run.stderr
        run = as_postgres(str(binaries / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w",
                          "-o", f"-c listen_addresses='' -k {sock} -p 54329 -c fsync=off", "start")
        assert run.returncode == 0, run.stderr + (base / "log").read_text()
        started = True
        run = as_postgres(str(binaries / "createdb"), "-h", str(sock), "-p", "54329", "spica")
        assert run.returncode == 0, run.stderr
        yield f"postgresql://postgres@/spica?host={sock}&port=54329"
    finally:
        if started:
            as_postgres(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


def test_events_on_postgresql(postgres_url):
    assert in_progress(postgres_url) == []   # table not made yet: nothing running
    recorder = EventRecorder(postgres_url, host="node1")
    recorder.handle({"event": "workflow_started", "configfiles": []})
    recorder.handle({"event": "job_info", "jobid": 4, "rule_name": "make_stack_thumbnails",
                     "wildcards": {"release": "T0002", "stem": STACK}})
    (entry,) = in_progress(postgres_url)
    assert (entry["product"], entry["host"], entry["current"]) == (STACK, "node1", "Creating thumbnails")
    recorder.handle({"event": "job_finished", "job_id": 4})
    recorder.handle({"event": "progress", "done": 1, "total": 1})
    recorder.close()
    assert not recorder.disabled
    assert in_progress(postgres_url) == []
    (after,) = run_progress(postgres_url)
    assert {s["rule"]: s["state"] for s in after["steps"]}["make_stack_thumbnails"] == "done"


def test_an_unreachable_server_is_a_named_error(tmp_path):
    with pytest.raises(MonitorError, match="job-events database"):
        in_progress(f"postgresql://nobody@/spica?host={tmp_path}&port=1")
