"""Rule mask_defects: cosmic-ray, trail and non-finite flags of one exposure."""

import json
import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.step1.defects import write_defect_map  # noqa: E402

counts = write_defect_map(
    snakemake.input.exposure,
    snakemake.output.defects,
    cosmics=snakemake.params.cosmics,
    trails=snakemake.params.trails,
    mask_path=snakemake.input.mask,
)
print(json.dumps(counts, indent=1, default=str), file=sys.stderr)
