"""Checkpoint plan_images: the automatic image mode's products (one per exposure that passed step 1)."""

import sys
from pathlib import Path

import pandas as pd

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.release.planning import plan_images, write_plan  # noqa: E402

exposures = pd.read_csv(snakemake.input.registry, dtype={"expnum": "Int64"})
exposures = exposures.dropna(subset=["expnum"])  # files with no odometer (unrecognised names)
plan = plan_images(exposures, snakemake.wildcards.release, snakemake.params.image_mode,
                   snakemake.params.survey, snakemake.params.planning)
written = write_plan(plan, Path(snakemake.output.plan).parent)
print(f"{len(plan.stacks)} images planned; wrote {sorted(map(str, written.values()))}", file=sys.stderr)
