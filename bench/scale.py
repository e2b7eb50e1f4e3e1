#!/usr/bin/env python
"""Planning at survey scale: Snakemake dry-runs on a T0007-sized survey without pixels.

Builds, in a scratch folder, a survey of 7,042 exposures spread over the four
Deep fields, the four Wide fields, the Wide pre-survey, the Very Wide and a PI
program, with everything the DAG reads made cheaply: empty raw files, the
Elixir calibration names, every step 1 output (empty files, in the order of
the rules so that their modification times say "up to date"), the integrity
verdicts, the inventory, the quarantine list, the observing metadata and the
registry export. It then plans release T0002 for real (``snakemake plan_T0002``,
the ``plan_release`` checkpoint on the 7,042 registry rows) and times::

    snakemake -n qualityfits_in --quiet rules reason host
    snakemake -n release_T0002 --quiet rules reason host

(wall and CPU time, peak RSS of the Snakemake process and its children, from
``/usr/bin/time -v``), printing each against the targets of issue 10 section 5
(<= 30 s, <= 2 GB; the ratio uses CPU time, wall time on a shared machine says
little) as ratios, with the number of jobs the dry-run lists and the CPU
milliseconds per listed job. With every step 1 output in place, the
``qualityfits_in`` dry-run lists no job, but Snakemake still builds and checks
the whole step 1 DAG (its jobs per exposure and the checkpoint's second pass).
The bench seals the placeholder registry as ``build_registry`` seals a real one
(:mod:`spica.seal`, with this checkout's code hashes and tools), so the release
dry-run takes step 1 as it is and builds none of its jobs; each release line
says whether the seal held.
Snakemake runs with ``--rerun-triggers mtime``: the placeholders have no
Snakemake metadata (without it Snakemake reruns them as "code changed"). Usage::

    .venv/bin/python bench/scale.py [--scratch DIR] [--rebuild] [--profile] [--fraction F]

``--fraction 0.1`` builds a tenth of the survey (every component scaled), for a
quick measure; it does not extrapolate linearly (fixed start-up, astrometric
lists shrinking faster than the fraction). The 1-minute load average is printed
beside each figure: the machine is shared.

``--profile`` also writes ``<scratch>/<target>.prof`` (cProfile of Snakemake's
main, read with ``python -m pstats``). The survey is rebuilt only when the
scratch folder has none (or with ``--rebuild``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from spica import paths

REPO = Path(__file__).resolve().parents[1]

#: Targets of issue 10 section 5, per dry-run.
TARGET_SECONDS = 30.0
TARGET_MB = 2048.0

N_EXPOSURES = 7042
FIRST_EXPNUM = 700000
BANDS = "ugriz"
FILTERS = {"u": "u.MP9301", "g": "g.MP9401", "r": "r.MP9601", "i": "i.MP9701", "z": "z.MP9801"}

#: Wide fields: centre and grid of 1-degree targets (6 x 6 each).
WIDE_FIELDS = {"W1": (34.5, -7.0), "W2": (134.0, -3.2), "W3": (214.5, 54.0), "W4": (333.0, 1.0)}
WIDE_GRID = 6
#: Deep fields (config/cfhtls.yaml): exposures per field.
N_DEEP = 1500
#: Wide exposures per target and filter.
N_WIDE_PER_STACK = 5
N_PREW = 150
N_VW = 1400
PI_RUNID = "04AC14"


def _wide_targets() -> list[dict]:
    targets = []
    for field, (ra0, dec0) in WIDE_FIELDS.items():
        for i in range(WIDE_GRID):
            for j in range(WIDE_GRID):
                dec = dec0 + (j - (WIDE_GRID - 1) / 2)
                ra = ra0 + (i - (WIDE_GRID - 1) / 2) / np.cos(np.radians(dec))
                targets.append({"name": f"{field}{i - 2:+d}{j - 2:+d}", "ra": round(float(ra) % 360, 6),
                                "dec": round(float(dec), 6)})
    return targets


def survey_table(deep_fields: list[dict], seed: int = 7, fraction: float = 1.0) -> pd.DataFrame:
    """The registry export of the survey: one row per exposure.

    About one exposure in eight fails a T0002 criterion (seeing, airmass,
    grade C or D), so the selection has work to do; the rest are chosen so
    that T0002 plans about 2,300 stacks and images. ``fraction`` < 1 scales
    every component (Deep exposures per field, Wide targets, Pre-W, VW, PI),
    so that the planned products and the astrometric list entries scale
    about linearly with it.
    """
    rng = np.random.default_rng(seed)
    rows = []
    n_deep, n_prew, n_vw = (round(n * fraction) for n in (N_DEEP, N_PREW, N_VW))
    wide = _wide_targets()[:round(len(_wide_targets()) * fraction)]

    def add(survey_runid, obj, band, ra, dec, good=True):
        rows.append({"runid": survey_runid, "object": obj, "band": band, "filter": FILTERS[band],
                     "ra_deg": ra % 360, "dec_deg": dec, "good": good})

    for field in deep_fields:  # Deep: 1,500 exposures, 75 per field and filter
        for k in range(n_deep // len(deep_fields)):
            add("04AL01", field["name"], BANDS[k % 5], field["ra"] + rng.normal(0, 0.05),
                field["dec"] + rng.normal(0, 0.05), good=k % 8 != 7)
    for target in wide:  # Wide: 144 targets x 5 filters x 5 exposures
        for band in BANDS:
            for k in range(N_WIDE_PER_STACK):
                add("04AL04", target["name"], band, target["ra"] + rng.normal(0, 0.02),
                    target["dec"] + rng.normal(0, 0.02), good=k != 4 or rng.random() < 0.4)
    for k in range(n_prew):  # Wide pre-survey: one exposure per pointing, in W3
        add("03AL04", f"PW{k:03d}", "ri"[k % 2], 205 + 0.5 * (k % 30), 50 + 0.5 * (k // 30))
    for k in range(n_vw):  # Very Wide: image by image, a strip at 0.3 deg steps, g r i
        add("04AL03", f"VW{k // 3:04d}", "gri"[k % 3], 150 + 0.3 * (k // 3) % 140,
            20 + 0.25 * ((k // 3) // 467), good=k % 9 != 8)
    n_pi = round(N_EXPOSURES * fraction) - len(rows)
    for k in range(n_pi):  # PI: half in the T0002 PI program, half not asked for
        add(PI_RUNID if k % 2 else "04AC99", f"PI{k:03d}", "r", 60 + 0.1 * k, -30.0)
    table = pd.DataFrame(rows)
    n = len(table)
    good = table.pop("good").to_numpy()
    table.insert(0, "expnum", FIRST_EXPNUM + np.arange(n))
    table["file"] = [f"raw/exposures/{e}p.fits" for e in table["expnum"]]
    table["status"] = "ok"
    table["exptime"] = 300.0
    table["airmass"] = np.where(good, 1.2, 1.7)
    table["date_obs"] = [f"2004-0{1 + (k % 9)}-1{k % 10}" for k in range(n)]
    table["skyprobe"] = 0.1
    table["photometric"] = np.arange(n) % 3 != 0
    table["qa_fwhm_arcsec"] = np.where(good, 0.8, 1.6)
    table["grade"] = np.where(good, "A", np.where(np.arange(n) % 2, "C", "D"))
    table["grade_provisional"] = False
    return table


def _touch(path: Path, mtime: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    os.utime(path, (mtime, mtime))


def build_survey(scratch: Path, fraction: float = 1.0) -> dict:
    """Write the survey, its step 1 outputs and the configuration overlay into ``scratch``.

    Returns
    -------
    dict
        Counts by survey component.
    """
    cfhtls = yaml.safe_load((REPO / "config" / "cfhtls.yaml").read_text())
    table = survey_table(cfhtls["survey"]["deep_fields"], fraction=fraction)
    raw, results = scratch / "raw", scratch / "results"
    # raw inputs two hours ago; every step 1 stage in the last five minutes, a minute
    # apart, so that the repository's configuration files (inputs of reduce_exposure,
    # edited when the checkout was made) are older than the outputs made from them
    now = time.time()
    t0 = now - 7200
    stage = {"check": now - 300, "inventory": now - 240, "reduce": now - 180,
             "assess": now - 120, "registry": now - 60}
    flat, mask = "13AQ01_g.flat.fits", "13AQ01.mask.fits"
    for name in (flat, mask):
        _touch(raw / "elixir" / name, t0)
        _touch(results / "calibrations" / name, stage["check"])
    _touch(raw / "refcat" / "refcat.ldac", t0)
    reduce_keys = ("weight", "flag", "ww_xml", "ldac", "sex_xml", "minibkg", "psf", "psfex_xml")
    assess_keys = ("diag", "qa_xml", *paths.QA_PLOTS)
    for expnum in table["expnum"]:
        _touch(raw / "exposures" / paths.exposure_filename(expnum), t0)
        check = paths.step1_path(results, expnum, "check")
        check.parent.mkdir(parents=True, exist_ok=True)
        check.write_text(json.dumps({"expnum": int(expnum), "status": "ok",
                                     "calibrations": {"flat": flat, "mask": mask}}))
        os.utime(check, (stage["check"],) * 2)
        _touch(paths.step1_path(results, expnum, "ahead"), stage["check"])  # check_exposure's too
        for key in reduce_keys:
            _touch(paths.step1_path(results, expnum, key), stage["reduce"])
        for key in assess_keys:
            _touch(paths.step1_path(results, expnum, key), stage["assess"])
    inventory = results / "step1" / "inventory.csv"
    pd.DataFrame({"expnum": table["expnum"], "path": table["file"], "status": "ok", "reason": "",
                  "message": ""}).to_csv(inventory, index=False)
    os.utime(inventory, (stage["inventory"],) * 2)
    quarantine = results / "quarantine" / "quarantine.csv"
    quarantine.parent.mkdir(parents=True, exist_ok=True)
    quarantine.write_text("file,reason,message\n")
    os.utime(quarantine, (stage["inventory"],) * 2)
    metadata = raw / "metadata.csv"
    table[["expnum", "skyprobe", "photometric"]].to_csv(metadata, index=False)
    os.utime(metadata, (t0,) * 2)
    export = results / "registry" / "exposures.csv"
    export.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(export, index=False)
    os.utime(export, (stage["registry"],) * 2)
    overlay = {
        "results": "results",
        "inputs": {"exposures": "raw/exposures", "calibrations": "raw/elixir",
                   "metadata": "raw/metadata.csv", "grades": "raw/grades.csv",
                   "refcat": "raw/refcat/refcat.ldac"},
        "survey": {"wide_targets": _wide_targets()},
        "releases": {"T0002": {"pi_programs": [PI_RUNID]}},
    }
    (scratch / "overlay.yaml").write_text(yaml.safe_dump(overlay, sort_keys=False))
    seal_survey(scratch)
    return dict(Counter(table["runid"].map({"04AL01": "D", "04AL04": "W", "03AL04": "Pre-W",
                                            "04AL03": "VW"}).fillna("PI")))


def merged_config(scratch: Path) -> dict:
    """The configuration Snakemake runs the scratch survey with: the Snakefile's
    ``configfile:`` files, then the command line's (:func:`snakemake_command`), merged
    as Snakemake merges them (:func:`spica.config.read_config_files`)."""
    from spica.config import read_config_files

    return read_config_files([REPO / "config" / "config.yaml", REPO / "config" / "releases.yaml",
                              REPO / "config" / "cfhtls.yaml", scratch / "overlay.yaml"])


def seal_survey(scratch: Path, check: bool = False):
    """Seal the placeholder registry as ``build_registry`` would (:mod:`spica.seal`):
    the step 1 jobs were "run" by this bench, so a release-only dry-run may skip them.
    Paths as the workflow spells them (relative to the scratch folder). With
    ``check``, check the seal instead (a :class:`spica.seal.SealCheck`)."""
    from spica.seal import check_seal, sealed_files, step1_static, write_seal
    from spica.step1.inventory import discover_exposures
    from spica.tools import resolve_tools

    config = merged_config(scratch)
    tools = resolve_tools(config["tools"])
    static = step1_static(config, workflow_dir=REPO,
                          tool_versions={name: tool.version if tool else "absent"
                                         for name, tool in tools.items()})
    cwd = os.getcwd()
    os.chdir(scratch)
    try:
        results = config["results"]
        files = sealed_files(results, incoming=discover_exposures(config["inputs"]["exposures"]).files,
                             inventory=str(Path(results) / "step1" / "inventory.csv"),
                             quarantine=str(Path(results) / "quarantine" / "quarantine.csv"),
                             optional=[config["inputs"]["metadata"], config["inputs"]["grades"]])
        seal, export = Path(results) / "registry" / "step1_seal.json", str(Path(results) / "registry" / "exposures.csv")
        if check:
            return check_seal(seal, static=static, files=files, contents=[export])
        return write_seal(seal, static=static, files=files, contents=[export])
    finally:
        os.chdir(cwd)


def snakemake_command(scratch: Path, *args: str, profile: Path | None = None) -> list[str]:
    """The Snakemake command line on the scratch survey (cProfile'd if ``profile``)."""
    runner = [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "snakemake"] \
        if profile else [sys.executable, "-m", "snakemake"]
    # the target first: -q takes optional values and would swallow it; the placeholders
    # have no Snakemake metadata (code, params), so only modification times decide
    # --quiet rules reason host: the job stats table (progress) stays, parsed by job_counts
    return [*runner, "-s", str(REPO / "Snakefile"), "--directory", str(scratch), *args,
            "--quiet", "rules", "reason", "host",
            "--rerun-triggers", "mtime",
            "--configfile", str(REPO / "config" / "cfhtls.yaml"), str(scratch / "overlay.yaml")]


def timed(command: list[str]) -> dict:
    """Run ``command`` under ``/usr/bin/time -v``: wall and CPU seconds, peak RSS (MB), stdout."""
    start = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")

    def field(name: str) -> float:
        return float(re.search(rf"{re.escape(name)}: ([\d.]+)", done.stderr)[1])

    return {"wall": wall, "cpu": field("User time (seconds)") + field("System time (seconds)"),
            "rss_mb": field("Maximum resident set size (kbytes)") / 1024, "stdout": done.stdout,
            "stderr": done.stderr}


def job_counts(output: str) -> Counter:
    """Jobs per rule from the dry-run's "Job stats" table (Snakemake logs it on stderr:
    reading stdout only found nothing), from its header to its ``total`` line."""
    counts: Counter = Counter()
    in_table = False
    for line in output.splitlines():
        parts = line.split()
        if line.startswith("Job stats:"):
            in_table = True
        elif in_table and parts and parts[0] == "total":
            break
        elif in_table and len(parts) == 2 and parts[1].isdigit():
            counts[parts[0]] = int(parts[1])
    return counts


def plan_summary(scratch: Path) -> dict:
    """Products, tiles and solutions of the T0002 plan, and the astrometric list lengths."""
    lists = json.loads((scratch / "results" / "releases" / "T0002" / "T0002_lists.json").read_text())
    plan = pd.read_csv(scratch / "results" / "releases" / "T0002" / "T0002_plan.csv")
    lengths = [len(v) for v in lists["astrometric_lists"].values()]
    solution_lengths = [len(lists["astrometric_lists"][stems[0].removesuffix("_T0002")])
                        if stems[0].removesuffix("_T0002") in lists["astrometric_lists"]
                        else len(lists["astrometric_lists"][stems[0]])
                        for stems in lists["solutions"].values()]
    return {"by_mode": dict(Counter(plan["mode"])), "by_survey": dict(Counter(plan["survey"])),
            "products": len(plan), "solutions": len(lists["solutions"]),
            "astrometric_entries": sum(lengths), "solution_entries": sum(solution_lengths)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scratch", type=Path, default=None,
                        help="folder of the survey (default: a new temporary folder)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the survey")
    parser.add_argument("--profile", action="store_true", help="cProfile each dry-run")
    parser.add_argument("--targets", nargs="+", default=["qualityfits_in", "release_T0002"])
    parser.add_argument("--fraction", type=float, default=1.0,
                        help="build this fraction of the T0007 survey (every component scaled; "
                             "a survey already built is kept unless --rebuild)")
    args = parser.parse_args(argv)
    scratch = (args.scratch or Path(tempfile.mkdtemp(prefix="spica-scale-"))).resolve()
    scratch.mkdir(parents=True, exist_ok=True)
    if args.rebuild or not (scratch / "overlay.yaml").is_file():
        start = time.perf_counter()
        counts = build_survey(scratch, fraction=args.fraction)
        print(f"survey: {sum(counts.values())} exposures {counts} in {scratch} "
              f"({time.perf_counter() - start:.0f} s)")
    # sealed as build_registry would seal it with this checkout's code and tools
    print(f"step 1 seal: {seal_survey(scratch)['files']} files")
    if not (scratch / "results" / "releases" / "T0002" / "T0002_plan.csv").is_file():
        run = timed(snakemake_command(scratch, "plan_T0002", "--cores", "1"))
        print(f"plan_T0002 (run): wall {run['wall']:.1f} s, cpu {run['cpu']:.1f} s, "
              f"peak RSS {run['rss_mb']:.0f} MB")
    summary = plan_summary(scratch)
    print(f"T0002 plan: {summary['products']} products {summary['by_mode']} "
          f"{summary['by_survey']}; {summary['solutions']} SCAMP solutions; astrometric list "
          f"entries {summary['astrometric_entries']} over products, "
          f"{summary['solution_entries']} over solutions")
    print(f"{'dry-run':<16}{'jobs':>8}{'wall s':>9}{'cpu s':>9}{'ms/job':>8}{'cpu/30s':>9}"
          f"{'RSS MB':>8}{'RSS/2GB':>9}{'load':>6}")
    for target in args.targets:
        profile = scratch / f"{target}.prof" if args.profile else None
        load = os.getloadavg()[0]  # the machine is shared: the 1-minute load beside each figure
        run = timed(snakemake_command(scratch, target, "-n", profile=profile))
        load = max(load, os.getloadavg()[0])
        counts = job_counts(run["stdout"] + run["stderr"])
        jobs = sum(counts.values())
        per_job = f"{1000 * run['cpu'] / jobs:.2f}" if jobs else "-"  # 0: all up to date
        print(f"{target:<16}{jobs:>8}{run['wall']:>9.1f}{run['cpu']:>9.1f}"
              f"{per_job:>8}{run['cpu'] / TARGET_SECONDS:>9.2f}"
              f"{run['rss_mb']:>8.0f}{run['rss_mb'] / TARGET_MB:>9.2f}{load:>6.1f}")
        print("    " + ", ".join(f"{rule} {n}" for rule, n in counts.most_common()))
        if target != "qualityfits_in":  # a release-only run consults the seal (spica.seal)
            print(f"    step 1 seal before the run: {seal_survey(scratch, check=True).reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
