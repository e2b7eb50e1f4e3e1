"""Rule check_exposure: integrity check of one exposure and its calibrations; its .ahead."""

import json
import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.step1.inventory import check_exposure_and_calibrations, write_exposure_ahead  # noqa: E402

verdict = check_exposure_and_calibrations(
    snakemake.input.exposure,
    snakemake.params.calibrations,
    fitsverify=snakemake.params.fitsverify,
    limits=snakemake.params.limits,
)
verdict = write_exposure_ahead(verdict, snakemake.input.exposure, snakemake.output.ahead,
                               photometric=snakemake.params.photometric)
print(f"{snakemake.input.exposure}: ok={verdict['ok']} reason={verdict['reason']}", file=sys.stderr)
Path(snakemake.output.check).write_text(json.dumps(verdict, indent=1, default=str))
