"""Pure functions of the demo simulator: geometry, astrometry, PSF, noise, defects.

Everything here works on numpy arrays and plain numbers; no file I/O. The
writer (:mod:`spica.demo.survey`) calls these to build each CCD image.

Conventions
-----------
* Pixel coordinates are 1-based FITS coordinates (``x`` = column, ``y`` = row)
  unless a name ends in ``0`` (0-based numpy indices).
* The focal plane is measured in pixels from the optical axis: ``u`` to the
  West (East is left, as in MegaCam headers), ``v`` to the North.
* The TRUE sky mapping is TAN about the true pointing applied to the
  radially distorted focal plane ``p = u (1 + k r^2)``; the header WCS is the
  undistorted TAN, offset and jittered (see :func:`header_wcs`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, signal

__all__ = [
    "Mosaic",
    "FilterSpec",
    "FILTERS",
    "band_of",
    "fwhm_to_moffat_alpha",
    "powerlaw_magnitudes",
    "mag_to_dn",
    "dn_to_mag",
    "tan_project",
    "tan_deproject",
    "offset_radec",
    "distort",
    "undistort",
    "sky_to_focal",
    "focal_to_sky",
    "header_wcs",
    "seeing_at",
    "moffat_stamps",
    "galaxy_stamps",
    "add_stamps",
    "stamp_pixels",
    "flat_field",
    "add_noise",
    "saturate_and_bleed",
    "cosmic_rays",
    "trail_image",
    "clip_segment_to_box",
    "to_uint16",
    "label_regions",
]


# --------------------------------------------------------------------------
# Instrument
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Mosaic:
    """A scaled MegaCam-like mosaic of ``nx`` x ``ny`` CCDs.

    CCD ``k`` sits in column ``k % nx`` and row ``k // nx``; row 0 is the
    North (top) row, as ``ccd00`` is top-left in MegaCam's diagram.
    """

    nx: int = 4
    ny: int = 2
    ccd_nx: int = 400
    ccd_ny: int = 800
    gap_x: int = 20
    gap_y: int = 40
    pixel_scale: float = 0.186

    @property
    def nccd(self) -> int:
        """Number of CCDs."""
        return self.nx * self.ny

    @property
    def width(self) -> int:
        """Mosaic width in pixels, gaps included."""
        return self.nx * self.ccd_nx + (self.nx - 1) * self.gap_x

    @property
    def height(self) -> int:
        """Mosaic height in pixels, gaps included."""
        return self.ny * self.ccd_ny + (self.ny - 1) * self.gap_y

    @property
    def centre(self) -> tuple[float, float]:
        """Optical axis in 1-based mosaic pixel coordinates."""
        return (self.width + 1) / 2.0, (self.height + 1) / 2.0

    @property
    def corner_radius(self) -> float:
        """Distance from the axis to a mosaic corner (pixels)."""
        return math.hypot(self.width / 2.0, self.height / 2.0)

    def origin(self, k: int) -> tuple[int, int]:
        """Mosaic pixel offset of CCD ``k`` (mosaic = origin + CCD pixel)."""
        col, row = k % self.nx, k // self.nx
        return col * (self.ccd_nx + self.gap_x), (self.ny - 1 - row) * (self.ccd_ny + self.gap_y)

    def detsec(self, k: int) -> str:
        """DETSEC card value of CCD ``k``."""
        x0, y0 = self.origin(k)
        return f"[{x0 + 1}:{x0 + self.ccd_nx},{y0 + 1}:{y0 + self.ccd_ny}]"

    def ccd_to_focal(self, k: int, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """CCD pixel (1-based) -> focal-plane (u, v) in pixels from the axis."""
        x0, y0 = self.origin(k)
        xc, yc = self.centre
        return np.asarray(x) + x0 - xc, np.asarray(y) + y0 - yc

    def focal_to_ccd(self, k: int, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Focal-plane (u, v) -> CCD pixel (1-based) of CCD ``k``."""
        x0, y0 = self.origin(k)
        xc, yc = self.centre
        return np.asarray(u) - x0 + xc, np.asarray(v) - y0 + yc


