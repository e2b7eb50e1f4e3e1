"""Co-addition of one planned stack and of a tile's chi-squared image."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from spica.astromatic import swarp
from spica.astromatic.swarp import (
    chi2_arguments,
    file_stem,
    swarp_arguments,
    write_list_file,
)
from spica.coaddition.header import (
    plain_value,
    release_cards,
    stack_header_cards,
    update_stack_header,
)
from spica.provenance import ToolRun

__all__ = ["coadd_stack", "make_chi2", "scratch_folder"]


@contextmanager
def scratch_folder(out_image: Path, kind: str) -> Iterator[Path]:
    """A scratch folder beside ``out_image`` for SWarp's resampled frames, removed after.

    Its name is fixed (``<kind>-<image stem>.tmp``), not a random one: a job
    killed with SIGKILL (a node lost, no ``finally``) leaves it behind, and the
    next run of the same job removes it before it starts, so a crash leaves no
    stray half-written frames in the release tree.
    """
    folder = out_image.parent / f"{kind}-{out_image.name.removesuffix('.fits')}.tmp"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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
    if not len(exposures) == len(weights) == len(heads):
        raise ValueError("exposures, weights and heads differ in number")
    out_image = Path(out_image).resolve()
    with scratch_folder(out_image, "swarp") as scratch:
        work = Path(scratch).resolve()
        run = ToolRun(command=[], cwd=str(work), scratch=True)
        staged = []
        for exposure, head in zip(exposures, heads):
            link = work / Path(exposure).name
            link.symlink_to(Path(exposure).resolve())
            (work / (file_stem(exposure) + ".head")).write_bytes(Path(head).read_bytes())
            run.links.append((str(Path(exposure).resolve()), link.name))
            run.copies.append((str(Path(head).resolve()), file_stem(exposure) + ".head"))
            staged.append(link)
        resolved_weights = [Path(w).resolve() for w in weights]
        weight_list = write_list_file(resolved_weights, work / "weights.lis")
        run.lists.append(([str(w) for w in resolved_weights], weight_list.name))
        arguments = swarp_arguments(
            images=staged, weights=resolved_weights, out_image=out_image,
            out_weight=Path(out_weight).resolve(), grid=grid, resample_dir=work,
            xml_out=Path(xml_out).resolve(), overrides=overrides, weight_list=weight_list,
            nthreads=nthreads,
        )
        run.command = swarp.run(binary, staged, Path(config).resolve(), arguments, cwd=work, log=log).command
    cards = stack_header_cards(inputs, release=release, software=software,
                               object_name=str(inputs["object"].iloc[0]) if "object" in inputs else None,
                               photometry_anchored=photometry_anchored)
    weight_cards = release_cards([{key: value for key, value, _ in cards}])
    run.headers = [(str(out_image), [(key, plain_value(value), comment) for key, value, comment in cards]),
                   (str(Path(out_weight).resolve()), weight_cards)]
    for target, target_cards in run.headers:
        update_stack_header(target, target_cards)
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
    out_image = Path(out_image).resolve()
    with scratch_folder(out_image, "chi2") as scratch:
        scratch = str(Path(scratch).resolve())
        resolved = [Path(s).resolve() for s in stacks]
        arguments = chi2_arguments(
            stacks=resolved, weights=[Path(w).resolve() for w in weights],
            out_image=out_image, out_weight=Path(out_weight).resolve(), grid=grid,
            resample_dir=scratch, xml_out=Path(xml_out).resolve(), overrides=overrides,
        )
        run = swarp.run(binary, resolved, Path(config).resolve(), arguments, cwd=scratch, scratch=True, log=log)
    outputs = [str(out_image), str(Path(out_weight).resolve()), str(Path(xml_out).resolve())]
    cards = release_cards([_primary_header(stack) for stack in stacks])
    headers = [(target, cards) for target in outputs[:2]]
    for target, target_cards in headers:
        update_stack_header(target, target_cards)
    run.outputs, run.headers = outputs, headers
    return run


def _primary_header(path: str | Path):
    from astropy.io import fits

    return fits.getheader(path)
