"""Rule solve_astrometry: SCAMP once over an astrometric list shared by planned products."""

import sys

log = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)
sys.stderr = log

from spica.astromatic.options import config_paths  # noqa: E402
from spica.astromatic.scamp import run_scamp  # noqa: E402
from spica.provenance import write_command  # noqa: E402

if not snakemake.params.catalogs:
    raise ValueError(f"{snakemake.wildcards.solution} is not a SCAMP solution of the plan of "
                     f"{snakemake.wildcards.release}")
run = run_scamp(
    snakemake.params.bin,
    config_paths(snakemake.params.configs, snakemake.scriptdir)["scamp"],
    catalogs=snakemake.params.catalogs,
    refcat=snakemake.input.refcat,
    xml_out=snakemake.output.xml,
    products=snakemake.output.products,
    stem=snakemake.wildcards.solution,  # check plots <solution>_<plot>_<n>.png
    stack_list=[],  # each product checks the heads of its own stack list on delivery
    overrides=snakemake.params.overrides,
    log=log,
)
write_command(run, snakemake.output.cmd)
print(" ".join(run.command), file=log)
