"""Rule measure_star_clustering: w(theta) of the stars of one release product (TreeCorr)."""

import json
import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.qualityfits_out.colours import make_star_clustering  # noqa: E402

figures = make_star_clustering(
    snakemake.input.catalogue,
    snakemake.input.weight,
    [snakemake.output.wtheta, snakemake.output.wtheta_ps],
    settings=snakemake.params.settings,
    title=snakemake.wildcards.stem,
)
print(json.dumps(figures, indent=1), file=sys.stderr)