@dataclass(frozen=True)
class FilterSpec:
    """Photometric properties of a MegaCam filter (nominal Elixir values)."""

    name: str
    band: str
    phot_c: float  # Elixir zero point (mag for 1 DN/s)
    phot_k: float  # airmass term (negative, Elixir sign convention)
    sky_mag: float  # dark-sky surface brightness, mag/arcsec^2


#: The five CFHTLS filters with Elixir-like nominal zero points.
FILTERS: dict[str, FilterSpec] = {
    f.name: f
    for f in (
        FilterSpec("u.MP9301", "u", 25.78, -0.35, 22.6),
        FilterSpec("g.MP9401", "g", 26.52, -0.15, 21.9),
        FilterSpec("r.MP9601", "r", 26.22, -0.10, 21.0),
        FilterSpec("i.MP9701", "i", 25.99, -0.04, 20.2),
        FilterSpec("z.MP9801", "z", 24.86, -0.03, 19.3),
    )
}


def band_of(filter_name: str) -> str:
    """Return the band letter of a MegaCam filter name (``'i.MP9701'`` -> ``'i'``)."""
    return filter_name.split(".")[0]


# --------------------------------------------------------------------------
# Photometry
# --------------------------------------------------------------------------


def powerlaw_magnitudes(
    rng: np.random.Generator, n: int, mag_min: float, mag_max: float, slope: float
) -> np.ndarray:
    """Draw ``n`` magnitudes with dN/dm proportional to 10**(slope m)."""
    lo, hi = 10.0 ** (slope * mag_min), 10.0 ** (slope * mag_max)
    return np.log10(lo + rng.random(n) * (hi - lo)) / slope


def mag_to_dn(
    mag: np.ndarray | float,
    exptime: float,
    phot_c: float,
    phot_k: float,
    airmass: float,
    zp_offset: float = 0.0,
) -> np.ndarray:
    """Total counts (DN) of a source of magnitude ``mag`` (Elixir convention).

    ``M = -2.5 log10(DN) + 2.5 log10(EXPTIME) + PHOT_C + PHOT_K (AIRMASS - 1)``
    with the true zero point ``PHOT_C - zp_offset`` (``zp_offset`` > 0 means
    light lost to clouds: the header ``PHOT_C`` is then too bright).
    """
    zp = phot_c - zp_offset + phot_k * (airmass - 1.0)
    return exptime * 10.0 ** (-0.4 * (np.asarray(mag, dtype=float) - zp))


def dn_to_mag(
    dn: np.ndarray | float, exptime: float, phot_c: float, phot_k: float, airmass: float
) -> np.ndarray:
    """Elixir magnitude of ``dn`` counts with the header zero point."""
    return -2.5 * np.log10(dn) + 2.5 * math.log10(exptime) + phot_c + phot_k * (airmass - 1.0)


# --------------------------------------------------------------------------
# Astrometry
# --------------------------------------------------------------------------


def tan_project(
    ra: np.ndarray, dec: np.ndarray, ra0: float, dec0: float
) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic projection: (ra, dec) deg -> standard coordinates (xi, eta) deg."""
    a, d = np.radians(ra) - math.radians(ra0), np.radians(dec)
    d0 = math.radians(dec0)
    cosc = math.sin(d0) * np.sin(d) + math.cos(d0) * np.cos(d) * np.cos(a)
    xi = np.cos(d) * np.sin(a) / cosc
    eta = (math.cos(d0) * np.sin(d) - math.sin(d0) * np.cos(d) * np.cos(a)) / cosc
    return np.degrees(xi), np.degrees(eta)


def tan_deproject(
    xi: np.ndarray, eta: np.ndarray, ra0: float, dec0: float
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse gnomonic projection: (xi, eta) deg -> (ra, dec) deg."""
    x, y = np.radians(xi), np.radians(eta)
    d0 = math.radians(dec0)
    denom = math.cos(d0) - y * math.sin(d0)
    a = np.arctan2(x, denom)
    dec = np.arctan2(math.sin(d0) + y * math.cos(d0), np.hypot(x, denom))
    return (np.degrees(a) + ra0) % 360.0, np.degrees(dec)


