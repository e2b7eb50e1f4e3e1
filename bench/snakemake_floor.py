#!/usr/bin/env python
"""Snakemake's own floor for a dry-run: CPU seconds per job and per file entry.

The release dry-run (``snakemake -n release_T0002``, bench/scale.py) of a
T0007-sized survey lists ~14,800 jobs and ~288,000 input and output entries;
issue 10 section 5 asks for <= 30 s. This bench measures what Snakemake alone
(the one this script runs with) needs for a DAG of that shape, independent of
SPICA's code: it writes small synthetic workflows in a scratch folder, times
their dry-runs (CPU: user + sys of the Snakemake process and its children),
fits by least squares::

    seconds = fixed + a * jobs + b * edge_entries + c * unread_outputs + d * leaf_inputs

and applies the fit to the shape of a real dry-run. Usage::

    .venv/bin/python bench/snakemake_floor.py [--dry-run-log FILE] [--measured-cpu SECONDS]
        [--jobs N --edges E --unread-outputs U --leaf-inputs L]
        [--workdir DIR] [--repeat R] [--replicate] [--collector {default,snakefile}]

Terms, counted per job over the jobs a dry-run lists:

* an *edge entry* is an output of a listed job that another listed job reads,
  or an input of a listed job that a listed job makes (a file made once and
  read by two jobs is three entries);
* an *unread output* is an output no listed job reads;
* a *leaf input* is an input no listed job makes (an existing file: raw data,
  configuration, sealed step 1 products), counted per job that reads it.

Each synthetic workflow has ``K`` values of a wildcard ``i``: a rule ``first``
(one job per value) writes ``e`` files that ``f`` rules ``second<j>`` (one job
per value each) read, plus ``u`` outputs nobody reads; every job of ``first`` and
``second<j>`` reads ``l`` existing leaf files, each shared by ``s`` values; the
target rule ``all`` reads the ``second<j>`` outputs. The jobs are shaped like
SPICA's: one input function, ``params`` (a function), ``log``, ``benchmark``,
``conda``, ``script``, ``wildcard_constraints``, paths of ~60 characters. The
Snakemake command line is bench/scale.py's (``--quiet rules reason host
--rerun-triggers mtime``) with the workflow profile's flags that matter in a
dry-run (``--keep-going --rerun-incomplete --printshellcmds``).

``--dry-run-log FILE`` reads the text of a non-quiet ``snakemake -n`` (job
blocks ``rule NAME:``, ``localrule NAME:`` or ``checkpoint NAME:``, each with
indented ``input: a, b, ...`` and ``output: ...`` lines) and prints its counts
per rule; without it, the counts come from ``--jobs --edges --unread-outputs
--leaf-inputs``. The predicted floor is printed against the 30 s target as a
ratio (> 1: Snakemake alone misses the target) and, with ``--measured-cpu``,
as a share of the measured dry-run CPU. ``--replicate`` also builds and times
one synthetic workflow of about the shape's size (the check of the fit's
extrapolation; ~70 s CPU at T0007 scale). Snakemake runs under ``nice -n 10``;
the default design takes about 100 s of CPU (one core at a time; 3 minutes with
``--replicate`` at T0007 scale). Measured on a shared machine, a figure moves by
~10 % from one run to the next: ``--repeat 2`` keeps the least of two.
``--collector snakefile`` starts each synthetic Snakefile as SPICA's does, with
Python's full garbage collections deferred until the DAG is built
(:mod:`spica.workflow`); the default measures Snakemake under Python's own collector.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np

#: Target of issue 10 section 5, per dry-run (CPU seconds).
TARGET_SECONDS = 30.0

#: The fitted terms, in the order of the fit's columns after ``fixed``.
TERMS = ("jobs", "edge_entries", "unread_outputs", "leaf_inputs")

#: Folder of every synthetic path (SPICA's dry-run paths average ~68 characters).
PREFIX = "results/releases/T0002/synthetic"


class DryRunLogError(ValueError):
    """The dry-run log lists no job (not the text of a non-quiet ``snakemake -n``)."""


@dataclass(frozen=True)
class Design:
    """One synthetic workflow: ``values`` wildcard values, ``edges`` files per
    ``first`` job read by each of ``fanout`` rules ``second<j>``, ``unread``
    outputs per job nobody reads, ``leaves`` leaf inputs per job, each shared by
    ``share`` values."""

    values: int
    edges: int = 1
    fanout: int = 1
    unread: int = 0
    leaves: int = 0
    share: int = 1

    @property
    def name(self) -> str:
        return (f"K{self.values}_e{self.edges}_f{self.fanout}_u{self.unread}"
                f"_l{self.leaves}_s{self.share}")

    def counts(self) -> dict[str, int]:
        """The fit's terms for this workflow (``all`` included)."""
        k, e, f = self.values, self.edges, self.fanout
        return {
            "jobs": k * (1 + f) + 1,
            # first's e outputs and f * e inputs of them; second<j>'s output and all's input
            "edge_entries": k * e * (1 + f) + 2 * k * f,
            "unread_outputs": k * self.unread * (1 + f),
            "leaf_inputs": k * self.leaves * (1 + f),
        }


