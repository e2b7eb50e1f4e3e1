"""One SCAMP solution per astrometric list (spica.calibration.solution, the solution paths)."""

from __future__ import annotations

import hashlib
import re
import subprocess

import pytest

from spica import paths
from spica.calibration.solution import deliver_solution, delivered_name
from spica.provenance import read_command, render_script, write_command

D3R = "CFHTLS_D_r_141927+524056_T0002"
SOLUTION = paths.solution_id(D3R, [751008, 751000, 751016])


def test_solution_ids_name_the_tile_and_the_list():
    digest = hashlib.sha1(b"751000,751008,751016").hexdigest()[:8]
    assert SOLUTION == f"CFHTLS_D_141927+524056_T0002_{digest}"
    # every filter of the tile gives the same id for the same list, in any order
    assert paths.solution_id("CFHTLS_D_i_141927+524056_T0002", [751016, 751000, 751008]) == SOLUTION
    assert paths.solution_id(D3R, [751000, 751008]) != SOLUTION
    assert paths.solution_id("546891p_V0001", [546891]).startswith("546891p_V0001_")
    assert paths.solution_id("CFHTLS_Pre-W_gri_142023+523540_T0002", [1]).startswith(
        "CFHTLS_Pre-W_142023+523540_T0002_")
    for solution in (SOLUTION, paths.solution_id("546891p_V0001", [546891])):
        assert re.fullmatch(paths.WILDCARD_CONSTRAINTS["solution"], solution)
    # never taken for a product stem or a chi-squared tile
    assert not re.fullmatch(paths.WILDCARD_CONSTRAINTS["stem"], SOLUTION)
    assert not re.fullmatch(paths.WILDCARD_CONSTRAINTS["chi2"], SOLUTION)
    with pytest.raises(ValueError, match="not a product stem"):
        paths.solution_id("D3_r", [1])


def test_solution_paths_and_patterns_agree(tmp_path):
    assert str(paths.solution_path("results", "T0002", SOLUTION, "scamp_xml")) == \
        f"results/releases/T0002/_scamp/{SOLUTION}/{SOLUTION}_scamp.xml"
    assert str(paths.solution_scamp_folder("results", "T0002", SOLUTION)) == \
        f"results/releases/T0002/_scamp/{SOLUTION}/scamp"
    for key in paths.SOLUTION_FILES:
        assert paths.solution_pattern(tmp_path, key).format(release="T0002", solution=SOLUTION) == \
            str(paths.solution_path(tmp_path, "T0002", SOLUTION, key))
    assert paths.solution_scamp_folder_pattern(tmp_path).format(release="T0002", solution=SOLUTION) == \
        str(paths.solution_scamp_folder(tmp_path, "T0002", SOLUTION))


def test_delivered_names():
    assert delivered_name(f"{SOLUTION}_fgroups_1.png", solution=SOLUTION, stem=D3R) == f"{D3R}_fgroups_1.png"
    assert delivered_name(f"{SOLUTION}_distortion_3.ps", solution=SOLUTION, stem=D3R) == f"{D3R}_distortion_3.ps"
    assert delivered_name("751000p.head", solution=SOLUTION, stem=D3R) == "751000p.head"


def make_solution(root):
    """A solution folder as solve_astrometry leaves it: heads, plots, XML, command."""
    folder = paths.solution_scamp_folder(root / "results", "T0002", SOLUTION)
    folder.mkdir(parents=True)
    for expnum in (751000, 751008, 751016):
        (folder / f"{expnum}p.head").write_text(f"CRVAL1  = {expnum}\nEND\n")
    for plot in ("fgroups_1.png", "fgroups_1.ps", "distortion_2.png"):
        (folder / f"{SOLUTION}_{plot}").write_bytes(plot.encode())
    (folder / ".snakemake_timestamp").write_text("")
    xml = paths.solution_path(root / "results", "T0002", SOLUTION, "scamp_xml")
    xml.write_text("<VOTABLE/>\n")
    cmd = write_command(["scamp", "a_ldac.fits"], paths.solution_path(root / "results", "T0002", SOLUTION, "scamp_cmd"))
    return folder, xml, cmd


def deliver(root, stack_list=(751000, 751008)):
    folder, xml, cmd = make_solution(root)
    out = paths.scamp_folder(root / "results", "T0002", D3R)
    run = deliver_solution(
        solution=SOLUTION, scamp_dir=folder, scamp_xml=xml, scamp_cmd=cmd, stem=D3R,
        stack_list=list(stack_list), out_dir=out,
        xml_out=out.parent / f"{D3R}_scamp.xml", cmd_out=out.parent / f"{D3R}_scamp.cmd",
    )
    return folder, out, run


def test_deliver_solution_under_the_product_names(tmp_path):
    folder, out, run = deliver(tmp_path)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["751000p.head", "751008p.head", "751016p.head", f"{D3R}_fgroups_1.png",
         f"{D3R}_fgroups_1.ps", f"{D3R}_distortion_2.png"])
    assert (out / "751016p.head").read_text() == "CRVAL1  = 751016\nEND\n"
    assert (out / f"{D3R}_distortion_2.png").read_bytes() == b"distortion_2.png"
    # real files (hard links or copies), never symbolic links out of the product
    assert not any(p.is_symlink() for p in out.iterdir())
    assert (out.parent / f"{D3R}_scamp.xml").read_text() == "<VOTABLE/>\n"
    assert read_command(out.parent / f"{D3R}_scamp.cmd").command == ["scamp", "a_ldac.fits"]
    # the rebuild copies the stack list's heads from the solution into the product
    assert run.command == ["cp", str((folder / "751000p.head").resolve()),
                           str((folder / "751008p.head").resolve()), str(out.resolve())]
    assert run.outputs == [str(out.resolve() / "751000p.head"), str(out.resolve() / "751008p.head")]
    # delivering again (a rerun) replaces the files
    deliver_solution(solution=SOLUTION, scamp_dir=folder, scamp_xml=folder.parent / f"{SOLUTION}_scamp.xml",
                     scamp_cmd=folder.parent / f"{SOLUTION}_scamp.cmd", stem=D3R, stack_list=[751000],
                     out_dir=out, xml_out=out.parent / f"{D3R}_scamp.xml",
                     cmd_out=out.parent / f"{D3R}_scamp.cmd")
    assert (out / "751000p.head").read_text() == "CRVAL1  = 751000\nEND\n"


def test_delivery_step_of_a_rebuild_script(tmp_path):
    """The recorded delivery, rendered as provenance does, copies the heads where SWarp reads them."""
    _, _, run = deliver(tmp_path)
    script = render_script(D3R, "T0002", [("heads", run)], [], tmp_path)
    assert str(tmp_path) not in script
    rebuild = tmp_path / "rebuild"
    folder, _, _ = make_solution(rebuild)
    proc = subprocess.run(["sh", "-c", script], cwd=rebuild, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    copied = paths.scamp_folder(rebuild / "results", "T0002", D3R)
    assert sorted(p.name for p in copied.iterdir()) == ["751000p.head", "751008p.head"]
    assert (copied / "751008p.head").read_text() == (folder / "751008p.head").read_text()


def test_deliver_solution_needs_every_stack_head(tmp_path):
    with pytest.raises(FileNotFoundError, match="no head for 751099p"):
        deliver(tmp_path, stack_list=(751000, 751099))
