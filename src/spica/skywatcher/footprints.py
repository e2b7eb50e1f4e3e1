"""Outlines on the sky: CCDs, whole fields, release products, contour boxes.

Every outline is a quadrilateral (or a densified polygon for boxes) of
RA/Dec vertices in degrees. A footprint table (:data:`FOOTPRINT_COLUMNS`) has
one row per CCD: ``expnum``, ``ccd`` and the four corners ``ra_1..ra_4``,
``dec_1..dec_4`` in the order of :meth:`astropy.wcs.WCS.calc_footprint`.

Where the per-CCD WCS comes from
--------------------------------
The registry's ``ccds`` table keeps each CCD's centre (``ra_center``,
``dec_center``, from the header WCS) and size but not its corners. The WCS
recorded for each CCD is in the step 1 catalogue: ``NNNNNNp_ldac.fits`` holds,
per CCD, an ``LDAC_IMHEAD`` table with the CCD's full image header (what
SExtractor read, i.e. the Elixir header). :func:`read_ccd_footprints` takes
the corners from there (one small table per CCD, about 4 ms per exposure),
falling back to the raw exposure's headers when step 1 made no catalogue
(quarantined files), and can keep them in a CSV cache so a survey-size map
reads each exposure once.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "FOOTPRINT_COLUMNS",
    "FootprintError",
    "header_footprints",
    "read_ccd_footprints",
    "field_footprints",
    "square_footprints",
    "box_outline",
]

#: Columns of a footprint table.
FOOTPRINT_COLUMNS: tuple[str, ...] = (
    "expnum", "ccd", "ra_1", "dec_1", "ra_2", "dec_2", "ra_3", "dec_3", "ra_4", "dec_4",
)
_RA = ["ra_1", "ra_2", "ra_3", "ra_4"]
#: Header keywords of a celestial WCS (FITS WCS papers I-II, TPV, SIP) and the image size.
_WCS_KEY = re.compile(r"^(NAXIS\d?|WCSAXES|CTYPE\d|CRVAL\d|CRPIX\d|CDELT\d|CUNIT\d|CD\d_\d|"
                      r"PC\d_\d|PV\d_\d+|RADESYS|RADECSYS|EQUINOX|EPOCH|LONPOLE|LATPOLE|"
                      r"A_ORDER|B_ORDER|AP_ORDER|BP_ORDER|A_\d_\d|B_\d_\d|AP_\d_\d|BP_\d_\d)$")
_DEC = ["dec_1", "dec_2", "dec_3", "dec_4"]


class FootprintError(ValueError):
    """An outline that cannot be made (no usable WCS, malformed box)."""


def corners(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(ra, dec)`` arrays of shape (n, 4) of a footprint table."""
    return table[_RA].to_numpy(float), table[_DEC].to_numpy(float)


def header_footprints(headers: Iterable[Any], expnum: int) -> pd.DataFrame:
    """Footprint rows of one exposure from its CCD headers (celestial WCS, NAXIS1/2).

    Headers without a usable celestial WCS are skipped with a warning.
    """
    from astropy.io import fits
    from astropy.wcs import WCS, FITSFixedWarning

    rows = []
    for ccd, header in enumerate(headers):
        try:
            # only the WCS cards: the whole Elixir header costs 5x more to parse
            cards = fits.Header([card for card in header.cards if _WCS_KEY.match(card.keyword)])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FITSFixedWarning)
                wcs = WCS(cards, naxis=2)
            if not wcs.has_celestial:
                raise FootprintError("no celestial WCS")
            nx, ny = int(header["NAXIS1"]), int(header["NAXIS2"])
            footprint = wcs.calc_footprint(axes=(nx, ny))
        except Exception as error:  # astropy raises many kinds on broken headers
            warnings.warn(f"{expnum}p CCD {ccd}: no footprint ({error})", stacklevel=2)
            continue
        if not np.isfinite(footprint).all():
            warnings.warn(f"{expnum}p CCD {ccd}: WCS gives non-finite corners", stacklevel=2)
            continue
        rows.append([expnum, ccd, *np.column_stack([footprint[:, 0] % 360,
                                                    footprint[:, 1]]).ravel()])
    return pd.DataFrame(rows, columns=list(FOOTPRINT_COLUMNS))


