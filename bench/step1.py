#!/usr/bin/env python
"""Step 1 cost per exposure: time in the AstrOmatic tools vs in our Python.

Reads a finished step 1 run's benchmarks (``results/benchmarks/step1/<expnum>p/``) and
prints, per exposure, per step and in total, the CPU seconds spent in the tools
and in our Python, their ratio and that ratio against the issue-10 target
(python/tools <= 0.25). CPU time, not wall time: other jobs share the machine.

Two layouts are read:

* the merged rules (today one ``reduce_exposure`` job per exposure: defects,
  WeightWatcher, SExtractor, PSFEx, QA; earlier also ``assess_quality``): each
  job's ``<rule>.steps.json`` (:mod:`spica.step1.timing`) splits it into steps. A
  ``tool`` step's children CPU is the tools' time; everything else is our
  Python: python steps in full, a tool step's own CPU (the Python around the
  subprocess), and the job's start-up (interpreter, imports: the job's
  benchmark ``cpu_time`` minus the sum of its steps, 0 if negative);
* the old one rule per step layout (``mask_defects.tsv``,
  ``make_weight_map.tsv``...; no ``.steps.json``): a tool rule's whole
  ``cpu_time`` is the tools', a Python rule's is ours.

A job without a ``.steps.json`` is read the old way (``check_exposure`` always
is: all Python). A ``cpu_time`` of 0 (a job shorter than Snakemake's sampler,
about a second) counts its wall time instead. Run it after ``bin/spica demo``
(from the repository root)::

    .venv/bin/python bench/step1.py [--workdir .]

or let it run the small demo first in a scratch directory::

    .venv/bin/python bench/step1.py --run-small-demo
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

from spica import paths

TARGET = 0.25  # issue 10: our Python <= 0.25 x the tools' time per exposure
#: Old layout: a rule that is one tool run (its whole CPU is the tool's).
TOOL_RULES = {"make_weight_map": "WeightWatcher", "extract_sources": "SExtractor",
              "model_psf": "PSFEx"}
#: Old layout and check_exposure: Python rules.
PYTHON_RULES = {"check_exposure": "integrity", "mask_defects": "cosmics+trails",
                "assess_quality": "QA plots+XML"}
REPO = Path(__file__).resolve().parents[1]
#: The run records' folder of the demo configuration (``results: results``), relative to
#: the work directory: ``results/benchmarks`` (spica.paths.RUN_RECORDS).
BENCHMARKS = paths.run_records_folder("results", "benchmark")


def _benchmark(tsv: Path) -> tuple[float, float, float]:
    """(CPU seconds, wall seconds, peak RSS MB) of one Snakemake benchmark file."""
    table = pd.read_csv(tsv, sep="\t")
    wall = float(table["s"].iloc[0])
    cpu = float(pd.to_numeric(table["cpu_time"], errors="coerce").fillna(0).iloc[0])
    rss = float(pd.to_numeric(table["max_rss"], errors="coerce").fillna(0).iloc[0])
    return (cpu if cpu > 0 else wall), wall, rss


def split_job(tsv: Path) -> list[dict]:
    """Rows (exposure, rule, step, kind, seconds, wall, max_rss_mb) of one job.

    ``kind`` is ``"tools"`` or ``"python"``; with a ``.steps.json`` beside the
    benchmark, one row per step and kind (a tool step gives a tools row and a
    python row, its own CPU) plus a ``startup`` python row; without, one row.
    """
    exposure, rule = tsv.parent.name, tsv.stem
    cpu, wall, rss = _benchmark(tsv)
    steps_file = tsv.with_name(f"{rule}.steps.json")
    base = {"exposure": exposure, "rule": rule, "max_rss_mb": rss}
    if not steps_file.is_file():
        kind = "tools" if rule in TOOL_RULES else "python"
        step = TOOL_RULES.get(rule) or PYTHON_RULES.get(rule) or rule
        return [{**base, "step": step, "kind": kind, "seconds": cpu, "wall": wall}]
    record = json.loads(steps_file.read_text())
    steps = record["steps"]
    rows = []
    for step in steps:
        if step["kind"] == "tool":
            rows.append({**base, "step": step["name"], "kind": "tools",
                         "seconds": step["cpu_children_s"], "wall": step["wall_s"]})
            rows.append({**base, "step": f"{step['name']} (python side)", "kind": "python",
                         "seconds": step["cpu_self_s"], "wall": 0.0})
        else:
            rows.append({**base, "step": step["name"], "kind": "python",
                         "seconds": step["cpu_self_s"] + step["cpu_children_s"],
                         "wall": step["wall_s"]})
    measured = sum(step["cpu_self_s"] + step["cpu_children_s"] for step in steps)
    startup = max(cpu - measured, 0.0)
    if "process" in record:  # the job's own CPU from its start: exact, not sampled
        startup = max(record["process"]["cpu_self_s"] - sum(step["cpu_self_s"] for step in steps), 0.0)
    rows.append({**base, "step": f"{rule} start-up", "kind": "python",
                 "seconds": startup,
                 "wall": max(wall - sum(step["wall_s"] for step in steps), 0.0)})
    return rows


def collect(workdir: Path) -> pd.DataFrame:
    """One row per (exposure, rule, step, kind): CPU seconds, wall seconds, peak memory."""
    rows = [row for tsv in sorted((workdir / BENCHMARKS / "step1").glob("*p/*.tsv"))
            for row in split_job(tsv)]
    return pd.DataFrame(rows, columns=["exposure", "rule", "step", "kind", "seconds", "wall",
                                       "max_rss_mb"])


def run_small_demo(workdir: Path) -> None:
    """Simulate the small demo survey in ``workdir`` and run step 1 there."""
    subprocess.run([sys.executable, "-m", "spica.demo.cli", "--config",
                    str(REPO / "config" / "config.yaml"), "--outdir", str(workdir), "--small"],
                   check=True)
    subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
                    "--directory", str(workdir), "--cores", "2", "qualityfits_in",
                    "--configfile", str(REPO / "config" / "config.yaml")],
                   check=True)


def report(runs: pd.DataFrame) -> float:
    """Print the tables; return the total python/tools ratio."""
    # exposures quarantined after check_exposure ran no tool: left out
    full = runs.groupby("exposure")["kind"].transform(lambda k: (k == "tools").any())
    runs = runs[full]
    n = runs["exposure"].nunique()
    per_step = (runs.groupby(["rule", "step", "kind"], sort=False)[["seconds", "wall"]]
                .agg(["mean", "max"]))
    print(f"CPU seconds (and wall) per exposure, by rule and step ({n} exposures)")
    print(per_step.round(2).to_string())
    split = runs.pivot_table(index="exposure", columns="kind", values="seconds", aggfunc="sum")
    split["python/tools"] = split["python"] / split["tools"]
    split["x target"] = split["python/tools"] / TARGET
    print("\nper exposure (CPU s)")
    print(split.round(2).to_string())
    total = runs.groupby("kind")["seconds"].sum()
    ratio = total["python"] / total["tools"]
    print(f"\nexposures: {n}  tools: {total['tools']:.1f} s CPU  "
          f"python: {total['python']:.1f} s CPU  ratio python/tools = {ratio:.2f}  "
          f"(target {TARGET}: {ratio / TARGET:.2f} x target)")
    jobs = runs.drop_duplicates(["exposure", "rule"])
    print(f"peak memory of a step 1 job: {jobs['max_rss_mb'].max():.0f} MB "
          f"({jobs.loc[jobs['max_rss_mb'].idxmax(), 'rule']})")
    return ratio


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
    if runs.empty or not (runs["kind"] == "tools").any():
        print(f"no step 1 benchmark files of a tool under {workdir / BENCHMARKS}/step1",
              file=sys.stderr)
        return 1
    report(runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
