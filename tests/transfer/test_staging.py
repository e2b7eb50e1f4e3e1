"""Outgoing staging, push, verification, purge and their faults, on the synthetic survey."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from spica import paths
from spica.provenance import file_sha256
from spica.transfer import deliveries, sent_files
from spica.transfer.__main__ import EXIT_QUOTA
from spica.transfer.delivery import push, verify
from spica.transfer.staging import MANIFEST, read_manifest, stage
from tests.transfer.conftest import PI_RUNID, STEM, make_release_product, raw_checksums, require, write_grades

pytestmark = pytest.mark.usefixtures("tools")


@pytest.fixture
def tools():
    require("fpack", "funpack", "rsync")


def _staged_files(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): file_sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def test_stage_puts_step1_and_graded_products_with_manifests(survey):
    settings = survey["settings"]
    for key in ("reg", "psf_m", "comptness_ps"):  # QualityFITS-out files go with their product
        paths.product_path(settings.results, "T0002", STEM, key).write_text(f"{key}\n")
    result = stage(settings)
    assert result.staged == ["step1/751000p", "step1/760001p", f"T0002/{STEM}"]  # not the provisional i stack
    folder = settings.outgoing / "step1" / "751000p"
    manifest = read_manifest(folder)
    assert list(manifest.columns) == ["file", "size", "sha256", "product", "release", "release_date"]
    assert sorted(manifest["file"]) == ["751000p.xml", "751000p_diag.fits", "751000p_flag.fits.fz",
                                        "751000p_ldac.fits", "751000p_weight.fits.fz"]
    for row in manifest.itertuples():  # file by file: size and SHA-256 of what is staged
        assert (folder / row.file).stat().st_size == row.size
        assert file_sha256(folder / row.file) == row.sha256
    assert set(manifest["release_date"]) == {"2006-08-01T00:00:00"} and set(manifest["release"]) == {"step1"}
    # the flag map is lossless, the weight within the quantization, catalogues untouched
    original = settings.results / "step1" / "751000p"
    with fits.open(original / "751000p_flag.fits") as a, fits.open(folder / "751000p_flag.fits.fz") as b:
        assert isinstance(b[1], fits.CompImageHDU) and b[1].compression_type == "RICE_1"
        assert all(np.array_equal(x.data, y.data) for x, y in zip(a[1:], b[1:]))
    with fits.open(original / "751000p_weight.fits") as a, fits.open(folder / "751000p_weight.fits.fz") as b:
        worst = max(float(np.max(np.abs(x.data - y.data))) for x, y in zip(a[1:], b[1:]))
        assert 0 < worst < 0.01 / 16 * 1.5  # noise 0.01, quantize level 16: steps of ~sigma/16
    assert file_sha256(folder / "751000p_ldac.fits") == file_sha256(original / "751000p_ldac.fits")
    # the PI exposure goes only to its PI's area
    assert not (settings.outgoing / "step1" / "760001p").exists()
    pi = settings.pi_outgoing / PI_RUNID / "step1" / "760001p"
    assert (pi / "760001p_weight.fits.fz").is_file()
    # the release product with all its files, its release date from the stack's header
    product = read_manifest(settings.outgoing / "T0002" / STEM)
    assert {f"{STEM}.fits.fz", f"{STEM}_weight.fits.fz", f"{STEM}_ldac.fits", f"{STEM}_cmd.txt",
            f"{STEM}_heads/751000p_head.txt", f"{STEM}_reg.txt", f"{STEM}_psf_m.png",
            f"{STEM}_comptness.ps"} <= set(product["file"])
    assert set(product["release"]) == {"T0002"} and set(product["release_date"]) == {"2006-08-01T00:00:00"}
    # staging again stages nothing new; raw inputs untouched
    assert stage(settings).staged == []
    assert raw_checksums(survey["raw"]) == survey["raw_sums"]
    table = deliveries(settings.results).set_index("delivery")
    assert table.loc["step1/760001p", "area"] == f"pi/{PI_RUNID}"


def test_push_verifies_then_purges_and_marks_files_sent(survey):
    settings = survey["settings"]
    stage(settings)
    staged = {d: _staged_files(f) for d, f in (("step1/751000p", settings.outgoing / "step1" / "751000p"),)}
    result = push(settings)
    assert result.failed == {} and len(result.sent) == 3
    copy = settings.destination / "step1" / "751000p"
    assert _staged_files(copy) == staged["step1/751000p"]  # byte for byte, manifest included
    for row in read_manifest(copy).itertuples():
        assert file_sha256(copy / row.file) == row.sha256
    assert (settings.destination / "pi" / PI_RUNID / "step1" / "760001p" / MANIFEST).is_file()
    sent = sent_files(settings.results)
    assert sent["sent"].all() and sent["purged_at"].notna().all() and len(sent) == 5 + 5 + 11
    assert not any(p.is_file() for p in settings.outgoing.rglob("*"))  # staging purged
    assert set(deliveries(settings.results)["status"]) == {"sent"}


def test_interrupted_transfer_resumes_and_never_purges_unverified(survey, tmp_path):
    settings = survey["settings"]
    stage(settings)
    # a transfer killed half-way: one file copied, one half-written, then the command dies
    killer = tmp_path / "killed_transfer.sh"
    killer.write_text('#!/bin/sh\nsrc="$1"; dst="$2"\nmkdir -p "$dst"\n'
                      'cp "$src/751000p_ldac.fits" "$dst/" 2>/dev/null\n'
                      'head -c 1000 "$src/751000p_weight.fits.fz" > "$dst/751000p_weight.fits.fz" 2>/dev/null\n'
                      'exit 137\n')
    killer.chmod(killer.stat().st_mode | stat.S_IEXEC)
    broken = settings.__class__(**{**settings.__dict__, "command": (str(killer), "{source}", "{destination}")})
    result = push(broken)
    assert set(result.failed) == {"step1/751000p", "step1/760001p", f"T0002/{STEM}"}
    sent = sent_files(settings.results).set_index("file")
    assert bool(sent.loc["751000p_ldac.fits", "sent"])  # verified: sent and purged
    assert not (settings.outgoing / "step1" / "751000p" / "751000p_ldac.fits").exists()
    for name in ("751000p_weight.fits.fz", "751000p_flag.fits.fz"):  # not verified: still staged
        assert not bool(sent.loc[name, "sent"])
        assert (settings.outgoing / "step1" / "751000p" / name).is_file()
    assert (settings.outgoing / "step1" / "751000p" / MANIFEST).is_file()
    # the next push resumes and completes
    result = push(settings)
    assert result.failed == {} and sent_files(settings.results)["sent"].all()
    copy = settings.destination / "step1" / "751000p"
    for row in read_manifest(copy).itertuples():
        assert file_sha256(copy / row.file) == row.sha256


def test_corrupted_destination_file_is_detected_and_sent_again(survey, tmp_path):
    settings = survey["settings"]
    stage(settings)
    # during a push: the first copy of the flag map arrives corrupted (same size)
    flaky = tmp_path / "flaky_transfer.sh"
    once = tmp_path / "corrupted-once"
    flaky.write_text('#!/bin/sh\nrsync -a --checksum "$1/" "$2/" || exit $?\n'
                     f'if [ ! -e {once} ] && [ -e "$2/751000p_flag.fits.fz" ]; then touch {once}; '
                     'printf XXXX | dd of="$2/751000p_flag.fits.fz" bs=1 seek=3000 conv=notrunc 2>/dev/null; fi\n')
    flaky.chmod(flaky.stat().st_mode | stat.S_IEXEC)
    settings_flaky = settings.__class__(**{**settings.__dict__, "command": (str(flaky), "{source}", "{destination}")})
    result = push(settings_flaky, attempts=2)
    assert once.exists() and result.failed == {}  # detected, sent again in the second round
    copy = settings.destination / "step1" / "751000p" / "751000p_flag.fits.fz"
    assert file_sha256(copy) == read_manifest(copy.parent).set_index("file").loc[copy.name, "sha256"]
    # after the purge: a destination copy damaged later is found by verify and staged again
    with open(copy, "r+b") as handle:
        handle.seek(2880)
        handle.write(b"\0\0\0\0")
    checked = verify(settings)
    assert list(checked.failed) == ["step1/751000p"] and "751000p_flag.fits.fz" in checked.failed["step1/751000p"]
    assert not sent_files(settings.results).set_index("file").loc["751000p_flag.fits.fz", "sent"]
    assert stage(settings).staged == ["step1/751000p"]  # rebuilt: same bytes (deterministic compression)
    assert push(settings).failed == {}
    assert verify(settings).failed == {} and sent_files(settings.results)["sent"].all()


def test_over_quota_staging_pauses_with_nothing_half_staged(survey, capsys, monkeypatch):
    from spica.transfer.__main__ import main

    settings = survey["settings"]
    stage_one = settings.__class__(**{**settings.__dict__, "quota_bytes": 1})
    result = stage(stage_one)
    assert result.staged == [] and "staging paused" in result.paused and "transfer.quota_bytes" in result.paused
    assert not any(p.is_file() for p in settings.outgoing.rglob("*"))  # nothing half-staged
    assert deliveries(settings.results).empty
    # room for the first delivery only: it is staged whole, the rest waits
    import re
    needed = int(re.search(r"delivery step1/751000p needs (\d+) bytes", result.paused)[1])
    first = stage(settings.__class__(**{**settings.__dict__, "quota_bytes": needed + needed // 2}))
    assert first.staged == ["step1/751000p"] and first.paused
    assert sorted(read_manifest(settings.outgoing / "step1" / "751000p")["file"])[0] == "751000p.xml"
    # the command line: a clear message and exit code 3
    config = settings.root / "quota.yaml"
    config.write_text("transfer: {quota_bytes: 1}\n")
    monkeypatch.chdir(settings.root)
    code = main(["--configfile", str(config), "--directory", str(settings.root), "stage"])
    assert code == EXIT_QUOTA
    assert "staging paused" in capsys.readouterr().err


def test_a_later_release_keeps_and_supersedes_the_earlier_one(survey):
    settings = survey["settings"]
    stage(settings)
    push(settings)
    before = {p: file_sha256(p) for p in (settings.destination / "T0002" / STEM).rglob("*") if p.is_file()}
    newer = STEM.replace("T0002", "T0003")
    make_release_product(settings.results, "T0003", newer, 7, "2007-02-01T00:00:00")
    write_grades(settings.product_grades, [(STEM, "A", "rct"), (newer, "B", "rct")])
    result = stage(settings)
    assert result.staged == [f"T0003/{newer}"] and result.superseded == {f"T0002/{STEM}": f"T0003/{newer}"}
    assert push(settings).failed == {}
    after = {p: file_sha256(p) for p in (settings.destination / "T0002" / STEM).rglob("*") if p.is_file()}
    assert after == before  # T0002 kept, never overwritten
    table = deliveries(settings.results).set_index("delivery")
    assert table.loc[f"T0002/{STEM}", "superseded_by"] == "T0003"
    assert pd.isna(table.loc[f"T0003/{newer}", "superseded_by"])
    import json
    note = json.loads((settings.destination / "T0003" / newer / "delivery.json").read_text())
    assert note["supersedes"] == [f"T0002/{STEM}"]


def test_bad_configuration_and_bad_grades_are_named_errors(survey, capsys, monkeypatch):
    from spica.transfer.__main__ import EXIT_CONFIG, main

    settings = survey["settings"]
    monkeypatch.chdir(settings.root)
    bad = settings.root / "bad.yaml"
    bad.write_text("transfer: {quota_bytes: -5, command: []}\n")
    assert main(["--configfile", str(bad), "status"]) == EXIT_CONFIG
    assert "error: configuration transfer" in capsys.readouterr().err
    settings.product_grades.write_text("product,grade,comment,graded_by,date\n" + STEM + ",Z,,rct,2006-01-01\n")
    overlay = settings.root / "ok.yaml"
    overlay.write_text(f"results: {settings.results}\nregistry: {{url: '{settings.registry_url}'}}\n"
                       f"inputs: {{product_grades: {settings.product_grades}}}\n"
                       f"transfer: {{outgoing: {settings.outgoing}}}\n")
    assert main(["--configfile", str(overlay), "stage"]) == EXIT_CONFIG
    err = capsys.readouterr().err
    assert "invalid grade" in err and "'Z'" in err


def test_image_mode_products_go_at_once_unless_graded_c_or_d(survey):
    """The automatic image mode (``releases/V0001/``, seed 6.2) sends its products as soon as
    they are made, with no grade; one the team graded C is held back; a provisional C is not."""
    settings = survey["settings"]
    for stem, seed in (("751000p_V0001", 8), ("751008p_V0001", 9), ("751016p_V0001", 10)):
        make_release_product(settings.results, "V0001", stem, seed, "2006-08-01T00:00:00")
    write_grades(settings.product_grades, [(STEM, "A", "rct"), ("V0001/751008p_V0001", "C", "rct"),
                                           ("751016p_V0001", "C", "")])
    staged = stage(settings).staged
    assert [d for d in staged if d.startswith("V0001/")] == ["V0001/751000p_V0001", "V0001/751016p_V0001"]
    product = read_manifest(settings.outgoing / "V0001" / "751000p_V0001")
    assert set(product["release"]) == {"V0001"} and "751000p_V0001.fits.fz" in set(product["file"])
