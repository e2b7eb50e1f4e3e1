"""Rule reduce_exposure: defect masks, weight/flag maps, catalogue, PSF and QA of one exposure."""

import gc
import json
import os
import sys

log = open(snakemake.log.log, "w")  # noqa: F821 (snakemake is injected)
sys.stderr = log
# The rule's threads analyse CCDs side by side; astroscrappy's own OpenMP
# threads (Snakemake sets OMP_NUM_THREADS to the rule's threads) would spin
# against them and double its CPU time: one each. Read when astroscrappy loads.
os.environ["OMP_NUM_THREADS"] = "1"
# The imports (a thousand modules, none of them garbage) without cyclic collections,
# each of which would traverse every object loaded so far: 0.2 s of their 1.3 s CPU.
gc.disable()

from spica.astromatic.options import config_paths  # noqa: E402
from spica.step1.reduce import OUTPUT_KEYS, QA_KEYS, reduce_exposure  # noqa: E402
from spica.step1.timing import StepTimer  # noqa: E402

gc.enable()

timer = StepTimer(snakemake.rule, snakemake.wildcards.expnum)
inputs, params = snakemake.input, snakemake.params
try:
    result = reduce_exposure(
        inputs.exposure,
        flat=inputs.flat,
        mask=inputs.mask,
        outputs={key: snakemake.output[key] for key in OUTPUT_KEYS},
        configs={key.removeprefix("step1_"): path for key, path in config_paths(params.configs, snakemake.scriptdir).items()},
        binaries=params.binaries,
        cosmics=params.cosmics,
        trails=params.trails,
        flat_range=params.flat_range,
        sextractor_options=params.sextractor_options,
        psfex_options=params.psfex_options,
        threads=snakemake.threads,
        qa={"outputs": {key: snakemake.output[key] for key in QA_KEYS}, "limits": params.limits},
        log=log,
        timer=timer,
    )
finally:
    timer.write(snakemake.log.steps)
print(json.dumps({"defects": result["defects"], "qa": result["qa"]}, indent=1, default=str), file=log)
