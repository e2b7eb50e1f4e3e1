"""Command files and processing XML: the script rebuilds a product from its inputs alone."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from spica.coaddition.stack import coadd_stack
from spica.coaddition.grid import stack_grid
from spica.provenance import (CommandDelivery, ToolRun, file_sha256, read_command, render_script, write_command,
                              write_provenance)

from spica.transfer.fpack import compress
from tests.coaddition.test_coaddition import GRID_DEC, GRID_RA, GRID_SIZE_DEG, NOISE, SCALE, SWARP, _exposure, _inputs

REPO = Path(__file__).resolve().parents[2]
STACK_CONFIG = REPO / "config" / "astromatic" / "stack.swarp"


def _fake_tool(folder: Path, name: str) -> None:
    """A 'tool' that records its arguments, its folder's listing and list-file contents."""
    script = folder / name
    script.write_text(
        "#!/bin/sh\n"
        'out="$1"; shift\n'
        'printf "%s\\n" "$@" > "$out"\n'
        'ls >> "$out"\n'
        'if [ "$1" = "-c" ]; then cat "$2" >> "$out"; fi\n'
        'for f in *.lis; do [ -e "$f" ] && cat "$f" >> "$out"; done\n'
        'for f in *.head; do [ -e "$f" ] && cat "$f" >> "$out"; done\n'
        "exit 0\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_command_record_round_trip(tmp_path):
    run = ToolRun(command=["/usr/bin/SWarp", "a.fits"], cwd="/x/y", scratch=True,
                  links=[("/r/a.fits", "a.fits")], copies=[("/r/a.head", "a.head")],
                  lists=[(["/r/w1.fits", "/r/w2.fits"], "weights.lis")],
                  headers=[("/r/out.fits", [("NCOMBINE", 2, "inputs"), ("REL_DATE", "2006-01-15", "")])],
                  outputs=["/r/out.fits"])
    assert read_command(write_command(run, tmp_path / "a.cmd")) == run
    # a bare argument vector is a run in the workflow's folder
    assert read_command(write_command(["scamp", "x.cat"], tmp_path / "b.cmd")) == ToolRun(["scamp", "x.cat"])


def test_script_stages_inputs_and_runs_relative_to_its_folder(tmp_path):
    """Rendered from one folder, the script runs in another: every path moves with it."""
    ran, elsewhere, tools = tmp_path / "ran", tmp_path / "elsewhere", tmp_path / "bin"
    tools.mkdir()
    _fake_tool(tools, "faketool")
    config = tmp_path / "repo" / "tool.conf"
    config.parent.mkdir()
    config.write_text("KEY  value $HOME `x` 'quoted'\n")
    for root in (ran, elsewhere):
        (root / "raw").mkdir(parents=True)
        (root / "raw" / "700001p.fits").write_text("pixels")
        (root / "step1").mkdir()
        (root / "step1" / "700001p.head").write_text("FLXSCALE= 0.5\n")
        (root / "step1" / "700001p_weight.fits").write_text("weights")
    scratch = ran / "out" / "swarp-abc123"
    runs = [
        ("calibration", ToolRun(command=["/opt/x/faketool", str(ran / "out" / "cal" / "args.txt"),
                                         "-c", str(config), "-REF", str(ran / "raw" / "700001p.fits")],
                                cwd=str(ran / "out" / "cal"))),
        ("co-addition", ToolRun(
            command=["faketool", str(ran / "out" / "coadd_args.txt"), "700001p.fits", "-c", str(config),
                     "-WEIGHT_IMAGE", f"@{scratch}/weights.lis", "-IMAGEOUT_NAME", str(ran / "out" / "s.fits"),
                     "-RESAMPLE_DIR", str(scratch), "-NAME", "with space & $dollar"],
            cwd=str(scratch), scratch=True, outputs=[str(ran / "new" / "folder" / "s.fits")],
            links=[(str(ran / "raw" / "700001p.fits"), "700001p.fits")],
            copies=[(str(ran / "step1" / "700001p.head"), "700001p.head")],
            lists=[([str(ran / "step1" / "700001p_weight.fits")], "weights.lis")])),
    ]
    script = render_script("P", "T0002", runs, [config], root=ran)
    assert str(ran) not in script and str(config.parent) not in script
    (elsewhere / "out").mkdir()
    path = tmp_path / "P_cmd.txt"
    path.write_text(script)
    env = {**os.environ, "PATH": f"{tools}:{os.environ['PATH']}"}
    proc = subprocess.run(["sh", str(path)], cwd=elsewhere, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    cal = (elsewhere / "out" / "cal" / "args.txt").read_text().splitlines()
    assert cal[0] == "-c" and cal[1].endswith("/tool.conf") and not cal[1].startswith(str(config.parent))
    assert "KEY  value $HOME `x` 'quoted'" in cal  # the embedded configuration, verbatim
    assert not Path(cal[1]).exists()  # removed at exit
    assert cal[2:4] == ["-REF", str(elsewhere / "raw" / "700001p.fits")]
    coadd = (elsewhere / "out" / "coadd_args.txt").read_text().splitlines()
    assert coadd[coadd.index("-IMAGEOUT_NAME") + 1] == str(elsewhere / "out" / "s.fits")
    assert coadd[coadd.index("-NAME") + 1] == "with space & $dollar"
    assert coadd[coadd.index("-WEIGHT_IMAGE") + 1].endswith("/weights.lis")
    # staged in the scratch folder: the link, the head copy, the weight list
    assert {"700001p.fits", "700001p.head", "weights.lis"} <= set(coadd)
    assert str(elsewhere / "step1" / "700001p_weight.fits") in coadd and "FLXSCALE= 0.5" in coadd
    assert not (elsewhere / "out" / "swarp-abc123").exists()
    assert (elsewhere / "new" / "folder").is_dir()  # outputs' folders are made first


@pytest.mark.tools
@pytest.mark.skipif(SWARP is None, reason="SWarp/swarp not on PATH (bin/spica install)")
@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "compressed"])
def test_stack_rebuilds_from_its_command_file(tmp_path, compressed):
    """``_cmd.txt`` alone, run in a folder holding only the inputs, gives the same stack.

    Compressed (seed 3.4): the inputs are there only as RICE ``.fits.fz``; the script
    uncompresses them first and ends by compressing the stack and its weight into the
    outgoing area."""
    if compressed and not (shutil.which("fpack") and shutil.which("funpack")):
        pytest.skip("fpack/funpack not on PATH (bin/spica install: libcfitsio-bin)")
    ran, rebuild = tmp_path / "ran", tmp_path / "rebuild"
    inputs = []
    for name, dx, dy, flxscale, seed in (("700001p", 0.0, 0.0, 1.0, 1), ("700002p", 3.4, -2.2, 0.5, 2)):
        image, weight = _exposure(tmp_path, name, dx=dx, dy=dy, flxscale=flxscale, seed=seed)
        for kind, source in (("raw", image), ("step1", weight), ("scamp", image.with_suffix(".head"))):
            (ran / kind).mkdir(parents=True, exist_ok=True)
            inputs.append(Path(kind) / source.name)
            shutil.copy(source, ran / inputs[-1])
    (ran / "out").mkdir()
    grid = stack_grid(GRID_RA, GRID_DEC, size_deg=GRID_SIZE_DEG, pixel_scale_arcsec=SCALE)
    run = coadd_stack(
        SWARP, STACK_CONFIG,
        exposures=sorted((ran / "raw").glob("*.fits")), weights=sorted((ran / "step1").glob("*.fits")),
        heads=sorted((ran / "scamp").glob("*.head")), out_image=ran / "out" / "s.fits",
        out_weight=ran / "out" / "s_weight.fits", xml_out=ran / "out" / "s_swarp.xml", grid=grid,
        inputs=_inputs().iloc[:2], release="T0002", software={"SWarp": "2.41.5"},
        overrides={"VERBOSE_TYPE": "QUIET"},
    )
    write_command(run, ran / "out" / "s_swarp.cmd")
    write_provenance(
        product="s", release="T0002", steps=[("co-addition (SWarp)", ran / "out" / "s_swarp.cmd")],
        inputs={"exposure": sorted((ran / "raw").glob("*.fits"))}, configs=[STACK_CONFIG],
        software={"swarp": "2.41.5"}, options={"swarp": {"VERBOSE_TYPE": "QUIET"}},
        cmd_out=ran / "out" / "s_cmd.txt", xml_out=ran / "out" / "s.xml", root=ran,
        delivery=CommandDelivery(inputs=[str(ran / p) for p in inputs if p.suffix == ".fits"],
                          images=[str(ran / "out" / "s.fits"), str(ran / "out" / "s_weight.fits")],
                          files=[str(ran / "out" / "s_swarp.xml")], outgoing="outgoing", folder="T0002/s",
                          quantize_level=16) if compressed else None,
    )
    # the XML names inputs relative to the folder, with their checksums
    files = {f.get("name"): f.get("sha256") for f in ET.parse(ran / "out" / "s.xml").getroot().iter("FILE")
             if f.get("kind") == "exposure"}
    assert files == {str(p): file_sha256(ran / p) for p in inputs if p.parts[0] == "raw"}
    for relative in inputs:  # only the inputs, nothing SPICA made
        (rebuild / relative).parent.mkdir(parents=True, exist_ok=True)
        if compressed and relative.suffix == ".fits":  # as delivered: RICE-compressed only
            compress(ran / relative, rebuild / f"{relative}.fz", quantize_level=16)
        else:
            shutil.copy(ran / relative, rebuild / relative)
    (rebuild / "out").mkdir()
    env = {**os.environ, "PYTHON": sys.executable, "PATH": f"{Path(SWARP).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(["sh", str(ran / "out" / "s_cmd.txt")], cwd=rebuild, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("s.fits", "s_weight.fits"):
        original, rebuilt = fits.getdata(ran / "out" / name), fits.getdata(rebuild / "out" / name)
        if compressed:  # inputs quantized at sigma/16: the stack moves by a fraction of its noise
            assert np.std(rebuilt - original) < 0.05 * NOISE and np.abs(rebuilt - original).max() < NOISE
            delivered = fits.getdata(rebuild / "outgoing" / "T0002" / "s" / f"{name}.fz", 1)
            assert np.allclose(delivered, rebuilt, atol=0.1 * NOISE)  # the copy in the outgoing area
        else:
            assert np.allclose(rebuilt, original, rtol=1e-6, atol=1e-6)
    if compressed:
        assert sorted(p.name for p in (rebuild / "outgoing" / "T0002" / "s").iterdir()) == [
            "s.fits.fz", "s_swarp.xml", "s_weight.fits.fz"]
        script = (ran / "out" / "s_cmd.txt").read_text()
        lines = script.splitlines()
        first = [next(i for i, line in enumerate(lines) if test(line)) for test in (
            lambda line: " funpack " in line, lambda line: line.startswith(Path(SWARP).name + " "),
            lambda line: line.startswith("fpack "))]
        assert first == sorted(first)  # uncompress, run, then compress and copy
    header = fits.getheader(rebuild / "out" / "s.fits")
    assert header["REL_DATE"] == "2006-01-15T10:20:30" and header["NCOMBINE"] == 2
    assert header["MAGZERO"] == 30.0 and header["IMCMB002"] == "700002p"
    # the weight map carries the release and its date too (seed 3.3)
    weight = fits.getheader(rebuild / "out" / "s_weight.fits")
    assert (weight["RELEASE"], weight["REL_DATE"]) == ("T0002", "2006-01-15T10:20:30")
