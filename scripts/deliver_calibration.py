"""Rule deliver_calibration: a planned product's SCAMP files, from its astrometric solution."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.calibration.solution import deliver_solution  # noqa: E402
from spica.provenance import write_command  # noqa: E402
from spica.release.planning import read_exposure_list  # noqa: E402

run = deliver_solution(
    solution=snakemake.params.solution,
    scamp_dir=snakemake.input.solution,
    scamp_xml=snakemake.input.solution_xml,
    scamp_cmd=snakemake.input.solution_cmd,
    stem=snakemake.wildcards.stem,
    stack_list=read_exposure_list(snakemake.input.stack),
    out_dir=snakemake.output.products,
    xml_out=snakemake.output.xml,
    cmd_out=snakemake.output.cmd,
)
write_command(run, snakemake.output.delivery)
print(f"solution {snakemake.params.solution} delivered", file=sys.stderr)
