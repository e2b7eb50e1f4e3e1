"""Rule assess_quality: QualityFITS-in plots, diagnostics and XML of one exposure."""

import json
import sys
from pathlib import Path

sys.stderr = open(snakemake.log.log, "w")  # noqa: F821 (snakemake is injected)

from spica.paths import QA_PLOTS  # noqa: E402
from spica.step1.qa import assess_exposure  # noqa: E402
from spica.step1.timing import StepTimer  # noqa: E402

timer = StepTimer(snakemake.rule, snakemake.wildcards.expnum)
inputs = snakemake.input
try:
    with timer.step("qa", "python"):
        summary = assess_exposure(
            exposure=inputs.exposure,
            weight=inputs.weight,
            flag=inputs.flag,
            ldac=inputs.ldac,
            sex_xml=inputs.sex_xml,
            minibkg=inputs.minibkg,
            psf=inputs.psf,
            psfex_xml=inputs.psfex_xml,
            outputs={key: Path(snakemake.output[key]) for key in [*QA_PLOTS, "diag", "qa_xml"]},
            limits=snakemake.params.limits,
        )
finally:
    timer.write(snakemake.log.steps)
print(json.dumps(summary, indent=1, default=str), file=sys.stderr)
