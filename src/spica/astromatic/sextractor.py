"""SExtractor: its arguments, its run and the readers of what it writes.

Fixed settings live in the configuration files (``config/astromatic/step1.sex``,
``release.sex``); :func:`arguments` adds the files of one run and the
options of the pipeline configuration. Step 1 (rule ``reduce_exposure``) runs
one exposure with its weight and flag maps and a MINIBACKGROUND check image;
the release catalogue (:func:`spica.coaddition.catalogue.extract_dual`) runs
in dual-image mode, detecting on the chi-squared image and measuring on a stack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.table import Table

from spica.astromatic._run import run_tool
from spica.astromatic.options import option_arguments
from spica.astromatic.votable import read_table_rows
from spica.provenance import ToolRun

__all__ = ["FIXED", "aperture_pixels", "step1_options", "arguments", "run", "read_ldac", "read_extension_data"]

#: Keywords :func:`arguments` sets itself (never in ``options``).
FIXED = frozenset({
    "PARAMETERS_NAME", "FILTER_NAME", "STARNNW_NAME", "WEIGHT_IMAGE", "FLAG_IMAGE",
    "CATALOG_NAME", "XML_NAME", "CHECKIMAGE_NAME",
})

PathOrPaths = str | Path | Sequence[str | Path]


def _joined(value: PathOrPaths) -> str:
    """One path, or several comma-separated (dual-image mode, several check images)."""
    if isinstance(value, (str, Path)):
        return str(value)
    return ",".join(str(item) for item in value)


def aperture_pixels(diameters_arcsec: Sequence[float], *, pixel_scale: float) -> str:
    """``PHOT_APERTURES`` (pixels, two decimals, comma-separated) from diameters in arcsec.

    Parameters
    ----------
    diameters_arcsec : sequence of float
        Aperture diameters (config ``phot_apertures_arcsec``).
    pixel_scale : float
        Arcsec per pixel (config ``survey.pixel_scale``).

    Returns
    -------
    str
    """
    return ",".join(f"{d / pixel_scale:.2f}" for d in diameters_arcsec)


def step1_options(settings: Mapping[str, Any], *, pixel_scale: float) -> dict[str, Any]:
    """The options of the step 1 run from config ``step1.sextractor``.

    Parameters
    ----------
    settings : mapping
        ``detect_thresh`` (also ``ANALYSIS_THRESH``), ``detect_minarea``,
        ``back_size``, ``phot_apertures_arcsec`` and ``overrides`` (any other
        keyword -> value).
    pixel_scale : float
        Arcsec per pixel, for :func:`aperture_pixels`.

    Returns
    -------
    dict
        ``PHOT_APERTURES`` first, then the other options in key order (the
        order of the command line the step 1 XML reports record).
    """
    others = {
        "DETECT_THRESH": settings["detect_thresh"],
        "ANALYSIS_THRESH": settings["detect_thresh"],
        "DETECT_MINAREA": settings["detect_minarea"],
        "BACK_SIZE": settings["back_size"],
        **settings["overrides"],
    }
    return {
        "PHOT_APERTURES": aperture_pixels(settings["phot_apertures_arcsec"], pixel_scale=pixel_scale),
        **dict(sorted(others.items())),
    }


def arguments(
    *,
    images: PathOrPaths,
    config: str | Path,
    param: str | Path,
    conv: str | Path,
    nnw: str | Path,
    weights: PathOrPaths | None = None,
    flags: str | Path | None = None,
    catalog: str | Path,
    xml_out: str | Path | None = None,
    checkimage: PathOrPaths | None = None,
    options: Mapping[str, Any],
) -> list[str]:
    """Return SExtractor's argument vector of one run (everything after the binary).

    ``[images, "-c", config, -PARAMETERS_NAME, -FILTER_NAME, -STARNNW_NAME,
    (-WEIGHT_IMAGE), (-FLAG_IMAGE), <options>, -CATALOG_NAME, (-XML_NAME),
    (-CHECKIMAGE_NAME)]``: the parts in brackets only when given.

    Parameters
    ----------
    images : path or sequence of path
        The image, or ``(detection, measurement)`` for dual-image mode.
    config, param, conv, nnw : path
        Configuration, ``PARAMETERS_NAME``, ``FILTER_NAME`` and ``STARNNW_NAME`` files.
    weights : path or sequence of path, optional
        ``WEIGHT_IMAGE``: one per image.
    flags : path, optional
        ``FLAG_IMAGE``.
    catalog : path
        ``CATALOG_NAME``.
    xml_out : path, optional
        ``XML_NAME``.
    checkimage : path or sequence of path, optional
        ``CHECKIMAGE_NAME`` (one per ``CHECKIMAGE_TYPE`` of the configuration).
    options : mapping
        Any other keyword -> value, emitted in the mapping's order
        (:func:`spica.astromatic.options.option_arguments`).

    Returns
    -------
    list of str

    Raises
    ------
    ValueError
        Not one or two images, a weight count different from the image count,
        or a bad or :data:`FIXED` keyword in ``options``.
    """
    image_list = [images] if isinstance(images, (str, Path)) else list(images)
    if len(image_list) not in (1, 2):
        raise ValueError(f"SExtractor takes one image or a detection and a measurement image, not {image_list}")
    files: dict[str, Any] = {"PARAMETERS_NAME": param, "FILTER_NAME": conv, "STARNNW_NAME": nnw}
    if weights is not None:
        weight_list = [weights] if isinstance(weights, (str, Path)) else list(weights)
        if len(weight_list) != len(image_list):
            raise ValueError(f"{len(weight_list)} weight maps for {len(image_list)} images")
        files["WEIGHT_IMAGE"] = _joined(weight_list)
    if flags is not None:
        files["FLAG_IMAGE"] = flags
    outputs: dict[str, Any] = {"CATALOG_NAME": catalog}
    if xml_out is not None:
        outputs["XML_NAME"] = xml_out
    if checkimage is not None:
        outputs["CHECKIMAGE_NAME"] = _joined(checkimage)
    return [
        _joined(image_list), "-c", str(config),
        *option_arguments(files), *option_arguments(options, fixed=FIXED), *option_arguments(outputs),
    ]


def run(binary: str, *, log: Any = None, **settings: Any) -> ToolRun:
    """Run SExtractor with :func:`arguments` (paths as given); return the run.

    Parameters
    ----------
    binary : str
        The SExtractor executable.
    log : file, optional
        Receives SExtractor's standard output and error.
    **settings
        The keyword arguments of :func:`arguments`.

    Returns
    -------
    spica.provenance.ToolRun
        The command, and the catalogue and XML as outputs.

    Raises
    ------
    subprocess.CalledProcessError
        If SExtractor fails.
    """
    outputs = [settings["catalog"]] + ([settings["xml_out"]] if settings.get("xml_out") is not None else [])
    return run_tool([str(binary), *arguments(**settings)], log=log, outputs=outputs)


def read_ldac(path: str | Path) -> list[tuple[fits.Header, Table]]:
    """Read a FITS-LDAC catalogue: one ``(CCD header, objects table)`` per CCD.

    Multidimensional columns (``VIGNET``) are dropped.

    The first objects table is read by astropy; the next ones with the same column
    layout (every CCD's, in a SExtractor catalogue) straight from the file as numpy
    records of that table's type (:func:`_objects_layout`): the same columns, types
    and values, without astropy's column definitions (16 ms a table: 0.6 s of CPU
    for a 36-CCD MegaCam catalogue).
    """
    out: list[tuple[fits.Header, Table]] = []
    layouts: dict[tuple, tuple[np.dtype, list[str]] | None] = {}
    with fits.open(path, memmap=False) as hdul, open(path, "rb") as stream:
        head: fits.Header | None = None
        for hdu in hdul[1:]:
            extname = hdu.header.get("EXTNAME", "")
            if extname == "LDAC_IMHEAD":
                cards = hdu.data.field(0)[0]
                # numpy strips the trailing blanks of each 80-character card
                text = "".join(str(c).ljust(80) for c in np.atleast_1d(cards))
                head = fits.Header.fromstring(text)
            elif extname == "LDAC_OBJECTS":
                key = _layout_key(hdu.header)
                layout = layouts.get(key) if key is not None else None
                rows = int(hdu.header.get("NAXIS2", 0))
                if layout is not None and rows > 0:
                    dtype, names = layout
                    records = np.empty(rows, dtype=dtype)
                    stream.seek(hdu.fileinfo()["datLoc"])
                    if stream.readinto(memoryview(records).cast("B")) != records.nbytes:
                        raise OSError(f"{path}: {extname} table shorter than its header says")
                    table = Table({n: records[n] for n in names})
                else:
                    names = [c.name for c in hdu.columns if len(hdu.data[c.name].shape) <= 1]
                    table = Table({n: np.asarray(hdu.data[n]) for n in names}) if len(hdu.data) else Table(
                        {n: np.zeros(0, dtype=hdu.data[n].dtype) for n in names}
                    )
                    if key is not None and key not in layouts:
                        layouts[key] = _objects_layout(hdu, names)
                out.append((head if head is not None else fits.Header(), table))
                head = None
    return out


def _layout_key(header: fits.Header) -> tuple | None:
    """The column layout of a binary table header (names, formats, dimensions, row
    length), or None if its values are not plain stored numbers (a heap, scaling,
    null values)."""
    if int(header.get("PCOUNT", 0) or 0) or int(header.get("GCOUNT", 1) or 1) != 1:
        return None
    cards = []
    # keywords first, as Header.items() gives them: only the values kept are parsed, once
    # (items() parses every value twice: 0.1 s of the QA step of a 36-CCD catalogue)
    for card in header.cards:
        keyword = card.keyword
        if keyword.startswith(("TSCAL", "TZERO", "TNULL")):
            return None
        if keyword.startswith(("TTYPE", "TFORM", "TDIM")):
            value = card.value
            cards.append((keyword, str(None if value == fits.card.UNDEFINED else value)))
    return (int(header.get("NAXIS1", 0)), int(header.get("TFIELDS", 0)), tuple(cards))


def _objects_layout(hdu: fits.BinTableHDU, names: list[str]) -> tuple[np.dtype, list[str]] | None:
    """The records' type of a table astropy read and its kept column names, if astropy
    gives every kept column as stored (the same type: no conversion of logical,
    string or scaled columns) and the records fill its rows; else None."""
    data = hdu.data
    dtype = data.dtype
    if dtype.itemsize != int(hdu.header.get("NAXIS1", -1)) or not len(data):
        return None
    for name in names:
        if name not in (dtype.names or ()) or np.asarray(data[name]).dtype != dtype[name]:
            return None
    return dtype, list(names)


def read_extension_data(path: str | Path | None) -> dict[int, dict[str, Any]]:
    """Per-extension figures of a SExtractor XML report (table ``Extension_Data``).

    Returns
    -------
    dict
        ``Extension`` (1-based) -> the row (``Background_Mean``,
        ``Background_StDev``, ...); empty for a missing or unreadable file.
    """
    return {int(row["Extension"]): row for row in read_table_rows(path, "Extension_Data")}
