"""A real Snakemake run records its jobs through the logger plugin, live.

A tiny workflow (rules named as SPICA's, ``sleep 4; touch {output}``) runs in a
subprocess with the repository's workflow profile (which sets ``logger:
[spica]``); while it runs, :func:`spica.monitor.in_progress` shows each running
product and its current step; after it, every step is done. Each job lasts 4 s
(2 s missed a step once under load 4.5, when a poll of the events database took longer).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

from snakemake_interface_logger_plugins.registry import LoggerPluginRegistry

from spica.monitor import in_progress, read_events, run_progress, runs
from tests.conftest import REPO

STACK = "CFHTLS_D_r_141927+524056_T0002"
#: The label of a stack's coadd_stack step (its calibration files, then SWarp).
STACK_JOB = "Running swarp"

SNAKEFILE = f"""
configfile: "config.yaml"

wildcard_constraints:
    expnum=r"\\d{{6,7}}",

rule all:
    input: "step1/751000p.qa", "releases/T0002/{STACK}.png"

rule check_exposure:
    output: "step1/{{expnum}}p.check"
    shell: "sleep 4; touch {{output}}"

rule reduce_exposure:
    input: "step1/{{expnum}}p.check"
    output: "step1/{{expnum}}p.qa"
    shell: "sleep 4; touch {{output}}"

rule coadd_stack:
    output: "releases/{{release}}/{{stem}}.fits"
    shell: "sleep 4; touch {{output}}"

rule assess_product_quality:
    input: "releases/{{release}}/{{stem}}.fits"
    output: "releases/{{release}}/{{stem}}.png"
    shell: "sleep 4; touch {{output}}"
"""


def test_the_plugin_is_found_by_snakemake():
    """Snakemake's registry finds ``snakemake_logger_plugin_spica`` (src/, pip install -e .)."""
    registry = LoggerPluginRegistry()
    assert registry.is_installed("spica")
    plugin = registry.get_plugin("spica")
    assert plugin.cli_prefix == "logger-spica"
    assert [f.name for f in plugin.settings_cls.__dataclass_fields__.values()] == ["url"]


def test_in_progress_while_snakemake_runs(tmp_path):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    (tmp_path / "config.yaml").write_text("monitor:\n  url: sqlite:///ops/events.sqlite\n")
    profile = tmp_path / "profiles" / "default"
    profile.mkdir(parents=True)
    shutil.copy(REPO / "profiles" / "default" / "config.yaml", profile / "config.yaml")
    url = f"sqlite:///{tmp_path / 'ops' / 'events.sqlite'}"

    snakemake = Path(sys.executable).parent / "snakemake"
    run = subprocess.Popen([str(snakemake), "--cores", "2"], cwd=tmp_path,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: dict[tuple[str, str], list[dict]] = {}
    try:
        deadline = time.monotonic() + 60
        while run.poll() is None and time.monotonic() < deadline:
            for entry in in_progress(url):
                seen.setdefault((entry["product"], entry["current"]), entry["steps"])
            time.sleep(0.2)
        out, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0, err[-2000:]
    # the terminal output is Snakemake's own, unchanged
    assert "Finished jobid" in err and "steps (100%) done" in err

    # live: each product with its current step, the steps before done, after pending
    reduce = seen[("751000p", "Weight and flag maps, SExtractor, PSFEx, QualityFITS-in")]
    assert [(s["rule"], s["state"]) for s in reduce] == [
        ("check_exposure", "done"), ("reduce_exposure", "running")]
    assert ("751000p", "Checking the exposure (integrity), its .ahead header") in seen
    swarp = {s["rule"]: s["state"] for s in seen[(STACK, STACK_JOB)]}
    assert swarp["coadd_stack"] == "running" and swarp["assess_product_quality"] == "pending"
    assert swarp["solve_astrometry"] == "done"   # coadd_stack needs it: made before this run
    assert (STACK, "Running Qualityfits (completeness, masks, star correlation), "
                   "creating thumbnails and the dust map") in seen

    # after the run: nothing in progress, every step of the run done
    assert in_progress(url) == []
    after = {p["product"]: {s["rule"]: s["state"] for s in p["steps"]} for p in run_progress(url)}
    assert after["751000p"] == {"check_exposure": "done", "reduce_exposure": "done"}
    assert after[STACK]["coadd_stack"] == after[STACK]["assess_product_quality"] == "done"
    events = read_events(url)
    (run_info,) = runs(events).values()
    assert run_info["status"] == "success"
    assert sum(e["kind"] == "job_finished" for e in events) == 5   # 4 jobs and `all`
