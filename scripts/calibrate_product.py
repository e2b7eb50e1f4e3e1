"""Rules calibrate_product, calibrate_image: a product's lists, SCAMP files, accept
summary and heads, from its solution."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.calibration.product import calibrate_product  # noqa: E402

accepted = calibrate_product(
    stem=snakemake.wildcards.stem,
    lists=snakemake.params.lists,
    solution=snakemake.params.solution,
    solution_dir=snakemake.input.solution,
    solution_xml=snakemake.input.solution_xml,
    solution_cmd=snakemake.input.solution_cmd,
    exposures=snakemake.input.exposures,
    aheads=snakemake.input.aheads,
    accept=snakemake.params.accept,
    outputs=dict(snakemake.output.items()),
)
print(f"solution {snakemake.params.solution} delivered; accepted: {accepted}", file=sys.stderr)
