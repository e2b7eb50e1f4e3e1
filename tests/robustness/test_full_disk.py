"""Full disk (issue 11, section 4): the results tree on a small tmpfs that fills up.

A copy of the reference run has its results tree on a tmpfs made by the test
(``mount -t tmpfs``, as root; skipped otherwise), the D3 r stack removed and
the file system filled but for a few MB (a filler file). Rebuilding the stack,
SWarp runs out of space: the run fails with "no space left on device: <folder>"
(:func:`spica.astromatic._run.run_tool`, printed to Snakemake's output since the
job's log may sit on the full disk), no output of the failed job is left, the
dry-run lists the stack again; once the filler is deleted the stack is built and
equals the reference run's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from astropy.io import fits

from tests.e2e.compare_products import compare_trees, failed, summarise
from tests.robustness.conftest import STEM, TRIGGERS, dry_run_jobs, product, snakemake

#: Space left free beside the filler (bytes): room for logs, not for a stack's frames.
LEFT_FREE = 3 << 20


def _mount_tmpfs(folder: Path, size_mb: int) -> str | None:
    """Mount a tmpfs of ``size_mb`` at ``folder``; the reason it cannot, or None."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    if shutil.which("mount") is None:
        return "no mount command"
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(folder)],
                          capture_output=True, text=True, check=False)
    return None if done.returncode == 0 else f"mount -t tmpfs not permitted: {done.stderr.strip()}"


def _free(folder: Path) -> int:
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize


@pytest.mark.tools
@pytest.mark.e2e
def test_full_disk_fails_clearly_and_completes_after_space_is_freed(reference, tmp_path):
    source = reference.workdir()
    workdir = tmp_path / "full"
    results = workdir / "results"
    results.mkdir(parents=True)
    used = sum(p.stat().st_size for p in (source / "results").rglob("*") if p.is_file())
    reason = _mount_tmpfs(results, used // (1 << 20) + 64)
    if reason:
        pytest.skip(reason)
    try:
        for name in ("demo", ".snakemake"):
            shutil.copytree(source / name, workdir / name, symlinks=True)
        subprocess.run(["cp", "-a", f"{source / 'results'}/.", str(results)], check=True)
        stack = str(product(workdir, "image").relative_to(workdir))
        for key in ("image", "weight"):
            product(workdir, key).unlink()
        filler = results / "filler.bin"
        with open(filler, "wb") as handle:  # fill all but LEFT_FREE
            handle.truncate(0)
            left = _free(results) - LEFT_FREE
            block = bytes(1 << 20)
            while left > 0:
                handle.write(block[: min(left, len(block))])
                left -= len(block)
        assert _free(results) < 2 * LEFT_FREE

        full = snakemake(workdir, stack, *TRIGGERS)
        said = full.stdout + full.stderr
        assert full.returncode != 0
        assert f"no space left on device: {results.resolve()}" in said, said[-3000:]
        print(f"\nfull disk: {next(line for line in said.splitlines() if 'no space left' in line)}")
        # no output of the failed job left in place, no scratch frames; it is pending again
        leftovers = [p.name for p in product(workdir, "image").parent.iterdir()
                     if p.name.startswith((f"{STEM}.fits", f"{STEM}_weight.fits", "swarp-"))]
        assert not leftovers, leftovers
        assert dry_run_jobs(workdir, stack, *TRIGGERS).get("coadd_stack") == 1

        filler.unlink()  # space freed: the same command completes
        again = snakemake(workdir, stack, *TRIGGERS)
        assert again.returncode == 0, again.stderr[-3000:]
        assert dry_run_jobs(workdir, stack, *TRIGGERS) == {}
        folder = product(workdir, "image").parent
        outcomes = compare_trees(product(source, "image").parent, folder, extra_roots=(source, workdir))
        print(summarise(outcomes))
        assert not failed(outcomes), summarise(outcomes)
        with fits.open(product(workdir, "image")) as hdul:
            assert hdul[0].header["NCOMBINE"] == 2
    finally:
        subprocess.run(["umount", "-l", str(results)], check=False)


def test_a_failed_write_is_named_and_a_full_disk_after_success_is_an_error(tmp_path, monkeypatch):
    """Without a real full disk: a tool that reports a failed write (AstrOmatic's
    ``*Error* while writing``) into a writable folder, and a tool that ends
    successfully on a full file system (its outputs may be truncated)."""
    import errno

    from spica.astromatic import _run

    target = tmp_path / "stack.fits"
    with open(tmp_path / "tool.log", "w") as log, pytest.raises(OSError) as caught:
        _run.run_tool(["sh", "-c", f"echo '> *Error* while writing {target}' >&2; exit 1"],
                      log=log, cwd=tmp_path)
    mount = _run._mount_point(tmp_path)
    assert caught.value.errno == errno.ENOSPC
    assert str(caught.value).startswith(f"[Errno 28] no space left on device: {mount} (sh could not "
                                        "write stack.fits;")
    with open(tmp_path / "other.log", "w") as log, pytest.raises(subprocess.CalledProcessError):
        _run.run_tool(["sh", "-c", "echo '> *Error* bad keyword' >&2; exit 1"], log=log, cwd=tmp_path)
    monkeypatch.setattr(_run, "FULL_DISK_BYTES", 1 << 62)  # every disk is "full"
    monkeypatch.setattr(_run.full_disks, "__kwdefaults__", {"minimum": 1 << 62})
    with pytest.raises(OSError, match="ended with the disk full: its outputs may be truncated"):
        _run.run_tool(["true"], cwd=tmp_path, outputs=[target])
