"""Rule make_chi2: chi-squared image of one tile over its filters' stacks."""

import sys

log = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)
sys.stderr = log

from spica.astromatic.options import config_paths  # noqa: E402
from spica.coaddition.stack import make_chi2  # noqa: E402
from spica.provenance import write_command  # noqa: E402

run = make_chi2(
    snakemake.params.bin,
    config_paths(snakemake.params.configs, snakemake.scriptdir)["chi2_swarp"],
    stacks=snakemake.input.stacks,
    weights=snakemake.input.weights,
    out_image=snakemake.output.image,
    out_weight=snakemake.output.weight,
    xml_out=snakemake.output.xml,
    grid=snakemake.params.grid,
    overrides=snakemake.params.overrides,
    log=log,
)
write_command(run, snakemake.output.cmd)
print(" ".join(run.command), file=log)
