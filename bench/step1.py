#!/usr/bin/env python
"""Step 1 cost per exposure: time in the AstrOmatic tools vs in our Python.

Reads the Snakemake benchmark files of a finished step 1 run
(``benchmarks/step1/<expnum>p/<rule>.tsv``) and prints, per exposure and in
total, the wall-clock seconds spent in tool rules and in Python rules and
their ratio. Run it after ``bin/spica demo`` (from the repository root)::

    .venv/bin/python bench/step1.py [--workdir .]

or let it run the small demo first in a scratch directory::

    .venv/bin/python bench/step1.py --run-small-demo
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

TOOL_RULES = {"make_weight_map": "WeightWatcher", "extract_sources": "SExtractor",
              "model_psf": "PSFEx"}
PYTHON_RULES = {"check_exposure": "integrity", "mask_defects": "cosmics+trails",
                "assess_quality": "QA plots+XML"}
REPO = Path(__file__).resolve().parents[1]


def collect(workdir: Path) -> pd.DataFrame:
    """One row per (exposure, rule) with the wall-clock seconds and peak memory."""
    rows = []
    for tsv in sorted((workdir / "benchmarks" / "step1").glob("*p/*.tsv")):
        table = pd.read_csv(tsv, sep="\t")
        rows.append({"exposure": tsv.parent.name, "rule": tsv.stem,
                     "seconds": float(table["s"].iloc[0]),
                     "max_rss_mb": float(pd.to_numeric(table["max_rss"], errors="coerce").iloc[0])})
    return pd.DataFrame(rows)


def run_small_demo(workdir: Path) -> None:
    """Simulate the small demo survey in ``workdir`` and run step 1 there."""
    subprocess.run([sys.executable, "-m", "spica.demo.cli", "--config",
                    str(REPO / "config" / "config.yaml"), "--outdir", str(workdir), "--small"],
                   check=True)
    subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
                    "--directory", str(workdir), "--cores", "2", "qualityfits_in",
                    "--configfile", str(REPO / "config" / "config.yaml")],
                   check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("."))
    parser.add_argument("--run-small-demo", action="store_true")
    args = parser.parse_args()
    workdir = args.workdir
    if args.run_small_demo:
        workdir = Path(tempfile.mkdtemp(prefix="spica-bench-"))
        run_small_demo(workdir)
    runs = collect(workdir)
    if runs.empty:
        print(f"no step 1 benchmark files under {workdir}/benchmarks/step1", file=sys.stderr)
        return 1
    runs["kind"] = runs["rule"].map(lambda r: "tools" if r in TOOL_RULES else "python")
    per_rule = runs.groupby("rule")["seconds"].agg(["mean", "max", "count"])
    print("seconds per exposure, by rule")
    print(per_rule.round(2).to_string())
    split = runs.pivot_table(index="exposure", columns="kind", values="seconds", aggfunc="sum")
    split["python/tools"] = split["python"] / split["tools"]
    print("\nper exposure")
    print(split.round(2).to_string())
    total = runs.groupby("kind")["seconds"].sum()
    print(f"\nexposures: {split.shape[0]}  tools: {total['tools']:.1f} s  "
          f"python: {total['python']:.1f} s  ratio python/tools = {total['python'] / total['tools']:.2f}")
    print(f"peak memory of a step 1 job: {runs['max_rss_mb'].max():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
