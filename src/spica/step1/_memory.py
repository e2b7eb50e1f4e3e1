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
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["reused_memory"]

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
