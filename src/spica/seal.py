"""The step 1 seal: the registry as the boundary between ingestion and the releases.

A release plans from the registry, which closes step 1: ``build_registry`` reads
every accepted exposure's QA and ``.ahead`` file, so every step 1 job of the
survey is upstream of every release job. At survey scale (7,000 exposures, three
step 1 jobs each) listing that part of the DAG again on every release run cost
Snakemake more than the whole target of a release dry-run (issue 10, section 5).

When ``build_registry`` has written the registry it seals it: it records
(:func:`write_seal`) what step 1 was made with (the *static* part: code hashes,
tool versions, configuration, computed by the workflow) and the state (path,
modification time, size) of every file step 1 reads or writes
(:func:`sealed_files`: the raw exposures, the verdicts, the inventory, every
step 1 product of the accepted exposures, their ``.ahead`` files, the observing
metadata, the grades, the export). A run whose targets are releases only then
checks the seal (:func:`check_seal`): when nothing of it changed, the step 1
part of the DAG would list no job, and the release takes the registry and the
step 1 files as they are (Snakemake's ``before_update`` input flag: no producer
is looked for). Anything that changed (a new exposure, a remade or deleted
catalogue, a new grade, a step 1 code or configuration change) breaks the seal,
and the run lists step 1 again as before.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spica import paths

__all__ = [
    "SEALED_KEYS",
    "STEP1_SCRIPTS",
    "STEP1_TOOLS",
    "STEP1_ASTROMATIC",
    "SealCheck",
    "check_seal",
    "files_state",
    "sealed_files",
    "step1_static",
    "write_seal",
]

#: Step 1 files of an accepted exposure the seal covers (every declared output of its
#: step 1 jobs and its ``.ahead``); the QA plots are declared by the QA XML.
SEALED_KEYS: tuple[str, ...] = (
    "weight", "flag", "ww_xml", "ldac", "sex_xml", "minibkg", "psf", "psfex_xml",
    "diag", "qa_xml", "ahead",
)

#: Version of the seal's format (a new one breaks every old seal).
SEAL_FORMAT = 1

#: The scripts of step 1's jobs (``scripts/<name>.py``; their code hashes are sealed).
STEP1_SCRIPTS: tuple[str, ...] = (
    "check_exposure", "make_inventory", "stage_calibration", "reduce_exposure", "build_registry",
)
#: The tools step 1 runs (their versions are sealed).
STEP1_TOOLS: tuple[str, ...] = ("fitsverify", "weightwatcher", "sextractor", "psfex")
#: Step 1's AstrOmatic configuration files (keys of
#: :data:`spica.astromatic.options.CONFIG_FILES`; their contents are sealed).
STEP1_ASTROMATIC: tuple[str, ...] = ("step1_ww", "step1_sex", "step1_param", "step1_psfex", "conv", "nnw")
#: Configuration blocks step 1 depends on, and the keys of ``inputs`` it reads.
STEP1_CONFIG: tuple[str, ...] = ("survey", "step1", "tools")
STEP1_INPUTS: tuple[str, ...] = ("exposures", "calibrations", "metadata", "grades")


def step1_static(
    config: Mapping[str, Any],
    *,
    workflow_dir: str | Path,
    tool_versions: Mapping[str, str],
    code_hash: Any = None,
) -> dict:
    """What step 1 is made with: the package version, the code hashes of its scripts,
    the versions of its tools, its configuration and its AstrOmatic files' contents.

    Parameters
    ----------
    config : mapping
        The workflow's configuration (merged, validated).
    workflow_dir : str or Path
        The workflow's folder (``scripts/``, ``config/astromatic/``).
    tool_versions : mapping
        Tool name -> version string (``absent`` when not installed).
    code_hash : callable, optional
        Script path -> code hash (default :func:`spica.tools.script_code_hash`; the
        workflow passes its cached one).
    """
    from spica import __version__
    from spica.astromatic.options import config_checksum, config_file
    from spica.tools import script_code_hash

    code_hash = code_hash or script_code_hash
    workflow_dir = Path(workflow_dir)
    scripts = {name: workflow_dir / "scripts" / f"{name}.py" for name in STEP1_SCRIPTS}
    return {
        "spica": __version__,
        "code": {name: code_hash(path) for name, path in scripts.items() if path.is_file()},
        "tools": {name: tool_versions.get(name, "absent") for name in STEP1_TOOLS},
        "config": {key: config[key] for key in STEP1_CONFIG},
        "inputs": {key: config["inputs"][key] for key in STEP1_INPUTS},
        "astromatic": {key: config_checksum(config_file(key, workflow_dir)) for key in STEP1_ASTROMATIC},
    }


def sealed_files(
    results: str | Path,
    *,
    incoming: Mapping[int, str | Path],
    inventory: str | Path,
    quarantine: str | Path,
    optional: Iterable[str | Path] = (),
) -> list[str]:
    """Every file whose state the seal records, in a fixed order: the one definition
    ``build_registry`` (writing the seal), the workflow (checking it) and the scale
    bench share, so that they cannot disagree.

    Parameters
    ----------
    results : str or Path
        The run's results tree (``config["results"]``).
    incoming : mapping
        Odometer -> raw exposure file, every incoming exposure.
    inventory, quarantine : str or Path
        The inventory (its ``ok`` rows are the accepted exposures, whose step 1
        files the seal covers) and the quarantine list.
    optional : iterable
        Files recorded when they exist (the observing metadata, the grades).
    """
    from spica.step1.inventory import read_inventory

    accepted = sorted(int(row["expnum"]) for row in read_inventory(inventory) if row["status"] == "ok")
    files = [str(inventory), str(quarantine), *(str(path) for path in optional if os.path.isfile(path))]
    for expnum in sorted(incoming):
        files.append(str(incoming[expnum]))
        files.append(str(paths.step1_path(results, expnum, "check")))
    patterns = [paths.step1_pattern(results, key).format for key in SEALED_KEYS]
    for expnum in accepted:
        files.extend(pattern(expnum=expnum) for pattern in patterns)
    return files


def files_state(files: Iterable[str], contents: Iterable[str] = ()) -> str:
    """SHA-1 over path, modification time (ns) and size of each of ``files`` (about
    3 µs a file) and path and content of each of ``contents`` (files whose time
    Snakemake changes after the job that writes them: it touches every output), in
    the given order; ``missing`` for an absent file."""
    digest = hashlib.sha1()
    for path in files:
        try:
            stat = os.stat(path)
            digest.update(f"{path}\0{stat.st_mtime_ns}\0{stat.st_size}\n".encode())
        except FileNotFoundError:
            digest.update(f"{path}\0missing\n".encode())
    for path in contents:
        try:
            digest.update(f"{path}\0{hashlib.sha1(Path(path).read_bytes()).hexdigest()}\n".encode())
        except FileNotFoundError:
            digest.update(f"{path}\0missing\n".encode())
    return digest.hexdigest()


def _static_digest(static: Mapping[str, Any]) -> str:
    """A stable digest of the static part (JSON with sorted keys)."""
    text = json.dumps(static, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()


def write_seal(path: str | Path, *, static: Mapping[str, Any], files: Iterable[str],
               contents: Iterable[str] = ()) -> dict:
    """Write the seal (atomically: a failed write leaves no seal).

    Parameters
    ----------
    path : str or Path
        The seal file (``<results>/registry/step1_seal.json``).
    static : mapping
        What step 1 was made with (code hashes, tool versions, configuration).
    files : iterable of str
        :func:`sealed_files`, stated now (modification time and size).
    contents : iterable of str
        Files stated by their content (the registry export, which Snakemake touches
        after the job that seals it).
    """
    files, contents = list(files), list(contents)
    seal = {
        "format": SEAL_FORMAT,
        "static": _static_digest(static),
        "files": len(files) + len(contents),
        "state": files_state(files, contents),
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    partial.write_text(json.dumps(seal, indent=1) + "\n")
    os.replace(partial, path)
    return seal


@dataclass(frozen=True)
class SealCheck:
    """Whether a seal holds, and why not."""

    holds: bool
    reason: str

    def __bool__(self) -> bool:
        return self.holds


def check_seal(path: str | Path, *, static: Mapping[str, Any], files: Iterable[str],
               contents: Iterable[str] = ()) -> SealCheck:
    """Check a seal against the current static part and files (as :func:`write_seal`).

    Returns
    -------
    SealCheck
        True when the seal exists and nothing it records changed; else the reason.
    """
    try:
        seal = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return SealCheck(False, "no seal (the registry was not built yet, or is being rebuilt)")
    except (OSError, ValueError) as error:
        return SealCheck(False, f"unreadable seal: {error}")
    if not isinstance(seal, dict) or seal.get("format") != SEAL_FORMAT:
        return SealCheck(False, "a seal of another format")
    if seal.get("static") != _static_digest(static):
        return SealCheck(False, "step 1's code, tools or configuration changed")
    files, contents = list(files), list(contents)
    count = len(files) + len(contents)
    if seal.get("files") != count or seal.get("state") != files_state(files, contents):
        return SealCheck(False, "step 1's inputs or products changed (new, remade or deleted files)")
    return SealCheck(True, f"{count} files as the registry left them")
