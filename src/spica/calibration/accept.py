"""The accept summary: which exposures of a stack list SCAMP calibrated well enough to stack."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits

from spica.astromatic.scamp import head_wcs, parse_scamp_xml, read_heads
from spica.paths import (
    exposure_name,
    parse_exposure_name,
    parse_exposure_prefix,
    scamp_head_name,
)
from spica.sky import angular_distance

__all__ = ["head_problems", "write_accept_summary", "read_accept_summary"]


def head_problems(
    heads: Sequence[fits.Header],
    shapes: Sequence[tuple[int, int]],
    *,
    pixel_scale: float,
    tolerance: float,
) -> list[str]:
    """Problems of one exposure's SCAMP solution, CCD by CCD (empty: accepted).

    A distortion fit that went astray (an exposure alone in its astrometric
    context, too few matches) stretches a CCD over the sky; resampled, it
    smears the stack. The local pixel scale at the CCD's corners and centre
    must stay within ``tolerance`` of the survey's ``pixel_scale``.

    Parameters
    ----------
    heads : sequence of astropy.io.fits.Header
        SCAMP's solution, one header per CCD.
    shapes : sequence of (int, int)
        ``(ny, nx)`` of each CCD.
    pixel_scale : float
        Survey pixel scale (arcsec/pixel, ``survey.pixel_scale``).
    tolerance : float
        Largest relative pixel-scale error (``calibration.max_pixel_scale_error``).

    Returns
    -------
    list of str
        One message per CCD out of tolerance.
    """
    problems = []
    for index, (head, (ny, nx)) in enumerate(zip(heads, shapes)):
        wcs = head_wcs(head)
        x = np.array([1.0, nx, 1.0, nx, nx / 2])
        y = np.array([1.0, 1.0, ny, ny, ny / 2])
        scales = []
        for dx, dy in ((1.0, 0.0), (0.0, 1.0)):
            ra0, dec0 = wcs.all_pix2world(x, y, 1)
            ra1, dec1 = wcs.all_pix2world(x + dx, y + dy, 1)
            scales.append(angular_distance(ra0, dec0, ra1, dec1) * 3600.0)
        worst = float(np.max(np.abs(np.concatenate(scales) / pixel_scale - 1.0)))
        if not np.isfinite(worst) or worst > tolerance:
            problems.append(f"CCD {index + 1}: pixel scale off by {100 * worst:.1f} % "
                            f"(limit {100 * tolerance:.0f} %)")
    return problems


def write_accept_summary(
    *,
    stem: str,
    stack_list: Sequence[int],
    heads_dir: str | Path,
    exposures: Mapping[int, str | Path],
    pixel_scale: float,
    tolerance: float,
    xml_out: str | Path,
    accepted_out: str | Path,
    scamp_xml: str | Path | None = None,
    max_reference_sigma: float | None = None,
) -> list[int]:
    """Check the SCAMP heads of a stack list; write ``_scamp_accept.xml`` and the
    accepted list (one ``NNNNNNp`` a line). Returns the accepted odometers.

    An exposure is rejected, with the reason, when SCAMP wrote no head for it,
    when a CCD's solved pixel scale is off by more than ``tolerance``
    (:func:`head_problems`), or, with ``scamp_xml`` and
    ``max_reference_sigma`` (arcsec), when its residuals against the reference
    catalogue exceed that (a failed pattern match leaves the Elixir WCS, ~1"
    off, which would smear the stack).

    With ``scamp_xml`` (the run's XML), the summary also says whether each
    exposure's zero point is anchored: its photometric instrument (filter) holds
    a photometric exposure in the run. A non-photometric exposure without one
    keeps Elixir's zero point (SCAMP has nothing to tie it to): it is still
    stacked, and ``<PHOTOMETRY anchored="F">`` says why its photometry is not
    calibrated.
    """
    import xml.etree.ElementTree as ElementTree

    root = ElementTree.Element("SCAMP_ACCEPT", product=stem,
                               pixel_scale=str(pixel_scale), tolerance=str(tolerance))
    anchored: dict[int, tuple[bool, str]] = {}
    reference_sigma: dict[int, float] = {}
    if scamp_xml is not None:
        fields = parse_scamp_xml(scamp_xml)["fields"]
        flags = fields["photometric"].astype(str).str.upper().isin(["T", "TRUE", "1"])
        anchors = set(fields.loc[flags, "phot_instrument"])
        for catalog, instrument, sigma in zip(fields["catalog"], fields["phot_instrument"],
                                              fields["astrom_sigma_reference"]):
            expnum = parse_exposure_prefix(str(catalog))
            if expnum is not None:
                anchored[expnum] = (instrument in anchors, str(instrument))
                reference_sigma[expnum] = float(sigma)
    accepted = []
    for expnum in sorted(int(e) for e in stack_list):
        head = Path(heads_dir) / scamp_head_name(expnum)
        if not head.is_file():
            problems = ["SCAMP wrote no head: not calibrated"]
        else:
            with fits.open(exposures[expnum]) as hdul:
                shapes = [(h.header["NAXIS2"], h.header["NAXIS1"]) for h in hdul[1:]]
            problems = head_problems(read_heads(head), shapes, pixel_scale=pixel_scale, tolerance=tolerance)
        if scamp_xml is not None and max_reference_sigma is not None:
            sigma = reference_sigma.get(expnum)
            if sigma is None:
                problems.append("not among the fields of the SCAMP run")
            elif not sigma <= max_reference_sigma:  # NaN: no reference match at all
                problems.append(f"residuals against the reference catalogue {sigma:.3f}\" RMS "
                                f"(limit {max_reference_sigma}\"): the astrometric match failed")
        element = ElementTree.SubElement(root, "EXPOSURE", name=exposure_name(expnum),
                                         accepted="T" if not problems else "F")
        for problem in problems:
            ElementTree.SubElement(element, "REASON").text = problem
        if expnum in anchored:
            is_anchored, instrument = anchored[expnum]
            photometry = ElementTree.SubElement(element, "PHOTOMETRY", instrument=instrument,
                                                anchored="T" if is_anchored else "F")
            if not is_anchored:
                photometry.text = (f"no photometric exposure in photometric instrument {instrument} "
                                   "of the SCAMP run: zero point not calibrated (Elixir's kept)")
        if not problems:
            accepted.append(expnum)
    ElementTree.indent(root)
    Path(xml_out).write_text(ElementTree.tostring(root, encoding="unicode", xml_declaration=True))
    Path(accepted_out).write_text("".join(f"{exposure_name(e)}\n" for e in accepted))
    return accepted


def read_accept_summary(path: str | Path) -> pd.DataFrame:
    """Read ``_scamp_accept.xml``: one row per exposure (``expnum``, ``accepted``,
    ``anchored`` (None when the summary does not say), ``reasons``)."""
    rows = []
    for element in ET.parse(path).getroot().iter("EXPOSURE"):
        photometry = element.find("PHOTOMETRY")
        rows.append({
            "expnum": parse_exposure_name(element.get("name")),
            "accepted": element.get("accepted") == "T",
            "anchored": None if photometry is None else photometry.get("anchored") == "T",
            "reasons": [reason.text for reason in element.iter("REASON")],
        })
    return pd.DataFrame(rows, columns=["expnum", "accepted", "anchored", "reasons"])
