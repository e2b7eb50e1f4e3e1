"""Rule assess_product_quality: QualityFITS-out of a release product, its thumbnails
and dust map."""

import json
import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.astromatic.options import config_paths  # noqa: E402
from spica.qualityfits_out.product import assess_release_product  # noqa: E402

inputs = snakemake.input
result = assess_release_product(
    stem=snakemake.wildcards.stem,
    image=inputs.image,
    weight=inputs.weight,
    refcat=inputs.refcat,
    binaries=snakemake.params.binaries,
    configs={key.removeprefix("qfo_"): path
             for key, path in config_paths(snakemake.params.configs, snakemake.scriptdir).items()},
    qualityfits_out=snakemake.params.qualityfits_out,
    catalogue_options=snakemake.params.catalogue_options,
    pixel_scale=snakemake.params.pixel_scale,
    dust_source=snakemake.params.dust_source,
    outputs=dict(snakemake.output.items()),
    log=sys.stderr,
)
print(json.dumps(result, indent=1, default=str), file=sys.stderr)
