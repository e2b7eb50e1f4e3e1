"""Rules plot_tile_colours_<n>: every colour diagram of a release tile of n filters."""

import json
import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.paths import tile_colour_bands  # noqa: E402
from spica.qualityfits_out.colours import make_tile_colours  # noqa: E402

# the tile's catalogues by filter, in order (the other input is the plan)
catalogues = {band: path for band, path in snakemake.input.items() if band != "plan"}  # noqa: F821
bands = "".join(catalogues)
outputs = {}
for key, path in snakemake.output.items():  # noqa: F821 (diagcc_123, diagcc_ps_123, ...)
    outputs.setdefault(tile_colour_bands(key, bands), []).append(path)
figures = make_tile_colours(catalogues, outputs,
                            settings=snakemake.params.settings, tile=snakemake.params.tile)  # noqa: F821
print(json.dumps(figures, indent=1), file=sys.stderr)
