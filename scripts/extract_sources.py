"""Rule extract_sources: SExtractor catalogue of one exposure (step 1)."""

import sys

log = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)
sys.stderr = log

from spica.astromatic import sextractor  # noqa: E402

run = sextractor.run(
    snakemake.params.bin,
    images=snakemake.input.exposure,
    config=snakemake.input.config,
    param=snakemake.input.param,
    conv=snakemake.input.conv,
    nnw=snakemake.input.nnw,
    weights=snakemake.input.weight,
    flags=snakemake.input.flag,
    catalog=snakemake.output.ldac,
    xml_out=snakemake.output.xml,
    checkimage=snakemake.output.minibkg,
    options=snakemake.params.options,
    log=log,
)
print(" ".join(run.command), file=log)
