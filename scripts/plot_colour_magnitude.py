"""Rule plot_colour_magnitude: colour-magnitude diagram of two filters of a release tile."""

import json
import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.qualityfits_out.colours import make_colour_magnitude  # noqa: E402

figures = make_colour_magnitude(
    {band: snakemake.input[band] for band in snakemake.wildcards.bands},
    [snakemake.output.diagcm, snakemake.output.diagcm_ps],
    settings=snakemake.params.settings,
    title=snakemake.params.title,
)
print(json.dumps(figures, indent=1), file=sys.stderr)
