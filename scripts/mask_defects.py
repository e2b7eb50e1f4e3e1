"""Rule mask_defects: cosmic-ray, trail and non-finite flags of one exposure."""

import json
import os
import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)
# The rule's threads analyse CCDs side by side; astroscrappy's own OpenMP
# threads (Snakemake sets OMP_NUM_THREADS to the rule's threads) would spin
# against them and double its CPU time: one each. Read when astroscrappy loads.
os.environ["OMP_NUM_THREADS"] = "1"

from spica.step1.defects import write_defect_map  # noqa: E402

counts = write_defect_map(
    snakemake.input.exposure,
    snakemake.output.defects,
    cosmics=snakemake.params.cosmics,
    trails=snakemake.params.trails,
    mask_path=snakemake.input.mask,
    threads=snakemake.threads,
)
print(json.dumps(counts, indent=1, default=str), file=sys.stderr)
