#!/usr/bin/env python
"""Wall-clock times of the unit-level kernels against their targets.

The tests check what these kernels produce; how long they take is measured
here, on the tests' own synthetic inputs (tests/step1), so that a loaded
machine never fails a test. Prints, per measurement, the seconds, the target
and their ratio (> 1: slower than the target)::

    .venv/bin/python bench/unit_timings.py [--repeat 3] [--workdir DIR]

* cosmic-ray and trail detection on a demo-sized CCD (400 x 800 px;
  ~0.2 s and ~1.5 s on an idle core);
* the QualityFITS-in assessment (measures, grade, every plot and the XML) of
  the synthetic four-CCD exposure of tests/step1/test_qa.py, once SExtractor
  and PSFEx have run (skipped without them);
* with ``--workdir`` (a finished small-demo run, e.g. ``bin/spica demo`` or
  a ``SPICA_E2E_WORKDIR``): SCAMP per astrometric solution, from the Snakemake
  benchmark files ``results/benchmarks/releases/<release>/_scamp/<solution>/solve_astrometry.tsv``
  (no target: reported only).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from spica import paths

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the tests' synthetic inputs: tests.step1.*

# seconds; the bounds the tests used to assert, loose for loaded CI machines
TARGETS = {
    "detect_cosmics, demo CCD": 5.0,
    "detect_trails, demo CCD": 10.0,
    "assess_exposure, 4 CCDs + plots": 30.0,
}


def best_of(repeat: int, run: Callable[[], object]) -> float:
    """Shortest wall-clock time of ``repeat`` calls of ``run`` (seconds)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def time_defects(repeat: int) -> dict[str, float]:
    """Cosmic-ray and trail detection on the demo-sized CCD of tests/step1/test_defects.py."""
    from spica.step1.defects import detect_cosmics, detect_trails
    from tests.step1.test_defects import (
        COSMICS,
        GAIN,
        READNOISE,
        SATURATE,
        TRAILS,
        make_ccd,
    )

    big = make_ccd(6, shape=(800, 400))
    return {
        "detect_cosmics, demo CCD": best_of(repeat, lambda: detect_cosmics(
            big["data"], gain=GAIN, readnoise=READNOISE, satlevel=SATURATE, **COSMICS)),
        "detect_trails, demo CCD": best_of(repeat, lambda: detect_trails(big["data"], **TRAILS)),
    }


def time_assessment(repeat: int) -> dict[str, float]:
    """:func:`spica.step1.qa.assess_exposure` on the perfect exposure of tests/step1/test_qa.py."""
    from tests.step1 import test_qa

    if test_qa.SEX is None or test_qa.PSFEX is None:
        print("assess_exposure: skipped (source-extractor/psfex not on PATH)", file=sys.stderr)
        return {}
    with tempfile.TemporaryDirectory(prefix="spica-bench-") as scratch:
        folder = Path(scratch)
        inputs = test_qa.run_tools(test_qa.make_exposure(folder))
        return {"assess_exposure, 4 CCDs + plots":
                best_of(repeat, lambda: test_qa.assess(inputs, folder))}


def scamp_seconds(workdir: Path) -> dict[str, float]:
    """SCAMP's seconds per astrometric solution of a finished run (its solve_astrometry benchmarks)."""
    found = sorted((workdir / paths.run_records_folder("results", "benchmark") / "releases").glob("*/_scamp/*/solve_astrometry.tsv"))
    return {f"SCAMP, {tsv.parent.name}": float(pd.read_csv(tsv, sep="\t")["s"].iloc[0])
            for tsv in found}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="best of N (default 3)")
    parser.add_argument("--workdir", type=Path, help="a finished small-demo run (SCAMP times)")
    args = parser.parse_args()
    logging.getLogger("matplotlib").setLevel(logging.ERROR)  # the PS backend's transparency notes
    measured = {**time_defects(args.repeat), **time_assessment(1)}
    if args.workdir is not None:
        measured.update(scamp_seconds(args.workdir))
    table = pd.DataFrame({"seconds": pd.Series(measured),
                          "target": pd.Series(TARGETS).reindex(list(measured))})
    table["ratio"] = table["seconds"] / table["target"]
    print(table.round(2).to_string(na_rep="-"))
    slow = table.index[table["ratio"] > 1].tolist()
    if slow:
        print(f"slower than the target: {', '.join(slow)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
