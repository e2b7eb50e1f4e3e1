"""WeightWatcher for step 1: command-line arguments, input checks, its run, its XML.

Fixed settings live in ``config/astromatic/step1.ww``; this module builds
only what changes per exposure (file names) or comes from the pipeline
configuration (``step1.weights.flat_range``). The rule runs::

    weightwatcher -c config/astromatic/step1.ww <weightwatcher_arguments(...)>

after :func:`check_weightwatcher_inputs` (WeightWatcher cannot read
compressed files and does not notice mismatched extensions) and followed by
:func:`repair_single_extension_output` on both outputs: :func:`run_weightwatcher`
does the three and returns the run (:class:`spica.provenance.ToolRun`).

How the inputs enter WeightWatcher (bits: :data:`spica.step1.defects.FLAG_BITS`):

========================  ============  =====================================
input                     type          becomes
========================  ============  =====================================
Elixir flat               weight, 1st   the output weight; outside
                                        ``flat_range`` (or NaN) -> bit 16
Elixir bad-pixel mask     weight, 2nd   below 0.5 (0 = bad) -> bit 1
defect map (x4)           flag          bits 2, 4, 8, 32 passed through
========================  ============  =====================================

The image itself is not a WeightWatcher input: its only use there would be a
saturation threshold, and WeightWatcher takes one threshold per file while
MegaCam's ``SATURATE`` differs from CCD to CCD; saturation (bit 2) and
non-finite pixels (bit 32) are computed per CCD in
:func:`spica.step1.defects.write_defect_map`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from spica.astromatic._run import run_tool
from spica.astromatic.options import option_arguments
from spica.astromatic.votable import read_xml
from spica.provenance import ToolRun
from spica.step1.defects import DEFECT_MAP_BITS

__all__ = [
    "MASK_RANGE",
    "DEFECT_FLAG_BITS",
    "weightwatcher_arguments",
    "check_weightwatcher_inputs",
    "read_weightwatcher_xml",
    "repair_single_extension_output",
    "run_weightwatcher",
]

#: Valid range of the Elixir bad-pixel mask as a weight input (1 good, 0 bad).
MASK_RANGE: tuple[float, float] = (0.5, 1.5)

#: One FLAG_NAMES entry per bit of the defect map, in the order of
#: ``FLAG_MASKS``/``FLAG_OUTFLAGS`` in ``step1.ww``.
DEFECT_FLAG_BITS: tuple[int, ...] = DEFECT_MAP_BITS


def _fmt(value: float) -> str:
    return format(float(value), "g")


def weightwatcher_arguments(
    *,
    flat: str | Path,
    mask: str | Path,
    defects: str | Path,
    weight_out: str | Path,
    flag_out: str | Path,
    xml_out: str | Path,
    flat_range: Sequence[float],
    mask_range: Sequence[float] = MASK_RANGE,
) -> list[str]:
    """Return WeightWatcher's per-exposure arguments (after ``-c step1.ww``).

    Parameters
    ----------
    flat : str or Path
        Elixir flat-field MEF (uncompressed), same extensions as the exposure.
    mask : str or Path
        Elixir bad-pixel mask MEF (uncompressed; 1 = good, 0 = bad).
    defects : str or Path
        Defect map from :func:`spica.step1.defects.write_defect_map`.
    weight_out, flag_out, xml_out : str or Path
        Output weight map, flag map and XML report.
    flat_range : sequence of 2 floats
        Config ``step1.weights.flat_range``: flat values outside it are
        flagged (bit 16) and get weight 0.
    mask_range : sequence of 2 floats
        Valid range of the mask values.

    Returns
    -------
    list of str
    """
    lo, hi = (float(v) for v in flat_range)
    mlo, mhi = (float(v) for v in mask_range)
    if not lo < hi or not mlo < mhi:
        raise ValueError(f"empty range: flat_range={flat_range}, mask_range={mask_range}")
    return option_arguments({
        "WEIGHT_NAMES": [flat, mask],
        "WEIGHT_MIN": [_fmt(lo), _fmt(mlo)],
        "WEIGHT_MAX": [_fmt(hi), _fmt(mhi)],
        "FLAG_NAMES": [defects] * len(DEFECT_FLAG_BITS),
        "OUTWEIGHT_NAME": weight_out,
        "OUTFLAG_NAME": flag_out,
        "XML_NAME": xml_out,
    })


def check_weightwatcher_inputs(*paths: str | Path) -> list[tuple[str, tuple[int, ...]]]:
    """Check that MEF inputs can go to WeightWatcher together.

    WeightWatcher 1.12 cannot read gzip or tile-compressed files, and it does
    not notice inputs with different extensions (it silently produces a
    wrong map). This checks both before the run.

    Parameters
    ----------
    *paths : str or Path
        The flat, the mask and the defect map, first the one the others are
        compared with (an uncompressed exposure may be added).

    Returns
    -------
    list of (str, tuple)
        EXTNAME and shape ``(ny, nx)`` of each image extension.

    Raises
    ------
    ValueError
        If a file is compressed or the extensions differ in name or shape.
    """
    from astropy.io import fits

    layouts: list[list[tuple[str, tuple[int, ...]]]] = []
    for path in paths:
        if str(path).endswith((".gz", ".fz", ".bz2", ".Z")):
            raise ValueError(f"WeightWatcher cannot read compressed {path}: decompress it")
        layout = []
        with fits.open(path) as hdul:
            for index, hdu in enumerate(hdul):
                if isinstance(hdu, fits.CompImageHDU):
                    raise ValueError(f"WeightWatcher cannot read tile-compressed {path}")
                if hdu.header.get("NAXIS", 0) != 2:
                    continue
                shape = (int(hdu.header["NAXIS2"]), int(hdu.header["NAXIS1"]))
                extname = str(hdu.header.get("EXTNAME", index)).strip().lower()
                layout.append((extname, shape))
        layouts.append(layout)
    for path, layout in zip(paths[1:], layouts[1:]):
        if layout != layouts[0]:
            raise ValueError(
                f"{path} has extensions {layout[:3]}..., {paths[0]} has {layouts[0][:3]}..."
            )
    return layouts[0] if layouts else []


def read_weightwatcher_xml(path: str | Path) -> dict[str, Any]:
    """Read the numbers of a WeightWatcher XML report.

    Parameters
    ----------
    path : str or Path
        ``XML_NAME`` of the run (VOTable).

    Returns
    -------
    dict
        ``version`` (str), ``nextensions`` (int, per output file; the XML's
        own ``NExtensions`` counts the rows of both outputs), ``weight_area`` and
        ``flag_area`` (lists, one per extension in file order: fraction of
        pixels with a non-zero weight / no flag, from ``GETAREA Y``; empty
        without it), ``warnings`` (list of str) and ``command_line`` (str).
    """
    doc = read_xml(path)
    tables = {table.name or "": table for table in doc.tables}

    def rows(name: str) -> list[list[Any]]:
        return [list(row.values()) for row in tables[name].rows] if name in tables else []

    areas: dict[str, dict[int, float]] = {"W": {}, "F": {}}
    for row in rows("OutFields"):
        if len(row) >= 4 and row[1] in areas:
            try:
                areas[row[1]][int(row[2])] = float(row[3])
            except ValueError:
                continue
    getarea = doc.params.get("Getarea") is True
    return {
        "version": doc.params.get("Version", ""),
        "nextensions": len(areas["W"]),
        "weight_area": [areas["W"][k] for k in sorted(areas["W"])] if getarea else [],
        "flag_area": [areas["F"][k] for k in sorted(areas["F"])] if getarea else [],
        "warnings": [row[-1] for row in rows("Warnings") if row],
        "command_line": doc.params.get("Command_Line", ""),
    }


def repair_single_extension_output(path: str | Path) -> bool:
    """Give a WeightWatcher output the primary HDU it lacks, in place.

    With MEF inputs holding a single image extension, WeightWatcher 1.12
    writes its outputs as one bare ``XTENSION`` HDU without a primary header,
    which is not valid FITS. This rewrites such a file as an empty primary HDU
    plus the extension (data and header unchanged); other files are left
    alone. Call it on both outputs after every run (a no-op for 36-CCD
    MegaCam exposures).

    Parameters
    ----------
    path : str or Path
        ``OUTWEIGHT_NAME`` or ``OUTFLAG_NAME`` of a finished run.

    Returns
    -------
    bool
        True if the file was rewritten.
    """
    from astropy.io import fits

    path = Path(path)
    with path.open("rb") as stream:
        if not stream.read(80).startswith(b"XTENSION"):
            return False
    with fits.open(path, ignore_missing_simple=True) as hdul:
        hdus = [fits.PrimaryHDU()]
        for hdu in hdul:
            header = hdu.header.copy()
            for key in ("XTENSION", "SIMPLE", "EXTEND"):
                header.remove(key, ignore_missing=True)
            hdus.append(fits.ImageHDU(np.asarray(hdu.data), header=header))
        tmp = path.with_name(path.name + ".tmp")
        fits.HDUList(hdus).writeto(tmp, overwrite=True)
    tmp.replace(path)
    return True


def run_weightwatcher(binary: str, config: str | Path, *, log: Any = None, **settings: Any) -> ToolRun:
    """Run WeightWatcher for one exposure; return the run (:class:`spica.provenance.ToolRun`).

    Checks the inputs first (uncompressed, same extensions and shapes: WeightWatcher
    silently writes wrong maps otherwise), runs the binary with ``-c config``
    plus :func:`weightwatcher_arguments` (``settings`` are its keyword
    arguments), and repairs the outputs of a single-CCD mosaic
    (:func:`repair_single_extension_output`).

    Raises
    ------
    subprocess.CalledProcessError
        If WeightWatcher exits with an error.
    """

    check_weightwatcher_inputs(settings["flat"], settings["mask"], settings["defects"])
    command = [str(binary), "-c", str(config), *weightwatcher_arguments(**settings)]
    outputs = [settings["weight_out"], settings["flag_out"], settings["xml_out"]]
    run = run_tool(command, log=log, outputs=outputs)
    for output in outputs[:2]:
        repair_single_extension_output(output)
    return run
