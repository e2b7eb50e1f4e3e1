"""The step 1 seal (spica.seal): what breaks it, what it covers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from spica import paths
from spica.seal import (
    SEALED_KEYS,
    STEP1_SCRIPTS,
    check_seal,
    sealed_files,
    step1_static,
    write_seal,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def survey(tmp_path: Path) -> dict:
    """Two incoming exposures, one accepted with every sealed step 1 file."""
    results = tmp_path / "results"
    incoming = {}
    for expnum in (700001, 700002):
        raw = tmp_path / "raw" / f"{expnum}p.fits.fz"
        raw.parent.mkdir(parents=True, exist_ok=True)
        raw.write_bytes(b"raw")
        incoming[expnum] = str(raw)
        check = paths.step1_path(results, expnum, "check")
        check.parent.mkdir(parents=True, exist_ok=True)
        check.write_text("{}")
    for key in SEALED_KEYS:
        paths.step1_path(results, 700001, key).write_bytes(key.encode())
    export = results / "registry" / "exposures.csv"
    export.parent.mkdir(parents=True)
    export.write_text("expnum\n700001\n")
    inventory, quarantine = results / "step1" / "inventory.csv", results / "quarantine.csv"
    inventory.write_text("expnum,path,status,reason,message\n"
                         f"700001,{incoming[700001]},ok,,\n700002,{incoming[700002]},quarantined,unreadable,x\n")
    quarantine.write_text("file,reason,message\n")
    lists = {"inventory": inventory, "quarantine": quarantine, "optional": [tmp_path / "metadata.csv"]}
    files = sealed_files(results, incoming=incoming, **lists)
    return {"results": results, "incoming": incoming, "files": files, "export": str(export),
            "seal": results / "registry" / "step1_seal.json", "lists": lists}


def _check(survey: dict, static: dict | None = None, files: list | None = None):
    return check_seal(survey["seal"], static=static or {"code": "a"},
                      files=survey["files"] if files is None else files, contents=[survey["export"]])


def test_sealed_files_cover_every_step1_file_of_an_accepted_exposure(survey):
    files = survey["files"]
    # inventory and quarantine (no metadata file yet), two raw files and their verdicts,
    # the accepted exposure's 11 step 1 files
    assert len(files) == 2 + 2 * 2 + len(SEALED_KEYS)
    assert not any("metadata" in f for f in files)
    assert str(paths.step1_path(survey["results"], 700001, "ldac")) in files
    assert str(paths.step1_path(survey["results"], 700001, "ahead")) in files
    assert not any("700002p_ldac" in f for f in files)  # quarantined: no step 1 products


def test_a_seal_holds_until_anything_it_records_changes(survey):
    assert not _check(survey)  # no seal yet
    assert "no seal" in _check(survey).reason
    seal = write_seal(survey["seal"], static={"code": "a"}, files=survey["files"],
                      contents=[survey["export"]])
    assert seal["files"] == len(survey["files"]) + 1
    assert json.loads(survey["seal"].read_text()) == seal
    assert _check(survey).holds
    # the export is stated by content: Snakemake touching it (a new time) keeps the seal
    export = Path(survey["export"])
    os.utime(export, ns=(export.stat().st_atime_ns, export.stat().st_mtime_ns + 10**9))
    assert _check(survey).holds
    # static part: code, tools, configuration
    assert "code, tools or configuration" in _check(survey, static={"code": "b"}).reason


@pytest.mark.parametrize("change", ["touch", "delete", "new_exposure", "export"])
def test_a_changed_file_breaks_the_seal(survey, change):
    write_seal(survey["seal"], static={"code": "a"}, files=survey["files"], contents=[survey["export"]])
    ldac = paths.step1_path(survey["results"], 700001, "ldac")
    files = survey["files"]
    if change == "touch":  # remade, same bytes
        os.utime(ldac, ns=(ldac.stat().st_atime_ns, ldac.stat().st_mtime_ns + 10**9))
    elif change == "delete":
        ldac.unlink()
    elif change == "new_exposure":
        files = sealed_files(survey["results"], incoming={**survey["incoming"], 700003: "x.fits"},
                             **survey["lists"])
    else:
        Path(survey["export"]).write_text("expnum\n700001\n700002\n")
    verdict = _check(survey, files=files)
    assert not verdict.holds
    assert "inputs or products changed" in verdict.reason


def test_a_broken_seal_file_is_no_seal(survey):
    survey["seal"].parent.mkdir(parents=True, exist_ok=True)
    survey["seal"].write_text("{not json")
    assert "unreadable" in _check(survey).reason
    survey["seal"].write_text(json.dumps({"format": 0}))
    assert "another format" in _check(survey).reason


def test_step1_static_follows_code_configuration_and_tools():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    hashes = {}

    def fake_hash(path):
        hashes[Path(path).stem] = True
        return f"hash-{Path(path).stem}"

    static = step1_static(config, workflow_dir=REPO, tool_versions={"sextractor": "2.28.0"},
                          code_hash=fake_hash)
    # every step 1 script that exists is hashed; the tools absent from the mapping say so
    assert set(static["code"]) == {s for s in STEP1_SCRIPTS if (REPO / "scripts" / f"{s}.py").is_file()}
    assert {"check_exposure", "reduce_exposure", "build_registry"} <= set(static["code"])
    assert static["tools"]["sextractor"] == "2.28.0" and static["tools"]["psfex"] == "absent"
    assert static["config"]["step1"] == config["step1"]
    assert len(static["astromatic"]["step1_sex"]) == 40
    # a step 1 setting changes it, a release setting does not
    changed = {**config, "step1": {**config["step1"], "grading": {"changed": True}}}
    other = {**config, "coaddition": {"changed": True}}
    kwargs = dict(workflow_dir=REPO, tool_versions={}, code_hash=fake_hash)
    assert step1_static(changed, **kwargs) != step1_static(config, **kwargs)
    assert step1_static(other, **kwargs) == step1_static(config, **kwargs)
