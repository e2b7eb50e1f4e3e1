"""The whole path from the command line: watch -> step 1 -> stage -> push -> verify -> purge.

``test_watch_to_purge`` runs every transfer command for real (the CLI, fpack,
rsync, the verification, the purge) with step 1 stood in by a small script
(``transfer.step1_command`` in a configuration overlay) that writes
synthetic step 1 products and the registry rows as step 1 would.
``test_real_step1_on_one_exposure`` (e2e, tools) runs the real step 1
(``snakemake qualityfits_in``) on one simulated exposure through the watcher's
default command, then stages and sends its products.
"""

from __future__ import annotations

import shutil

import pytest
import yaml

from spica import paths
from spica.provenance import file_sha256
from spica.transfer import arrivals, deliveries, sent_files
from spica.transfer.__main__ import main
from spica.transfer.staging import read_manifest
from tests.conftest import REPO, require_binary, small_survey
from tests.transfer.conftest import noisy_image, raw_checksums, require, write_mef

STAND_IN = """
import sys
from pathlib import Path
sys.path.insert(0, {repo!r})
from spica import paths
from tests.transfer.conftest import make_step1, write_registry
results = Path("results")
rows = []
for seed, path in enumerate(sorted(Path("raw/exposures").glob("*p.fits")), start=1):
    expnum = paths.parse_exposure_filename(path.name)
    if not paths.step1_path(results, expnum, "qa_xml").exists():
        make_step1(results, expnum, seed)
    rows.append({{"expnum": expnum, "file": path.name, "status": "ok", "runid": "04AL01",
                  "rel_date": "2006-08-01T00:00:00"}})
write_registry("sqlite:///results/registry.sqlite", rows)
Path("results/step1_runs.txt").open("a").write(" ".join(r["file"] for r in rows) + "\\n")
"""


def _overlay(root, **transfer) -> str:
    config = {"results": "results", "registry": {"url": "sqlite:///results/registry.sqlite"},
              "inputs": {"exposures": "raw/exposures", "product_grades": "raw/product_grades.csv"},
              "transfer": {"incoming": "incoming", "settle_seconds": 0, "outgoing": "outgoing",
                           "pi_outgoing": "outgoing/pi", "destination": "archive", **transfer}}
    path = root / "overlay.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def _cli(root, overlay, *args) -> int:
    return main(["--configfile", overlay, "--directory", str(root), *args])


def test_watch_to_purge(tmp_path, capsys):
    require("fpack", "funpack", "rsync")
    (tmp_path / "stand_in_step1.py").write_text(STAND_IN.format(repo=str(REPO)))
    overlay = _overlay(tmp_path, step1_command=["{python}", "stand_in_step1.py"])
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (tmp_path / "raw" / "exposures").mkdir(parents=True)
    for expnum, seed in ((751000, 1), (751008, 2)):
        write_mef(incoming / paths.exposure_filename(expnum), [noisy_image(seed)], EXPNUM=expnum)
    sent_sums = raw_checksums(incoming)

    assert _cli(tmp_path, overlay, "watch", "--once") == 0  # first sight
    assert not any((tmp_path / "raw" / "exposures").iterdir())
    assert _cli(tmp_path, overlay, "watch", "--once") == 0  # unchanged since: taken, step 1 runs
    assert "taken: 2 751000p.fits 751008p.fits" in capsys.readouterr().out
    assert raw_checksums(tmp_path / "raw" / "exposures") == sent_sums  # the inputs: the very bytes
    assert (tmp_path / "results" / "step1_runs.txt").read_text() == "751000p.fits 751008p.fits\n"
    assert arrivals(tmp_path / "results")["step1"].tolist() == ["done", "done"]

    assert _cli(tmp_path, overlay, "stage") == 0
    assert "staged: 2 deliveries" in capsys.readouterr().out
    staged = {}
    for delivery in ("step1/751000p", "step1/751008p"):
        folder = tmp_path / "outgoing" / delivery
        staged[delivery] = {row.file: row.sha256 for row in read_manifest(folder).itertuples()}
    assert _cli(tmp_path, overlay, "push") == 0
    out = capsys.readouterr().out
    assert "push: 2 deliveries complete, 10 files verified, 10 purged from staging, 0 not complete" in out
    for delivery, files in staged.items():  # the manifest, file by file, at the destination
        copy = tmp_path / "archive" / delivery
        assert {row.file: row.sha256 for row in read_manifest(copy).itertuples()} == files
        assert {name: file_sha256(copy / name) for name in files} == files
    assert not any(p.is_file() for p in (tmp_path / "outgoing").rglob("*"))  # purged
    assert _cli(tmp_path, overlay, "verify") == 0 and _cli(tmp_path, overlay, "purge") == 0
    assert _cli(tmp_path, overlay, "status") == 0
    assert "files: 10 sent of 10" in capsys.readouterr().out
    table = sent_files(tmp_path / "results")
    assert table["sent"].all() and set(table["delivery"]) == set(staged)
    assert raw_checksums(incoming) == sent_sums and raw_checksums(tmp_path / "raw" / "exposures") == sent_sums
    # nothing new: a second round does nothing
    assert _cli(tmp_path, overlay, "watch", "--once") == 0 and _cli(tmp_path, overlay, "stage") == 0
    assert "taken: 0" in capsys.readouterr().out
    assert (tmp_path / "results" / "step1_runs.txt").read_text().count("\n") == 1


@pytest.mark.e2e
@pytest.mark.tools
def test_real_step1_on_one_exposure(tmp_path, capsys):
    """The watcher's default command: the real ``snakemake qualityfits_in`` on one exposure."""
    for tool in (("source-extractor", "sex"), ("psfex",), ("weightwatcher", "ww"), ("fpack",), ("rsync",)):
        require_binary(*tool)
    small_survey(tmp_path)
    demo = tmp_path / "demo" / "raw"
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    shutil.copyfile(demo / "exposures" / "751000p.fits", incoming / "751000p.fits")
    (tmp_path / "raw" / "exposures").mkdir(parents=True)
    overlay = _overlay(tmp_path)
    extra = yaml.safe_load(open(overlay))
    extra["inputs"] = {**extra["inputs"], "exposures": "raw/exposures", "calibrations": "demo/raw/elixir",
                       "metadata": "demo/raw/metadata.csv", "grades": "demo/raw/grades.csv",
                       "refcat": "demo/raw/refcat/gaia_demo.ldac"}
    (tmp_path / "overlay.yaml").write_text(yaml.safe_dump(extra))
    before = file_sha256(incoming / "751000p.fits")
    assert _cli(tmp_path, overlay, "watch", "--once") == 0
    assert _cli(tmp_path, overlay, "watch", "--once") == 0, sorted((tmp_path / "results").rglob("*.log"))
    assert "step 1: done" in capsys.readouterr().out
    weight = tmp_path / paths.step1_path("results", 751000, "weight")
    assert weight.is_file() and (tmp_path / paths.step1_path("results", 751000, "qa_xml")).is_file()
    assert _cli(tmp_path, overlay, "stage") == 0 and _cli(tmp_path, overlay, "push") == 0
    copy = tmp_path / "archive" / "step1" / "751000p"
    manifest = read_manifest(copy)
    assert "751000p_weight.fits.fz" in set(manifest["file"])
    assert all(file_sha256(copy / row.file) == row.sha256 for row in manifest.itertuples())
    assert set(deliveries(tmp_path / "results")["status"]) == {"sent"}
    assert file_sha256(tmp_path / "raw" / "exposures" / "751000p.fits") == before
