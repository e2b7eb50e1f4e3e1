"""SWarp: the arguments of a stack and of a chi-squared image, and its run.

The ``-KEY value`` parts come from :func:`spica.astromatic.options.option_arguments`;
:func:`run` runs SWarp and returns the run (:class:`spica.provenance.ToolRun`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from spica.astromatic._run import run_tool
from spica.astromatic.options import option_arguments
from spica.provenance import ToolRun

__all__ = ["file_stem", "write_list_file", "swarp_arguments", "CHI2_TYPES", "chi2_arguments", "run"]


def file_stem(path: str | Path) -> str:
    """File name without ``.fits``/``.fits.fz`` (``751000p.fits`` -> ``751000p``)."""
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
        stem = file_stem(image)
        if not file_stem(weight).startswith(stem):
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
    return option_arguments({
        "IMAGEOUT_NAME": out_image,
        "WEIGHTOUT_NAME": out_weight,
        "WEIGHT_IMAGE": weight_arg,
        "CENTER": grid["CENTER"],
        "IMAGE_SIZE": grid["IMAGE_SIZE"],
        "PIXEL_SCALE": grid["PIXEL_SCALE"],
        "RESAMPLE_DIR": resample_dir,
        "VMEM_DIR": resample_dir,
        "XML_NAME": xml_out,
        "NTHREADS": int(nthreads),
    })


def _override_arguments(overrides: Mapping[str, Any] | None, fixed: set[str]) -> list[str]:
    """``-KEY value`` of the configuration's overrides (keys upper-cased)."""
    return option_arguments({str(key).upper(): value for key, value in (overrides or {}).items()}, fixed=fixed)


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
    args += option_arguments({"COMBINE_TYPE": combine})
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
    args += option_arguments({"COMBINE_TYPE": combine})
    return args + _override_arguments(overrides, _FIXED | {"COMBINE_TYPE"})


def run(
    binary: str,
    images: Sequence[str | Path],
    config: str | Path,
    arguments: Sequence[str],
    *,
    cwd: str | Path,
    scratch: bool = False,
    log: Any = None,
) -> ToolRun:
    """Run ``binary <images> -c <config> <arguments>`` in ``cwd``; return the run.

    Parameters
    ----------
    binary : str
        The SWarp executable.
    images : sequence of path
        The input images, as they are to appear on the command line.
    config : path
        The configuration file.
    arguments : sequence of str
        :func:`swarp_arguments` or :func:`chi2_arguments`.
    cwd : path
        The folder SWarp runs in.
    scratch : bool
        ``cwd`` is a temporary folder (recorded in the run).
    log : file, optional
        Receives SWarp's standard output and error.

    Returns
    -------
    spica.provenance.ToolRun

    Raises
    ------
    subprocess.CalledProcessError
        If SWarp fails.
    """
    command = [str(binary), *map(str, images), "-c", str(config), *arguments]
    return run_tool(command, log=log, cwd=cwd, scratch=scratch)
