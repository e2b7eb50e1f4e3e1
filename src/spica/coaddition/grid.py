"""The release tile grid: SWarp's CENTER/IMAGE_SIZE/PIXEL_SCALE and its WCS."""

from __future__ import annotations

import math
from collections.abc import Mapping

__all__ = ["stack_grid", "grid_wcs"]


def stack_grid(
    ra: float, dec: float, *, size_deg: float, pixel_scale_arcsec: float
) -> dict[str, str]:
    """Return SWarp's output grid of a square tile centred on (ra, dec).

    The number of pixels is ``floor(size_deg * 3600 / pixel_scale_arcsec)``:
    1 deg at 0.186" gives the seed's 19354 x 19354 quanta.

    Parameters
    ----------
    ra, dec : float
        Tile centre, decimal degrees J2000.
    size_deg : float
        Side of the tile (``survey.tile_size_deg``).
    pixel_scale_arcsec : float
        Pixel scale of the stack (``survey.pixel_scale``).

    Returns
    -------
    dict
        ``{"CENTER": "214.8625000,52.6822222", "IMAGE_SIZE": "19354,19354",
        "PIXEL_SCALE": "0.186"}``: values as SWarp reads them.
    """
    if size_deg <= 0 or pixel_scale_arcsec <= 0:
        raise ValueError("size_deg and pixel_scale_arcsec must be positive")
    if not -90.0 <= dec <= 90.0:
        raise ValueError(f"invalid declination {dec}")
    npix = int(math.floor(size_deg * 3600.0 / pixel_scale_arcsec + 1e-6))
    if npix < 1:
        raise ValueError("tile smaller than one pixel")
    return {
        "CENTER": f"{ra % 360.0:.7f},{dec:+.7f}",
        "IMAGE_SIZE": f"{npix},{npix}",
        "PIXEL_SCALE": format(float(pixel_scale_arcsec), "g"),
    }


def grid_wcs(grid: Mapping[str, str]):
    """Return the TAN ``astropy.wcs.WCS`` SWarp builds for ``grid``.

    SWarp puts the centre at ``CRPIX = N/2 + 0.5`` (1-based) with
    ``CD = diag(-scale, +scale)`` (north up, east left).
    """
    from astropy.wcs import WCS

    ra, dec = (float(v) for v in grid["CENTER"].split(","))
    nx, ny = (int(v) for v in grid["IMAGE_SIZE"].split(","))
    scale = float(grid["PIXEL_SCALE"]) / 3600.0
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [nx / 2 + 0.5, ny / 2 + 0.5]
    wcs.wcs.cd = [[-scale, 0.0], [0.0, scale]]
    wcs.wcs.radesys = "ICRS"
    wcs.pixel_shape = (nx, ny)
    return wcs
