"""PSFEx: its arguments, its run and the readers of what it writes.

Fixed settings live in ``config/astromatic/step1.psfex``; :func:`arguments`
adds the catalogue, the options of the pipeline configuration (``SAMPLE_MINSN``
...) and the output folder and XML. PSFEx names the model itself:
``<PSF_DIR>/<catalogue stem>.psf`` (``751000p_ldac.psf``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from spica.astromatic._run import run_tool
from spica.astromatic.options import option_arguments
from spica.astromatic.votable import read_table_rows
from spica.provenance import ToolRun

__all__ = ["FIXED", "step1_options", "arguments", "run", "read_psf_models", "read_psf_extensions"]

#: Keywords :func:`arguments` sets itself (never in ``options``).
FIXED = frozenset({"PSF_DIR", "XML_NAME"})


def step1_options(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The options of the step 1 run from config ``step1.psfex``.

    Parameters
    ----------
    settings : mapping
        ``min_snr`` (``SAMPLE_MINSN``) and ``overrides`` (any other keyword -> value).

    Returns
    -------
    dict
        In key order (the order of the command line the PSFEx XML records).
    """
    return dict(sorted({"SAMPLE_MINSN": settings["min_snr"], **settings["overrides"]}.items()))


def arguments(
    *,
    catalog: str | Path,
    config: str | Path,
    psf_dir: str | Path,
    xml_out: str | Path,
    options: Mapping[str, Any],
) -> list[str]:
    """Return PSFEx's argument vector of one run (everything after the binary).

    ``[catalog, "-c", config, <options>, -PSF_DIR psf_dir, -XML_NAME xml_out]``.

    Parameters
    ----------
    catalog : path
        The FITS-LDAC catalogue (SExtractor's, with ``VIGNET``).
    config : path
        The configuration file.
    psf_dir : path
        ``PSF_DIR``: the folder of the model.
    xml_out : path
        ``XML_NAME``.
    options : mapping
        Any other keyword -> value, emitted in the mapping's order
        (:func:`spica.astromatic.options.option_arguments`).

    Returns
    -------
    list of str

    Raises
    ------
    ValueError
        A bad or :data:`FIXED` keyword in ``options``.
    """
    return [
        str(catalog), "-c", str(config),
        *option_arguments(options, fixed=FIXED),
        *option_arguments({"PSF_DIR": psf_dir, "XML_NAME": xml_out}),
    ]


def run(binary: str, *, log: Any = None, **settings: Any) -> ToolRun:
    """Run PSFEx with :func:`arguments` (paths as given); return the run.

    Parameters
    ----------
    binary : str
        The PSFEx executable.
    log : file, optional
        Receives PSFEx's standard output and error.
    **settings
        The keyword arguments of :func:`arguments`.

    Returns
    -------
    spica.provenance.ToolRun
        The command, and the XML as output.

    Raises
    ------
    subprocess.CalledProcessError
        If PSFEx fails.
    """
    return run_tool([str(binary), *arguments(**settings)], log=log, outputs=[settings["xml_out"]])


def read_psf_models(path: str | Path | None) -> list[tuple[dict[str, float], np.ndarray | None]]:
    """PSFEx models, one per CCD in MEF order: ``(header figures, PSF image at the CCD centre)``.

    The image is the constant term ``PSF_MASK[0]`` of the polynomial model, i.e.
    the PSF at the centre of the CCD's sources. A missing file or a model with
    no valid FWHM gives ``({}, None)`` entries / an empty list.
    """
    if path is None or not Path(path).is_file():
        return []
    out: list[tuple[dict[str, float], np.ndarray | None]] = []
    with fits.open(path, memmap=False) as hdul:
        for hdu in hdul[1:]:
            h = hdu.header
            figs = {k: float(h[k]) for k in ("PSF_FWHM", "PSF_SAMP", "CHI2", "LOADED", "ACCEPTED") if k in h}
            image = None
            try:
                cube = np.asarray(hdu.data["PSF_MASK"][0], dtype=float)
                image = cube[0] if cube.ndim == 3 else cube
                if not np.any(np.isfinite(image)) or not np.any(image):
                    image = None
            except (KeyError, TypeError, IndexError):
                image = None
            if not figs.get("PSF_FWHM", 0) > 0:
                image = None
            out.append((figs, image))
    return out


def read_psf_extensions(path: str | Path | None) -> dict[int, dict[str, Any]]:
    """Per-extension figures of a PSFEx XML report (table ``PSF_Extensions``).

    Returns
    -------
    dict
        ``Extension`` (1-based) -> the row (``FWHM_PixelFree_Mean``,
        ``Ellipticity_Mean``, ``NStars_Loaded_Total``, ``Chi2_Mean``, ...);
        empty for a missing or unreadable file.
    """
    return {int(row["Extension"]): row for row in read_table_rows(path, "PSF_Extensions")}