#: The default design: every term varied, 2,000 to 8,000 jobs.
DEFAULT_DESIGN = (
    Design(1000),
    Design(4000),
    Design(2000, edges=10),
    Design(2000, unread=8),
    Design(2000, leaves=8),
    Design(1500, edges=4, fanout=2, unread=2, leaves=4, share=4),
    Design(3000, edges=3, unread=3, leaves=3),
)


# --- synthetic workflows --------------------------------------------------------------

def _rule_text(name: str, design: Design, inputs: str, outputs: list[str]) -> str:
    """One synthetic rule with SPICA's directives (input function, params, log, ...)."""
    listed = "".join(f"        {path!r},\n" for path in outputs)
    return (
        f"rule {name}:\n"
        f"    input:\n        {inputs}\n"
        f"    output:\n{listed}"
        f"    params:\n        x=lambda w: w.i,\n"
        f"    wildcard_constraints:\n        i=r\"\\d+\",\n"
        f"    log:\n        \"logs/{PREFIX}/{{i}}/{name}.log\",\n"
        f"    benchmark:\n        \"benchmarks/{PREFIX}/{{i}}/{name}.tsv\",\n"
        f"    conda:\n        \"env.yaml\"\n"
        f"    script:\n        \"s.py\"\n\n\n"
    )


#: ``--collector``: what a synthetic Snakefile does with Python's garbage collector first.
COLLECTORS = {
    "default": "",
    # SPICA's Snakefile: full collections wait until the DAG is built (spica.workflow)
    "snakefile": "from spica.workflow import defer_full_collections\n_COLLECTOR = defer_full_collections()\n\n",
}


def snakefile_text(design: Design, collector: str = "default") -> str:
    """The Snakefile of a synthetic workflow (``collector``: a key of :data:`COLLECTORS`)."""
    edge = [f"{PREFIX}/{{i}}/first_{{i}}_edge{k}.dat" for k in range(design.edges)]
    text = COLLECTORS[collector] + (
        f"K, L, S = {design.values}, {design.leaves}, {design.share}\n"
        f"EDGES = {edge!r}\n\n\n"
        "def leaves(rule, i):\n"
        "    g = int(i) // S\n"
        "    return [f'leaf/{rule}/{g}/{rule}_{g}_leaf{k}.dat' for k in range(L)]\n\n\n"
        "def first_input(wildcards):\n"
        "    return leaves('first', wildcards.i)\n\n\n"
        "def second_input(name):\n"
        "    def inputs(wildcards):\n"
        "        return [p.format(i=wildcards.i) for p in EDGES] + leaves(name, wildcards.i)\n"
        "    return inputs\n\n\n"
        "rule all:\n"
        "    input:\n"
        f"        [f'{PREFIX}/{{i}}/second{{j}}_{{i}}.dat'"
        f" for j in range({design.fanout}) for i in range(K)],\n\n\n"
    )
    unread = [f"{PREFIX}/{{i}}/{{rule}}_{{i}}_unread{k}.dat" for k in range(design.unread)]
    text += _rule_text("first", design, "first_input",
                       edge + [p.replace("{rule}", "first") for p in unread])
    for j in range(design.fanout):
        name = f"second{j}"
        text += _rule_text(name, design, f"second_input({name!r})",
                           [f"{PREFIX}/{{i}}/{name}_{{i}}.dat"]
                           + [p.replace("{rule}", name) for p in unread])
    return text


