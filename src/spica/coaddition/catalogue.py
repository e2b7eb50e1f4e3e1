"""The release catalogue: SExtractor in dual-image mode on chi2 and stack."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from spica.astromatic.options import astromatic_setting
from spica.coaddition.header import release_cards, update_stack_header
from spica.coaddition.stack import _primary_header
from spica.provenance import ToolRun

__all__ = ["extract_dual"]


def extract_dual(
    binary: str,
    config: str | Path,
    *,
    detection: str | Path,
    measurement: str | Path,
    detection_weight: str | Path,
    weight: str | Path,
    param: str | Path,
    conv: str | Path,
    nnw: str | Path,
    catalog: str | Path,
    xml_out: str | Path,
    options: Mapping[str, Any],
    log: Any = None,
) -> ToolRun:
    """SExtractor in dual-image mode (detect on ``detection``, measure on
    ``measurement``); return the run (:class:`spica.provenance.ToolRun`)."""
    import subprocess

    detection, measurement, detection_weight, weight, config, param, conv, nnw, catalog, xml_out = (
        Path(p).resolve()
        for p in (detection, measurement, detection_weight, weight, config, param, conv, nnw, catalog, xml_out)
    )
    command = [
        str(binary), f"{detection},{measurement}", "-c", str(config),
        "-PARAMETERS_NAME", str(param), "-FILTER_NAME", str(conv), "-STARNNW_NAME", str(nnw),
        "-WEIGHT_IMAGE", f"{detection_weight},{weight}",
        *[arg for key, value in sorted(options.items()) for arg in (f"-{key}", str(value))],
        "-CATALOG_NAME", str(catalog), "-XML_NAME", str(xml_out),
    ]
    subprocess.run(command, check=True, stdout=log, stderr=log)
    # the catalogue carries its stack's release, release date and zero point (seed 3.2.2, 3.3)
    zeropoint = float(options.get("MAG_ZEROPOINT", astromatic_setting(config, "MAG_ZEROPOINT", "0.0")))
    headers = [(str(catalog), release_cards([_primary_header(measurement)], zeropoint=zeropoint))]
    update_stack_header(catalog, headers[0][1])
    return ToolRun(command=command, outputs=[str(catalog), str(xml_out)], headers=headers)
