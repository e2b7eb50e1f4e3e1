"""Per-step timings of a step 1 job: the ``<rule>.steps.json`` beside its benchmark.

A merged step 1 job (``reduce_exposure``: defect masks, WeightWatcher,
SExtractor, PSFEx) is one Snakemake benchmark line; :class:`StepTimer` splits
it. Around each step it takes the deltas of :func:`time.perf_counter` and of
:func:`resource.getrusage` for the process itself (``RUSAGE_SELF``, every
thread of it) and for its finished children (``RUSAGE_CHILDREN``: the tools run
as subprocesses and waited for). The file it writes::

    {"rule": "reduce_exposure", "expnum": "760101",
     "steps": [{"name": "defects", "kind": "python", "wall_s": 1.2, "cpu_self_s": 1.1,
                "cpu_children_s": 0.0, "max_rss_self_mb": 300.0, "max_rss_children_mb": 0.0},
               ...],
     "total": {"wall_s": ..., "cpu_self_s": ..., "cpu_children_s": ...},
     "process": {"cpu_self_s": ...}}

``kind`` is ``"python"`` (our code) or ``"tool"`` (an AstrOmatic binary run
from Python). ``max_rss_*_mb`` is the peak resident memory *so far* when the
step ends (``ru_maxrss`` is a high-water mark, not a delta): for the
children, that of the largest child waited for, which on Linux includes the
pages it shared with this process between ``fork`` and ``exec``: an upper
bound, often just this process' own peak. ``total`` runs from the
timer's creation to :meth:`StepTimer.write`. The accounting of
``bench/step1.py``: a tool step's children CPU is the tools' time; everything
else (python steps, a tool step's own CPU, the job's start-up: its benchmark
``cpu_time`` minus the steps) is our Python.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["KINDS", "Usage", "StepTimer", "read_steps", "steps_path"]

#: Kinds of step: our Python, or an AstrOmatic tool (a subprocess).
KINDS = ("python", "tool")

# ru_maxrss is in kilobytes on Linux, in bytes on macOS
_RSS_TO_MB = 1 / 1024 if sys.platform != "darwin" else 1 / 1024**2


@dataclass(frozen=True)
class Usage:
    """One reading of the clocks: wall time, CPU seconds and peak memory."""

    wall: float
    cpu_self: float
    cpu_children: float
    rss_self_mb: float
    rss_children_mb: float

    @classmethod
    def now(cls) -> "Usage":
        """Read the clocks (``perf_counter``, ``getrusage`` self and children)."""
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return cls(
            wall=time.perf_counter(),
            cpu_self=me.ru_utime + me.ru_stime,
            cpu_children=kids.ru_utime + kids.ru_stime,
            rss_self_mb=me.ru_maxrss * _RSS_TO_MB,
            rss_children_mb=kids.ru_maxrss * _RSS_TO_MB,
        )

    def since(self, start: "Usage") -> dict[str, float]:
        """Wall and CPU deltas from ``start``, rounded to the millisecond."""
        return {
            "wall_s": round(self.wall - start.wall, 3),
            "cpu_self_s": round(self.cpu_self - start.cpu_self, 3),
            "cpu_children_s": round(self.cpu_children - start.cpu_children, 3),
        }


@dataclass
class StepTimer:
    """Collects the timed steps of one job and writes its ``.steps.json``.

    Parameters
    ----------
    rule : str
        The Snakemake rule (``"reduce_exposure"``).
    expnum : str
        The exposure number (the ``expnum`` wildcard).

    Examples
    --------
    >>> timer = StepTimer("reduce_exposure", "760101")
    >>> with timer.step("defects", "python"):
    ...     pass
    >>> [s["name"] for s in timer.steps]
    ['defects']
    """

    rule: str
    expnum: str
    steps: list[dict[str, Any]] = field(default_factory=list)
    start: Usage = field(default_factory=Usage.now)

    @contextmanager
    def step(self, name: str, kind: str) -> Iterator[None]:
        """Time the body as step ``name`` of ``kind`` (``"python"`` or ``"tool"``).

        A step whose body raises is recorded too (with ``"failed": true``) and the
        exception goes on.
        """
        if kind not in KINDS:
            raise ValueError(f"step kind {kind!r} is not one of {KINDS}")
        before = Usage.now()
        failed = True
        try:
            yield
            failed = False
        finally:
            after = Usage.now()
            entry: dict[str, Any] = {
                "name": name,
                "kind": kind,
                **after.since(before),
                "max_rss_self_mb": round(after.rss_self_mb, 1),
                "max_rss_children_mb": round(after.rss_children_mb, 1),
            }
            if failed:
                entry["failed"] = True
            self.steps.append(entry)

    def as_dict(self) -> dict[str, Any]:
        """The ``.steps.json`` content, ``total`` measured now.

        ``process`` is the process' own CPU since it started (``RUSAGE_SELF``
        now): interpreter start-up and imports included, which Snakemake's
        sampled benchmark ``cpu_time`` can miss when the job's tools dominate it.
        """
        now = Usage.now()
        return {"rule": self.rule, "expnum": str(self.expnum), "steps": list(self.steps),
                "total": now.since(self.start), "process": {"cpu_self_s": round(now.cpu_self, 3)}}

    def write(self, path: str | Path) -> Path:
        """Write :meth:`as_dict` to ``path`` (its folder created); return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_dict(), indent=1) + "\n")
        return path


def steps_path(benchmark: str | Path) -> Path:
    """The ``.steps.json`` beside a benchmark file (``reduce_exposure.tsv`` ->
    ``reduce_exposure.steps.json``)."""
    benchmark = Path(benchmark)
    return benchmark.with_name(benchmark.stem + ".steps.json")


def read_steps(path: str | Path) -> dict[str, Any]:
    """Read a ``.steps.json`` file; checks its kinds.

    Raises
    ------
    ValueError
        A step without a known ``kind``.
    """
    data = json.loads(Path(path).read_text())
    for step in data["steps"]:
        if step.get("kind") not in KINDS:
            raise ValueError(f"{path}: step {step.get('name')!r} has kind {step.get('kind')!r}")
    return data
