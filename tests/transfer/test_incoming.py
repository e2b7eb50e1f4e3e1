"""The incoming watcher: complete files only, read-only inputs, arrival times, resume after restart."""

from __future__ import annotations

import hashlib
import stat
import threading
import time

import numpy as np
import pytest

from spica.provenance import file_sha256
from spica.transfer import arrivals
from spica.transfer.incoming import poll
from tests.transfer.conftest import settings_for


def _payload(n_bytes: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n_bytes, dtype=np.uint8).tobytes()


class Step1:
    """A stand-in for step 1 that records what was in the inputs when it ran."""

    def __init__(self, results: list | None = None) -> None:
        self.calls: list[list[str]] = []
        self.results = results or []

    def __call__(self, settings) -> bool:
        self.calls.append(sorted(p.name for p in settings.exposures.iterdir()))
        return self.results.pop(0) if self.results else True


@pytest.fixture
def area(tmp_path):
    settings = settings_for(tmp_path)
    settings.incoming.mkdir()
    settings.exposures.mkdir(parents=True)
    settings.exposures.chmod(0o555)  # the inputs are read-only
    yield settings
    settings.exposures.chmod(0o755)


def test_a_file_being_written_is_never_taken(area):
    """A sender writes 751000p.fits in chunks (0.1 s apart, settle 0.3 s) while the watcher polls."""
    data = _payload(400_000)
    target = area.incoming / "751000p.fits"
    done = threading.Event()

    def sender():
        with open(target, "wb") as handle:
            for start in range(0, len(data), 20_000):
                handle.write(data[start:start + 20_000])
                handle.flush()
                time.sleep(0.1)
        done.set()

    thread = threading.Thread(target=sender)
    step1 = Step1()
    thread.start()
    taken_at = None
    polls = 0
    while taken_at is None and polls < 200:
        result = poll(area, step1=step1)  # the --once poll, over and over
        polls += 1
        if result.taken:
            taken_at = time.time()
            assert done.is_set(), "taken while it was still being written"
        time.sleep(0.05)
    thread.join()
    assert taken_at is not None and polls > 20  # it waited through the whole write
    copy = area.exposures / "751000p.fits"
    assert file_sha256(copy) == hashlib.sha256(data).hexdigest()  # the complete file
    assert not copy.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)  # read-only
    assert not area.exposures.stat().st_mode & stat.S_IWUSR  # the inputs folder stays read-only
    table = arrivals(area.results)
    assert table["file"].tolist() == ["751000p.fits"] and table["how"].tolist() == ["settled"]
    assert table["size"].tolist() == [400_000] and table["step1"].tolist() == ["done"]
    assert step1.calls == [["751000p.fits"]]  # step 1 once, with the file there


def test_checksum_sidecar_takes_a_file_at_once_and_a_wrong_one_holds_it(area):
    good, bad = _payload(5000, 1), _payload(5000, 2)
    (area.incoming / "751000p.fits").write_bytes(good)
    (area.incoming / "751000p.fits.sha256").write_text(hashlib.sha256(good).hexdigest() + "  751000p.fits\n")
    (area.incoming / "751008p.fits").write_bytes(bad)
    (area.incoming / "751008p.fits.sha256").write_text(hashlib.sha256(b"the sender's bytes").hexdigest() + "\n")
    (area.incoming / "README.txt").write_text("not an exposure")
    step1 = Step1()
    result = poll(area, step1=step1)
    assert result.taken == ["751000p.fits"] and result.waiting == ["751008p.fits"]
    later = poll(area, step1=step1, now=time.time() + 3600)  # a mismatching sidecar never settles
    assert later.taken == [] and later.waiting == ["751008p.fits"]
    assert arrivals(area.results)["how"].tolist() == ["checksum"]
    assert sorted(p.name for p in area.exposures.iterdir()) == ["751000p.fits"]


def test_a_restarted_watcher_resumes_without_redoing_or_missing(area):
    """Each poll is a fresh start (--once from cron): the state on disk carries everything."""
    for expnum, seed in ((751000, 1), (751008, 2)):
        (area.incoming / f"{expnum}p.fits").write_bytes(_payload(3000, seed))
    t0 = time.time()
    first = Step1(results=[False])  # step 1 fails (killed) after the files were taken
    assert poll(area, step1=first, now=t0).taken == []  # first sight: not settled yet
    result = poll(area, step1=first, now=t0 + 1)
    assert result.taken == ["751000p.fits", "751008p.fits"] and result.step1 == "failed"
    assert arrivals(area.results)["step1"].tolist() == ["failed", "failed"]
    # a new file arrives while the watcher is down; the next watcher retries step 1 once
    (area.incoming / "751016p.fits").write_bytes(_payload(3000, 3))
    second = Step1()
    result = poll(area, step1=second, now=t0 + 2)
    assert result.taken == [] and result.waiting == ["751016p.fits"] and result.step1 == "done"
    assert second.calls == [["751000p.fits", "751008p.fits"]]
    third = Step1()  # seen unchanged since the last poll: taken now
    result = poll(area, step1=third, now=t0 + 3)
    assert result.taken == ["751016p.fits"] and third.calls == [["751000p.fits", "751008p.fits", "751016p.fits"]]
    # nothing is taken twice, and with everything done step 1 does not run again
    idle = Step1()
    assert poll(area, step1=idle, now=t0 + 10).taken == [] and idle.calls == []
    table = arrivals(area.results)
    assert table["file"].tolist() == ["751000p.fits", "751008p.fits", "751016p.fits"]
    assert table["step1"].tolist() == ["done"] * 3
    assert all(value.endswith("Z") for value in table["arrived"])
    assert table["sha256"].tolist() == [file_sha256(area.incoming / f) for f in table["file"]]


def test_a_different_file_under_a_taken_name_is_refused(area):
    area.exposures.chmod(0o755)
    (area.exposures / "751000p.fits").write_bytes(b"already here")
    area.exposures.chmod(0o555)
    (area.incoming / "751000p.fits").write_bytes(b"something else")
    t0 = time.time()
    poll(area, step1=Step1(), now=t0)
    result = poll(area, step1=Step1(), now=t0 + 1)
    assert result.taken == [] and "different file" in result.refused["751000p.fits"]
    assert (area.exposures / "751000p.fits").read_bytes() == b"already here"
