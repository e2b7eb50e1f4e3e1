"""Rules deliver_heads, deliver_image_heads: the SCAMP heads a release product delivers."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.calibration.heads import deliver_heads  # noqa: E402
from spica.paths import parse_step1_name  # noqa: E402
from spica.release.planning import read_exposure_list  # noqa: E402

aheads = {parse_step1_name(path)[0]: path for path in snakemake.input.aheads}
written = deliver_heads(
    stack_list=read_exposure_list(snakemake.input.stack),
    heads_dir=snakemake.input.scamp,
    aheads=aheads,
    out_dir=snakemake.output.heads,
    image_head_out=snakemake.output.get("image_head"),
)
print("\n".join(str(p) for p in written), file=sys.stderr)
