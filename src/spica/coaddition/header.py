"""Header keywords SPICA adds to stacks, chi-squared images, weights and catalogues."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spica.paths import exposure_name

__all__ = ["plain_value", "IMCMB_MAX", "stack_header_cards", "release_cards", "update_stack_header"]


#: ``IMCMBnnn`` keys fit in 8 characters up to 999 inputs.
IMCMB_MAX = 999


def _column(frame: pd.DataFrame, *names: str) -> pd.Series | None:
    for name in names:
        if name in frame.columns:
            return frame[name]
    return None


def _exposure_label(value: Any) -> str:
    text = str(value).strip()
    return exposure_name(int(float(text))) if text.replace(".", "", 1).isdigit() else text


def stack_header_cards(
    inputs: pd.DataFrame,
    *,
    release: str,
    zeropoint: float = 30.0,
    software: Mapping[str, str],
    object_name: str | None = None,
    photometry_anchored: bool | None = None,
) -> list[tuple[str, object, str]]:
    """Return the keywords to add to a stack's header.

    Parameters
    ----------
    inputs : pandas.DataFrame
        One row per input exposure. Used columns: ``expnum``, ``exptime``,
        ``rel_date`` (``YYYY-MM-DD[Thh:mm:ss]``), ``filter``, ``object``;
        optional ``qa_fwhm_arcsec`` (or ``seeing``) and ``qa_background``
        (or ``background``).
    release : str
        Release name, ``T0002``.
    zeropoint : float
        Magnitude zero point of the stack (30, seed 3.2.2).
    software : mapping
        Software name -> version (``{"spica": "0.1", "SWarp": "2.41.5"}``).
    object_name : str, optional
        ``OBJECT`` of the stack (e.g. the stack name); default: the inputs'
        single ``object``, or their sorted distinct values joined by ``,``.
    photometry_anchored : bool, optional
        Every input's zero point is tied to a photometric exposure (the accept
        summary): ``PHOTCAL`` = T, else F (Elixir's zero point kept). Not
        written when unknown.

    Returns
    -------
    list of (key, value, comment)
        ``RELEASE``, ``MAGZERO``, ``EXPTIME`` (total), ``NCOMBINE``,
        ``IMCMB001``..., ``SEEING`` (mean), ``BACKMEAN`` (mean), ``REL_DATE``
        (the latest input, seed 3.3), ``FILTER``, ``OBJECT``, ``SOFTNnnn`` /
        ``SOFTVnnn`` (``SOFTNAME``/``SOFTVERS`` are SWarp's own).

    Raises
    ------
    ValueError
        No input, a missing column, several filters, or no release date.
    """
    if len(inputs) == 0:
        raise ValueError("no input exposure")
    for column in ("expnum", "exptime", "rel_date", "filter"):
        if column not in inputs.columns:
            raise ValueError(f"inputs lack column {column!r}")
    filters = sorted(set(inputs["filter"].dropna().astype(str)))
    if len(filters) != 1:
        raise ValueError(f"a stack has one filter, inputs have {filters}")
    dates = pd.to_datetime(inputs["rel_date"].astype("string"), errors="coerce",
                           format="ISO8601")
    if dates.isna().all():
        raise ValueError("no valid REL_DATE among the inputs")
    rel_date = dates.max().strftime("%Y-%m-%dT%H:%M:%S")
    exposures = [_exposure_label(v) for v in inputs["expnum"]]
    exposures = list(dict.fromkeys(exposures))  # unique, input order kept

    cards: list[tuple[str, object, str]] = [
        ("RELEASE", str(release), "CFHTLS TERAPIX release"),
        ("MAGZERO", float(zeropoint), "zero point: m = MAGZERO - 2.5 log10(ADU)"),
        ("EXPTIME", float(pd.to_numeric(inputs["exptime"]).sum()),
         "total exposure time of the inputs (s)"),
        ("NCOMBINE", len(exposures), "number of input exposures"),
    ]
    if photometry_anchored is not None:
        cards.append(("PHOTCAL", bool(photometry_anchored), "ZP tied to photometric exposures (SCAMP)"))
    for index, name in enumerate(exposures[:IMCMB_MAX], start=1):
        cards.append((f"IMCMB{index:03d}", name, "input exposure"))
    if len(exposures) > IMCMB_MAX:
        cards.append(("IMCMBMOR", True, f"more than {IMCMB_MAX} inputs: see the XML"))
    seeing = _column(inputs, "qa_fwhm_arcsec", "seeing")
    if seeing is not None and pd.to_numeric(seeing, errors="coerce").notna().any():
        cards.append(("SEEING", round(float(pd.to_numeric(seeing, errors="coerce").mean()), 4),
                      "mean seeing FWHM of the inputs (arcsec)"))
    background = _column(inputs, "qa_background", "background")
    if background is not None and pd.to_numeric(background, errors="coerce").notna().any():
        cards.append(("BACKMEAN",
                      round(float(pd.to_numeric(background, errors="coerce").mean()), 4),
                      "mean sky background of the inputs (ADU)"))
    cards.append(("REL_DATE", rel_date, "release date: latest of the inputs"))
    cards.append(("FILTER", filters[0], "filter of the inputs"))
    if object_name is None:
        objects = sorted(set(inputs.get("object", pd.Series(dtype=str)).dropna().astype(str)))
        object_name = ",".join(objects)[:68] if objects else "UNKNOWN"
    cards.append(("OBJECT", str(object_name), "stack name or target"))
    for index, (name, version) in enumerate(sorted(software.items()), start=1):
        cards.append((f"SOFTN{index:03d}", str(name), "software used"))
        cards.append((f"SOFTV{index:03d}", str(version), f"{name} version"))
    return cards


def release_cards(
    headers: Sequence[Mapping[str, Any]], *, zeropoint: float | None = None
) -> list[tuple[str, object, str]]:
    """The release keywords of a product made from stacks (seed 3.3): its weight
    map, chi-squared image or catalogue carries the release and the latest
    ``REL_DATE`` of the stacks it comes from (and their common ``FILTER``).

    Parameters
    ----------
    headers : sequence of mapping
        Primary headers of the stacks (:func:`stack_header_cards` keywords).
    zeropoint : float, optional
        ``MAGZERO`` to write too (the catalogues' magnitude zero point).

    Raises
    ------
    ValueError
        No header, no ``REL_DATE``, or stacks of different releases.
    """
    if not headers:
        raise ValueError("no stack header")
    releases = sorted({str(h["RELEASE"]) for h in headers if "RELEASE" in h})
    if len(releases) != 1:
        raise ValueError(f"stacks of one release expected, got {releases}")
    dates = [str(h["REL_DATE"]) for h in headers if "REL_DATE" in h]
    if not dates:
        raise ValueError("no REL_DATE among the stacks")
    cards: list[tuple[str, object, str]] = [("RELEASE", releases[0], "CFHTLS TERAPIX release")]
    if zeropoint is not None:
        cards.append(("MAGZERO", float(zeropoint), "magnitude zero point of the catalogue"))
    # ISO dates of one format sort as they compare in time
    cards.append(("REL_DATE", max(dates), "release date: latest of the inputs"))
    filters = sorted({str(h["FILTER"]) for h in headers if "FILTER" in h})
    if len(filters) == 1:
        cards.append(("FILTER", filters[0], "filter of the inputs"))
    return cards


def plain_value(value: object) -> object:
    """A header value as a plain Python (JSON) value."""
    return value.item() if isinstance(value, np.generic) else value


def update_stack_header(path: str | Path, cards: Sequence[tuple[str, object, str]]) -> None:
    """Write ``cards`` into the primary header of the FITS file ``path`` (in place)."""
    from astropy.io import fits

    with fits.open(path, mode="update", memmap=True) as hdul:
        header = hdul[0].header
        for key, value, comment in cards:
            header[key] = (value, comment)
