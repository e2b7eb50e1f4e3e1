"""RICE tile compression: the one home of cfitsio's ``fpack`` and ``funpack`` (seed 3.4).

Images go out as ``.fits.fz``: integer images (flag maps) losslessly, float
images quantized (``-q`` level relative to the background noise, dithered
with a seed taken from the tile checksums, so the same input always gives
the same bytes, and zero-valued pixels kept exactly zero: ``-qzt``, which
matters for weight maps, where 0 marks a flagged pixel; ``-C`` leaves the
checksum keywords, which carry a time stamp, alone). Tables (catalogues) are not images and go as they are.
astropy reads the result (``CompImageHDU``) as well as ``funpack``.

:func:`compress_arguments` and :func:`uncompress_arguments` are also what the
command files (:mod:`spica.provenance`) write, so the shell and Python paths
run the same command.
"""

from __future__ import annotations

import functools
from pathlib import Path

from spica.astromatic._run import run_tool
from spica.tools import resolve_tool

__all__ = ["FPACK", "FUNPACK", "COMPRESSED_SUFFIX", "compress_arguments", "uncompress_arguments",
           "is_image", "compressed_name", "compress", "uncompress"]

FPACK = "fpack"
FUNPACK = "funpack"
#: Suffix fpack adds.
COMPRESSED_SUFFIX = ".fz"


def compress_arguments(source: str | Path, target: str | Path, *, quantize_level: float,
                       binary: str = FPACK) -> list[str]:
    """The fpack command that writes ``target`` (RICE; float images quantized at ``quantize_level``)."""
    level = f"{quantize_level:g}"
    return [binary, "-r", "-C", "-qzt", level, "-O", str(target), str(source)]


def uncompress_arguments(source: str | Path, target: str | Path, *, binary: str = FUNPACK) -> list[str]:
    """The funpack command that writes ``target`` from ``source`` (``.fits.fz``)."""
    return [binary, "-C", "-O", str(target), str(source)]


def compressed_name(name: str) -> str:
    """``x.fits`` -> ``x.fits.fz``."""
    return name + COMPRESSED_SUFFIX


def is_image(path: str | Path) -> bool:
    """Whether a FITS file holds images only (at least one with pixels) and no table.

    Non-FITS files and FITS tables (LDAC catalogues, diagnostics) are False.
    """
    from astropy.io import fits

    path = Path(path)
    if path.suffix.lower() not in (".fits", ".fit"):
        return False
    try:
        with fits.open(path, lazy_load_hdus=True, memmap=True) as hdul:
            pixels = False
            for hdu in hdul:
                if not hdu.is_image:
                    return False
                pixels = pixels or int(hdu.header.get("NAXIS", 0)) > 0
            return pixels
    except OSError:
        return False


@functools.cache
def _binary(name: str) -> str:
    return resolve_tool(name, [name]).path


def compress(source: str | Path, target: str | Path, *, quantize_level: float, log=None) -> Path:
    """Write ``target`` (``.fits.fz``) from the FITS image ``source`` with fpack.

    Raises
    ------
    spica.tools.ToolNotFoundError
        fpack is not installed (Debian ``libcfitsio-bin``, ``bin/spica install``).
    subprocess.CalledProcessError
        fpack failed.
    """
    binary = _binary(FPACK)
    Path(target).unlink(missing_ok=True)  # fpack refuses to overwrite
    run_tool(compress_arguments(source, target, quantize_level=quantize_level, binary=binary), log=log)
    return Path(target)


def uncompress(source: str | Path, target: str | Path, *, log=None) -> Path:
    """Write the FITS file ``target`` from ``source`` (``.fits.fz``) with funpack."""
    binary = _binary(FUNPACK)
    Path(target).unlink(missing_ok=True)
    run_tool(uncompress_arguments(source, target, binary=binary), log=log)
    return Path(target)