def offset_radec(
    ra: float, dec: float, east_arcsec: float, north_arcsec: float
) -> tuple[float, float]:
    """Move a position by small offsets on the sky (arcsec East and North)."""
    r, d = tan_deproject(np.array(east_arcsec / 3600.0), np.array(north_arcsec / 3600.0), ra, dec)
    return float(r), float(d)


def distort(u: np.ndarray, v: np.ndarray, k: float) -> tuple[np.ndarray, np.ndarray]:
    """Radial cubic distortion: focal plane -> ideal TAN plane (pixels)."""
    f = 1.0 + k * (np.asarray(u) ** 2 + np.asarray(v) ** 2)
    return u * f, v * f


def undistort(p: np.ndarray, q: np.ndarray, k: float) -> tuple[np.ndarray, np.ndarray]:
    """Invert :func:`distort` by Newton iterations on the radius."""
    rp = np.hypot(p, q)
    r = rp.copy()
    for _ in range(6):
        r = r - (r * (1.0 + k * r * r) - rp) / (1.0 + 3.0 * k * r * r)
    with np.errstate(invalid="ignore", divide="ignore"):
        s = np.where(rp > 0, r / np.where(rp > 0, rp, 1.0), 1.0)
    return p * s, q * s


def focal_to_sky(
    u: np.ndarray, v: np.ndarray, ra0: float, dec0: float, scale_arcsec: float, k: float
) -> tuple[np.ndarray, np.ndarray]:
    """TRUE mapping: focal plane (pixels) -> (ra, dec) deg."""
    p, q = distort(np.asarray(u, float), np.asarray(v, float), k)
    s = scale_arcsec / 3600.0
    return tan_deproject(-p * s, q * s, ra0, dec0)