def _ldac_headers(path: Path) -> list:
    from astropy.io import fits

    headers = []
    with fits.open(path) as hdul:
        for hdu in hdul:
            if hdu.name == "LDAC_IMHEAD":
                cards = hdu.data["Field Header Card"][0]
                headers.append(fits.Header.fromstring("".join(
                    str(card).ljust(80) for card in np.ravel(cards))))
    return headers


def _raw_headers(path: Path) -> list:
    from astropy.io import fits

    with fits.open(path) as hdul:
        return [hdu.header.copy() for hdu in hdul[1:] if hdu.is_image and hdu.header.get("NAXIS")]


def read_ccd_footprints(
    expnums: Iterable[int],
    *,
    results: str | Path,
    exposures_dir: str | Path | None = None,
    cache: str | Path | None = None,
) -> pd.DataFrame:
    """CCD footprints of exposures, from their recorded WCS.

    Parameters
    ----------
    expnums
        Odometers to read.
    results
        The results tree (step 1 catalogues ``step1/NNNNNNp/NNNNNNp_ldac.fits``).
    exposures_dir
        Raw exposures (``NNNNNNp.fits[.fz]``), read when step 1 has no catalogue.
    cache
        CSV of footprints read before (read if present, extended and rewritten
        when new exposures were read). Keyed by EXPNUM: delete it after
        re-reducing an exposure with a new WCS.

    Returns
    -------
    DataFrame
        Columns :data:`FOOTPRINT_COLUMNS`; exposures with no readable WCS are
        absent (a warning names them).
    """
    from spica.paths import exposure_filename, step1_path

    wanted = sorted({int(e) for e in expnums})
    known = pd.DataFrame(columns=list(FOOTPRINT_COLUMNS))
    if cache is not None and Path(cache).is_file():
        known = pd.read_csv(cache)
        if list(known.columns) != list(FOOTPRINT_COLUMNS):
            raise FootprintError(f"{cache}: not a footprint cache (columns {list(known.columns)})")
    have = set(known["expnum"].astype(int))
    found = []
    for expnum in (e for e in wanted if e not in have):
        ldac = step1_path(results, expnum, "ldac")
        headers: list = []
        if ldac.is_file():
            headers = _ldac_headers(ldac)
        elif exposures_dir is not None:
            for compressed in (False, True):
                raw = Path(exposures_dir) / exposure_filename(expnum, compressed=compressed)
                if raw.is_file():
                    try:
                        headers = _raw_headers(raw)
                    except Exception as error:  # unreadable raw file
                        warnings.warn(f"{raw}: unreadable ({error})", stacklevel=2)
                    break
        if not headers:
            warnings.warn(f"{expnum}p: no step 1 catalogue or raw headers, no CCD outline",
                          stacklevel=2)
            continue
        found.append(header_footprints(headers, expnum))
    table = pd.concat([known, *found], ignore_index=True) if found else known
    if found and cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        table.sort_values(["expnum", "ccd"]).to_csv(cache, index=False)
    table = table[table["expnum"].astype(int).isin(wanted)]
    return table.astype({"expnum": int, "ccd": int, **{c: float for c in _RA + _DEC}}) \
        .reset_index(drop=True)


def _tan_square(ra: float, dec: float, size_deg: float) -> np.ndarray:
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [1.0, 1.0]  # the pixel [0.5, 1.5]^2 is the square
    wcs.wcs.cdelt = [-size_deg, size_deg]
    return wcs.calc_footprint(axes=(1, 1), center=False)


