"""Step 1 and one release stack through a real SLURM with the cluster profile.

A single-node SLURM (:mod:`tests.cluster.slurm`) runs the workflow through
``snakemake-executor-plugin-slurm`` exactly as ``snakemake --profile cluster``
(the profile linked by ``bin/spica install``) submits it, on the small survey
trimmed to the two D3 r exposures; the same inputs run locally at the same time
(:func:`tests.cluster.conftest.local_run`).

* Step 1 (``qualityfits_in``): while one exposure's step 1 group job is in
  ``reduce_exposure`` (the defect masks, its first step), it is killed with ``scancel``; the run goes on with the
  other exposure and fails. A dry-run then lists exactly that exposure's step 1
  jobs again (nothing of it counts as done), and the next run redoes them.
* The D3 r stack (plan, lists, SCAMP, SWarp) then runs through SLURM too.

SLURM's records are its job completion log (``jobcomp/filetxt``): every job
Snakemake says it submitted is there, COMPLETED (the killed one CANCELLED),
with the memory, time limit and partition of the cluster profile.

Products against the local run: the SExtractor catalogues are equal (the
tools are deterministic for the same inputs and options); the SCAMP heads
agree to 1e-9 (SCAMP with several threads differs between runs at the 1e-10
level), the stack's pixels to 1e-6 of its dynamic range (SWarp resamples with
those heads).
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.io import fits

from spica import paths
from spica.astromatic.sextractor import read_ldac
from spica.headers import read_header_dump
from tests.cluster.conftest import (
    KEEP,
    PROFILE,
    RELEASE,
    STEM,
    copy_inputs,
    product,
    snakemake,
)

pytestmark = [pytest.mark.slurm, pytest.mark.tools, pytest.mark.e2e]

#: The rules of the step 1 group: the one job of an exposure after its check (defects,
#: WeightWatcher, SExtractor, PSFEx, QA).
STEP1_GROUP = ("reduce_exposure",)
#: The rules the reduction replaced (one job each, before the merge).
OLD_STEP1_RULES = ("mask_defects", "make_weight_map", "extract_sources", "model_psf", "assess_quality")
#: ``Job <id> has been submitted with SLURM jobid <n> (log: <path>)``
_SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: (\S+)\)\.?$", re.MULTILINE)
#: Test-only speed-ups: the plugin's first status check after 1 s (default 40 s), and
#: a round of status checks every 2 s (default 10 s: each wave of dependent jobs
#: waited about 5 s on average for the next round, on a test cluster with one node)
FAST = ("--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "2")


def submissions(log: str) -> dict[str, str]:
    """SLURM job id -> what Snakemake submitted there (``rule_<name>`` or ``group_<name>``)."""
    return {m[1]: _label(m[2]) for m in _SUBMITTED.finditer(log)}


def _label(logfile: str) -> str:
    parts = Path(logfile).parts
    return parts[parts.index("slurm_logs") + 1]


def _cancel_in_reduce_exposure(workdir: Path, process: subprocess.Popen, timeout: float = 400):
    """``scancel`` the first step 1 group job seen inside ``reduce_exposure``; (jobid, expnum)."""
    deadline = time.monotonic() + timeout
    logs = workdir / ".snakemake" / "slurm_logs"
    while time.monotonic() < deadline and process.poll() is None:
        for log in logs.glob("group_step1*/**/*.log"):
            text = log.read_text(errors="replace")
            # the group's own Snakemake announces each job as it starts ("localrule")
            started = re.search(r"^localrule reduce_exposure:.*?wildcards: expnum=(\d+)", text,
                                re.DOTALL | re.MULTILINE)
            if started and "(Rule: reduce_exposure)" not in text:
                jobid = log.stem
                subprocess.run(["scancel", jobid], check=True)
                return jobid, int(started[1])
        time.sleep(0.3)
    raise AssertionError("no step 1 group job was seen in reduce_exposure")


@pytest.fixture(scope="session")
def slurm_run(slurm, local_run, small_inputs, cluster_env, tmp_path_factory) -> dict:
    """The SLURM phases, in order; returns what each saw."""
    workdir = copy_inputs(small_inputs, tmp_path_factory.mktemp("cluster-slurm") / "run")
    started = time.monotonic()
    first_log = workdir.parent / "first.log"
    first = snakemake(workdir, "--profile", "cluster", *FAST, "qualityfits_in",
                      env=cluster_env, wait=False, log=first_log)
    try:
        killed_jobid, killed_expnum = _cancel_in_reduce_exposure(workdir, first)
        first.wait(timeout=900)
    finally:
        if first.poll() is None:
            first.terminate()
            first.wait()
    dry = snakemake(workdir, "-n", "qualityfits_in", env=cluster_env)
    image = str(paths.product_path("results", RELEASE, STEM, "image"))
    second = snakemake(workdir, "--profile", "cluster", *FAST, image, env=cluster_env)
    (workdir.parent / "second.log").write_text(second.stdout + second.stderr)
    slurm_seconds = time.monotonic() - started
    local = local_run.wait()
    print(f"\nSLURM run {slurm_seconds:.0f} s wall; local run {local_run.seconds:.0f} s "
          "(side by side)")
    return {"workdir": workdir, "local": local, "slurm": slurm,
            "first": first.returncode, "first_log": first_log.read_text(),
            "killed": (killed_jobid, killed_expnum), "dry": dry,
            "second": second, "seconds": slurm_seconds}


def test_the_killed_run_fails_and_the_next_one_completes(slurm_run):
    assert slurm_run["first"] != 0, "a cancelled job must fail the run"
    second = slurm_run["second"]
    assert second.returncode == 0, second.stderr[-3000:]
    assert product(slurm_run["workdir"], "image").is_file()


def test_every_job_went_through_slurm(slurm_run):
    """SLURM's records hold each job Snakemake submitted, and only those."""
    submitted = {**submissions(slurm_run["first_log"]),
                 **submissions(slurm_run["second"].stdout + slurm_run["second"].stderr)}
    records = {job["JobId"]: job for job in slurm_run["slurm"].finished_jobs()}
    assert len(submitted) >= 10
    assert set(records) == set(submitted)
    killed = slurm_run["killed"][0]
    assert records[killed]["JobState"] == "CANCELLED"
    for jobid, job in records.items():
        assert job["WorkDir"] == str(slurm_run["workdir"])
        if jobid != killed:
            assert (job["JobState"], job["ExitCode"]) == ("COMPLETED", "0:0"), (submitted[jobid], job)


