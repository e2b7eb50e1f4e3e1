"""Rule coadd_stack: SWarp co-addition of one planned stack."""

import sys
from pathlib import Path

import pandas as pd

log = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)
sys.stderr = log

from spica.coaddition import coadd_stack  # noqa: E402
from spica.provenance import write_command  # noqa: E402
from spica.planning import read_exposure_list  # noqa: E402

expnums = read_exposure_list(snakemake.input.stack)
registry = pd.read_csv(snakemake.input.registry, dtype={"expnum": "Int64"})
inputs = registry.set_index("expnum").loc[expnums].reset_index()
command = coadd_stack(
    snakemake.params.bin,
    snakemake.input.config,
    exposures=snakemake.input.exposures,
    weights=snakemake.input.weights,
    heads=[Path(snakemake.input.scamp) / f"{e}p.head" for e in expnums],
    out_image=snakemake.output.image,
    out_weight=snakemake.output.weight,
    xml_out=snakemake.output.xml,
    grid=snakemake.params.grid,
    inputs=inputs,
    release=snakemake.wildcards.release,
    software={k: str(v) for k, v in snakemake.params.software.items() if k != "code"},
    nthreads=snakemake.threads,
    overrides=snakemake.params.overrides,
    log=log,
)
write_command(command, snakemake.output.cmd)
print(" ".join(command), file=log)
