#!/usr/bin/env python
"""QualityFITS-out cost per release product against the SWarp time of that product
(issue 12 target: QualityFITS-out <= 0.5 x SWarp).

Reads a finished release's benchmarks (``<results>/benchmarks/releases/<release>/<stem>/``:
the product's QualityFITS-out job ``assess_product_quality``, against
``coadd_stack.tsv``) and prints, per product, the CPU seconds and wall seconds of
QualityFITS-out and of SWarp, and their ratios against the target. Since issue 10 the
job also draws the stack's thumbnails and dust map (not QualityFITS-out): their exact
CPU seconds, which the job's log gives per part (``cpu_seconds``, getrusage of the
script and its tools), are taken off the job's.
CPU time is the figure of merit (other jobs share the machine); a ``cpu_time``
of 0 (a job shorter than Snakemake's sampler) counts its wall time. Run it
after ``bin/spica demo`` (from the repository root)::

    .venv/bin/python bench/qualityfits_out.py [--workdir .] [--release T0002]

The basis is the same on both sides and printed: Snakemake's ``cpu_time``, user +
system seconds of the job's whole process tree (the Python script and every tool it
starts), summed over all threads, sampled every 0.5 s; the thread counts are those
the tools were given (SWarp's ``-NTHREADS`` from the product's ``_swarp.cmd``,
``NTHREADS`` of QualityFITS-out's SExtractor and PSFEx configuration files), so a
multi-threaded SWarp is charged all its threads' CPU. The sampling misses the CPU
of a child process shorter than 0.5 s (a SExtractor run on the completeness cut-out
takes 0.2-0.3 s), so it under-counts jobs made of many short tool runs: exact
figures need ``resource.getrusage`` around the job (issue 12's profile).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd
import yaml

from spica import paths

REPO = Path(__file__).resolve().parents[1]
TARGET = 0.5
QUALITYFITS_OUT_RULE = "assess_product_quality"
#: Parts of that job that are not QualityFITS-out (spica.qualityfits_out.product).
NOT_QUALITYFITS_OUT = ("thumbnails", "dust")


def _parts(results: Path, release: str, stem: str) -> dict[str, float]:
    """CPU seconds per part of the job, from the JSON its script prints last in its log."""
    path = paths.run_record_path(results, "log", "product", QUALITYFITS_OUT_RULE, release=release, stem=stem)
    text = path.read_text() if path.is_file() else ""
    start = text.rfind("\n{\n")
    return json.loads(text[start + 1:]).get("cpu_seconds", {}) if start >= 0 else {}


def _times(results: Path, release: str, stem: str, rule: str) -> tuple[float, float] | None:
    """(cpu, wall) seconds of one job's benchmark, None if it has none."""
    path = paths.run_record_path(results, "benchmark", "product", rule, release=release, stem=stem)
    if not path.is_file():
        return None
    row = pd.read_csv(path, sep="\t").iloc[-1]
    wall = float(row["s"])
    cpu = float(row.get("cpu_time", 0.0) or 0.0)
    return (cpu if cpu > 0 else wall), wall


def _config_threads(path: Path, overrides: dict) -> int:
    """``NTHREADS`` of an AstrOmatic configuration file (an override wins; 0 = all cores)."""
    if "NTHREADS" in overrides:
        return int(overrides["NTHREADS"])
    for line in path.read_text().splitlines():
        words = line.split("#")[0].split()
        if len(words) >= 2 and words[0] == "NTHREADS":
            return int(words[1])
    return 1


def _swarp_threads(results: Path, release: str, stem: str) -> str:
    """SWarp's ``-NTHREADS`` in the product's ``_swarp.cmd`` ("?" if not recorded)."""
    path = paths.product_path(results, release, stem, "swarp_cmd")
    try:
        command = json.loads(path.read_text())["command"]
        return str(command[command.index("-NTHREADS") + 1])
    except (OSError, ValueError, KeyError, IndexError):
        return "?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("."))
    parser.add_argument("--release", default="T0002")
    parser.add_argument("--config", type=Path, default=REPO / "config" / "config.yaml")
    args = parser.parse_args()
    config = yaml.safe_load(args.config.read_text())
    results = args.workdir / config["results"]
    folder = paths.run_record_path(results, "benchmark", "release", "x", release=args.release).parent
    stems = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    rows = []
    for stem in stems:
        swarp = _times(results, args.release, stem, "coadd_stack")
        job = _times(results, args.release, stem, QUALITYFITS_OUT_RULE)
        if swarp is None or job is None:
            continue
        parts = _parts(results, args.release, stem)
        other = sum(parts.get(key, 0.0) for key in NOT_QUALITYFITS_OUT)
        cpu, wall = max(job[0] - other, 0.0), max(job[1] - other, 0.0)
        rows.append({"product": stem, "swarp_threads": _swarp_threads(results, args.release, stem),
                     "qfo_cpu_s": cpu, "qfo_wall_s": wall, "swarp_cpu_s": swarp[0],
                     "swarp_wall_s": swarp[1], "ratio_cpu": cpu / swarp[0], "ratio_wall": wall / swarp[1],
                     **{f"{key}_cpu_s": value for key, value in parts.items()}})
    if not rows:
        print(f"no product of {args.release} with QualityFITS-out and SWarp benchmarks under {folder}",
              file=sys.stderr)
        return 1
    table = pd.DataFrame(rows)
    astromatic = REPO / "config" / "astromatic"
    qfo = config["qualityfits_out"]
    threads = {
        "SExtractor (product)": _config_threads(astromatic / "qualityfits_out.sex", qfo["sextractor_overrides"]),
        "PSFEx": _config_threads(astromatic / "qualityfits_out.psfex", qfo["psfex_overrides"]),
        "SExtractor (completeness)": _config_threads(astromatic / "release.sex", config["catalogues"]["overrides"]),
    }
    with pd.option_context("display.width", 220, "display.max_columns", 20):
        print(table.round(2).to_string(index=False))
    print("CPU basis: Snakemake benchmark cpu_time (user + system s of the job's process tree, all threads "
          "summed, sampled every 0.5 s: shorter child processes are missed) on both sides; threads: SWarp " + "/".join(sorted(set(table["swarp_threads"])))
          + ", QualityFITS-out " + ", ".join(f"{tool} {n}" for tool, n in threads.items())
          + " (the configuration files of this checkout)")
    worst = table["ratio_cpu"].max()
    print(f"QualityFITS-out / SWarp CPU time: median {table['ratio_cpu'].median():.2f}, worst {worst:.2f} "
          f"(target <= {TARGET}): {worst / TARGET:.1f}x the target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
