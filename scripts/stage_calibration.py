"""Rule stage_calibration: uncompressed working copy of an Elixir calibration file."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.step1.inventory import stage_calibration  # noqa: E402

stage_calibration(snakemake.input.raw, snakemake.output.staged)
