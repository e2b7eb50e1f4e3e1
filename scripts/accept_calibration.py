"""Rule accept_calibration: which exposures of a stack list have a sound SCAMP solution."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.calibration.accept import write_accept_summary  # noqa: E402
from spica.paths import parse_exposure_filename  # noqa: E402
from spica.release.planning import read_exposure_list  # noqa: E402

exposures = {parse_exposure_filename(p): p for p in snakemake.input.exposures}
accepted = write_accept_summary(
    stem=snakemake.wildcards.stem,
    stack_list=read_exposure_list(snakemake.input.stack),
    heads_dir=snakemake.input.scamp,
    exposures=exposures,
    pixel_scale=snakemake.params.pixel_scale,
    tolerance=snakemake.params.tolerance,
    xml_out=snakemake.output.xml,
    accepted_out=snakemake.output.accepted,
    scamp_xml=snakemake.input.scamp_xml,
    max_reference_sigma=snakemake.params.max_reference_sigma,
    conditional=snakemake.params.conditional,
    max_focal_plane_offset=snakemake.params.max_focal_plane_offset,
)
print(f"accepted: {accepted}", file=sys.stderr)
