"""Every command the README shows works as typed (issue 10, section 1).

The commands are read from the README itself: every line of its ```bash
blocks and every inline code span that starts with ``bin/spica``,
``snakemake`` or ``.venv/bin/``. Each one is matched by exactly one entry of
:data:`CHECKS`, which says how it is checked, or why it is not run here; a
command no entry matches fails :func:`test_every_readme_command_is_checked`,
so a new README command needs a check (or a reason) before it can land.

They run "from the repository root" of a scratch checkout: a folder of links
to this checkout's files (``bin``, ``.venv``, ``Snakefile``, ``config``...),
so that ``bin/spica`` (which works in its own root) and a bare ``snakemake``
(the project's, ``.venv/bin`` first on ``PATH``: the README's "or activate
``.venv``") write nothing into this checkout. ``XDG_CONFIG_HOME`` points into
the scratch folder: ``bin/spica install`` links its Snakemake profile there.

``bin/spica demo -n``, the README's first command with its dry-run, is run
as typed: it simulates the full demo survey (29 exposures, about 15 s of CPU
and 330 MB) and dry-runs step 1 and release T0002 on it, about 40 s in all,
the price of checking what a new user types first; the other Snakemake
commands are then dry-run (``-n`` placed right after ``snakemake``) on that
survey, a few seconds each. ``bin/spica`` installs what is missing before it
runs: when something is missing, the tests skip rather than install (the
README's test command, ``bin/spica test``, has installed it already).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

README = REPO / "README.md"

#: What a scratch checkout links to (the rest of a checkout is not needed to run).
CHECKOUT = ("bin", ".venv", "pyproject.toml", "Snakefile", "rules", "scripts", "config", "envs",
            "profiles", "bench", "tests", "src")


# ------------------------------------------------------------------ reading the README
def readme_commands(text: str) -> list[str]:
    """The shell commands of a README: ```bash lines (comments dropped) and inline
    spans starting with ``bin/spica``, ``snakemake`` or ``.venv/bin/``, in order, once each."""
    found: list[str] = []
    blocks = re.findall(r"^```bash\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    for block in blocks:
        for line in block.splitlines():
            command = re.sub(r"\s+#.*$", "", line).strip()
            if command and not command.startswith("#"):
                found.append(command)
    prose = re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)
    for span in re.findall(r"`([^`\n]+)`", prose):
        if re.match(r"(bin/spica|snakemake)(\s|$)|\.venv/bin/\S", span):
            found.append(span.strip())
    return list(dict.fromkeys(found))


def dry_run(command: str) -> str:
    """``command`` with ``-n`` right after its ``snakemake`` word (before any option that
    takes several values, such as ``--configfile``), or after ``bin/spica demo``."""
    if re.search(r"(^|\s)(-n|--dry-run|--dryrun)(\s|$)", command):
        return command
    if re.match(r"bin/spica demo(\s|$)", command):
        return command + " -n"
    return re.sub(r"(^|\s)((?:\S*/)?snakemake)(\s|$)", r"\1\2 -n\3", command, count=1)


# ------------------------------------------------------------------ how each is checked
@dataclass(frozen=True)
class Check:
    """How README commands matching ``pattern`` (a regex, searched) are checked.

    ``how``: ``dry-run`` (run with ``-n`` placed by :func:`dry_run`), ``collect``
    (a ``bin/spica test`` selection: run with ``--collect-only``, at least one
    test), ``run`` (run as typed), ``compare`` (placeholders given two trees),
    ``options`` (a bench script: its ``--help`` lists every option used),
    ``extra`` (a pip extra: declared in pyproject.toml and installed), ``test``
    (done by the named test), ``skip`` (not run here: ``why``).
    """

    pattern: str
    how: str
    why: str


