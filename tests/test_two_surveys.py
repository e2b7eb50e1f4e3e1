"""Two surveys, one checkout (issue 11, section 5).

Everything a run writes goes under its own results tree: products, and also
the run records — rule logs (``<results>/logs/``), Snakemake benchmarks and
per-step timings (``<results>/benchmarks/``), named in one place
(:data:`spica.paths.RUN_RECORDS`, ``run_log``/``run_benchmark``/``run_steps``
of rules/common.smk). Two surveys run from one working directory with
different ``results:`` therefore share no file; only Snakemake's own
``.snakemake/`` folder (its metadata, keyed by output path, and its locks) is
common, where Snakemake puts it. An SQLite registry outside the results tree
(or a job-events database, ``monitor.url``) is refused at parse time.

The rules' patterns are read from the parsed workflow (every rule, release
ones included); the concrete files from Snakemake's dry-runs of step 1 on a
two-exposure survey, once its integrity checkpoint has run for each survey.
No AstrOmatic tool runs (about 40 s).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from spica import paths
from tests.conftest import REPO
from tests.corpus.survey import GOOD, copy_inputs, shared_base, snakemake, tiny_survey

SURVEYS = ("survey_a", "survey_b")

# Reads the parsed workflow's rules through Snakemake's API: name -> log and benchmark patterns.
_DUMP_RULES = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings
snakefile, workdir, *configfiles = sys.argv[1:]
with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
    workflow = api.workflow(resource_settings=ResourceSettings(cores=1), snakefile=Path(snakefile),
                            workdir=Path(workdir),
                            config_settings=ConfigSettings(configfiles=[Path(c) for c in configfiles]))
    records = {rule.name: [str(p) for p in rule.log] + ([str(rule.benchmark)] if rule.benchmark else [])
               for rule in workflow._workflow.rules}
print("RECORDS=" + json.dumps(records))
"""


def _overlay(workdir: Path, results: str) -> Path:
    """A configuration overlay naming another results tree (and the databases in it:
    the registry, the job events of the monitor)."""
    path = workdir / f"{results}.yaml"
    path.write_text(f"results: {results}\n"
                    f"registry:\n  url: sqlite:///{results}/registry.sqlite\n"
                    f"monitor:\n  url: sqlite:///{results}/logs/events.sqlite\n")
    return path


def _rule_records(workdir: Path, overlay: Path) -> dict[str, list[str]]:
    run = subprocess.run([sys.executable, "-c", _DUMP_RULES, str(REPO / "Snakefile"), str(workdir),
                          str(REPO / "config" / "config.yaml"), str(overlay)],
                         capture_output=True, text=True, check=False, cwd=workdir)
    line = next((x for x in run.stdout.splitlines() if x.startswith("RECORDS=")), None)
    assert line, run.stderr[-3000:]
    return json.loads(line.removeprefix("RECORDS="))


def _dry_run_records(output: str) -> set[str]:
    """The ``log:`` and ``benchmark:`` files of every job a dry-run lists."""
    found = set()
    for match in re.finditer(r"^\s+(log|benchmark): (.+)$", output, flags=re.MULTILINE):
        found.update(path.strip() for path in match[2].split(", "))
    return found


@pytest.fixture(scope="module")
def two_surveys(tmp_path_factory) -> dict:
    """One working directory (the checkout's), two configurations; the integrity
    checkpoint run for each, then a dry-run of step 1 for each."""
    workdir = copy_inputs(tiny_survey(shared_base(tmp_path_factory)), tmp_path_factory.mktemp("checkout"))
    found = {}
    for results in SURVEYS:
        overlay = _overlay(workdir, results)
        run = snakemake(workdir, "make_inventory", overrides=overlay)
        assert run.returncode == 0, run.stderr[-3000:]
        dry = snakemake(workdir, "-n", "qualityfits_in", overrides=overlay)
        assert dry.returncode == 0, dry.stderr[-3000:]
        found[results] = {"rules": _rule_records(workdir, overlay),
                          "jobs": _dry_run_records(dry.stdout + dry.stderr)}
    return {"workdir": workdir, **found}


def test_every_rule_writes_its_records_in_its_results_tree(two_surveys):
    """Every rule's log and benchmark pattern (release rules included) is in the
    survey's ``logs/`` or ``benchmarks/`` folder; the two surveys share none."""
    patterns = {}
    for results in SURVEYS:
        rules = two_surveys[results]["rules"]
        patterns[results] = {p for records in rules.values() for p in records}
        folders = tuple(f"{paths.run_records_folder(results, kind)}/" for kind in paths.RUN_RECORDS)
        outside = sorted(p for p in patterns[results] if not p.startswith(folders))
        assert not outside, outside
        # the rules that run a job all keep a log (targets and checkpoints' targets have none)
        logged = {name for name, records in rules.items() if records}
        assert {"check_exposure", "reduce_exposure", "build_registry",
                "plan_release", "solve_astrometry", "coadd_stack", "make_chi2"} <= logged
    assert not patterns["survey_a"] & patterns["survey_b"]
    print(f"\nrun-record patterns per survey: {len(patterns['survey_a'])}, shared: 0")


def test_two_surveys_from_one_checkout_share_no_record(two_surveys):
    """The files the step 1 jobs of two surveys would write (dry-run after the
    checkpoint: checks, reductions, QA, calibration copies, registry) are each in
    their survey's tree, the same jobs for both, none shared."""
    jobs = {results: two_surveys[results]["jobs"] for results in SURVEYS}
    for results, found in jobs.items():
        assert found and all(p.startswith(f"{results}/") for p in found), sorted(found)
        for expnum in GOOD:  # the one step 1 job of each exposure (reduction and QA), with its timings
            for rule in ("reduce_exposure",):
                for kind in ("log", "benchmark", "steps"):
                    record = paths.run_record_path(results, kind, "exposure", rule, expnum=expnum)
                    assert str(record) in found, (record, sorted(found))
    assert not jobs["survey_a"] & jobs["survey_b"]
    renamed = {p.replace("survey_a/", "survey_b/", 1) for p in jobs["survey_a"]}
    assert renamed == jobs["survey_b"]
    print(f"\nrun records of step 1 per survey: {len(jobs['survey_a'])}, shared: 0")
    # what the two runs wrote in the working directory: their trees, Snakemake's folder
    written = {p.name for p in two_surveys["workdir"].iterdir()}
    assert written == {".snakemake", "demo", *SURVEYS, *(f"{r}.yaml" for r in SURVEYS)}, written


def test_a_registry_file_outside_the_results_tree_is_refused(tmp_path):
    """``results:`` changed but the SQLite registry left in the demo's ``results/``: two
    surveys would rebuild one registry. The workflow refuses before any job."""
    overlay = tmp_path / "other.yaml"
    overlay.write_text("results: survey_c\nmonitor:\n  url: sqlite:///survey_c/events.sqlite\n")
    run = snakemake(tmp_path, "-n", "qualityfits_in", overrides=overlay)
    assert run.returncode != 0
    output = run.stdout + run.stderr
    assert "registry.url 'sqlite:///results/registry.sqlite' is a file outside this run's results tree" in output
    assert "sqlite:///survey_c/registry.sqlite" in output
