"""Running an AstrOmatic binary: the one ``subprocess`` call of the tool homes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from spica.provenance import ToolRun


def run_tool(
    command: Sequence[str],
    *,
    log: Any = None,
    cwd: str | Path | None = None,
    scratch: bool = False,
    outputs: Sequence[str | Path] = (),
) -> ToolRun:
    """Run ``command`` (in ``cwd``), its output and errors to ``log``; return the run.

    Raises
    ------
    subprocess.CalledProcessError
        If the tool exits with an error.
    """
    import subprocess

    subprocess.run(list(command), check=True, stdout=log, stderr=log, cwd=cwd)
    return ToolRun(command=list(command), cwd=None if cwd is None else str(cwd), scratch=scratch,
                   outputs=[str(output) for output in outputs])
