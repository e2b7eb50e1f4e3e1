"""Rule measure_completeness: completeness of one release product from simulated stars."""

import json
import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.qualityfits_out.assess import assess_completeness  # noqa: E402

inputs = snakemake.input
result = assess_completeness(
    image=inputs.image,
    weight=inputs.weight,
    psf=inputs.psf,
    binary=snakemake.params.bin,
    configs={"sex": inputs.config, "param": inputs.param, "conv": inputs.conv, "nnw": inputs.nnw},
    options=snakemake.params.options,
    settings=snakemake.params.settings,
    pixel_scale=snakemake.params.pixel_scale,
    outputs=dict(snakemake.output.items()),
    log=sys.stderr,
)
print(json.dumps(result, indent=1), file=sys.stderr)
