"""The Python process Snakemake runs SPICA's Snakefile in: its cyclic garbage collector.

A survey's DAG is a few hundred thousand objects (jobs, their files, wildcards,
reasons) that live until the process ends. CPython 3.11 runs a full collection,
which walks every tracked object, whenever the objects promoted to the oldest
generation since the last one exceed a quarter of those already there: while the
DAG grows, it is walked again and again, for no garbage (issue 10, section 5).
The Snakefile keeps full collections off from its first line
(:func:`defer_full_collections`) and its ``onstart:`` handler, which Snakemake
calls once the DAG is built and before the first job of a real run, resumes them
(:func:`resume_full_collections`) with the DAG moved out of their way. A dry-run
ends before ``onstart:``; so does a run with ``--no-hooks``, whose full collections
stay off, as in a dry-run. Young collections run throughout: short-lived garbage,
cycles included, is collected as before.

Measured with ``bench/snakemake_floor.py``'s synthetic workflows (9,001 jobs,
120,000 file entries; CPU s of ``snakemake -n``, three runs each, alternating):
32.6 / 30.4 / 34.5 with the default collector, 29.5 / 27.1 / 28.0 without full
collections, the peak memory unchanged (407 MB); turning the collector off
altogether saved as much and cost 128 MB more.
"""

from __future__ import annotations

import gc

__all__ = ["defer_full_collections", "resume_full_collections"]

#: A threshold of the oldest generation no count of younger collections reaches.
_NEVER = 1 << 30


def defer_full_collections() -> tuple[int, int, int]:
    """Keep Python's full collections off; return the thresholds to restore.

    Returns
    -------
    tuple of int
        The collector's thresholds before the call (:func:`gc.get_threshold`), for
        :func:`resume_full_collections`.
    """
    thresholds = gc.get_threshold()
    gc.set_threshold(thresholds[0], thresholds[1], _NEVER)
    return thresholds


def resume_full_collections(thresholds: tuple[int, int, int]) -> None:
    """One full collection (the garbage of the DAG's building), then every object
    alive moves to the collector's permanent generation (:func:`gc.freeze`: the DAG
    is not walked again), and ``thresholds`` are restored.

    Parameters
    ----------
    thresholds
        What :func:`defer_full_collections` returned.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
