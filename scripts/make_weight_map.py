"""Rule make_weight_map: WeightWatcher weight and flag maps of one exposure."""

import sys

log = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)
sys.stderr = log

from spica.astromatic.weightwatcher import run_weightwatcher  # noqa: E402

run = run_weightwatcher(
    snakemake.params.bin,
    snakemake.input.config,
    flat=snakemake.input.flat,
    mask=snakemake.input.mask,
    defects=snakemake.input.defects,
    weight_out=snakemake.output.weight,
    flag_out=snakemake.output.flag,
    xml_out=snakemake.output.xml,
    flat_range=snakemake.params.flat_range,
    log=log,
)
print(" ".join(run.command), file=log)