def _counts(labels) -> dict[str, int]:
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    return counts


def test_step1_of_an_exposure_is_two_slurm_jobs(slurm_run):
    """check_exposure, then one group job for reduce_exposure (defects to QA)."""
    first = _counts(submissions(slurm_run["first_log"]).values())
    groups = {label: n for label, n in first.items() if label.startswith("group_step1")}
    assert list(groups.values()) == [len(KEEP)], first
    assert groups.popitem()[0] == "group_step1_" + "_".join(sorted(STEP1_GROUP))
    assert first["rule_check_exposure"] == len(KEEP)
    assert not any(f"rule_{rule}" in first for rule in (*STEP1_GROUP, *OLD_STEP1_RULES))
    print(f"\nstep 1 submissions for {len(KEEP)} exposures: {sum(first.values())} "
          f"({first})")


def test_the_killed_job_leaves_nothing_counted_as_done(slurm_run):
    """The dry-run after the kill lists that exposure's step 1 again, and nothing else of step 1."""
    dry = slurm_run["dry"]
    assert dry.returncode == 0, dry.stderr[-3000:]
    output = dry.stdout + dry.stderr
    block = output.split("Job stats:", 1)[1]
    counts = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, re.MULTILINE)
              if m[1] != "total"}
    assert counts == {**dict.fromkeys(STEP1_GROUP, 1), "build_registry": 1, "qualityfits_in": 1}
    expnum = slurm_run["killed"][1]
    assert set(re.findall(r"wildcards: expnum=(\d+)", output)) == {str(expnum)}


