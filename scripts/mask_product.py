"""Rule mask_product: the automatic masks of a release product (``_reg.txt``)."""

import json
import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.qualityfits_out.masks import mask_product  # noqa: E402

result = mask_product(
    image=snakemake.input.image,
    weight=snakemake.input.weight,
    refcat=snakemake.input.refcat,
    settings=snakemake.params.settings,
    out=snakemake.output.reg,
)
print(json.dumps(result, indent=1), file=sys.stderr)
