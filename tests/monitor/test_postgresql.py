"""The events database by URL on PostgreSQL (``monitor.url: postgresql://...``).

A fresh database on the session's throwaway PostgreSQL server
(``postgres_cluster`` in tests/conftest.py: initdb, pg_ctl as the ``postgres``
user, a Unix socket in a scratch folder, no TCP), started and stopped by the
tests; skipped when the binaries or the user are missing.
"""

from __future__ import annotations


import pytest

from spica.monitor import EventRecorder, MonitorError, in_progress, run_progress

STACK = "CFHTLS_D_r_141927+524056_T0002"


@pytest.fixture
def postgres_url(postgres_cluster):
    """``postgresql://`` URL of a fresh database ``spica`` on the session's server (tests/conftest.py)."""
    return postgres_cluster("spica")


def test_events_on_postgresql(postgres_url):
    assert in_progress(postgres_url) == []   # table not made yet: nothing running
    recorder = EventRecorder(postgres_url, host="node1")
    recorder.handle({"event": "workflow_started", "configfiles": []})
    recorder.handle({"event": "job_info", "jobid": 4, "rule_name": "extract_stack_catalogue",
                     "wildcards": {"release": "T0002", "stem": STACK}})
    (entry,) = in_progress(postgres_url)
    assert (entry["product"], entry["host"]) == (STACK, "node1")
    assert entry["current"] == "Running sextractor on stack image, writing the provenance"
    recorder.handle({"event": "job_finished", "job_id": 4})
    recorder.handle({"event": "progress", "done": 1, "total": 1})
    recorder.close()
    assert not recorder.disabled
    assert in_progress(postgres_url) == []
    (after,) = run_progress(postgres_url)
    assert {s["rule"]: s["state"] for s in after["steps"]}["extract_stack_catalogue"] == "done"


def test_an_unreachable_server_is_a_named_error(tmp_path):
    with pytest.raises(MonitorError, match="job-events database"):
        in_progress(f"postgresql://nobody@/spica?host={tmp_path}&port=1")
