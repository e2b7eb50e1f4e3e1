"""Two operators at once (issue 11, section 6): the lock, and grades frozen for a run.

On a copy of the reference run, the D3 r stack is rebuilt (SWarp, the slow job,
held with SIGSTOP together with the job that runs it, for as long as the second
operator needs). While SWarp runs, a second operator (a) starts the release on the same results:
Snakemake refuses it, naming the lock and ``--unlock``; (b) regrades 751008 C in
``grades.csv``. The running stack is made from the lists frozen when the run
planned (both exposures, NCOMBINE = 2): grades reach the plan only through the
registry (``build_registry`` reads ``grades.csv``; the plan checkpoint reads the
registry; each job reads its stack list file). The next dry-run replans: it
lists ``build_registry`` and the ``plan_release`` checkpoint again.
"""

from __future__ import annotations

import shutil
import stat

import pandas as pd
import pytest
from astropy.io import fits

from spica.release.planning import read_exposure_list
from tests.robustness.conftest import (
    KEEP,
    TARGET,
    TRIGGERS,
    Run,
    dry_run,
    held,
    product,
    snakemake,
    tool_process,
)


@pytest.mark.tools
@pytest.mark.e2e
def test_second_run_refused_and_grades_frozen_for_the_run(reference, tmp_path):
    source = reference.workdir()
    workdir = tmp_path / "shared"
    shutil.copytree(source, workdir, symlinks=True)
    stack = str(product(workdir, "image").relative_to(workdir))
    for key in ("image", "weight"):
        product(workdir, key).unlink()
    grades = workdir / "demo" / "raw" / "grades.csv"

    first = Run(workdir, stack, *TRIGGERS, name="first")
    try:
        swarp = first.wait_for(tool_process("swarp", "SWarp"))  # inside the slow job
        with held(swarp):  # SIGSTOP: the job lasts as long as the second operator needs
            second = snakemake(workdir, TARGET)
            said = second.stdout + second.stderr
            assert second.returncode != 0
            assert "Directory cannot be locked" in said and "--unlock" in said, said[-2000:]
            lock_message = next(line for line in said.splitlines() if "cannot be locked" in line)
            # the astronomer regrades 751008 C while the stack is being made
            grades.chmod(grades.stat().st_mode | stat.S_IWUSR)
            table = pd.read_csv(grades, dtype=str, keep_default_na=False)
            table = table[table["expnum"] != "751008"]
            regraded = pd.DataFrame([{"expnum": "751008", "grade": "C", "comment": "guiding",
                                      "graded_by": "test", "date": "2005-02-01"}])
            pd.concat([table, regraded]).to_csv(grades, index=False)
        assert first.wait() == 0, first.output()[-3000:]
    finally:
        first.stop()
    # the running stack used the lists of its plan: both exposures
    with fits.open(product(workdir, "image")) as hdul:
        assert hdul[0].header["NCOMBINE"] == len(KEEP)
    assert read_exposure_list(product(workdir, "stack_list")) == list(KEEP)
    # the next run replans (the registry, then the plan checkpoint), nothing before
    jobs, text = dry_run(workdir, TARGET)
    assert jobs.get("build_registry") == 1 and jobs.get("plan_release") == 1, jobs
    registry_job = text[text.index("rule build_registry:"):].split("\n\n", 1)[0]
    assert "grades.csv" in registry_job, registry_job  # the reason: the edited grades
    print(f"\nsecond run refused: {lock_message.strip()}; after the regrade the dry-run lists {jobs}")
