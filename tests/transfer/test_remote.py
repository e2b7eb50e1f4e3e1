"""Delivery to a ``host:path`` destination, verified there without a mount.

No sshd: ``fake_ssh`` stands in for ssh (it drops the host and runs the
command here with ``sh -c``, as sshd runs it with the user's shell), so
``fakehost:<folder>`` is a genuine remote-protocol destination: rsync talks
to ``rsync --server`` through it, and the checksums are computed by
``sha256sum`` run through it, never read here.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from spica.provenance import file_sha256
from spica.transfer import deliveries, sent_files
from spica.transfer.delivery import push, verify
from spica.transfer.settings import TransferConfigError, split_remote
from spica.transfer.staging import DELIVERY_JSON, MANIFEST, read_manifest, stage
from tests.transfer.conftest import PI_RUNID, STEM, require, settings_for

FAKE_SSH = """#!/bin/sh
# ssh stand-in: [-l user] host command... -> run the command here, as sshd would
if [ "$1" = "-l" ]; then shift 2; fi
host="$1"; shift
printf '%s\\t%s\\n' "$host" "$*" >> {log}
exec sh -c "$*"
"""


@pytest.fixture
def remote(survey, tmp_path):
    """The survey's settings with the destination ``fakehost:<tmp>/cadc`` reached through fake_ssh."""
    require("fpack", "funpack", "rsync", "sha256sum")
    log = tmp_path / "ssh.log"
    fake = tmp_path / "fake_ssh"
    fake.write_text(FAKE_SSH.format(log=log))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    folder = tmp_path / "cadc"
    settings = settings_for(survey["settings"].root, destination=f"fakehost:{folder}", remote_shell=[str(fake)])
    assert settings.destination_host == "fakehost" and settings.destination == folder
    return {"settings": settings, "folder": folder, "log": log, "raw": survey["raw"], "raw_sums": survey["raw_sums"]}


def _calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_push_to_host_path_verifies_file_by_file_through_the_remote_shell(remote):
    settings, folder = remote["settings"], remote["folder"]
    stage(settings)
    staged = {row.file: row.sha256 for row in read_manifest(settings.outgoing / "step1" / "751000p").itertuples()}
    result = push(settings)
    assert result.failed == {} and len(result.sent) == 3 and result.verified == 5 + 5 + 11
    calls = _calls(remote["log"])
    assert all(line.startswith("fakehost\t") for line in calls)
    assert sum("rsync --server" in line for line in calls) == 3  # rsync's remote protocol, once per delivery
    checks = [line for line in calls if "sha256sum --" in line]
    for name in staged:  # every file of the manifest was checksummed there
        assert any(f"{folder}/step1/751000p/{name}" in line for line in checks)
    copy = folder / "step1" / "751000p"
    assert {row.file: row.sha256 for row in read_manifest(copy).itertuples()} == staged
    assert {name: file_sha256(copy / name) for name in staged} == staged
    assert (folder / "pi" / PI_RUNID / "step1" / "760001p" / DELIVERY_JSON).is_file()
    assert (folder / "T0002" / STEM / f"{STEM}_heads" / "751000p_head.txt").is_file()
    files = sent_files(settings.results)
    assert files["sent"].all() and len(files) == 21
    assert not any(p.is_file() for p in settings.outgoing.rglob("*"))  # purged once verified
    assert set(deliveries(settings.results)["status"]) == {"sent"}
    # verify later: through the remote shell again, all good
    before = len(_calls(remote["log"]))
    assert verify(settings).failed == {} and len(_calls(remote["log"])) > before