def test_the_next_run_redoes_exactly_the_killed_job(slurm_run):
    second = _counts(submissions(slurm_run["second"].stdout + slurm_run["second"].stderr).values())
    assert sum(n for label, n in second.items() if label.startswith("group_step1")) == 1
    for rule in ("check_exposure", "make_inventory", "stage_calibration"):
        assert f"rule_{rule}" not in second, second
    assert second["rule_solve_astrometry"] == 1 and second["rule_coadd_stack"] == 1


def _profile_resources(rule: str) -> dict:
    profile = yaml.safe_load(PROFILE.read_text())
    return {**profile["default-resources"], **profile["set-resources"].get(rule, {})}


def _submitted_as(records: list[dict], labels: dict[str, str], label: str) -> list[dict]:
    return [job for job in records if labels.get(job["JobId"], "").startswith(label)]


def test_jobs_got_the_cluster_profiles_resources(slurm_run):
    """--mem, --time and --partition as SLURM recorded them are the cluster profile's."""
    labels = {**submissions(slurm_run["first_log"]),
              **submissions(slurm_run["second"].stdout + slurm_run["second"].stderr)}
    records = slurm_run["slurm"].finished_jobs()

    def check(job: dict, mem_mb: int, runtime: int, partition: str) -> None:
        tres = dict(item.split("=") for item in job["Tres"].split(","))
        assert (tres["mem"], job["TimeLimit"], job["Partition"]) == (
            f"{mem_mb}M", str(runtime), partition), (labels[job["JobId"]], job)

    partition = _profile_resources("check_exposure")["slurm_partition"]
    for rule in ("check_exposure", "solve_astrometry", "coadd_stack", "build_registry"):
        wanted = _profile_resources(rule)
        jobs = _submitted_as(records, labels, f"rule_{rule}")
        assert jobs, rule
        for job in jobs:
            check(job, wanted["mem_mb"], wanted["runtime"], partition)
    # a group job: the largest memory of its rules, the sum of their runtimes
    members = [_profile_resources(rule) for rule in STEP1_GROUP]
    for job in _submitted_as(records, labels, "group_step1"):
        check(job, max(m["mem_mb"] for m in members), sum(m["runtime"] for m in members),
              partition)
    # threads are the rule's (the workflow profile no longer caps them with `cores`)
    coadd = _submitted_as(records, labels, "rule_coadd_stack")[0]
    assert "cpu=2," in coadd["Tres"]


def _heads(path: Path) -> list[dict]:
    return [{card.keyword: card.value for card in header.cards if card.keyword}
            for header in read_header_dump(path, image_headers=False)]


def test_products_match_a_local_run(slurm_run):
    workdir, local = slurm_run["workdir"], slurm_run["local"]
    for expnum in KEEP:
        ours = read_ldac(workdir / paths.step1_path("results", expnum, "ldac"))
        theirs = read_ldac(local / paths.step1_path("results", expnum, "ldac"))
        assert len(ours) == len(theirs) > 0
        for (_, a), (_, b) in zip(ours, theirs):
            assert len(a) == len(b) > 0
            for name in a.colnames:
                np.testing.assert_array_equal(a[name], b[name], err_msg=f"{expnum} {name}")
    heads = sorted((product(workdir, "image").parent / "scamp").glob("*.head"))
    assert [h.name for h in heads] == [f"{paths.exposure_filename(e)[:-5]}.head" for e in KEEP]
    for head in heads:
        other = product(local, "image").parent / "scamp" / head.name
        for ours, theirs in zip(_heads(head), _heads(other), strict=True):
            assert ours.keys() == theirs.keys()
            for key, value in ours.items():
                if isinstance(value, float):
                    assert value == pytest.approx(theirs[key], rel=1e-9, abs=1e-9), (head, key)
                elif key not in ("COMMENT", "HISTORY"):
                    assert value == theirs[key], (head.name, key)
    ours, theirs = (fits.getdata(product(w, "image")) for w in (workdir, local))
    assert ours.shape == theirs.shape
    scale = float(np.nanmax(np.abs(theirs)))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6 * scale)
