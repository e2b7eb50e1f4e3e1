"""An empty survey is not an error (issue 10, section 7).

When every incoming exposure is quarantined, the registry holds empty tables
with their real columns, the plan is empty, the pending view says "Pending
processes (0)", a warning says why, and ``qualityfits_in plan_T0002
release_T0002`` exits 0. The workflow test needs no AstrOmatic tool: step 1
stops at the integrity check (``check_exposure``, with ``fitsverify`` when it
is installed), so it is not marked ``tools``; it takes about 20 s.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from astropy.io import fits

from spica import paths
from spica.registry import conform, empty_survey_message
from spica.release.planning import pending_report, plan_release, read_plan, write_plan
from tests.conftest import REPO, small_survey

CONFIG = REPO / "config" / "config.yaml"
MESSAGE = empty_survey_message(2, "results/quarantine/quarantine.csv")


def _empty_registry() -> pd.DataFrame:
    """The registry export of a survey with two quarantined files, as plan_release reads it."""
    frame = pd.DataFrame({"expnum": [751901, 751902], "file": ["a", "b"],
                          "status": ["quarantined"] * 2, "reason": ["missing_keyword"] * 2})
    return conform(frame, "exposures")


# ------------------------------------------------------------------ the plan
@pytest.mark.parametrize("registry", ["quarantined", "none"])
def test_empty_plan_and_pending_view(tmp_path, cfg, demo_survey, registry):
    exposures = _empty_registry() if registry == "quarantined" else _empty_registry().iloc[:0]
    csv = tmp_path / "exposures.csv"
    exposures.to_csv(csv, index=False)  # through the CSV, as the checkpoint reads it
    exposures = pd.read_csv(csv, dtype={"expnum": "Int64"})
    plan = plan_release(exposures, "T0002", cfg["releases"]["T0002"], demo_survey, cfg["planning"])
    assert plan.stacks.empty and list(plan.stacks.columns)[:2] == ["name", "mode"]
    assert plan.products() == {} and plan.tiles() == {} and plan.solutions() == {}
    assert len(plan.selection) == len(exposures) and not plan.selection["selected"].any()
    write_plan(plan, tmp_path / "T0002")
    again = read_plan(tmp_path / "T0002", release="T0002", done=set())
    assert again.stacks.empty and again.stack_lists == {} and again.astrometric_lists == {}
    report = pending_report(again, longest=5)
    assert report.splitlines()[0] == "Pending processes (0)"
    assert "Number of remaining stack" in report


# --------------------------------------------------------------- the workflow
def _quarantined_survey(workdir: Path, config: dict) -> list[str]:
    """The small demo survey reduced to two exposures that lack FILTER; their names."""
    small_survey(workdir)
    incoming = workdir / config["inputs"]["exposures"]
    incoming.chmod(0o755)
    files = sorted(incoming.glob("*.fits"))
    for path in files[2:]:
        path.unlink()
    for path in files[:2]:
        path.chmod(0o644)
        with fits.open(path) as hdul:
            hdul = fits.HDUList([hdu.copy() for hdu in hdul])
        for hdu in hdul:
            hdu.header.remove("FILTER", ignore_missing=True)
        hdul.writeto(path, overwrite=True)
    return [path.name for path in files[:2]]


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
               "--directory", str(workdir), "--cores", "2", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=workdir, check=False)


@pytest.fixture(scope="module")
def empty_run(tmp_path_factory) -> dict:
    """``snakemake qualityfits_in plan_T0002 release_T0002 --keep-going`` on a survey
    whose every exposure lacks FILTER."""
    workdir = tmp_path_factory.mktemp("empty-survey")
    config = yaml.safe_load(CONFIG.read_text())
    names = _quarantined_survey(workdir, config)
    run = _snakemake(workdir, "qualityfits_in", "plan_T0002", "release_T0002", "--keep-going")
    (workdir / "snakemake-run.log").write_text(run.stdout + run.stderr)
    return {"workdir": workdir, "config": config, "names": names, "run": run}


def test_an_all_quarantined_survey_runs_to_the_end(empty_run):
    run = empty_run["run"]
    assert run.returncode == 0, run.stderr[-3000:]
    output = run.stdout + run.stderr
    assert MESSAGE in output  # Snakemake's own output says why nothing is made
    assert "the plan of T0002 is empty, nothing to build" in output
    assert "Job stats" in output and "reduce_exposure" not in output and "coadd_stack" not in output
    workdir = empty_run["workdir"]
    results = empty_run["config"]["results"]  # the run's logs are in its results tree
    assert MESSAGE in (workdir / paths.run_record_path(
        results, "log", "registry", "build_registry")).read_text()
    assert "empty plan: no exposure selected for T0002 (2 in the registry, 0 passed" in (
        workdir / paths.run_record_path(results, "log", "release", "plan_release", release="T0002")
    ).read_text()
    nothing = _snakemake(workdir, "-n", "qualityfits_in", "release_T0002")
    assert nothing.returncode == 0 and "Nothing to be done" in nothing.stdout + nothing.stderr


def test_the_quarantine_lists_every_file_with_its_reason(empty_run):
    results = empty_run["workdir"] / empty_run["config"]["results"]
    quarantine = pd.read_csv(results / "quarantine" / "quarantine.csv")
    assert sorted(Path(p).name for p in quarantine["path"]) == empty_run["names"]
    assert set(quarantine["reason"]) == {"missing_keyword"}
    assert quarantine["message"].str.contains("FILTER").all()


def test_the_registry_has_empty_tables_with_their_columns(empty_run):
    from spica.registry import schema

    database = empty_run["workdir"] / "results" / "registry.sqlite"
    with sqlite3.connect(database) as connection:
        tables = {name: pd.read_sql(f'select * from "{name}"', connection)
                  for (name,) in connection.execute("select name from sqlite_master where type='table'")}
    assert sorted(tables) == ["ccds", "exposures", "product_quality", "quarantine", "scamp_fields", "scamp_groups"]
    for name, table in tables.items():
        assert list(table.columns) == [c.name for c in schema().tables[name].columns], name
    assert tables["ccds"].empty and tables["scamp_fields"].empty and tables["scamp_groups"].empty
    assert tables["product_quality"].empty  # no product: register_product_quality wrote none
    assert tables["exposures"]["status"].tolist() == ["quarantined"] * 2
    assert tables["quarantine"]["reason"].tolist() == ["missing_keyword"] * 2
    export = pd.read_csv(empty_run["workdir"] / "results" / "registry" / "exposures.csv")
    assert list(export.columns) == list(tables["exposures"].columns) and len(export) == 2


def test_the_plan_and_the_pending_view_are_empty(empty_run):
    results = empty_run["workdir"] / empty_run["config"]["results"]

    def release_file(key):
        return paths.release_path(results, "T0002", key)

    plan = pd.read_csv(release_file("plan"))
    assert plan.empty and "name" in plan.columns
    lists = json.loads(release_file("lists").read_text())
    assert lists["stack_lists"] == {} and lists["astrometric_lists"] == {}
    selection = pd.read_csv(release_file("selection"))
    assert len(selection) == 2 and not selection["selected"].any()
    assert release_file("pending").read_text().splitlines()[0] == "Pending processes (0)"
    assert pd.read_csv(release_file("scamp_fields")).empty
    for name in empty_run["names"]:  # no step 1 product of a quarantined file
        expnum = paths.parse_exposure_filename(name)
        assert not paths.step1_path(results, expnum, "ldac").exists()
        assert paths.step1_path(results, expnum, "check").exists()
