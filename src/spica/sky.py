"""Positions on the sky: great-circle distance and sexagesimal text, once.

Two sexagesimal styles are in use, and both are products:

- truncated whole seconds (:func:`format_ra`, :func:`format_dec`), the seed's
  rule for stack names (``CFHTLS_W_r_141927+524055``) and the pending view
  (``14 h 19 m 27``, ``+52 ° 40 ' 55``);
- rounded, with decimals (:func:`format_ra_rounded`,
  :func:`format_dec_rounded`), astropy's ``Angle.to_string`` as written in the
  ``_spica.xml`` summary (``14:19:27.00``, ``+52:40:56.0``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "angular_distance",
    "format_ra",
    "format_dec",
    "format_ra_rounded",
    "format_dec_rounded",
]


def angular_distance(ra1: ArrayLike, dec1: ArrayLike, ra2: ArrayLike, dec2: ArrayLike) -> np.ndarray | float:
    """Great-circle distance between two positions (haversine formula).

    Parameters
    ----------
    ra1, dec1, ra2, dec2 : float or array_like
        Right ascensions and declinations in degrees; arrays broadcast.

    Returns
    -------
    float or numpy.ndarray
        Distance in degrees (a float for scalar inputs).
    """
    r1, d1, r2, d2 = (np.radians(np.asarray(v, dtype=float)) for v in (ra1, dec1, ra2, dec2))
    hav = np.sin((d2 - d1) / 2) ** 2 + np.cos(d1) * np.cos(d2) * np.sin((r2 - r1) / 2) ** 2
    distance = np.degrees(2 * np.arcsin(np.minimum(1.0, np.sqrt(hav))))
    return float(distance) if distance.ndim == 0 else distance


def _whole_seconds(text: str, seconds: int, sep: Sequence[str]) -> str:
    """``seconds`` of time or arc as ``text`` + ``HH`` ``sep[0]`` ``MM`` ``sep[1]`` ``SS``."""
    return f"{text}{seconds // 3600:02d}{sep[0]}{seconds // 60 % 60:02d}{sep[1]}{seconds % 60:02d}"


def format_ra(ra_deg: float, *, sep: Sequence[str] = ("", "")) -> str:
    """Format RA as ``HHMMSS``, truncated (not rounded) as in the seed's names.

    Parameters
    ----------
    ra_deg : float
        Right ascension in degrees (wrapped into [0, 360)).
    sep : pair of str, optional
        Written between hours and minutes, and between minutes and seconds
        (``(" h ", " m ")`` gives the pending view's ``14 h 19 m 27``).

    Returns
    -------
    str
        Hours, minutes and whole seconds of time, two digits each.
    """
    seconds = math.floor(ra_deg % 360.0 / 15.0 * 3600.0 + 1e-7)
    return _whole_seconds("", seconds % (24 * 3600), sep)


def format_dec(dec_deg: float, *, sep: Sequence[str] = ("", "")) -> str:
    """Format Dec as ``+DDMMSS``, truncated towards zero as in the seed's names.

    Parameters
    ----------
    dec_deg : float
        Declination in degrees.
    sep : pair of str, optional
        Written between degrees and minutes, and between minutes and seconds
        (``(" \u00b0 ", " ' ")`` gives the pending view's ``+52 \u00b0 40 ' 55``).

    Returns
    -------
    str
        Sign (``-`` below zero, ``+`` otherwise), degrees, minutes and whole
        seconds of arc, two digits each.
    """
    sign = "-" if dec_deg < 0 else "+"
    return _whole_seconds(sign, math.floor(abs(dec_deg) * 3600.0 + 1e-7), sep)


def format_ra_rounded(ra_deg: float, *, precision: int = 2) -> str:
    """Format RA as ``HH:MM:SS.ss``, rounded (astropy ``Angle.to_string``).

    Parameters
    ----------
    ra_deg : float
        Right ascension in degrees (not wrapped: ``-1`` gives ``-00:04:00.00``).
    precision : int, optional
        Decimals of the seconds; a rounding to 60 carries into the minutes.

    Returns
    -------
    str
        The zero-padded text, e.g. ``14:19:27.00``.
    """
    from astropy.coordinates import Angle

    return Angle(ra_deg, "deg").to_string(unit="hourangle", sep=":", precision=precision, pad=True)


def format_dec_rounded(dec_deg: float, *, precision: int = 1) -> str:
    """Format Dec as ``+DD:MM:SS.s``, rounded (astropy ``Angle.to_string``).

    Parameters
    ----------
    dec_deg : float
        Declination in degrees.
    precision : int, optional
        Decimals of the seconds; a rounding to 60 carries into the minutes.

    Returns
    -------
    str
        The signed, zero-padded text, e.g. ``+52:40:56.0`` (``-0.0`` gives
        ``-00:00:00.0``).
    """
    from astropy.coordinates import Angle

    return Angle(dec_deg, "deg").to_string(unit="deg", sep=":", precision=precision, pad=True, alwayssign=True)
