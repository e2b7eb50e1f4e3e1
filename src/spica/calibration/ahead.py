"""The per-exposure ``.ahead`` SCAMP reads beside each catalogue, and zero points."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from astropy.io import fits

from spica.headers import image_hdus

if TYPE_CHECKING:  # pandas is imported by exposure_zeropoints only: check_exposure writes
    import pandas as pd  # an .ahead per exposure and never needs it (0.45 s a job)

__all__ = ["PRIMARY_KEYWORDS", "PHOTOMETRY_KEYWORDS", "ahead_cards", "write_ahead", "exposure_zeropoints"]


#: Primary-header keywords SCAMP needs on every CCD (astrometric context,
#: epoch, photometric context, airmass term).
PRIMARY_KEYWORDS: tuple[str, ...] = ("FILTER", "EXPTIME", "MJD-OBS", "QRUNID", "AIRMASS")


#: Elixir photometric keywords, taken from the extension (primary as fallback).
PHOTOMETRY_KEYWORDS: tuple[str, ...] = ("PHOT_C", "PHOT_K")


def _lookup(key: str, *headers: fits.Header) -> Any:
    for header in headers:
        if key in header:
            return header[key]
    return None


def ahead_cards(
    primary: fits.Header, extension_headers: Sequence[fits.Header], *, photometric: bool
) -> str:
    """Return the text of the ``.ahead`` file of one exposure.

    One block per extension (CCD), each a series of 80-character cards
    ending with ``END``, in the order of the extensions (the order of the
    catalogue's ``LDAC_IMHEAD`` tables).

    Parameters
    ----------
    primary : astropy.io.fits.Header
        Primary header of the exposure (``FILTER``, ``QRUNID``, ...).
    extension_headers : sequence of astropy.io.fits.Header
        The image extension headers, in file order.
    photometric : bool
        The night was photometric (observing metadata): ``PHOTFLAG = T``
        makes SCAMP anchor the zero point to ``PHOT_C`` within
        ``MAGZERO_REFERR``.

    Returns
    -------
    str
        Newline-separated cards; parse one block with
        ``fits.Header.fromstring(block, sep="\\n")``.

    Raises
    ------
    ValueError
        No extension, or a required keyword missing from both headers.
    """
    if not extension_headers:
        raise ValueError("an exposure without image extensions has no .ahead")
    blocks = []
    for index, ext in enumerate(extension_headers):
        out = fits.Header()
        for key in PRIMARY_KEYWORDS:
            value = _lookup(key, primary, ext)
            if value is None:
                raise ValueError(f"{key} in neither the primary header nor extension {index + 1}")
            if isinstance(value, str):
                value = value.strip()
            comment = primary.comments[key] if key in primary else ext.comments[key]
            out[key] = (value, comment)
        out["PHOTFLAG"] = (bool(photometric), "photometric night (observing metadata)")
        for key in PHOTOMETRY_KEYWORDS:
            value = _lookup(key, ext, primary)
            if value is None:
                raise ValueError(f"{key} in neither extension {index + 1} nor the primary header")
            comment = ext.comments[key] if key in ext else primary.comments[key]
            out[key] = (float(value), comment)
        cards = [card.image for card in out.cards] + ["END".ljust(80)]
        blocks.append("\n".join(cards))
    return "\n".join(blocks) + "\n"


def write_ahead(exposure_path: str | Path, out_path: str | Path, *, photometric: bool) -> Path:
    """Write the ``.ahead`` of an exposure (MEF) beside its catalogue.

    Parameters
    ----------
    exposure_path : str or Path
        The exposure (``NNNNNNp.fits``, ``.fits.fz``).
    out_path : str or Path
        ``NNNNNNp_ldac.ahead``: the catalogue name with its suffix replaced
        by ``AHEADER_SUFFIX``.
    photometric : bool
        From the observing metadata (``photometric`` column).

    Returns
    -------
    Path
        ``out_path``.
    """
    with fits.open(exposure_path, memmap=False) as hdul:
        primary = hdul[0].header
        extensions = [hdu.header for hdu in image_hdus(hdul[1:])]
        text = ahead_cards(primary, extensions, photometric=photometric)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="ascii")
    return out


def exposure_zeropoints(
    heads: Sequence[fits.Header], aheads: Sequence[fits.Header]
) -> pd.DataFrame:
    """Per-CCD zero points after SCAMP, in ADU of the exposure.

    Parameters
    ----------
    heads : sequence of astropy.io.fits.Header
        The SCAMP ``.head`` of one exposure (``FLXSCALE``, ``MAGZEROP``).
    aheads : sequence of astropy.io.fits.Header
        Its ``.ahead`` (``PHOT_C``, ``PHOT_K``, ``AIRMASS``, ``EXPTIME``).

    Returns
    -------
    pandas.DataFrame
        One row per CCD: ``flxscale``, ``magzerop``, ``zp_scamp`` (
        ``MAGZEROP - 2.5 log10(FLXSCALE)``: magnitude of 1 ADU),
        ``zp_elixir`` (``PHOT_C + 2.5 log10(EXPTIME) + PHOT_K (AIRMASS-1)``)
        and ``dzp = zp_scamp - zp_elixir`` (< 0: light lost).
    """
    if len(heads) != len(aheads):
        raise ValueError(f"{len(heads)} heads but {len(aheads)} aheads")
    rows = []
    for ccd, (head, ahead) in enumerate(zip(heads, aheads)):
        flx, zp0 = float(head["FLXSCALE"]), float(head["MAGZEROP"])
        zp_scamp = zp0 - 2.5 * math.log10(flx)
        zp_elixir = (
            float(ahead["PHOT_C"]) + 2.5 * math.log10(float(ahead["EXPTIME"]))
            + float(ahead["PHOT_K"]) * (float(ahead["AIRMASS"]) - 1.0)
        )
        rows.append({"ccd": ccd, "flxscale": flx, "magzerop": zp0, "zp_scamp": zp_scamp,
                     "zp_elixir": zp_elixir, "dzp": zp_scamp - zp_elixir})
    import pandas as pd

    return pd.DataFrame(rows)
