"""Checkpoint plan_release: exposure selection and stack plan of one release."""

import sys
from pathlib import Path

import pandas as pd

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.release.planning import plan_release, write_plan  # noqa: E402

exposures = pd.read_csv(snakemake.input.registry, dtype={"expnum": "Int64"})
exposures = exposures.dropna(subset=["expnum"])  # files with no odometer (unrecognised names)
plan = plan_release(
    exposures,
    snakemake.wildcards.release,
    snakemake.params.release,
    snakemake.params.survey,
    snakemake.params.planning,
    repairable_grades=snakemake.params.repairable_grades,
)
written = write_plan(plan, Path(snakemake.output.plan).parent)
print(f"{len(plan.stacks)} stacks planned; wrote {sorted(map(str, written.values()))}", file=sys.stderr)
if plan.stacks.empty:  # nothing to build: say why, the release target then has nothing to do
    accepted = int((exposures["status"] == "ok").sum())
    print(f"WARNING: empty plan: no exposure selected for {snakemake.wildcards.release} "
          f"({len(exposures)} in the registry, {accepted} passed the integrity check; "
          f"verdicts in {snakemake.output.selection})", file=sys.stderr)
