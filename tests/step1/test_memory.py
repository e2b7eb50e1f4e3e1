"""spica.step1._memory: freed memory reused (fewer page faults), the same values."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits
from numpy.testing import assert_array_equal

from spica.step1._memory import _glibc, reused_memory
from spica.step1.defects import write_defect_map
from tests.step1.test_defects import COSMICS, TRAILS, _write_exposure, make_ccd

_RESIDENT = """
import json, os, numpy as np
from spica.step1._memory import reused_memory

def resident_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

def freed(reuse):
    from contextlib import nullcontext
    with (reused_memory() if reuse else nullcontext()) as changed:
        before = resident_mb()
        a = np.zeros((2500, 4000), np.float32)  # 40 MB: above any glibc mmap threshold
        zero = not a.any()
        a += 1.0
        used = resident_mb() - before
        del a
        kept = resident_mb() - before
    return used, kept, resident_mb() - before, zero, changed

print(json.dumps([freed(False), freed(True), freed(False)]))
"""


@pytest.mark.skipif(_glibc() is None, reason="glibc's mallopt is needed")
def test_reused_memory_keeps_freed_memory_and_gives_it_back_on_exit():
    out = subprocess.run([sys.executable, "-c", _RESIDENT], capture_output=True, text=True, check=True)
    plain, reused, after = json.loads(out.stdout)
    assert all(run[3] for run in (plain, reused, after))  # calloc's zeros either way
    assert not plain[4] and reused[4] and not after[4]
    used, kept, gone, _, _ = plain
    assert used > 35 and kept < 5 and gone < 5  # unmapped when freed
    # After the block the settings are glibc's again (after[4] above), but a freed 40 MB block
    # is unmapped only when glibc maps the next one; most likely, when the block's heap chunk could not shrink
    # away (something allocated above it), malloc_trim gave its pages back yet glibc reuses the
    # chunk for the next 40 MB before it would map one, and keeps it when freed. Twice in full
    # CI runs, never alone: the run after the block is not asserted unmapped.
    assert after[0] > 35
    used, kept, gone, _, _ = reused
    assert used > 35 and kept > 35  # kept in the heap when freed: the next array reuses it
    assert gone < 5  # given back on exit (malloc_trim)


def test_defect_map_is_the_same_with_reused_memory(tmp_path):
    exposure = tmp_path / "exp.fits"
    _write_exposure(exposure, [make_ccd(21), make_ccd(22, trail=False)])
    plain = write_defect_map(exposure, tmp_path / "plain.fits", cosmics=COSMICS, trails=TRAILS)
    with reused_memory():
        reused = write_defect_map(exposure, tmp_path / "reused.fits", cosmics=COSMICS, trails=TRAILS,
                                  threads=2)
    assert plain == reused and plain["ccd00"]["cosmic_ray"] > 0 and plain["ccd00"]["trail"] > 0
    with fits.open(tmp_path / "plain.fits") as a, fits.open(tmp_path / "reused.fits") as b:
        for x, y in zip(a[1:], b[1:]):
            assert_array_equal(x.data, y.data)
    assert np.all(np.zeros(10**7, np.uint8) == 0)  # the allocator is back to normal here
