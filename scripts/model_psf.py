"""Rule model_psf: PSFEx models of one exposure's CCDs (step 1)."""

import sys

log = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)
sys.stderr = log

from spica.astromatic import psfex  # noqa: E402

run = psfex.run(
    snakemake.params.bin,
    catalog=snakemake.input.ldac,
    config=snakemake.input.config,
    psf_dir=snakemake.params.psf_dir,
    xml_out=snakemake.output.xml,
    options=snakemake.params.options,
    log=log,
)
print(" ".join(run.command), file=log)
