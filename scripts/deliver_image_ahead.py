"""Rule deliver_image_ahead: a photometric image's ``.ahead`` under the product's name."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.calibration.heads import deliver_image_ahead  # noqa: E402

print(deliver_image_ahead(heads_dir=snakemake.input.heads, out=snakemake.output.ahead), file=sys.stderr)