CHECKS: tuple[Check, ...] = (
    Check(r"^bin/spica demo -n$", "dry-run", "the first README command, dry-run"),
    Check(r"^bin/spica demo$", "skip",
          "the full demo run (about 10 min); `bin/spica demo -n` is run, and tests/e2e runs the "
          "same workflow on the small survey"),
    Check(r"^bin/spica test$", "skip", "the command that runs this test (.ci/run runs it)"),
    Check(r"^bin/spica test \S", "collect", "a pytest selection"),
    Check(r"^bin/spica (install|profile)$", "run",
          "installs what is missing (a no-op once installed) / links the profile (into the "
          "scratch XDG_CONFIG_HOME)"),
    Check(r"^(sudo )?(sinfo|squeue|scancel|sacct|sbatch|srun|munged|slurmctld|slurmd)\b", "skip",
          "a SLURM command: tests/cluster/ starts a single-node SLURM and uses it"),
    Check(r"^bin/spica snakemake ARGS$", "skip",
          "ARGS is a placeholder; the concrete `bin/spica snakemake` commands are run"),
    Check(r"^snakemake --use-conda", "skip", "the conda route (see mamba)"),
    # site settings: a real profile install and a real SLURM (tests/cluster/)
    Check(r"--profile (cluster|profiles/cluster)\b", "test", "tests/cluster/test_profiles.py"),
    Check(r"^\.venv/bin/python -c \"from spica\.monitor import in_progress;", "run",
          "reads the job events (tests/monitor runs a workflow and reads them while it runs)"),
    Check(r"^bin/spica watch$", "skip",
          "polls until interrupted; the one-poll form `bin/spica watch --once` is tested"),
    Check(r"^bin/spica (watch --once|transfer (stage|push|verify|purge|status))$", "test",
          "tests/transfer/test_end_to_end.py"),  # the same commands (python -m spica.transfer) on a scratch folder
    Check(r"^bin/spica web adduser \S+ --role (staff|pi)\b", "test",
          "tests/web/test_views.py"),  # asks for a password; the suite's users are made with --password-env
    Check(r"^bin/spica web ARGS$", "skip", "ARGS is a placeholder"),
    Check(r"^bin/spica web createsuperuser$", "skip", "Django's own interactive command"),
    Check(r"^bin/spica serve$", "skip",
          "runs until interrupted; tests/web/test_browser.py starts the production form and stops it"),
    Check(r"^bin/spica serve --production\b", "test", "tests/web/test_browser.py"),
    Check(r"^\.venv/bin/python -m tests\.web\.screenshots\b", "skip",
          "needs a finished survey and chromium; docs/screenshots/ were made with it"),
    Check(r"^bin/spica snakemake --unlock$", "test",
          "tests/robustness/test_crash.py"),  # unlocks after each SIGKILL of Snakemake, then reruns
    Check(r"^(bin/spica )?snakemake --report \S+\.zip report_T\d{4}$", "test",
          "tests/e2e/test_report.py"),  # a report needs a finished release (every marked plot made)
    Check(r"^(bin/spica )?snakemake images_V\d{4}\b", "test",
          "tests/e2e/test_product_grades.py"),  # its jobs appear once plan_images ran (a dry-run stops there)
    Check(r"^(bin/spica )?snakemake\b", "dry-run", "a Snakemake run"),
    Check(r"^cat results/releases/T0002/T0002_pending\.txt$", "test",
          "tests/e2e/test_release.py"),  # the file plan_T0002 writes, which a dry-run does not
    Check(r"^\.venv/bin/python -m tests\.e2e\.compare_products BEFORE AFTER$", "compare",
          "BEFORE and AFTER are placeholders"),
    Check(r"^bin/spica skywatcher\b", "test",
          "tests/skywatcher/test_cli.py"),  # every option on a synthetic survey (no demo run here)
    Check(r"^\.venv/bin/spica-demo --config config/config\.yaml config/demo-fullsize\.yaml\b", "test",
          "tests/demo/test_demo.py"),  # the overlay merge (the full-size simulation itself: bench/fullsize.py)
    Check(r"^\.venv/bin/python bench/\S+\.py", "options",
          "a bench needs a finished demo (`--workdir .`) or runs step 1 (minutes); bench/ is "
          "measurement, not test"),
    Check(r"^\.venv/bin/pip install -e '\.\[(\w+)\]'$", "extra",
          "pip would reach the package index"),
    Check(r"^(mamba |pip install -e \.$)", "skip",
          "the conda route: no conda or mamba here and no conda channel is reachable from these "
          "machines; tests/test_envs.py checks the conda environments statically"),
)


def check_of(command: str) -> list[Check]:
    """The entries of :data:`CHECKS` matching ``command`` (the first one decides)."""
    return [check for check in CHECKS if re.search(check.pattern, command)]


COMMANDS = readme_commands(README.read_text())


def test_readme_commands_are_found():
    # the reader itself: a change of README layout must not silently empty the list
    assert "bin/spica demo" in COMMANDS and "bin/spica snakemake -n release_T0002" in COMMANDS
    assert "bin/spica snakemake plan_T0002" in COMMANDS  # its comment is dropped
    assert "bin/spica test -m \"not tools\"" in COMMANDS
    assert not [c for c in COMMANDS if c.startswith(("#", "|"))]
    assert dry_run("snakemake qualityfits_in --configfile my.yaml") == \
        "snakemake -n qualityfits_in --configfile my.yaml"
    assert dry_run("bin/spica snakemake plan_T0002") == "bin/spica snakemake -n plan_T0002"
    assert dry_run("bin/spica demo") == "bin/spica demo -n"


def test_every_readme_command_is_checked():
    unchecked = [command for command in COMMANDS if not check_of(command)]
    assert not unchecked, f"README commands with no check in tests/test_readme.py: {unchecked}"


