"""Command-line options of QualityFITS-out's tool runs from config ``qualityfits_out``
(light: imported by the rules when the workflow is parsed)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["sextractor_options", "psfex_options"]


def sextractor_options(settings: Mapping[str, Any]) -> dict[str, Any]:
    """SExtractor options on top of ``config/astromatic/qualityfits_out.sex``.

    Parameters
    ----------
    settings : mapping
        Config ``qualityfits_out``: ``detect_thresh`` (also ``ANALYSIS_THRESH``),
        ``detect_minarea``, ``back_size``, ``sextractor_overrides``.

    Returns
    -------
    dict
        In key order.
    """
    return dict(sorted({
        "DETECT_THRESH": settings["detect_thresh"],
        "ANALYSIS_THRESH": settings["detect_thresh"],
        "DETECT_MINAREA": settings["detect_minarea"],
        "BACK_SIZE": settings["back_size"],
        **settings["sextractor_overrides"],
    }.items()))


def psfex_options(settings: Mapping[str, Any]) -> dict[str, Any]:
    """PSFEx options on top of ``config/astromatic/qualityfits_out.psfex``
    (``SAMPLE_MINSN`` from ``psfex_min_snr``, then ``psfex_overrides``), in key order."""
    return dict(sorted({"SAMPLE_MINSN": settings["psfex_min_snr"], **settings["psfex_overrides"]}.items()))
