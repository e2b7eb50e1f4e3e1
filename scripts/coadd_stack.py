"""Rule coadd_stack: SWarp co-addition of one planned stack."""

import sys
from pathlib import Path

import pandas as pd

log = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)
sys.stderr = log

from spica.calibration.accept import read_accept_summary  # noqa: E402
from spica.coaddition.stack import coadd_stack  # noqa: E402
from spica.paths import parse_exposure_prefix, scamp_head_name  # noqa: E402
from spica.provenance import write_command  # noqa: E402
from spica.release.planning import read_exposure_list  # noqa: E402

expnums = read_exposure_list(snakemake.input.accepted)  # the accept summary's verdict
exposures = [p for p in snakemake.input.exposures if parse_exposure_prefix(Path(p).name) in expnums]
weights = [p for p in snakemake.input.weights if parse_exposure_prefix(Path(p).name) in expnums]
registry = pd.read_csv(snakemake.input.registry, dtype={"expnum": "Int64"})
inputs = registry.set_index("expnum").loc[expnums].reset_index()
summary = read_accept_summary(snakemake.input.accept).set_index("expnum").loc[expnums, "anchored"]
anchored = None if summary.isna().any() else bool(summary.all())
run = coadd_stack(
    snakemake.params.bin,
    snakemake.input.config,
    exposures=exposures,
    weights=weights,
    heads=[Path(snakemake.input.scamp) / scamp_head_name(e) for e in expnums],
    out_image=snakemake.output.image,
    out_weight=snakemake.output.weight,
    xml_out=snakemake.output.xml,
    grid=snakemake.params.grid,
    inputs=inputs,
    release=snakemake.wildcards.release,
    software={k: str(v) for k, v in snakemake.params.software.items() if k != "code"},
    nthreads=snakemake.threads,
    overrides=snakemake.params.overrides,
    photometry_anchored=anchored,
    log=log,
)
write_command(run, snakemake.output.cmd)
print(" ".join(run.command), file=log)