def build_workflow(folder: Path, design: Design, collector: str = "default") -> Path:
    """Write the Snakefile, its script, conda file and existing leaf files into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Snakefile").write_text(snakefile_text(design, collector))
    (folder / "s.py").write_text("pass\n")
    (folder / "env.yaml").write_text("channels: [conda-forge]\ndependencies: [python]\n")
    groups = range((design.values + design.share - 1) // design.share)
    for rule in ["first"] + [f"second{j}" for j in range(design.fanout)]:
        for g in groups if design.leaves else ():
            leaf = folder / "leaf" / rule / str(g)
            leaf.mkdir(parents=True, exist_ok=True)
            for k in range(design.leaves):
                (leaf / f"{rule}_{g}_leaf{k}.dat").touch()
    return folder / "Snakefile"


def dry_run_cpu(snakefile: Path) -> float:
    """CPU seconds (user + sys, children included) of a quiet dry-run of ``all``."""
    command = ["nice", "-n", "10", sys.executable, "-m", "snakemake", "-s", str(snakefile),
               "all", "-d", str(snakefile.parent), "-n", "--cores", "1",
               "--quiet", "rules", "reason", "host", "--rerun-triggers", "mtime",
               "--keep-going", "--rerun-incomplete", "--printshellcmds"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def time_design(design: Design, scratch: Path, repeat: int = 1, collector: str = "default") -> float:
    """Least CPU seconds of ``repeat`` dry-runs of a synthetic workflow, built in ``scratch``."""
    snakefile = build_workflow(scratch / f"{design.name}_{collector}", design, collector)
    return min(dry_run_cpu(snakefile) for _ in range(repeat))


# --- the fit ------------------------------------------------------------------------

def fit(rows: list[dict[str, float]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares ``fixed`` and per-term seconds of ``rows`` (each: the terms and
    ``cpu``). Returns the coefficients, their standard errors (NaN without a spare
    row) and the residuals (seconds)."""
    x = np.array([[1.0, *(row[term] for term in TERMS)] for row in rows])
    y = np.array([row["cpu"] for row in rows])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    residuals = y - x @ coef
    spare = len(rows) - x.shape[1]
    if spare > 0:
        sigma2 = float(residuals @ residuals) / spare
        errors = np.sqrt(np.diag(sigma2 * np.linalg.pinv(x.T @ x)))
    else:
        errors = np.full(x.shape[1], np.nan)
    return coef, errors, residuals


def predict(coef: np.ndarray, counts: dict[str, int]) -> dict[str, float]:
    """Seconds per term (``fixed`` included) for ``counts``."""
    return {"fixed": float(coef[0]),
            **{term: float(c) * counts[term] for term, c in zip(TERMS, coef[1:])}}


# --- the shape of a real dry-run -----------------------------------------------------

_JOB = re.compile(r"^(?:rule|localrule|checkpoint) (\w+):\s*$")
_FILES = re.compile(r"^\s+(input|output): (.*)$")


def parse_dry_run(text: str) -> list[dict]:
    """The jobs of a non-quiet dry-run: ``{"rule", "input", "output"}`` each (lists)."""
    jobs: list[dict] = []
    job = None
    for line in text.splitlines():
        if match := _JOB.match(line):
            job = {"rule": match[1], "input": [], "output": []}
            jobs.append(job)
        elif job is not None and (match := _FILES.match(line)):
            job[match[1]] = match[2].split(", ")
        elif not line.startswith((" ", "\t")):
            job = None  # a block ends at the first line that is not indented
    if not jobs:
        raise DryRunLogError("no job block (rule/localrule/checkpoint NAME:) in the log: "
                             "give the text of a non-quiet `snakemake -n`")
    return jobs


