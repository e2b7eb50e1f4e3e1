"""End to end: the real workflow, with the real tools, on a tiny survey.

The small demo survey (:func:`spica.demo.simulate_survey`, ``small=True``) is
written into a scratch directory, extra broken files are derived from one of
its good exposures, and the workflow runs there. One session fixture per
phase builds what the tests of that phase read, whichever test asks first:

* :func:`step1` — ``snakemake qualityfits_in`` (``test_step1.py``);
* :func:`release` — the planning and the release T0002, including the
  regrade of one exposure, in the order a survey operator would go
  (``test_release.py``, ``test_reruns.py``).

Each phase leaves a record (a JSON file in the work directory) of what it saw
on the way — pending stacks, stack lists, the products of D3 r before the
regrade — so that the tests only read, and a developer's finished run can be
reused: set ``SPICA_E2E_WORKDIR`` to a directory; the first session runs the
phases there, later sessions read the records and run nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from astropy.io import fits

from spica import paths
from spica.release.planning import read_exposure_list
from tests.conftest import REPO, require_binary, small_survey

__all__ = ["BROKEN", "CONFIG", "D3", "VW", "accepted_exposures", "job_counts", "pending_stems",
           "snakemake", "stack_lists", "step1_product"]

CONFIG = REPO / "config" / "config.yaml"

# Broken files made from a good exposure: odometer -> (how, expected reason)
BROKEN = {
    751901: ("nextend", "nextend_mismatch"),
    751902: ("no_filter", "missing_keyword"),
    751903: ("nan_ccd", "nonfinite_pixels"),
    751904: ("not_fits", "unreadable"),
}

D3 = {"r": "CFHTLS_D_r_141927+524056_T0002", "i": "CFHTLS_D_i_141927+524056_T0002"}
VW = "751042p_V0001"  # the Very Wide exposure, image by image

# Phase records, in the work directory (beside results/, never inside it)
STEP1_RECORD = "e2e-step1.json"
RELEASE_RECORD = "e2e-release.json"
# D3 r as it was before the regrade of 751029 (the release phase rebuilds it)
BEFORE_REGRADE = "e2e-before-regrade"


# ------------------------------------------------------------------ helpers
def snakemake(workdir: Path, *args: str, overrides: Path | None = None,
              snakefile: Path = REPO / "Snakefile") -> subprocess.CompletedProcess:
    """Run the workflow in ``workdir`` with the demo configuration (and ``overrides``);
    ``snakefile``: another copy of the workflow."""
    configfiles = [str(CONFIG)] + ([str(overrides)] if overrides else [])
    command = [sys.executable, "-m", "snakemake", "-s", str(snakefile),
               "--directory", str(workdir), "--cores", "2", *args,
               "--configfile", *configfiles]  # --configfile swallows what follows: keep it last
    return subprocess.run(command, check=False, capture_output=True, text=True, cwd=workdir)


def job_counts(dry_run_output: str) -> dict[str, int]:
    """Jobs per rule of a dry-run's ``Job stats`` table (none: "Nothing to be done")."""
    if "Job stats:" not in dry_run_output:
        assert "Nothing to be done" in dry_run_output, dry_run_output[-2000:]
        return {}
    block = dry_run_output.split("Job stats:", 1)[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, flags=re.MULTILINE)
            if m[1] != "total"}


def pending_stems(workdir: Path) -> set[str]:
    """Stacks whose co-addition job (the stack job) a dry-run of the release lists."""
    dry = snakemake(workdir, "-n", "release_T0002")
    assert dry.returncode == 0, dry.stderr[-2000:]
    jobs = re.split(r"\n(?=rule \w+:|checkpoint \w+:)", dry.stdout + dry.stderr)
    return {m[1] for job in jobs if job.startswith(("rule coadd_stack:", "rule coadd_image:"))
            for m in [re.search(r"stem=(\S+)", job)] if m}


def stack_lists(workdir: Path, stem: str) -> tuple[list[int], list[int]]:
    """The stack list and the astrometric list of ``stem`` in release T0002."""
    folder = workdir / "results" / "releases" / "T0002" / stem
    return (read_exposure_list(folder / f"{stem}_stack.list"),
            read_exposure_list(folder / f"{stem}_astrom.list"))


def step1_product(survey: dict, expnum: int, key: str) -> Path:
    """A step 1 product of ``expnum`` in the survey's work directory."""
    return survey["workdir"] / paths.step1_path(survey["config"]["results"], expnum, key)


