"""Rule register_product_quality: the products' QualityFITS-out figures into the registry."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.products.quality import load_product_quality  # noqa: E402

summaries = {key: value for key, value in snakemake.input.items() if key != "plan"}
rows = load_product_quality(url=snakemake.params.url, release=snakemake.wildcards.release,
                            summaries=summaries, export_csv=snakemake.output.export)
print(f"{rows} products registered", file=sys.stderr)
