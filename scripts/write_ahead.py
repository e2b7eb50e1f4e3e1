"""Rule write_ahead: the per-CCD primary keywords SCAMP reads beside a catalogue."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.calibration.ahead import write_ahead  # noqa: E402

write_ahead(snakemake.input.exposure, snakemake.output.ahead,
            photometric=snakemake.params.photometric)
