"""One release product's stack job (rules ``coadd_stack`` and ``coadd_image``): its
calibration files from its SCAMP solution (:func:`spica.calibration.product.calibrate_product`),
then SWarp over the exposures the accept summary keeps (:func:`spica.coaddition.stack.coadd_stack`).

SWarp reads the lists, the solution's heads and the accept summary, so it reran
after any change of them; as one job they cost Snakemake one job per product
instead of six (issue 10, section 5).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from spica.calibration.accept import read_accept_summary
from spica.calibration.product import calibrate_product
from spica.coaddition.stack import coadd_stack
from spica.paths import parse_exposure_prefix, scamp_head_name
from spica.provenance import ToolRun, write_command

__all__ = ["stack_product"]


def stack_product(
    binary: str,
    config: str | Path,
    *,
    stem: str,
    release: str,
    calibration: Mapping[str, Any],
    exposures: Sequence[str | Path],
    weights: Sequence[str | Path],
    registry_csv: str | Path,
    grid: Mapping[str, str],
    software: Mapping[str, str],
    outputs: Mapping[str, str | Path],
    nthreads: int = 1,
    overrides: Mapping[str, Any] | None = None,
    log: Any = None,
) -> ToolRun:
    """Calibrate and co-add one planned product.

    Parameters
    ----------
    binary, config : str or Path
        SWarp and its configuration file.
    stem, release : str
        The product's file stem and its release (or image-mode version).
    calibration : mapping
        Keyword arguments of :func:`~spica.calibration.product.calibrate_product`
        but ``stem``, ``exposures`` and ``outputs``: ``lists``, ``solution``,
        ``solution_dir``, ``solution_xml``, ``solution_cmd``, ``aheads``, ``accept``.
    exposures, weights : sequence of path
        The stack list's raw exposures and step 1 weight maps, in list order.
    registry_csv : str or Path
        The registry export (the inputs' header cards).
    grid : mapping
        SWarp's output grid (CENTER, IMAGE_SIZE, PIXEL_SCALE).
    software : mapping
        Software versions for the header.
    outputs : mapping
        The rule's outputs: those of ``calibrate_product`` and ``image``, ``weight``,
        ``swarp_xml``, ``swarp_cmd``.
    nthreads : int, optional
        SWarp's threads.
    overrides : mapping, optional
        SWarp options on top of its configuration file.
    log : file, optional
        Where the tools' output goes.

    Returns
    -------
    ToolRun
        The SWarp run (also written to ``swarp_cmd``).
    """
    # the accept summary's verdict, as written to outputs["accepted"]
    expnums = calibrate_product(stem=stem, exposures=exposures, outputs=outputs, **calibration)
    kept = [p for p in exposures if parse_exposure_prefix(Path(p).name) in expnums]
    kept_weights = [p for p in weights if parse_exposure_prefix(Path(p).name) in expnums]
    registry = pd.read_csv(registry_csv, dtype={"expnum": "Int64"})
    inputs = registry.set_index("expnum").loc[expnums].reset_index()
    summary = read_accept_summary(outputs["accept"]).set_index("expnum").loc[expnums, "anchored"]
    anchored = None if summary.isna().any() else bool(summary.all())
    run = coadd_stack(
        binary, config, exposures=kept, weights=kept_weights,
        heads=[Path(outputs["scamp"]) / scamp_head_name(e) for e in expnums],
        out_image=outputs["image"], out_weight=outputs["weight"], xml_out=outputs["swarp_xml"],
        grid=grid, inputs=inputs, release=release, software=software, nthreads=nthreads,
        overrides=overrides, photometry_anchored=anchored, log=log,
    )
    write_command(run, outputs["swarp_cmd"])
    return run