def accepted_exposures(survey: dict) -> pd.DataFrame:
    """The simulated exposures step 1 accepts (all but the broken files)."""
    exposures = survey["exposures"]
    return exposures[~exposures["fate"].str.startswith("broken")]


def _derive_broken(source: Path, directory: Path) -> None:
    for expnum, (how, _) in BROKEN.items():
        target = directory / paths.exposure_filename(expnum)
        if how == "not_fits":
            target.write_bytes(b"SIMPLE  = this is not a FITS file" + bytes(3000))
            continue
        with fits.open(source) as hdul:
            hdul = fits.HDUList([hdu.copy() for hdu in hdul])
        for hdu in hdul:
            if "EXPNUM" in hdu.header:
                hdu.header["EXPNUM"] = expnum
        if how == "nextend":
            del hdul[-1]  # NEXTEND still says the full count
        elif how == "no_filter":
            for hdu in hdul:
                hdu.header.remove("FILTER", ignore_missing=True)
        elif how == "nan_ccd":
            data = hdul[2].data.astype(np.float32)
            data[:] = np.nan
            hdul[2] = fits.ImageHDU(data, hdul[2].header)
            for key in ("BSCALE", "BZERO"):
                hdul[2].header.remove(key, ignore_missing=True)
        hdul.writeto(target)


def _run(workdir: Path, *args: str) -> None:
    run = snakemake(workdir, *args)
    assert run.returncode == 0, f"snakemake {' '.join(args)} failed:\n{run.stderr[-3000:]}"


def _write_record(path: Path, record: dict) -> None:
    """Write a phase record last, in one step: its presence means the phase is done."""
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(record, indent=1, sort_keys=True))
    partial.replace(path)


def _incoming_mtimes(incoming: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in incoming.iterdir()}


# --------------------------------------------------------------- the phases
@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    """The run's directory: ``SPICA_E2E_WORKDIR`` (kept, reused) or a scratch one."""
    reuse = os.environ.get("SPICA_E2E_WORKDIR")  # developers: keep and reuse a finished run
    if not reuse:
        return tmp_path_factory.mktemp("spica-e2e")
    Path(reuse).mkdir(parents=True, exist_ok=True)
    return Path(reuse)


@pytest.fixture(scope="session")
def step1(workdir: Path) -> dict:
    """Step 1 of the small survey with broken files beside it (``qualityfits_in``).

    Returns the work directory, the configuration, the truth folder and its
    exposure table, and the incoming files' modification times before and
    after the run (``before``, ``after``).
    """
    for tool in (("source-extractor", "sex"), ("psfex",), ("weightwatcher", "ww")):
        require_binary(*tool)
    config = yaml.safe_load(CONFIG.read_text())
    truth_dir = workdir / config["demo"]["truth_dir"]
    record_path = workdir / STEP1_RECORD
    if not record_path.is_file():
        small_survey(workdir)
        exposures = pd.read_csv(truth_dir / "exposures.csv")
        good = exposures[exposures["fate"] == "good"]["expnum"].tolist()
        incoming = workdir / config["inputs"]["exposures"]
        incoming.chmod(0o755)
        _derive_broken(incoming / paths.exposure_filename(good[0]), incoming)
        (incoming / "README.txt").write_text("not an exposure")
        before = _incoming_mtimes(incoming)
        run = snakemake(workdir, "qualityfits_in")
        log = workdir / "snakemake-run.log"
        log.write_text(run.stdout + run.stderr)
        assert run.returncode == 0, f"snakemake failed, see {log}:\n{run.stderr[-3000:]}"
        _write_record(record_path, {"before": before, "after": _incoming_mtimes(incoming)})
    record = json.loads(record_path.read_text())
    return {"workdir": workdir, "config": config, "truth": truth_dir,
            "exposures": pd.read_csv(truth_dir / "exposures.csv"), **record}


def _keep_before_regrade(workdir: Path) -> None:
    """Copy what the tests read of D3 r (stack, weight, SCAMP) before the regrade rebuilds it."""
    relative = Path("results") / "releases" / "T0002" / D3["r"]
    source, target = workdir / relative, workdir / BEFORE_REGRADE / relative
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name in (f"{D3['r']}.fits", f"{D3['r']}_weight.fits", f"{D3['r']}_scamp.xml"):
        shutil.copy2(source / name, target / name)
    shutil.copytree(source / "scamp", target / "scamp")


