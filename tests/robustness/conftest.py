"""Nothing lost (issue 11): crashes, a full disk, two operators, on a tiny survey.

The small demo survey trimmed to the two D3 r exposures (:data:`KEEP`, as
``tests/cluster`` does): release T0002 then plans one stack, its chi-squared
tile, catalogue, dust map, summary and provenance; the whole release takes
about 2 minutes on 2 cores. Session fixtures:

* :func:`tiny_inputs` — the trimmed survey's inputs (``demo/``), written once;
* :func:`reference` — one uninterrupted run of ``release_T0002`` on them,
  started in the background when first asked for (the crash sequence runs
  beside it) and shared by every comparison of this folder.

:class:`Run` starts the workflow in its own process group, finds its jobs and
tools among its descendants (psutil) and kills them.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest

from spica import paths
from tests.conftest import REPO, require_binary, small_survey

__all__ = ["KEEP", "STEM", "TARGET", "TRIGGERS", "Run", "copy_inputs", "dry_run", "dry_run_jobs",
           "held", "incomplete_outputs", "snakemake"]

CONFIG = REPO / "config" / "config.yaml"
#: Reruns the crash and lock tests allow: outputs missing, incomplete (a job cut short) or
#: older than their inputs; not a changed code hash, so that another developer's edit of
#: ``src/spica`` in the same checkout during the test does not rerun every job.
TRIGGERS = ("--rerun-triggers", "mtime")
#: The exposures kept from the small survey: the two D3 r exposures of grade A/B.
KEEP = (751000, 751008)
#: Their release stack in T0002.
STEM = "CFHTLS_D_r_141927+524056_T0002"
TARGET = "release_T0002"
TOOLS = (("source-extractor", "sex"), ("psfex",), ("weightwatcher", "ww"), ("scamp",),
         ("SWarp", "swarp"))


def _command(*args: str, overrides: Path | None = None) -> list[str]:
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "2", *args]
    return command + (["--configfile", str(CONFIG), str(overrides)] if overrides else [])


def snakemake(workdir: Path, *args: str, overrides: Path | None = None) -> subprocess.CompletedProcess:
    """Run the workflow in ``workdir`` and wait (``overrides``: a config overlay)."""
    return subprocess.run(_command(*args, overrides=overrides), cwd=workdir, capture_output=True,
                          text=True, check=False)


def dry_run(workdir: Path, *targets: str) -> tuple[dict[str, int], str]:
    """Jobs per rule that ``snakemake -n`` would run (empty: nothing to do), and its text."""
    dry = snakemake(workdir, "-n", *(targets or (TARGET,)))
    text = dry.stdout + dry.stderr
    assert dry.returncode == 0, text[-3000:]
    if "Job stats:" not in text:
        return {}, text
    block = text.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    counts = {}
    for line in block.splitlines():
        words = line.split()
        if len(words) == 2 and words[1].isdigit() and words[0] not in ("total", "job"):
            counts[words[0]] = int(words[1])
    return counts, text


def dry_run_jobs(workdir: Path, *targets: str) -> dict[str, int]:
    """Jobs per rule that ``snakemake -n`` would run (empty: nothing to do)."""
    return dry_run(workdir, *targets)[0]


def incomplete_outputs(workdir: Path) -> set[str]:
    """Outputs Snakemake has marked incomplete (a job started, never finished): the
    markers of ``.snakemake/incomplete/`` are the paths, URL-safe base64 encoded (cut
    into ``@``-prefixed folders when longer than a file name may be)."""
    folder = workdir / ".snakemake" / "incomplete"
    found = set()
    for marker in folder.rglob("*"):
        if marker.is_file():
            parts = marker.relative_to(folder).parts
            encoded = "".join(part.removeprefix("@") for part in parts)
            found.add(base64.urlsafe_b64decode(encoded).decode())
    return found


class Run:
    """The workflow started in the background in its own process group (a session).

    Its output goes to ``<workdir>-<name>.log`` beside the work directory.
    """

    def __init__(self, workdir: Path, *args: str, name: str = "run") -> None:
        self.workdir = workdir
        self.log = workdir.parent / f"{workdir.name}-{name}.log"
        self.started = time.monotonic()
        with open(self.log, "w") as handle:
            self.process = subprocess.Popen(_command(*args), cwd=workdir, stdout=handle,
                                            stderr=subprocess.STDOUT, text=True,
                                            start_new_session=True)

    def descendants(self) -> list[psutil.Process]:
        """The processes the run started (jobs, their interpreters, the tools)."""
        try:
            return psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def wait_for(self, matches: Callable[[psutil.Process], bool], *, timeout: float = 240.0,
                 after: float = 0.0) -> psutil.Process:
        """The first descendant ``matches`` accepts, once it has lived ``after`` seconds.

        Fails if the run ends (or ``timeout`` passes) first.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for child in self.descendants():
                try:
                    if matches(child) and time.time() - child.create_time() >= after:
                        return child
                except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
                    continue
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        raise AssertionError(f"no such process during the run (exit {self.process.poll()}):\n"
                             f"{self.output()[-3000:]}")

    def kill_group(self) -> None:
        """SIGKILL to the run's process group (Snakemake, its jobs, their tools)."""
        children = self.descendants()
        os.killpg(self.process.pid, signal.SIGKILL)
        for child in children:  # anything that left the group dies too
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        self.process.wait()
        psutil.wait_procs(children, timeout=10)

    def wait(self, timeout: float = 300.0) -> int:
        """Wait for the run to end; its exit status."""
        return self.process.wait(timeout=timeout)

    def output(self) -> str:
        """What the run printed so far."""
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        """Kill the run if it still goes (a failed test must not leave it behind)."""
        if self.process.poll() is None:
            self.kill_group()