def sky_to_focal(
    ra: np.ndarray, dec: np.ndarray, ra0: float, dec0: float, scale_arcsec: float, k: float
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse TRUE mapping: (ra, dec) deg -> focal plane (pixels)."""
    xi, eta = tan_project(ra, dec, ra0, dec0)
    s = scale_arcsec / 3600.0
    return undistort(-xi / s, eta / s, k)


def header_wcs(
    mosaic: Mosaic,
    k: int,
    ra0: float,
    dec0: float,
    offset_east_arcsec: float,
    offset_north_arcsec: float,
    rotation_deg: float,
) -> dict[str, float]:
    """Elixir-like TAN WCS of CCD ``k``: no distortion, offset, rotated.

    Returns the keyword values ``CRVAL1/2``, ``CRPIX1/2``, ``CD1_1`` ... as a dict.
    """
    x0, y0 = mosaic.origin(k)
    xc, yc = mosaic.centre
    crval1, crval2 = offset_radec(ra0, dec0, offset_east_arcsec, offset_north_arcsec)
    s = mosaic.pixel_scale / 3600.0
    t = math.radians(rotation_deg)
    c, sn = math.cos(t), math.sin(t)
    return {
        "CRVAL1": crval1,
        "CRVAL2": crval2,
        "CRPIX1": xc - x0,
        "CRPIX2": yc - y0,
        "CD1_1": -s * c,
        "CD1_2": s * sn,
        "CD2_1": s * sn,
        "CD2_2": s * c,
    }


# --------------------------------------------------------------------------
# PSF and sources
# --------------------------------------------------------------------------


def fwhm_to_moffat_alpha(fwhm: np.ndarray | float, beta: float) -> np.ndarray:
    """Moffat core width alpha for a given FWHM and beta."""
    return np.asarray(fwhm) / (2.0 * math.sqrt(2.0 ** (1.0 / beta) - 1.0))


def seeing_at(
    fwhm0: float, u: np.ndarray, v: np.ndarray, variation: float, r_edge: float
) -> np.ndarray:
    """FWHM across the focal plane: ``fwhm0 (1 + variation (r / r_edge)^2)``."""
    return fwhm0 * (1.0 + variation * (np.asarray(u) ** 2 + np.asarray(v) ** 2) / r_edge**2)


def _grid(size: int, sub: int) -> tuple[np.ndarray, np.ndarray]:
    """Sub-pixel sample offsets of a ``size`` x ``size`` stamp (centre pixel at 0)."""
    half = size // 2
    base = np.arange(-half, half + 1, dtype=float)
    fine = (np.arange(sub) + 0.5) / sub - 0.5
    g = (base[:, None] + fine[None, :]).ravel()  # size*sub samples
    return g[None, :, None], g[None, None, :]  # (1, S*sub, 1) rows, (1, 1, S*sub) cols


def moffat_stamps(
    dx: np.ndarray, dy: np.ndarray, fwhm: np.ndarray, beta: float, size: int, sub: int = 3
) -> np.ndarray:
    """Unit-sum Moffat stamps, one per source, pixel-integrated by sub-sampling.

    Parameters
    ----------
    dx, dy
        Sub-pixel offsets (-0.5..0.5) of each source from its stamp's central pixel.
    fwhm
        FWHM of each source's PSF (pixels).
    beta
        Moffat beta.
    size
        Stamp side (odd).
    sub
        Sub-sampling factor per axis.

    Returns
    -------
    numpy.ndarray
        ``(n, size, size)`` stamps, each summing to 1.
    """
    dx, dy = np.asarray(dx, float), np.asarray(dy, float)
    gy, gx = _grid(size, sub)
    alpha = fwhm_to_moffat_alpha(np.asarray(fwhm, float), beta)[:, None, None]
    r2 = (gx - dx[:, None, None]) ** 2 + (gy - dy[:, None, None]) ** 2
    img = (1.0 + r2 / alpha**2) ** (-beta)
    n = len(dx)
    img = img.reshape(n, size, sub, size, sub).sum(axis=(2, 4))
    return img / img.sum(axis=(1, 2), keepdims=True)


def galaxy_stamps(
    dx: np.ndarray,
    dy: np.ndarray,
    scale_pix: np.ndarray,
    axis_ratio: np.ndarray,
    pa_deg: np.ndarray,
    sersic_n: np.ndarray,
    psf: np.ndarray,
    size: int,
) -> np.ndarray:
    """Unit-sum Sersic-like galaxy stamps convolved with ``psf``.

    The profile is ``exp(-(r / h)^(1/n))`` on the elliptical radius ``r``
    (``n`` = 1 exponential disc, ``n`` = 2 bulge-like; only these two values).
    """
    dx, dy = np.asarray(dx, float), np.asarray(dy, float)
    gy, gx = _grid(size, 1)
    t = np.radians(np.asarray(pa_deg, float))[:, None, None]
    xr = gx - dx[:, None, None]
    yr = gy - dy[:, None, None]
    a = xr * np.cos(t) + yr * np.sin(t)
    b = -xr * np.sin(t) + yr * np.cos(t)
    q = np.asarray(axis_ratio, float)[:, None, None]
    r = np.sqrt(a * a + (b / q) ** 2)
    h = np.asarray(scale_pix, float)[:, None, None]
    n_s = np.asarray(sersic_n, float)[:, None, None]
    rh = r / h
    img = np.exp(-np.where(n_s == 1.0, rh, np.sqrt(rh)))  # n = 1 or 2
    img /= img.sum(axis=(1, 2), keepdims=True)
    img = signal.fftconvolve(img, psf[None, :, :], mode="same", axes=(1, 2))
    img = np.clip(img, 0.0, None)
    return img / img.sum(axis=(1, 2), keepdims=True)


def add_stamps(
    image: np.ndarray, ix0: np.ndarray, iy0: np.ndarray, stamps: np.ndarray, flux: np.ndarray
) -> None:
    """Add ``flux * stamps`` centred on 0-based pixels (ix0, iy0), in place.

    Parts of stamps falling off the image are dropped.
    """
    if len(stamps) == 0:
        return
    idx, vals = stamp_pixels(image.shape, ix0, iy0, stamps, flux)
    image += np.bincount(idx, weights=vals, minlength=image.size).reshape(image.shape)


def stamp_pixels(
    shape: tuple[int, int], ix0: np.ndarray, iy0: np.ndarray, stamps: np.ndarray, flux: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Flat pixel indices and values of ``flux * stamps`` on an image of ``shape``.

    Accumulate several groups and add them with a single ``np.bincount``.
    """
    image_shape = shape
    n, size, _ = stamps.shape
    half = size // 2
    off = np.arange(size) - half
    rows = np.asarray(iy0)[:, None, None] + off[None, :, None]
    cols = np.asarray(ix0)[:, None, None] + off[None, None, :]
    rows, cols = np.broadcast_arrays(rows, cols)
    ok = (rows >= 0) & (rows < image_shape[0]) & (cols >= 0) & (cols < image_shape[1])
    vals = stamps * np.asarray(flux, float)[:, None, None]
    return rows[ok] * image_shape[1] + cols[ok], vals[ok]


# --------------------------------------------------------------------------
# Detector
# --------------------------------------------------------------------------


def flat_field(
    rng: np.random.Generator,
    mosaic: Mosaic,
    k: int,
    vignetting: float,
    n_low: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel response of CCD ``k``: vignetting, a gradient, grain, low pixels.

    Returns
    -------
    flat : numpy.ndarray
        float32 ``(ccd_ny, ccd_nx)`` response, ~1.
    low : numpy.ndarray
        ``(n_low, 2)`` 1-based (x, y) of the low-response pixels.
    """
    ny, nx = mosaic.ccd_ny, mosaic.ccd_nx
    y, x = np.mgrid[1 : ny + 1, 1 : nx + 1].astype(float)
    u, v = mosaic.ccd_to_focal(k, x, y)
    r2 = (u * u + v * v) / mosaic.corner_radius**2
    gx, gy = rng.normal(0.0, 0.01, 2)
    flat = 1.0 - vignetting * r2 + gx * (x / nx - 0.5) + gy * (y / ny - 0.5)
    flat += rng.normal(0.0, 0.004, flat.shape)
    flat *= 1.0 / (1.0 - vignetting * 0.25)  # mosaic-normalised to ~1 on average
    lx = rng.integers(0, nx, n_low)
    ly = rng.integers(0, ny, n_low)
    flat[ly, lx] = rng.uniform(0.2, 0.4, n_low)
    return flat.astype(np.float32), np.stack([lx + 1, ly + 1], axis=1)


def add_noise(
    rng: np.random.Generator, expected_dn: np.ndarray, gain: float, rdnoise_e: float
) -> np.ndarray:
    """Photon plus read noise; returns DN as float.

    Photon noise is the Gaussian limit of the Poisson law (sky levels are
    hundreds of electrons or more), which is several times faster.
    """
    lam = np.clip(expected_dn, 0.0, None) * gain
    noise = rng.standard_normal(lam.shape) * np.sqrt(lam + rdnoise_e**2)
    return (lam + noise) / gain


def saturate_and_bleed(image: np.ndarray, full_well: float) -> np.ndarray:
    """Clip at ``full_well`` and spill the excess charge along columns, in place.

    Returns
    -------
    numpy.ndarray
        Boolean mask of saturated pixels (cores and bleed trails).
    """
    over = image > full_well
    if not over.any():
        return over
    ny = image.shape[0]
    for col in np.flatnonzero(over.any(axis=0)):
        c = image[:, col]
        rows = np.flatnonzero(c > full_well)
        # contiguous runs in this column
        splits = np.flatnonzero(np.diff(rows) > 1) + 1
        for run in np.split(rows, splits):
            excess = float(np.sum(c[run] - full_well))
            extra = int(math.ceil(excess / full_well))
            lo = max(0, run[0] - extra // 2)
            hi = min(ny - 1, run[-1] + extra - extra // 2)
            c[lo : hi + 1] = np.maximum(c[lo : hi + 1], full_well)
            over[lo : hi + 1, col] = True
        image[:, col] = c
    image[over] = full_well
    return over


def cosmic_rays(
    rng: np.random.Generator, shape: tuple[int, int], n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sharp cosmic-ray hits of 1-3 pixels.

    Returns
    -------
    ix0, iy0 : numpy.ndarray
        0-based column and row of every hit pixel.
    value : numpy.ndarray
        DN deposited in each pixel.
    hit : numpy.ndarray
        Index of the cosmic ray each pixel belongs to.
    """
    ny, nx = shape
    xs, ys, vs, hs = [], [], [], []
    steps = np.array([[1, 0], [0, 1], [1, 1], [1, -1]])
    for i in range(n):
        x, y = int(rng.integers(2, nx - 3)), int(rng.integers(2, ny - 3))
        npix = int(rng.integers(1, 4))
        step = steps[rng.integers(0, 4)]
        peak = rng.uniform(800.0, 10000.0)
        for j in range(npix):
            xs.append(x + j * step[0])
            ys.append(y + j * step[1])
            vs.append(peak * (1.0 if j == 0 else rng.uniform(0.3, 0.9)))
            hs.append(i)
    return np.array(xs, int), np.array(ys, int), np.array(vs), np.array(hs, int)


def clip_segment_to_box(
    x1: float, y1: float, x2: float, y2: float, xmin: float, xmax: float, ymin: float, ymax: float
) -> tuple[float, float, float, float] | None:
    """Liang-Barsky clip of a segment to a box; None when it misses the box."""
    dx, dy = x2 - x1, y2 - y1
    t0, t1 = 0.0, 1.0
    for p, q in ((-dx, x1 - xmin), (dx, xmax - x1), (-dy, y1 - ymin), (dy, ymax - y1)):
        if p == 0:
            if q < 0:
                return None
            continue
        t = q / p
        if p < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return None
    return x1 + t0 * dx, y1 + t0 * dy, x1 + t1 * dx, y1 + t1 * dy


def trail_image(
    shape: tuple[int, int],
    x1: float,
    y1: float,
    x2: float,
    y2: float,
    peak: float,
    sigma: float,
) -> np.ndarray:
    """A straight Gaussian-profile trail through (x1, y1)-(x2, y2) (1-based, infinite line)."""
    ny, nx = shape
    y, x = np.mgrid[1 : ny + 1, 1 : nx + 1].astype(float)
    dx, dy = x2 - x1, y2 - y1
    d = np.abs(dy * (x - x1) - dx * (y - y1)) / math.hypot(dx, dy)
    return peak * np.exp(-0.5 * (d / sigma) ** 2)


def to_uint16(image: np.ndarray) -> np.ndarray:
    """Round and clip DN to the unsigned 16-bit range (stored as int16 + BZERO)."""
    return np.clip(np.rint(image), 0, 65535).astype(np.uint16)


def label_regions(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (xmin, xmax, ymin, ymax, 1-based) of connected regions of ``mask``."""
    lab, _ = ndimage.label(mask)
    out = []
    for sl in ndimage.find_objects(lab):
        if sl is None:
            continue
        out.append((sl[1].start + 1, sl[1].stop, sl[0].start + 1, sl[0].stop))
    return out