def _release_phase(workdir: Path, grades: Path) -> dict:
    """What the operator does, in order; returns what was seen on the way."""
    seen: dict = {}
    _run(workdir, "plan_T0002")
    seen["pending_planned"] = sorted(pending_stems(workdir))
    _run(workdir, f"results/releases/T0002/{D3['r']}/{D3['r']}.fits")  # one stack first
    seen["pending_after_d3_r"] = sorted(pending_stems(workdir))
    seen["lists_after_d3_r"] = stack_lists(workdir, D3["r"])
    seen["pending_view_after_d3_r"] = (
        workdir / "results" / "releases" / "T0002" / "T0002_pending.txt").read_text()
    _keep_before_regrade(workdir)
    # 751029 (a CCD with a wrong WCS, grade D) is regraded A: it re-enters the plan
    table = pd.read_csv(grades, dtype=str, keep_default_na=False)
    table = table[table["expnum"] != "751029"]
    regraded = pd.DataFrame([{"expnum": "751029", "grade": "A", "comment": "WCS fixed by Elixir",
                              "graded_by": "test", "date": "2005-02-01"}])
    pd.concat([table, regraded]).to_csv(grades, index=False)
    _run(workdir, "release_T0002")
    seen["pending_view_after_release"] = (  # refreshed by the run's onsuccess handler
        workdir / "results" / "releases" / "T0002" / "T0002_pending.txt").read_text()
    seen["lists_after_regrade"] = {band: stack_lists(workdir, stem) for band, stem in D3.items()}
    seen["pending_after_release"] = sorted(pending_stems(workdir))
    # what a dry-run lists right after the run: nothing (the pending view is drawn from the
    # disk, and no release job runs before the plan's checkpoint)
    after = snakemake(workdir, "-n", "release_T0002")
    seen["dry_run_after_release"] = job_counts(after.stdout + after.stderr)
    return seen


@pytest.fixture(scope="session")
def release(step1: dict) -> dict:
    """Release T0002 of the small survey, planned, regraded and built (after :func:`step1`).

    Returns the :func:`step1` record with, besides, what the release phase saw:

    ``pending_planned``
        stacks a dry-run lists pending once the plan is made;
    ``pending_after_d3_r``, ``lists_after_d3_r``, ``pending_view_after_d3_r``
        the same after building the D3 r stack alone, D3 r's (stack,
        astrometric) lists then and the text of ``T0002_pending.txt``;
    ``before_regrade``
        a work directory holding D3 r's stack, weight, SCAMP XML and
        ``scamp/`` folder as they were then (the regrade rebuilds them);
    ``lists_after_regrade``
        ``{band: (stack, astrometric)}`` of D3 once 751029 is regraded A and
        ``release_T0002`` has run;
    ``pending_view_after_release``
        the text of ``T0002_pending.txt`` then;
    ``pending_after_release``
        stacks still pending then;
    ``dry_run_after_release``
        ``{rule: jobs}`` a dry-run of ``release_T0002`` lists then.
    """
    for tool in (("scamp",), ("SWarp", "swarp"), ("source-extractor", "sex")):
        require_binary(*tool)
    workdir = step1["workdir"]
    record_path = workdir / RELEASE_RECORD
    if not record_path.is_file():
        _write_record(record_path,
                      _release_phase(workdir, workdir / step1["config"]["inputs"]["grades"]))
    seen = json.loads(record_path.read_text())
    seen["lists_after_d3_r"] = tuple(seen["lists_after_d3_r"])
    seen["lists_after_regrade"] = {band: tuple(lists)
                                   for band, lists in seen["lists_after_regrade"].items()}
    for key in ("pending_planned", "pending_after_d3_r", "pending_after_release"):
        seen[key] = set(seen[key])
    return {**step1, **seen, "before_regrade": workdir / BEFORE_REGRADE}


# Run together, the phases' tests go in the order of the phases (each test
# also passes alone: the fixtures build what it needs).
_PHASES = ("test_step1.py", "test_release.py", "test_reruns.py")


def pytest_collection_modifyitems(items: list) -> None:
    """Order the e2e modules step 1, release, reruns, leaving every other test in place."""
    here = Path(__file__).parent
    slots = [i for i, item in enumerate(items)
             if item.path.parent == here and item.path.name in _PHASES]
    ordered = sorted((items[i] for i in slots), key=lambda item: _PHASES.index(item.path.name))
    for slot, item in zip(slots, ordered):
        items[slot] = item