# ------------------------------------------------------------------ a scratch checkout
def _install_is_a_noop() -> list[str]:
    """What ``bin/spica install`` would install first (its binaries, the venv stamp)."""
    script = (REPO / "bin" / "spica").read_text()
    binaries = re.search(r"^BINARIES=\((.*?)\)", script, flags=re.MULTILINE | re.DOTALL)
    missing = [name for name in (binaries[1].split() if binaries else [])
               if not shutil.which(name) and not Path("/usr/sbin", name).exists()]
    stamp = REPO / ".venv" / ".spica-deps"  # bin/spica's: the first 16 hex of pyproject's SHA-256
    want = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()[:16]
    if not stamp.is_file() or stamp.read_text().strip() != want:
        missing.append(".venv")  # a changed pyproject.toml: the checkout would reinstall into it
    return missing


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Iterator[dict]:
    """A scratch checkout where ``bin/spica demo -n`` has run (the full demo survey is there)."""
    missing = _install_is_a_noop()
    if missing:
        pytest.skip(f"bin/spica would install {missing} first: run `bin/spica install`")
    root = tmp_path_factory.mktemp("checkout")
    for name in CHECKOUT:
        (root / name).symlink_to(REPO / name)
    env = {**os.environ, "XDG_CONFIG_HOME": str(root / ".config"),
           "PATH": f"{root / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)
    # `snakemake qualityfits_in --configfile my.yaml`: the README says to copy the
    # real-data overlay and point its inputs at the data (here the demo's)
    overlay = yaml.safe_load((REPO / "config" / "cfhtls.yaml").read_text())
    overlay["inputs"] = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["inputs"]
    (root / "my.yaml").write_text(yaml.safe_dump(overlay, sort_keys=False))
    checkout = {"root": root, "env": env}
    checkout["demo"] = _shell(checkout, "bin/spica demo -n")
    yield checkout
    demo = root / "demo"  # 330 MB of read-only files: not left behind in the temporary folder
    if demo.is_dir():
        for folder in [demo, *(p for p in demo.rglob("*") if p.is_dir())]:
            folder.chmod(0o755)
        shutil.rmtree(demo)


def _shell(checkout: dict, command: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", command], cwd=checkout["root"], env=checkout["env"],
                          capture_output=True, text=True, check=False, timeout=600)


def _failure(run: subprocess.CompletedProcess) -> str:
    return f"exit {run.returncode}:\n{(run.stdout + run.stderr)[-3000:]}"


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_works_as_typed(command, checkout):
    found = check_of(command)
    if not found:
        pytest.fail("no check: see test_every_readme_command_is_checked")
    check = found[0]
    if check.how == "skip":
        pytest.skip(f"not run here: {check.why}")
    if check.how == "test":
        target = REPO / check.why
        assert target.is_file(), f"{command!r} is checked by {check.why}, which does not exist"
        return
    if check.how == "dry-run":
        typed = dry_run(command)
        run = checkout["demo"] if typed == "bin/spica demo -n" else _shell(checkout, typed)
        assert run.returncode == 0, _failure(run)
        output = run.stdout + run.stderr
        assert "This was a dry-run" in output or "Nothing to be done" in output, output[-2000:]
        if typed == "bin/spica demo -n":  # the demo survey is there and its jobs are listed
            assert len(list((checkout["root"] / "demo" / "raw" / "exposures").glob("*.fits"))) > 20
            assert re.search(r"^check_exposure\s+\d+$", output, flags=re.MULTILINE), output[-2000:]
        return
    if check.how == "collect":
        run = _shell(checkout, f"{command} --collect-only -q -p no:cacheprovider")
        assert run.returncode == 0, _failure(run)
        assert re.search(r"^\d+(/\d+)? tests? collected", run.stdout, flags=re.MULTILINE), run.stdout[-1000:]
        return
    if check.how == "run":
        run = _shell(checkout, command)
        assert run.returncode == 0, _failure(run)
        return
    if check.how == "compare":
        for tree in ("before", "after"):
            (checkout["root"] / tree / "results").mkdir(parents=True, exist_ok=True)
            (checkout["root"] / tree / "results" / "inventory.csv").write_text("expnum,status\n1,ok\n")
        run = _shell(checkout, command.replace("BEFORE", "before").replace("AFTER", "after"))
        assert run.returncode == 0 and "OK: 0 product(s) differ" in run.stdout, _failure(run)
        return
    if check.how == "options":
        script, *arguments = command.split()[1:]
        run = _shell(checkout, f".venv/bin/python {script} --help")
        assert run.returncode == 0, _failure(run)
        for option in (a for a in arguments if a.startswith("--")):
            assert option in run.stdout, f"{script} has no option {option}:\n{run.stdout}"
        return
    if check.how == "extra":
        extra = re.search(check.pattern, command)[1]
        declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
        assert extra in declared, f"pyproject.toml has no extra {extra!r}"
        for requirement in declared[extra]:
            name = re.match(r"[A-Za-z0-9_.\-]+", requirement)[0]
            importlib.metadata.version(name)  # installed by bin/spica install
        return
    pytest.fail(f"unknown check {check.how!r}")
