"""Freed memory kept for reuse while a step 1 job works through its CCDs.

glibc's ``malloc`` serves every block above its mmap threshold (128 kB to
32 MB) with a fresh ``mmap`` and unmaps it when freed: each CCD-sized numpy
array of the defect and QA steps (tens per CCD, 9-38 MB each) is then faulted
in page by page and zeroed by the kernel, again for every CCD. Measured on a
full-size 36-CCD exposure (``bench/fullsize.py``): 460,000 page faults and
3.1 s of system CPU of the job's 18 s of Python. With the mmap path off and
freed memory kept in the heap (:func:`reused_memory`) the arrays of one CCD
reuse the pages of the previous one: 70,000 faults, 1.4 s of system CPU, the
same peak memory (one CCD's arrays at a time either way).

Only the allocator changes: the values computed are the same (``calloc``
still returns zeros: from a recycled block glibc clears it itself).

Python's cyclic garbage collector is the other cost of the job's memory: a
collection runs every 700 new container objects (astropy header cards,
matplotlib artists, pandas frames: about 500 collections in a job) and the
older generations' traverse the objects alive, the imported modules' 150,000
included. :func:`frozen_objects` leaves the objects alive when a step starts
out of the collections (``gc.freeze``: 0.33 s of collections in the defect and
QA steps of a full-size exposure became 0.11 s), :func:`paused_collector` runs
imports without collections (0.2 s of the 1.3 s of the job's imports). Objects
are still freed as soon as nothing refers to them; only cycles wait, as before,
for a collection.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["reused_memory", "frozen_objects", "paused_collector"]

# mallopt(3) parameters and glibc's defaults
_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
_DEFAULT_TRIM_THRESHOLD, _DEFAULT_MMAP_MAX, _DEFAULT_ARENA_MAX = 128 * 1024, 65536, 0


@functools.lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    """The C library if it is glibc (``mallopt`` and ``malloc_trim``), else None."""
    if not sys.platform.startswith("linux"):
        return None
    for name in ("libc.so.6", None):
        try:
            if name is None:  # not the usual name: ask the linker's cache (a subprocess)
                name = ctypes.util.find_library("c")
            libc = ctypes.CDLL(name)
            libc.mallopt, libc.malloc_trim  # noqa: B018 - glibc only (not musl)
            return libc
        except (OSError, AttributeError, TypeError):
            continue
    return None


@contextmanager
def reused_memory() -> Iterator[bool]:
    """Keep freed memory in the process for reuse within the block (glibc only).

    Inside the block large blocks come from the heap (``M_MMAP_MAX = 0``),
    freed memory is not given back to the system (``M_TRIM_THRESHOLD``
    maximal) and threads started inside it share the main heap (``M_ARENA_MAX = 1``:
    a worker thread's own arena would map and unmap a 64 MB heap per CCD, the
    faults again: 58,000 instead of 31,000 for the defect step on two threads); on
    exit the defaults are restored and the free memory is given
    back (``malloc_trim``), so that the tools the job runs next find it.
    Yields whether the allocator was changed (False off glibc: a no-op).
    """
    libc = _glibc()
    changed = bool(libc is not None and libc.mallopt(_M_MMAP_MAX, 0)
                   and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) and libc.mallopt(_M_ARENA_MAX, 1))
    try:
        yield changed
    finally:
        if libc is not None:
            libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
            libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
            libc.mallopt(_M_ARENA_MAX, _DEFAULT_ARENA_MAX)
            libc.malloc_trim(0)


@contextmanager
def frozen_objects() -> Iterator[int]:
    """Leave the objects alive on entry out of the cyclic collections within the block.

    ``gc.freeze()`` on entry moves every object the collector tracks (after the
    imports, mostly modules, classes and functions that live as long as the
    process) to its permanent generation: the collections the block triggers
    traverse only the objects made since. On exit ``gc.unfreeze()`` puts them
    back in the oldest generation, unless objects were already frozen on entry
    (a caller's own ``gc.freeze``: left as it is). Reference counting still
    frees every object nothing refers to; the values computed do not change.
    Yields the number of objects frozen.
    """
    already = gc.get_freeze_count()
    gc.freeze()
    try:
        yield gc.get_freeze_count() - already
    finally:
        if not already:
            gc.unfreeze()


@contextmanager
def paused_collector() -> Iterator[None]:
    """No cyclic collection within the block (imports: each new module adds thousands of
    objects, none of them garbage, and triggers collections that traverse them all);
    the collector is enabled again on exit if it was on entry."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
