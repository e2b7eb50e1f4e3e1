"""A release product's calibration files, from its SCAMP solution: the first part of
its stack job (rule ``coadd_stack``, ``coadd_image`` for image-by-image products;
:func:`spica.coaddition.product.stack_product`).

The product's lists, its copy of the solution (``_scamp.xml``, ``scamp/``, the
run), the accept summary and the heads it delivers are made together: they are
cheap, read the same few files, and each used to be a Snakemake job of its own,
five per product, which at survey scale cost more DAG time than the work
(issue 10, section 5). SWarp reads all but the delivered heads, so it reran after
any of them anyway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from spica.calibration.accept import write_accept_summary
from spica.calibration.heads import deliver_heads
from spica.calibration.solution import deliver_solution
from spica.paths import parse_exposure_filename, parse_step1_name
from spica.provenance import write_command
from spica.release.planning import write_exposure_list

__all__ = ["calibrate_product"]


def calibrate_product(
    *,
    stem: str,
    lists: Mapping[str, Sequence[int]],
    solution: str,
    solution_dir: str | Path,
    solution_xml: str | Path,
    solution_cmd: str | Path,
    exposures: Sequence[str | Path],
    aheads: Sequence[str | Path],
    accept: Mapping[str, object],
    outputs: Mapping[str, str | Path],
) -> list[int]:
    """Write a planned product's calibration files from its SCAMP solution.

    In order: the stack and astrometric lists
    (:func:`spica.release.planning.write_exposure_list`); the solution
    delivered under the product's names
    (:func:`spica.calibration.solution.deliver_solution`) with the delivery's
    command; the accept summary (:func:`spica.calibration.accept.write_accept_summary`);
    the heads (:func:`spica.calibration.heads.deliver_heads`).

    Parameters
    ----------
    stem : str
        The product's file stem.
    lists : mapping
        ``stack`` and ``astrometric``: the plan's lists (odometers).
    solution : str
        The SCAMP solution's id.
    solution_dir, solution_xml, solution_cmd : str or Path
        The solution's ``scamp/`` folder, XML and recorded run.
    exposures : sequence of path
        The raw exposures of the stack list (their headers: CCD shapes).
    aheads : sequence of path
        The ``.ahead`` files of the stack list (photometric flags).
    accept : mapping
        Keyword arguments of :func:`~spica.calibration.accept.write_accept_summary`
        beyond the files: ``pixel_scale``, ``tolerance``, ``max_reference_sigma``,
        ``conditional``, ``max_focal_plane_offset``.
    outputs : mapping
        Paths to write, by the rule's output names: ``stack``, ``astrometric``,
        ``scamp_xml``, ``scamp_cmd``, ``scamp_delivery``, ``scamp`` (the
        ``scamp/`` folder), ``accept``, ``accepted``, ``heads`` (folder) and,
        image by image, ``image_head``.

    Returns
    -------
    list of int
        The accepted odometers.
    """
    stack_list = sorted(int(e) for e in lists["stack"])
    write_exposure_list(stack_list, outputs["stack"])
    write_exposure_list(lists["astrometric"], outputs["astrometric"])
    run = deliver_solution(
        solution=solution, scamp_dir=solution_dir, scamp_xml=solution_xml, scamp_cmd=solution_cmd,
        stem=stem, stack_list=stack_list, out_dir=outputs["scamp"], xml_out=outputs["scamp_xml"],
        cmd_out=outputs["scamp_cmd"],
    )
    write_command(run, outputs["scamp_delivery"])
    accepted = write_accept_summary(
        stem=stem, stack_list=stack_list, heads_dir=outputs["scamp"],
        exposures={parse_exposure_filename(p): p for p in exposures},
        xml_out=outputs["accept"], accepted_out=outputs["accepted"], scamp_xml=outputs["scamp_xml"],
        **accept,
    )
    deliver_heads(
        stack_list=stack_list, heads_dir=outputs["scamp"],
        aheads={parse_step1_name(path)[0]: path for path in aheads},
        out_dir=outputs["heads"], image_head_out=outputs.get("image_head"),
    )
    return accepted
