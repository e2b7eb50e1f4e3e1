"""Rule make_dust_map: E(B-V) on a stack's grid."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.coaddition.dust import write_dust_map  # noqa: E402

write_dust_map(snakemake.input.image, snakemake.output.dust, source=snakemake.params.source)
