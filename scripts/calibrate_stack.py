"""Rule calibrate_stack: SCAMP astrometric and photometric calibration of one stack."""

import sys

log = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)
sys.stderr = log

from spica.astromatic.scamp import run_scamp  # noqa: E402
from spica.provenance import write_command  # noqa: E402
from spica.release.planning import read_exposure_list  # noqa: E402

run = run_scamp(
    snakemake.params.bin,
    snakemake.input.config,
    catalogs=snakemake.input.catalogs,
    refcat=snakemake.input.refcat,
    xml_out=snakemake.output.xml,
    products=snakemake.output.products,
    stem=snakemake.wildcards.stem,
    stack_list=read_exposure_list(snakemake.input.stack),
    overrides=snakemake.params.overrides,
    log=log,
)
write_command(run, snakemake.output.cmd)
print(" ".join(run.command), file=log)
