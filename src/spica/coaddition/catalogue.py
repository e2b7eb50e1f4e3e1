"""The release catalogue: SExtractor in dual-image mode on chi2 and stack."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from spica.astromatic import sextractor
from spica.astromatic.options import astromatic_setting
from spica.coaddition.header import release_cards, update_stack_header
from spica.coaddition.stack import _primary_header
from spica.provenance import ToolRun, write_command, write_provenance

__all__ = ["extract_dual", "catalogue_product"]


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
    ``measurement``); return the run (:class:`spica.provenance.ToolRun`).

    The command is :func:`spica.astromatic.sextractor.arguments` with absolute
    paths and ``options`` in key order; the catalogue's primary header then gets
    the stack's release keywords and zero point.
    """
    detection, measurement, detection_weight, weight, config, param, conv, nnw, catalog, xml_out = (
        Path(p).resolve()
        for p in (detection, measurement, detection_weight, weight, config, param, conv, nnw, catalog, xml_out)
    )
    run = sextractor.run(
        binary, images=(detection, measurement), config=config, param=param, conv=conv, nnw=nnw,
        weights=(detection_weight, weight), catalog=catalog, xml_out=xml_out,
        options=dict(sorted(options.items())), log=log,
    )
    # the catalogue carries its stack's release, release date and zero point (seed 3.2.2, 3.3)
    zeropoint = float(options.get("MAG_ZEROPOINT", astromatic_setting(config, "MAG_ZEROPOINT", "0.0")))
    headers = [(str(catalog), release_cards([_primary_header(measurement)], zeropoint=zeropoint))]
    update_stack_header(catalog, headers[0][1])
    run.headers = headers
    return run


def catalogue_product(
    binary: str,
    config: str | Path,
    *,
    detection: str | Path,
    detection_weight: str | Path,
    image: str | Path,
    weight: str | Path,
    param: str | Path,
    conv: str | Path,
    nnw: str | Path,
    options: Mapping[str, Any],
    outputs: Mapping[str, str | Path],
    provenance: Mapping[str, Any],
    log: Any = None,
) -> ToolRun:
    """A release product's catalogue (:func:`extract_dual` on its tile's chi-squared
    image), its recorded command, then the product's provenance
    (:func:`spica.provenance.write_provenance`, which reads that command last): one
    job (rule ``extract_stack_catalogue``).

    ``outputs`` holds the rule's output names: ``ldac``, ``sex_xml``, ``sex_cmd``
    (the catalogue), ``cmd`` and ``xml`` (the product's ``_cmd.txt`` and ``.xml``);
    ``provenance`` the keyword arguments of ``write_provenance`` but those two.
    Returns the SExtractor run.
    """
    run = extract_dual(
        binary, config, detection=detection, measurement=image, detection_weight=detection_weight,
        weight=weight, param=param, conv=conv, nnw=nnw, catalog=outputs["ldac"],
        xml_out=outputs["sex_xml"], options=options, log=log,
    )
    write_command(run, outputs["sex_cmd"])
    write_provenance(**provenance, cmd_out=outputs["cmd"], xml_out=outputs["xml"])
    return run