def square_footprints(frame: pd.DataFrame, size_deg: float | str, *,
                      ra: str = "ra", dec: str = "dec", key: str = "expnum") -> pd.DataFrame:
    """Square outlines (TAN grid, north up) of side ``size_deg`` centred on each row.

    ``size_deg`` is a number or the name of a column (``size_deg`` of a plan).
    Used for release products (stack tiles) and for exposures drawn as whole
    fields without CCD geometry.
    """
    rows = []
    for i, row in enumerate(frame.itertuples(index=False)):
        values = row._asdict()
        size = float(values[size_deg]) if isinstance(size_deg, str) else float(size_deg)
        r, d = float(values[ra]), float(values[dec])
        if not (np.isfinite(r) and np.isfinite(d) and size > 0):
            continue
        corner = _tan_square(r, d, size)
        rows.append([values.get(key, i), 0, *np.column_stack([corner[:, 0] % 360,
                                                              corner[:, 1]]).ravel()])
    return pd.DataFrame(rows, columns=list(FOOTPRINT_COLUMNS))


def field_footprints(ccd_footprints: pd.DataFrame) -> pd.DataFrame:
    """One outline per exposure: the rectangle enclosing its CCDs in its own tangent plane.

    The corners of every CCD go through a TAN WCS centred on the mean CCD
    corner (astropy), the enclosing pixel rectangle comes back through it.
    """
    from astropy.coordinates import SkyCoord
    from astropy.wcs import WCS

    rows = []
    for expnum, group in ccd_footprints.groupby("expnum", sort=True):
        ra, dec = corners(group)
        centre = SkyCoord(ra.ravel(), dec.ravel(), unit="deg").cartesian.mean()
        centre = SkyCoord(centre, representation_type="cartesian").spherical
        wcs = WCS(naxis=2)
        wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        wcs.wcs.crval = [centre.lon.deg, centre.lat.deg]
        wcs.wcs.cdelt = [-1 / 3600, 1 / 3600]
        x, y = wcs.wcs_world2pix(ra.ravel(), dec.ravel(), 0)
        box_x = [x.min(), x.max(), x.max(), x.min()]
        box_y = [y.min(), y.min(), y.max(), y.max()]
        r, d = wcs.wcs_pix2world(box_x, box_y, 0)
        rows.append([int(expnum), -1, *np.column_stack([np.asarray(r) % 360, d]).ravel()])
    return pd.DataFrame(rows, columns=list(FOOTPRINT_COLUMNS))


def box_outline(box: Mapping[str, Any], *, step_deg: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """A contour box's outline: RA/Dec edges densified every ``step_deg`` (constant-Dec
    edges are small circles, drawn as such).

    ``ra_min > ra_max`` crosses RA 0. Returned RA is continuous (may exceed 360).
    """
    try:
        ra_min, ra_max = float(box["ra_min"]) % 360, float(box["ra_max"])
        dec_min, dec_max = float(box["dec_min"]), float(box["dec_max"])
    except (KeyError, TypeError, ValueError) as error:
        raise FootprintError(f"contour box needs ra_min, ra_max, dec_min, dec_max: {box!r}") \
            from error
    if ra_max < ra_min:
        ra_max += 360.0
    if not -90 <= dec_min < dec_max <= 90 or ra_max == ra_min:
        raise FootprintError(f"empty or inverted contour box: {box!r}")
    n_ra = max(int(np.ceil((ra_max - ra_min) / step_deg)), 1)
    n_dec = max(int(np.ceil((dec_max - dec_min) / step_deg)), 1)
    ras = np.linspace(ra_min, ra_max, n_ra + 1)
    decs = np.linspace(dec_min, dec_max, n_dec + 1)
    ra = np.concatenate([ras, np.full(n_dec, ra_max), ras[::-1][1:], np.full(n_dec - 1, ra_min)])
    dec = np.concatenate([np.full(n_ra + 1, dec_min), decs[1:], np.full(n_ra, dec_max),
                          decs[::-1][1:-1]])
    return ra, dec
