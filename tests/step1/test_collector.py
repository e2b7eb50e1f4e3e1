"""Step 1's job costs (issue 10, section 4, fourth round): Python's cyclic collector kept
off the objects that live as long as the job, the defect step on one thread, the LDAC
layout key from the keywords first. The same answers as the code they replace."""

from __future__ import annotations

import gc
import threading
import weakref

import numpy as np
import pytest
from astropy.io import fits

from spica.step1 import reduce as reduce_module
from spica.step1._memory import frozen_objects, paused_collector
from spica.step1.defects import write_defect_map
from tests.step1.test_defects import COSMICS, TRAILS, _write_exposure, make_ccd
from tests.step1.test_timing import _call, _outputs


class _Node:
    """A container object that can sit in a reference cycle."""

    def __init__(self) -> None:
        self.other: _Node | None = None


def _cycle_collected() -> bool:
    """Make a two-object cycle, drop it, collect: whether it was freed."""
    a, b = _Node(), _Node()
    a.other, b.other = b, a
    alive = weakref.ref(a)
    del a, b
    gc.collect()
    return alive() is None


def test_frozen_objects_leaves_old_objects_out_and_still_collects_new_cycles():
    assert gc.get_freeze_count() == 0
    old = _Node()
    old.other = old  # a cycle alive before the block: frozen with the rest
    with frozen_objects() as frozen:
        assert frozen > 1000 and gc.get_freeze_count() > 1000  # the imported modules' objects
        assert _cycle_collected()  # cycles made inside are collected as before
        gone = weakref.ref(old)
        del old
        gc.collect()
        assert gone() is not None  # a frozen cycle waits: the block's collections skip it
    assert gc.get_freeze_count() == 0  # back in the collector's generations on exit
    gc.collect()
    assert gone() is None
    # a caller's own freeze is left as it is
    gc.freeze()
    try:
        before = gc.get_freeze_count()
        with frozen_objects():
            pass
        assert gc.get_freeze_count() >= before > 0
    finally:
        gc.unfreeze()


def test_frozen_objects_unfreezes_when_the_block_raises():
    with pytest.raises(RuntimeError, match="step failed"):
        with frozen_objects():
            raise RuntimeError("step failed")
    assert gc.get_freeze_count() == 0


def test_paused_collector_restores_the_collectors_state():
    assert gc.isenabled()
    with paused_collector():
        assert not gc.isenabled()
        assert _cycle_collected()  # an explicit collection still works
    assert gc.isenabled()
    gc.disable()
    try:
        with paused_collector():
            assert not gc.isenabled()
        assert not gc.isenabled()  # was off on entry: stays off
    finally:
        gc.enable()
    with pytest.raises(ValueError):
        with paused_collector():
            raise ValueError("import failed")
    assert gc.isenabled()


def test_defect_map_is_the_same_with_frozen_objects_and_one_thread(tmp_path):
    """The reduce job's defect step (frozen objects, the rule's one thread) writes the map
    the plain two-thread call writes, byte for byte."""
    exposure = tmp_path / "exp.fits"
    _write_exposure(exposure, [make_ccd(31), make_ccd(32, trail=False)])
    plain = write_defect_map(exposure, tmp_path / "two.fits", cosmics=COSMICS, trails=TRAILS, threads=2)
    with frozen_objects():
        job = write_defect_map(exposure, tmp_path / "one.fits", cosmics=COSMICS, trails=TRAILS,
                               threads=1)
    assert job == plain and plain["ccd00"]["cosmic_ray"] > 0 and plain["ccd00"]["trail"] > 0
    assert (tmp_path / "one.fits").read_bytes() == (tmp_path / "two.fits").read_bytes()


@pytest.mark.parametrize("threads", [1, 2])
def test_the_defect_step_runs_on_the_jobs_threads_inside_frozen_objects(tmp_path, monkeypatch, threads):
    seen = []

    def record(*args, **kwargs):
        seen.append((kwargs["threads"], gc.get_freeze_count() > 0))
        raise RuntimeError("stop after the call")

    monkeypatch.setattr(reduce_module, "write_defect_map", record)
    with pytest.raises(RuntimeError, match="stop after the call"):
        _call(_outputs(tmp_path), threads=threads)
    assert seen == [(threads, True)]  # inside frozen_objects
    assert gc.get_freeze_count() == 0  # given back although the step failed


def _layout_key_reference(header: fits.Header) -> tuple | None:
    """The key as computed before (``Header.items()``: every value parsed)."""
    if int(header.get("PCOUNT", 0) or 0) or int(header.get("GCOUNT", 1) or 1) != 1:
        return None
    cards = []
    for keyword, value in header.items():
        if keyword.startswith(("TSCAL", "TZERO", "TNULL")):
            return None
        if keyword.startswith(("TTYPE", "TFORM", "TDIM")):
            cards.append((keyword, str(value)))
    return (int(header.get("NAXIS1", 0)), int(header.get("TFIELDS", 0)), tuple(cards))


def _table_headers() -> dict[str, fits.Header]:
    columns = [
        fits.Column(name="NUMBER", format="J", array=np.arange(3)),
        fits.Column(name="MAG_AUTO", format="E", unit="mag", array=np.ones(3)),
        fits.Column(name="VIGNET", format="25E", dim="(5,5)", array=np.zeros((3, 5, 5))),
    ]
    plain = fits.BinTableHDU.from_columns(columns).header
    scaled = fits.BinTableHDU.from_columns(
        [fits.Column(name="S", format="I", bscale=0.5, bzero=10.0, array=np.arange(3))]).header
    nulled = plain.copy()
    nulled["TNULL1"] = -1
    heap = plain.copy()
    heap["PCOUNT"] = 8
    undefined = plain.copy()
    undefined.append(fits.Card.fromstring("TDIM2   =".ljust(80)))  # a keyword without a value
    return {"plain": plain, "scaled": scaled, "nulled": nulled, "heap": heap, "undefined": undefined}


@pytest.mark.parametrize("name", ["plain", "scaled", "nulled", "heap", "undefined"])
def test_layout_key_from_the_keywords_first_equals_header_items(name):
    from spica.astromatic.sextractor import _layout_key

    header = _table_headers()[name]
    fresh = fits.Header.fromstring(header.tostring())  # values not parsed yet, as read
    assert _layout_key(fresh) == _layout_key_reference(header)
    assert (_layout_key(fresh) is None) == (name in ("scaled", "nulled", "heap"))
    if name == "undefined":
        assert ("TDIM2", "None") in _layout_key(fresh)[2]


def test_trail_vetting_import_leaves_the_collector_on_whatever_the_threads():
    """The vetting module's import runs without collections; several threads asking for it
    at once all get the module, and the collector is on again afterwards."""
    from spica.step1.defects import _findsat_utils

    got = []
    threads = [threading.Thread(target=lambda: got.append(_findsat_utils())) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert len(got) == 4 and all(m.__name__ == "acstools.utils_findsat_mrt" for m in got)
    assert callable(got[0].filter_sources) and gc.isenabled()
