"""Cluster execution: the cluster profile as a user installs it, a real SLURM.

Session fixtures:

* :func:`cluster_env` — the environment of a user who ran ``bin/spica install``:
  ``XDG_CONFIG_HOME`` points at a scratch folder where ``bin/spica profile`` (the
  install step) linked ``profiles/cluster`` as the Snakemake profile ``cluster``;
* :func:`small_inputs` — the small demo survey trimmed to the two D3 r exposures
  (:data:`KEEP`): one release stack, astrometric list of two;
* :func:`local_run` — the workflow run locally on those inputs up to the D3 r
  stack (started in the background, so that it overlaps with the SLURM run);
* :func:`slurm` — a single-node SLURM (:mod:`tests.cluster.slurm`), stopped at
  the end of the session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from spica import paths
from tests.cluster.slurm import SingleNodeSlurm, unavailable
from tests.conftest import REPO, require_binary, small_survey

__all__ = ["KEEP", "PROFILE", "STEM", "copy_inputs", "snakemake"]

CONFIG = REPO / "config" / "config.yaml"
PROFILE = REPO / "profiles" / "cluster" / "config.yaml"
#: The exposures kept from the small survey: the two D3 r exposures of grade A/B.
KEEP = (751000, 751008)
#: Their release stack in T0002 (its astrometric list: both exposures).
STEM = "CFHTLS_D_r_141927+524056_T0002"
RELEASE = "T0002"


def snakemake(workdir: Path, *args: str, env: dict | None = None, wait: bool = True,
              log: Path | None = None) -> subprocess.CompletedProcess | subprocess.Popen:
    """Run the workflow in ``workdir`` as a user would (``-s`` the checkout's Snakefile).

    With ``wait=False`` returns the running process (stdout and stderr to ``log``).
    """
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), *args]
    if wait:
        return subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True,
                              check=False)
    handle = open(log, "w")  # noqa: SIM115 - closed by the process' end
    return subprocess.Popen(command, cwd=workdir, env=env, stdout=handle,
                            stderr=subprocess.STDOUT, text=True)


def copy_inputs(source: Path, workdir: Path) -> Path:
    """A fresh work directory holding the survey's inputs (``demo/``) only."""
    workdir.mkdir(parents=True)
    shutil.copytree(source / "demo", workdir / "demo")
    return workdir


def product(workdir: Path, key: str) -> Path:
    """A file ``key`` of the D3 r stack in ``workdir``."""
    return workdir / paths.product_path("results", RELEASE, STEM, key)


@pytest.fixture(scope="session")
def cluster_env(tmp_path_factory) -> dict:
    """Environment of a user after ``bin/spica install``: the profile ``cluster`` is linked."""
    config_home = tmp_path_factory.mktemp("xdg-config")
    env = {**os.environ, "XDG_CONFIG_HOME": str(config_home)}
    run = subprocess.run([str(REPO / "bin" / "spica"), "profile"], env=env,
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert (config_home / "snakemake" / "cluster").resolve() == PROFILE.parent
    return env


@pytest.fixture(scope="session")
def small_inputs(tmp_path_factory) -> Path:
    """The small demo survey with only the exposures of :data:`KEEP` incoming."""
    for tool in (("source-extractor", "sex"), ("psfex",), ("weightwatcher", "ww"), ("scamp",),
                 ("SWarp", "swarp"), ("fitsverify",)):
        require_binary(*tool)
    root = tmp_path_factory.mktemp("cluster-inputs")
    small_survey(root, keep=KEEP)
    for folder in (root / "demo").rglob("*"):
        if folder.is_dir():
            folder.chmod(0o755)  # copies of the read-only tree can be removed
    return root


class _Background:
    """A workflow run started now, waited for when its results are needed."""

    def __init__(self, workdir: Path, *args: str) -> None:
        self.workdir = workdir
        self.log = workdir.parent / f"{workdir.name}-snakemake.log"
        started = time.monotonic()
        self.process = snakemake(workdir, *args, wait=False, log=self.log)
        self.seconds: float | None = None  # wall time of the run, once it is over

        def clock() -> None:
            self.process.wait()
            self.seconds = time.monotonic() - started

        self._clock = threading.Thread(target=clock, daemon=True)
        self._clock.start()

    def wait(self) -> Path:
        """Wait for the run; fail with its log's tail if it failed."""
        returncode = self.process.wait()
        self._clock.join()
        assert returncode == 0, f"local run failed:\n{self.log.read_text()[-3000:]}"
        return self.workdir


@pytest.fixture(scope="session")
def local_run(small_inputs: Path, tmp_path_factory) -> _Background:
    """The D3 r stack built locally (2 cores), running in the background; ``.wait()``."""
    workdir = copy_inputs(small_inputs, tmp_path_factory.mktemp("cluster-local") / "run")
    background = _Background(workdir, "--cores", "2",
                             str(paths.product_path("results", RELEASE, STEM, "image")))
    yield background
    if background.process.poll() is None:  # a test failed before waiting: do not leave it
        background.process.terminate()
        background.process.wait()


@pytest.fixture(scope="session")
def slurm() -> SingleNodeSlurm:
    """A single-node SLURM on this machine for the session (skipped when impossible)."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    cluster = SingleNodeSlurm(partition=_profile()["default-resources"]["slurm_partition"])
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        cluster.cleanup()


def _profile() -> dict:
    return yaml.safe_load(PROFILE.read_text())


def pytest_collection_modifyitems(items: list) -> None:
    """Run the SLURM tests before the others of this folder (the local run overlaps them)."""
    here = Path(__file__).parent
    slots = [i for i, item in enumerate(items) if item.path.parent == here]
    ordered = sorted((items[i] for i in slots), key=lambda item: item.path.name != "test_slurm.py")
    for slot, item in zip(slots, ordered):
        items[slot] = item
