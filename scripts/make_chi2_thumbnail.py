"""Rule make_chi2_thumbnail: the figure of a chi-squared tile, PNG and PostScript."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.products.chi2_figure import write_chi2_figure  # noqa: E402

written = write_chi2_figure(snakemake.input.image, snakemake.input.weight, png=snakemake.output.m,
                            ps=snakemake.output.ps, title=snakemake.wildcards.chi2)
print(*written, file=sys.stderr)
