"""Rule assess_quality: QualityFITS-in plots, diagnostics and XML of one exposure."""

import json
import sys
from pathlib import Path

sys.stderr = open(snakemake.log.log, "w")  # noqa: F821 (snakemake is injected)

from spica.paths import qa_plot_paths  # noqa: E402
from spica.step1.qa import assess_exposure  # noqa: E402
from spica.step1.timing import StepTimer  # noqa: E402

timer = StepTimer(snakemake.rule, snakemake.wildcards.expnum)
inputs = snakemake.input
# the plots are one product with the QA XML (spica.paths.STEP1_DECLARED): delete the
# old ones first (Snakemake does it for declared outputs), the XML is written last
plots = qa_plot_paths(snakemake.output.qa_xml)
for plot in plots.values():
    plot.unlink(missing_ok=True)
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
            outputs={**plots, "diag": Path(snakemake.output.diag), "qa_xml": Path(snakemake.output.qa_xml)},
            limits=snakemake.params.limits,
        )
finally:
    timer.write(snakemake.log.steps)
print(json.dumps(summary, indent=1, default=str), file=sys.stderr)
