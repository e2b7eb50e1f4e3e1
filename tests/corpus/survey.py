"""The tiny surveys the issue-11 tests share: simulated once per test session.

:func:`tiny_survey` simulates the small demo survey (the e2e fixture's: the same
configuration, hence byte-identical exposures) and keeps :data:`GOOD` of its
exposures, with their calibration files, metadata and grades. It is made once
per pytest session in the session's base temporary folder (a record file says
it is done), so every test module that asks for it, in ``tests/corpus`` or
``tests/e2e`` or beside them, shares one simulation; each test still passes
alone (the first to ask makes it). Callers copy it (:func:`copy_inputs`),
never write into it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from spica import paths
from tests.conftest import REPO, small_survey

__all__ = ["CONFIG", "GOOD", "VW_STEM", "VW_TILE", "clean_run", "copy_inputs", "demo_config", "snakemake",
           "shared_base", "tiny_survey", "vw_targets"]

CONFIG = REPO / "config" / "config.yaml"
#: The good exposures kept: a D3 r exposure and the Very Wide one, whose
#: astrometric list holds only itself (its products do not depend on the others).
GOOD = (751000, 751042)
_RECORD = "tiny-survey.json"


def shared_base(tmp_path_factory) -> Path:
    """Where the session's shared surveys go: the session's base temporary folder, or
    ``SPICA_CORPUS_WORKDIR`` (kept: a developer's later sessions reuse its runs)."""
    reuse = os.environ.get("SPICA_CORPUS_WORKDIR")
    if reuse:
        Path(reuse).mkdir(parents=True, exist_ok=True)
        return Path(reuse)
    return tmp_path_factory.getbasetemp()


def demo_config() -> dict:
    """The demo configuration (config/config.yaml)."""
    return yaml.safe_load(CONFIG.read_text())


def snakemake(workdir: Path, *args: str, overrides: Path | None = None,
              cores: int = 2) -> subprocess.CompletedProcess:
    """Run the workflow in ``workdir`` with the demo configuration (and ``overrides``)."""
    # the Snakefile loads config/config.yaml itself: an overlay alone, as the README runs it
    configfiles = [str(overrides)] if overrides else [str(CONFIG)]
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
               "--directory", str(workdir), "--cores", str(cores), *args,
               "--configfile", *configfiles]  # --configfile swallows what follows: keep it last
    return subprocess.run(command, check=False, capture_output=True, text=True, cwd=workdir)


def tiny_survey(base: Path) -> Path:
    """The small demo survey reduced to :data:`GOOD`, simulated once under ``base``.

    Returns the folder holding ``demo/raw`` (read-only inputs: copy them).
    """
    folder = base / "tiny-survey"
    if (folder / _RECORD).is_file():
        return folder
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    config = demo_config()
    small_survey(folder)
    inputs = config["inputs"]
    incoming = folder / inputs["exposures"]
    incoming.chmod(0o755)
    for path in incoming.iterdir():
        if paths.parse_exposure_filename(path.name) not in GOOD:
            path.unlink()
    for key in ("metadata", "grades"):
        table = folder / inputs[key]
        table.chmod(0o644)
        frame = pd.read_csv(table, dtype=str, keep_default_na=False)
        frame[frame["expnum"].astype(int).isin(GOOD)].to_csv(table, index=False)
    (folder / _RECORD).write_text(json.dumps({"good": list(GOOD)}))
    return folder


def copy_inputs(survey: Path, workdir: Path) -> Path:
    """Copy the raw inputs of ``survey`` (its ``demo/``) into ``workdir``; returns ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(survey / "demo", workdir / "demo", dirs_exist_ok=True)
    for path in (workdir / "demo").rglob("*"):  # the files stay read-only, as delivered
        if path.is_dir():
            path.chmod(0o755)
    return workdir


#: The product of the clean run's release: the Very Wide exposure, image by image (its
#: astrometric list holds only itself, so it is the e2e fixture's product too), and its tile.
VW_STEM = "751042p_V0001"
VW_TILE = "751042p_r_V0001"
_CLEAN_RECORD = "clean-run.json"


def vw_targets(results: str) -> list[str]:
    """The delivered files of :data:`VW_STEM` (as ``release_T0002`` asks for them) and the
    PNG of its chi-squared tile."""
    keys = [*paths.STACK_PRODUCTS, "image_head", "image_ahead"]  # photometric: its .ahead too
    return ([str(paths.product_path(results, "T0002", VW_STEM, key)) for key in keys]
            + [str(paths.chi2_path(results, "T0002", VW_TILE, "png"))])


def clean_run(base: Path) -> dict:
    """A clean run of the tiny survey (:data:`GOOD` alone), made once per session under ``base``:
    step 1 (``qualityfits_in``), the plan of T0002 and the Very Wide product of the release.

    It is the "without the bad ones" reference of the corpus run (tests/corpus) and the
    second clean run of the reproducibility test (tests/e2e). Returns the work directory
    and the raw inputs' checksums before and after.
    """
    import hashlib

    workdir = base / "clean-run"
    record = workdir / _CLEAN_RECORD
    if record.is_file():
        return {"workdir": workdir, **json.loads(record.read_text())}
    if workdir.exists():
        shutil.rmtree(workdir)
    copy_inputs(tiny_survey(base), workdir)

    def sums() -> dict[str, str]:
        raw = workdir / "demo"
        return {p.relative_to(raw).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(raw.rglob("*")) if p.is_file()}

    before = sums()
    results = demo_config()["results"]
    for targets in (["qualityfits_in", "plan_T0002"], vw_targets(results)):
        run = snakemake(workdir, *targets)
        (workdir / "snakemake-run.log").open("a").write(run.stdout + run.stderr)
        assert run.returncode == 0, f"clean run {targets[:2]} failed:\n{run.stderr[-3000:]}"
    found = {"before": before, "after": sums()}
    record.write_text(json.dumps(found))
    return {"workdir": workdir, **found}