def shape_counts(jobs: list[dict]) -> dict[str, Counter]:
    """Per rule (and ``total``): jobs, input and output entries, and the fit's terms."""
    made = {path for job in jobs for path in job["output"]}
    read = {path for job in jobs for path in job["input"]}
    counts: dict[str, Counter] = defaultdict(Counter)
    for job in jobs:
        c = counts[job["rule"]]
        c["jobs"] += 1
        c["inputs"] += len(job["input"])
        c["outputs"] += len(job["output"])
        edge_in = sum(path in made for path in job["input"])
        read_out = sum(path in read for path in job["output"])
        c["edge_entries"] += edge_in + read_out
        c["unread_outputs"] += len(job["output"]) - read_out
        c["leaf_inputs"] += len(job["input"]) - edge_in
    counts["total"] = sum(counts.values(), Counter())
    counts["total"]["distinct_leaf_files"] = len(read - made)
    reads = Counter(path for job in jobs for path in job["input"])
    counts["total"]["files_read_twice_or_more"] = sum(n > 1 for path, n in reads.items()
                                                      if path in made)
    return counts


def replica(counts: dict[str, int]) -> Design:
    """A synthetic workflow of about ``counts``' size (one ``second`` rule)."""
    k = max(1, (counts["jobs"] - 1) // 2)
    per_job = 2 * k
    return Design(k, edges=max(1, round(counts["edge_entries"] / per_job - 1)),
                  unread=round(counts["unread_outputs"] / per_job),
                  leaves=round(counts["leaf_inputs"] / per_job))


# --- printing ------------------------------------------------------------------------

def print_design(rows: list[dict], residuals: np.ndarray) -> None:
    print(f"{'design':<28}{'jobs':>7}{'edges':>8}{'unread':>8}{'leaves':>8}"
          f"{'cpu s':>8}{'fit s':>8}{'load':>6}")
    for row, residual in zip(rows, residuals):
        print(f"{row['name']:<28}{row['jobs']:>7}{row['edge_entries']:>8}"
              f"{row['unread_outputs']:>8}{row['leaf_inputs']:>8}{row['cpu']:>8.1f}"
              f"{row['cpu'] - residual:>8.1f}{row['load']:>6.1f}")


def print_fit(coef: np.ndarray, errors: np.ndarray) -> None:
    print(f"fit: fixed {coef[0]:.2f} +- {errors[0]:.2f} s; per unit (ms):")
    for term, c, e in zip(TERMS, coef[1:], errors[1:]):
        print(f"    {term:<16}{1000 * c:>8.3f} +- {1000 * e:.3f}")


def print_shape(counts: dict[str, Counter]) -> None:
    columns = ("jobs", "inputs", "outputs", "edge_entries", "unread_outputs", "leaf_inputs")
    print(f"{'rule':<28}" + "".join(f"{c.split('_')[0]:>9}" for c in columns))
    for rule, c in sorted(counts.items(), key=lambda item: (item[0] == "total", -item[1]["jobs"])):
        print(f"{rule:<28}" + "".join(f"{c[column]:>9}" for column in columns))
    total = counts["total"]
    print(f"    {total['inputs'] + total['outputs']} input+output entries; "
          f"{total['distinct_leaf_files']} distinct leaf files; "
          f"{total['files_read_twice_or_more']} made files read 2+ times")


def print_prediction(terms: dict[str, float], measured: float | None) -> float:
    floor = sum(terms.values())
    print("predicted Snakemake floor: " + ", ".join(f"{k} {v:.1f} s" for k, v in terms.items()))
    print(f"{'floor s':>9}{'target s':>10}{'floor/30s':>11}" + (f"{'measured s':>12}{'share':>8}"
                                                                  if measured else ""))
    line = f"{floor:>9.1f}{TARGET_SECONDS:>10.0f}{floor / TARGET_SECONDS:>11.2f}"
    if measured:
        line += f"{measured:>12.1f}{floor / measured:>8.0%}"
    print(line)
    return floor


# --- main ---------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run-log", type=Path, default=None,
                        help="text of a non-quiet `snakemake -n` (its shape is predicted)")
    parser.add_argument("--jobs", type=int, default=None, help="shape: jobs (without a log)")
    parser.add_argument("--edges", type=int, default=0, help="shape: edge entries")
    parser.add_argument("--unread-outputs", type=int, default=0, help="shape: unread outputs")
    parser.add_argument("--leaf-inputs", type=int, default=0, help="shape: leaf input entries")
    parser.add_argument("--measured-cpu", type=float, default=None,
                        help="the real dry-run's CPU seconds (prints the floor's share)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="scratch folder of the synthetic workflows (default: a temporary "
                             "folder, removed afterwards)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="dry-runs per design (the least CPU is kept)")
    parser.add_argument("--replicate", action="store_true",
                        help="also time one synthetic workflow of about the shape's size")
    parser.add_argument("--collector", choices=sorted(COLLECTORS), default="default",
                        help="Python's garbage collector in the synthetic Snakefiles: "
                             "Python's default, or SPICA's Snakefile's (full collections "
                             "wait until the DAG is built)")
    args = parser.parse_args(argv)
    if args.dry_run_log and args.jobs is not None:
        parser.error("give --dry-run-log or --jobs, not both")
    if args.dry_run_log and not args.dry_run_log.is_file():
        parser.error(f"--dry-run-log {args.dry_run_log}: no such file")
    if not args.dry_run_log and args.jobs is None and (args.edges or args.unread_outputs
                                                       or args.leaf_inputs or args.replicate):
        parser.error("--edges, --unread-outputs, --leaf-inputs and --replicate need --jobs "
                     "or --dry-run-log")
    if min(args.edges, args.unread_outputs, args.leaf_inputs, args.jobs or 0, args.repeat - 1) < 0:
        parser.error("counts must be >= 0 and --repeat >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"Snakemake {version('snakemake')} ({sys.executable}), Python "
          f"{sys.version.split()[0]}, {os.cpu_count()} cores")
    shape = None
    if args.dry_run_log:
        try:
            counts = shape_counts(parse_dry_run(args.dry_run_log.read_text()))
        except DryRunLogError as error:
            print(f"{args.dry_run_log}: {error}", file=sys.stderr)
            return 2
        print(f"shape of {args.dry_run_log}:")
        print_shape(counts)
        shape = {term: counts["total"][term] for term in TERMS}
    elif args.jobs is not None:
        shape = {"jobs": args.jobs, "edge_entries": args.edges,
                 "unread_outputs": args.unread_outputs, "leaf_inputs": args.leaf_inputs}
    scratch = (args.workdir or Path(tempfile.mkdtemp(prefix="spica-floor-"))).resolve()
    try:
        rows = []
        for design in DEFAULT_DESIGN:
            load = os.getloadavg()[0]
            cpu = time_design(design, scratch, args.repeat, args.collector)
            rows.append({"name": design.name, **design.counts(), "cpu": cpu,
                         "load": max(load, os.getloadavg()[0])})
        coef, errors, residuals = fit(rows)
        print(f"design: {len(rows)} dry-runs, {sum(r['cpu'] for r in rows):.0f} s CPU "
              f"(least of {args.repeat} each; load: 1-minute average, the machine is shared; "
              f"collector: {args.collector})")
        print_design(rows, residuals)
        print_fit(coef, errors)
        if shape is not None:
            print_prediction(predict(coef, shape), args.measured_cpu)
            if args.replicate:
                design = replica(shape)
                cpu = time_design(design, scratch, collector=args.collector)
                predicted = sum(predict(coef, design.counts()).values())
                print(f"replica {design.name} {design.counts()}: measured {cpu:.1f} s, "
                      f"fit {predicted:.1f} s ({cpu / predicted:.2f})")
    finally:
        if args.workdir is None:
            shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
