"""Rule write_stack_lists: one stack's stack list and astrometric list."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.release.planning import write_exposure_list  # noqa: E402

write_exposure_list(snakemake.params.lists["stack"], snakemake.output.stack)
write_exposure_list(snakemake.params.lists["astrometric"], snakemake.output.astrometric)
