"""Rule plot_colour_colour: colour-colour diagram of three filters of a release tile."""

import json
import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.qualityfits_out.colours import make_colour_colour  # noqa: E402

figures = make_colour_colour(
    {band: snakemake.input[band] for band in snakemake.wildcards.bands},
    [snakemake.output.diagcc, snakemake.output.diagcc_ps],
    settings=snakemake.params.settings,
    title=snakemake.params.title,
)
print(json.dumps(figures, indent=1), file=sys.stderr)