def script_job(rule: str) -> Callable[[psutil.Process], bool]:
    """Matcher of the interpreter running ``scripts/<rule>.py`` (Snakemake's copy
    ``.snakemake/scripts/tmpXXXX.<rule>.py``)."""
    def matches(process: psutil.Process) -> bool:
        return any(word.endswith(f".{rule}.py") or word.endswith(f"/{rule}.py")
                   for word in process.cmdline())
    return matches


def tool_process(*names: str) -> Callable[[psutil.Process], bool]:
    """Matcher of a tool running a job, by its binary's name and its configuration
    argument (``-c``, which every run of a job passes): not the ``--version`` query of
    Snakemake's DAG building (spica.tools), which holds no lock yet. "Not ``--version``"
    was not enough: a query that has exited and is not yet reaped (a zombie), or one
    caught inside ``exec``, has the tool's name and no command line (CI, stop 25: SWarp
    was gone when the test resumed it; run again here, the query's parent, Snakemake
    itself, was held)."""
    def matches(process: psutil.Process) -> bool:
        return process.name() in names and "-c" in process.cmdline()
    return matches


@contextmanager
def held(tool: psutil.Process) -> Iterator[None]:
    """SIGSTOP to a running tool and to the job process that started it; SIGCONT after.

    Stopping the tool alone is racy: a tool found as it exits is a zombie, which takes
    SIGSTOP without stopping; its job reaps it and goes on, and SIGCONT then finds no
    process (``NoSuchProcess``, as CI met it at stop 25 with a zombie ``--version`` query
    that :func:`tool_process` now refuses). With the job's own process stopped first,
    nothing reaps the tool or moves past it while it is held.
    """
    stopped = []
    try:
        job = tool.parent()
    except psutil.NoSuchProcess:
        job = None
    for process in (job, tool):
        if process is None:
            continue
        try:
            process.suspend()
            stopped.append(process)
        except psutil.NoSuchProcess:
            pass
    assert job in stopped, f"the job running {tool} ended before it could be held"
    try:
        yield
    finally:
        for process in reversed(stopped):
            try:
                process.resume()
            except psutil.NoSuchProcess:  # the tool was a zombie: its job reaps it now
                pass


def copy_inputs(source: Path, workdir: Path) -> Path:
    """A fresh work directory holding the survey's inputs (``demo/``) only."""
    workdir.mkdir(parents=True)
    shutil.copytree(source / "demo", workdir / "demo")
    return workdir


def product(workdir: Path, key: str, stem: str = STEM) -> Path:
    """A file ``key`` of the D3 r stack in ``workdir``."""
    return workdir / paths.product_path("results", "T0002", stem, key)


@pytest.fixture(scope="session")
def tiny_inputs(tmp_path_factory) -> Path:
    """The small demo survey with only the exposures of :data:`KEEP` incoming."""
    for tool in TOOLS:
        require_binary(*tool)
    root = tmp_path_factory.mktemp("robust-inputs")
    small_survey(root, keep=KEEP)
    for folder in (root / "demo").rglob("*"):
        if folder.is_dir():
            folder.chmod(0o755)  # copies of the read-only tree can be removed
    return root


class Reference:
    """The uninterrupted run, going on in the background; :meth:`workdir` waits for it."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.seconds: float | None = None

    def workdir(self) -> Path:
        """The finished run's work directory (fails with its log if it failed)."""
        status = self.run.wait()
        if self.seconds is None:
            self.seconds = time.monotonic() - self.run.started
        assert status == 0, f"reference run failed:\n{self.run.output()[-3000:]}"
        return self.run.workdir


@pytest.fixture(scope="session")
def reference(tiny_inputs: Path, tmp_path_factory) -> Reference:
    """``release_T0002`` on the tiny survey, uninterrupted, started in the background."""
    workdir = copy_inputs(tiny_inputs, tmp_path_factory.mktemp("robust-reference") / "run")
    run = Run(workdir, TARGET, name="reference")
    yield Reference(run)
    run.stop()
