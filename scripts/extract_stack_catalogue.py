"""Rule extract_stack_catalogue: dual-image SExtractor catalogue of one stack."""

import sys

log = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)
sys.stderr = log

from spica.coaddition.catalogue import extract_dual  # noqa: E402
from spica.provenance import write_command  # noqa: E402

run = extract_dual(
    snakemake.params.bin,
    snakemake.input.config,
    detection=snakemake.input.chi2,
    measurement=snakemake.input.image,
    detection_weight=snakemake.input.chi2_weight,
    weight=snakemake.input.weight,
    param=snakemake.input.param,
    conv=snakemake.input.conv,
    nnw=snakemake.input.nnw,
    catalog=snakemake.output.ldac,
    xml_out=snakemake.output.xml,
    options=snakemake.params.options,
    log=log,
)
write_command(run, snakemake.output.cmd)
