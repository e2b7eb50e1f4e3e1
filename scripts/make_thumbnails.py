"""Rules make_stack_thumbnails, make_chi2_thumbnail: PNG thumbnails of a release image."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.products.thumbnails import write_thumbnails  # noqa: E402

outputs = {key: snakemake.output[key] for key in snakemake.output.keys()}
write_thumbnails(snakemake.input.image, snakemake.input.weight, outputs,
                 title=snakemake.wildcards.get("stem", snakemake.wildcards.get("chi2", "")))
