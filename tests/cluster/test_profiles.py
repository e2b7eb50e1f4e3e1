"""The design card's command as typed: ``snakemake --profile cluster release_T0002``.

Snakemake finds a profile given by name in the working directory, then in the
user's configuration folder (``$XDG_CONFIG_HOME/snakemake``, by default
``~/.config/snakemake``), then ``/etc/xdg/snakemake``; ``bin/spica install``
links ``profiles/cluster`` there as ``cluster``. The workflow profile
(``profiles/default``) is loaded on every run after it and wins key by key, so
the resources a job gets under ``--profile cluster`` must be the cluster
profile's: checked here on a dry-run, and on real submissions in
``test_slurm.py``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from spica import paths
from tests.cluster.conftest import PROFILE, RELEASE, STEM, copy_inputs, snakemake
from tests.conftest import REPO

SPICA = REPO / "bin" / "spica"


def _profile() -> dict:
    return yaml.safe_load(PROFILE.read_text())


def expected_resources(rule: str) -> dict[str, str]:
    """What the cluster profile asks for ``rule``: its set-resources over its defaults."""
    profile = _profile()
    wanted = {**profile["default-resources"], **profile["set-resources"].get(rule, {})}
    return {key: str(value) for key, value in wanted.items()}


def dry_run_resources(output: str) -> dict[str, list[tuple[dict[str, str], dict[str, str]]]]:
    """``rule -> [(wildcards, resources)]`` of every job a dry-run lists."""
    jobs: dict[str, list] = {}
    for block in re.split(r"\n(?=\s*(?:local)?(?:rule|checkpoint) \w+:)", output):
        header = re.match(r"\s*(?:local)?(?:rule|checkpoint) (\w+):", block)
        resources = re.search(r"^\s*resources: (.*)$", block, re.MULTILINE)
        if not header or not resources:
            continue
        wildcards = re.search(r"^\s*wildcards: (.*)$", block, re.MULTILINE)
        jobs.setdefault(header[1], []).append((
            dict(item.split("=", 1) for item in wildcards[1].split(", ")) if wildcards else {},
            dict(item.split("=", 1) for item in resources[1].split(", "))))
    return jobs


def _link(config_home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(SPICA), "profile"], capture_output=True, text=True, check=False,
                          env={**os.environ, "XDG_CONFIG_HOME": str(config_home)})


def test_install_links_the_cluster_profile_where_snakemake_looks(tmp_path):
    first = _link(tmp_path)
    link = tmp_path / "snakemake" / "cluster"
    assert first.returncode == 0, first.stderr
    assert link.is_symlink() and link.resolve() == PROFILE.parent
    assert "linked" in first.stderr
    again = _link(tmp_path)  # idempotent and silent
    assert again.returncode == 0 and again.stderr == ""
    # Snakemake's own lookup of the name finds it
    found = subprocess.run(
        [sys.executable, "-c",
         "from snakemake.cli import get_profile_dir; print(get_profile_dir('cluster')[1])"],
        capture_output=True, text=True, check=True, cwd=tmp_path,
        env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path)})
    assert Path(found.stdout.strip()).resolve() == PROFILE


def test_install_leaves_another_profile_called_cluster_alone(tmp_path):
    theirs = tmp_path / "snakemake" / "cluster"
    theirs.mkdir(parents=True)
    (theirs / "config.yaml").write_text("executor: lsf\n")
    run = _link(tmp_path)
    assert run.returncode == 0
    assert "leaving" in run.stderr and str(PROFILE.parent) in run.stderr
    assert not theirs.is_symlink() and (theirs / "config.yaml").read_text() == "executor: lsf\n"


def test_install_replaces_a_dangling_link(tmp_path):
    link = tmp_path / "snakemake" / "cluster"
    link.parent.mkdir(parents=True)
    link.symlink_to(tmp_path / "a-removed-checkout" / "profiles" / "cluster")
    run = _link(tmp_path)
    assert run.returncode == 0 and "dangling" in run.stderr
    assert link.resolve() == PROFILE.parent


def test_the_workflow_profile_sets_no_key_of_the_cluster_profile():
    """Whatever profiles/default sets overrides ``--profile cluster``: they must not meet."""
    workflow = yaml.safe_load((REPO / "profiles" / "default" / "config.yaml").read_text())
    cluster = _profile()
    shared = {key for key in workflow if key in cluster and workflow[key] != cluster[key]}
    assert shared == set()
    # the keys that would silently replace the cluster's
    assert not {"cores", "jobs", "executor", "default-resources", "set-resources",
                "set-threads", "resources"} & set(workflow)


def test_the_design_card_command_as_typed(cluster_env):
    """``snakemake --profile cluster -n release_T0002`` from the repository root."""
    run = subprocess.run(["snakemake", "--profile", "cluster", "-n", "release_T0002"],
                         cwd=REPO, env={**cluster_env, "PATH": f"{Path(sys.executable).parent}:"
                                        f"{cluster_env['PATH']}"},
                         capture_output=True, text=True, check=False, timeout=300)
    assert "Using profiles cluster and workflow specific profile" in run.stderr
    assert run.returncode == 0, run.stderr[-3000:]


@pytest.mark.tools
def test_step1_jobs_get_the_cluster_profiles_resources(small_inputs, cluster_env, tmp_path):
    """A dry-run under ``--profile cluster`` lists each step 1 job with the profile's
    mem_mb, runtime and partition (the rules' and the workflow profile's do not win)."""
    workdir = copy_inputs(small_inputs, tmp_path / "run")
    # the step 1 jobs are known once the inventory checkpoint has run (integrity checks only)
    inventory = snakemake(workdir, "--cores", "2", "results/step1/inventory.csv")
    assert inventory.returncode == 0, inventory.stderr[-3000:]
    dry = snakemake(workdir, "--profile", "cluster", "-n", "qualityfits_in", env=cluster_env)
    assert dry.returncode == 0, dry.stderr[-3000:]
    jobs = dry_run_resources(dry.stdout + dry.stderr)
    assert not {"mask_defects", "make_weight_map", "extract_sources", "model_psf", "assess_quality"} & set(jobs)
    for rule in ("reduce_exposure", "build_registry"):
        assert jobs.get(rule), f"{rule} not in the dry-run"
        for _, resources in jobs[rule]:
            for key, value in expected_resources(rule).items():
                assert resources.get(key) == value, (rule, key, resources)
    # the rule's own mem_mb (3000, what every run needs) gives way to the profile's
    assert jobs["reduce_exposure"][0][1]["mem_mb"] == str(_profile()["set-resources"]
                                                           ["reduce_exposure"]["mem_mb"])


@pytest.mark.tools
@pytest.mark.e2e
def test_scamp_jobs_get_the_cluster_profiles_resources(local_run, cluster_env):
    """After a plan, the SCAMP job of a release stack gets the profile's resources."""
    workdir = local_run.wait()
    image = str(paths.product_path("results", RELEASE, STEM, "image"))
    dry = snakemake(workdir, "--profile", "cluster", "-n", "--forcerun", "solve_astrometry",
                    image, env=cluster_env)
    assert dry.returncode == 0, dry.stderr[-3000:]
    jobs = dry_run_resources(dry.stdout + dry.stderr)
    assert [wildcards["release"] for wildcards, _ in jobs["solve_astrometry"]] == [RELEASE]
    for rule in ("solve_astrometry", "coadd_stack"):
        for key, value in expected_resources(rule).items():
            assert jobs[rule][0][1].get(key) == value, (rule, key, jobs[rule][0][1])
