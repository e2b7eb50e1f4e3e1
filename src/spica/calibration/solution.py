"""One SCAMP solution per astrometric list, delivered to every product that shares it.

The stacks of one tile in several filters have the same astrometric list
(:meth:`spica.release.planning.Plan.solutions`), so SCAMP runs once per
distinct list, in the solution's folder
(``<results>/releases/T0002/_scamp/<solution>/``: ``<solution>_scamp.xml``,
``<solution>_scamp.cmd`` and ``scamp/`` with one ``NNNNNNp.head`` per exposure
and the check plots ``<solution>_<plot>_<n>.png/.ps``). Each product then gets
the seed's files under its own name (:func:`deliver_solution`): ``scamp/`` with
the same heads and the check plots renamed ``<stem>_<plot>_<n>.png/.ps``, and
``<stem>_scamp.xml``, SCAMP's XML of the run (it names the solution's files).
Files are hard links where the file system allows, copies otherwise: never
symbolic links out of the delivered product folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path

from spica.paths import exposure_name, scamp_head_name
from spica.provenance import ToolRun

__all__ = ["deliver_solution", "delivered_name"]


def delivered_name(name: str, *, solution: str, stem: str) -> str:
    """Name of a solution's file in a product's ``scamp/`` folder.

    A check plot ``<solution>_fgroups_1.png`` becomes ``<stem>_fgroups_1.png``;
    a head (``751000p.head``) keeps its name.
    """
    prefix = f"{solution}_"
    return f"{stem}_{name[len(prefix):]}" if name.startswith(prefix) else name


def _link_or_copy(source: Path, target: Path) -> None:
    target.unlink(missing_ok=True)
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not allowed
        shutil.copyfile(source, target)


def deliver_solution(
    *,
    solution: str,
    scamp_dir: str | Path,
    scamp_xml: str | Path,
    scamp_cmd: str | Path,
    stem: str,
    stack_list: Sequence[int],
    out_dir: str | Path,
    xml_out: str | Path,
    cmd_out: str | Path,
) -> ToolRun:
    """Deliver the SCAMP solution ``solution`` to product ``stem``.

    Parameters
    ----------
    solution
        The solution's id (:func:`spica.paths.solution_id`): the prefix of its
        check plots.
    scamp_dir, scamp_xml, scamp_cmd
        The solution's ``scamp/`` folder, XML and recorded run.
    stem
        The product's stem (prefix of its delivered check plots).
    stack_list
        The product's stack list: each of its exposures must have a head.
    out_dir, xml_out, cmd_out
        The product's ``scamp/`` folder, ``_scamp.xml`` and ``_scamp.cmd``
        (the solution's run, as the product's provenance records it).

    Returns
    -------
    spica.provenance.ToolRun
        The copy of the stack list's heads into ``out_dir``, as a rebuild of
        the product repeats it after the solution's SCAMP run.

    Raises
    ------
    FileNotFoundError
        If the solution has no head for an exposure of the stack list.
    """
    scamp_dir, out_dir = Path(scamp_dir), Path(out_dir)
    missing = [exposure_name(e) for e in stack_list if not (scamp_dir / scamp_head_name(e)).is_file()]
    if missing:
        raise FileNotFoundError(f"SCAMP solution {solution} has no head for {', '.join(missing)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    for source in sorted(scamp_dir.iterdir()):
        if source.is_file() and not source.name.startswith("."):
            _link_or_copy(source, out_dir / delivered_name(source.name, solution=solution, stem=stem))
    # copied, not linked: an output sharing its input's inode gets the input's date when
    # Snakemake touches it after the job, and the job's other outputs then look older
    # than an input (a WorkflowError since the product's lists are made in the same job)
    shutil.copyfile(scamp_xml, xml_out)
    shutil.copyfile(scamp_cmd, cmd_out)
    heads = [(scamp_dir / scamp_head_name(e)).resolve() for e in sorted(int(e) for e in stack_list)]
    targets = [out_dir.resolve() / head.name for head in heads]
    return ToolRun(command=["cp", *map(str, heads), str(out_dir.resolve())],
                   outputs=[str(target) for target in targets])