def test_nothing_is_purged_when_the_remote_check_cannot_vouch(remote, tmp_path):
    settings = remote["settings"]
    stage(settings)
    staged = sorted(p.relative_to(settings.outgoing).as_posix() for p in settings.outgoing.rglob("*") if p.is_file())
    # rsync copies everything, but the checksum command there fails: nothing is verified
    blind = settings.__class__(**{**settings.__dict__, "remote_checksum": ("false",)})
    result = push(blind)
    assert set(result.failed) == {"step1/751000p", "step1/760001p", f"T0002/{STEM}"}
    assert "missing or unreadable at the destination" in result.failed["step1/751000p"]
    assert "exited with 1" in result.failed["step1/751000p"]
    assert (remote["folder"] / "step1" / "751000p" / "751000p_weight.fits.fz").is_file()  # the copy is there
    assert not sent_files(settings.results)["sent"].any()
    assert sorted(p.relative_to(settings.outgoing).as_posix()
                  for p in settings.outgoing.rglob("*") if p.is_file()) == staged  # nothing purged
    # the host unreachable (the remote shell fails): the same
    gone = settings.__class__(**{**settings.__dict__, "remote_shell": (str(tmp_path / "no-such-ssh"),)})
    result = push(gone)
    assert "remote shell" in result.failed["step1/751000p"] and not sent_files(settings.results)["sent"].any()
    # once the check works, the same push completes
    assert push(settings).failed == {} and sent_files(settings.results)["sent"].all()


def test_a_file_corrupted_at_the_remote_destination_is_detected_and_sent_again(remote, tmp_path):
    settings, folder = remote["settings"], remote["folder"]
    stage(settings)
    # the first copy of the flag map arrives corrupted there (same size)
    once = tmp_path / "corrupted-once"
    flaky = tmp_path / "flaky_rsync.sh"
    flaky.write_text('#!/bin/sh\nrsync -a --checksum -e "$1" "$2/" "$3/" || exit $?\n'
                     'dst="${3#*:}"\n'
                     f'if [ ! -e {once} ] && [ -e "$dst/751000p_flag.fits.fz" ]; then touch {once}; '
                     'printf XXXX | dd of="$dst/751000p_flag.fits.fz" bs=1 seek=3000 conv=notrunc 2>/dev/null; fi\n')
    flaky.chmod(flaky.stat().st_mode | stat.S_IEXEC)
    flaky_settings = settings.__class__(**{**settings.__dict__,
                                           "command": (str(flaky), "{rsh}", "{source}", "{destination}")})
    result = push(flaky_settings, attempts=2)
    assert once.exists() and result.failed == {}  # found by the remote checksum, sent again in round 2
    copy = folder / "step1" / "751000p" / "751000p_flag.fits.fz"
    assert file_sha256(copy) == read_manifest(copy.parent).set_index("file").loc[copy.name, "sha256"]
    # damaged there after the purge: verify (remote checksums) finds it, stage and push send it again
    with open(copy, "r+b") as handle:
        handle.seek(2880)
        handle.write(b"\0\0\0\0")
    checked = verify(settings)
    assert list(checked.failed) == ["step1/751000p"]
    assert checked.failed["step1/751000p"] == "751000p_flag.fits.fz: SHA-256 differs"
    assert stage(settings).staged == ["step1/751000p"]
    assert push(settings).failed == {} and verify(settings).failed == {}
    assert sent_files(settings.results)["sent"].all()
    assert file_sha256(copy) == read_manifest(copy.parent).set_index("file").loc[copy.name, "sha256"]


def test_destination_syntax():
    assert split_remote("archive") == (None, "archive")
    assert split_remote("/data/cadc") == (None, "/data/cadc")
    assert split_remote("./a:b") == (None, "./a:b")  # a colon after a slash: a local path (rsync's rule)
    assert split_remote("terapix@cadc.example.org:/staging/cfhtls") == ("terapix@cadc.example.org", "/staging/cfhtls")
    assert split_remote("cadc:incoming") == ("cadc", "incoming")
    for bad in ("cadc::module", "rsync://cadc/module", "cadc:", ":path"):
        with pytest.raises(TransferConfigError, match="transfer/destination"):
            split_remote(bad)
    assert MANIFEST == "manifest.csv"
