"""Rules coadd_stack, coadd_image: a product's calibration files from its SCAMP solution,
then its SWarp co-addition."""

import sys

log = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)
sys.stderr = log

from spica.astromatic.options import config_paths  # noqa: E402
from spica.coaddition.product import stack_product  # noqa: E402

inputs, params = snakemake.input, snakemake.params
run = stack_product(
    params.bin,
    config_paths(params.configs, snakemake.scriptdir)["stack_swarp"],
    stem=snakemake.wildcards.stem,
    release=snakemake.wildcards.release,
    calibration={"lists": params.lists, "solution": params.solution, "solution_dir": inputs.solution,
                 "solution_xml": inputs.solution_xml, "solution_cmd": inputs.solution_cmd,
                 "aheads": inputs.aheads, "accept": params.accept},
    exposures=inputs.exposures,
    weights=inputs.weights,
    registry_csv=inputs.registry,
    grid=params.grid,
    software={k: str(v) for k, v in params.software.items() if k != "code"},
    outputs=dict(snakemake.output.items()),
    nthreads=snakemake.threads,
    overrides=params.overrides,
    log=log,
)
print(" ".join(run.command), file=log)
