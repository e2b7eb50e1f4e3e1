"""Rule assess_product_quality: QualityFITS-out of one release product."""

import json
import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.qualityfits_out.assess import assess_product  # noqa: E402

inputs = snakemake.input
figures = assess_product(
    image=inputs.image,
    weight=inputs.weight,
    binaries=snakemake.params.binaries,
    configs={"sex": inputs.sex_config, "param": inputs.param_config, "psfex": inputs.psfex_config,
             "conv": inputs.conv_config, "nnw": inputs.nnw_config},
    sextractor_options=snakemake.params.sextractor_options,
    psfex_options=snakemake.params.psfex_options,
    psf_map_step_arcmin=snakemake.params.psf_map_step_arcmin,
    min_snr=snakemake.params.min_snr,
    outputs=dict(snakemake.output.items()),
    log=sys.stderr,
)
print(json.dumps(figures, indent=1), file=sys.stderr)
