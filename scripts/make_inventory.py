"""Checkpoint make_inventory: accepted exposures and the quarantine list."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.step1.inventory import write_inventory  # noqa: E402

accepted, quarantined = write_inventory(
    snakemake.input.checks,
    snakemake.params.rejected,
    snakemake.output.inventory,
    snakemake.output.quarantine,
)
print(f"accepted {accepted}, quarantined {quarantined}", file=sys.stderr)
