"""Stack planning (spica.release.planning): stack centres, lists, nodes and the plan files."""

from __future__ import annotations

import copy
import os
import time

import numpy as np
import pandas as pd
import pytest

import json
import re

from spica.paths import SOLUTION_RE, image_by_image_name, product_path, solution_id, stack_name
from spica.release.planning import (
    PLAN_FILES,
    PlannedProduct,
    done_products,
    missing_files,
    missing_product_files,
    plan_files,
    read_exposure_list,
    write_exposure_list,
    SELECTION_COLUMNS,
    STACK_COLUMNS,
    Plan,
    assign_stacks,
    pending_report,
    stale_solutions,
    plan_release,
    read_plan,
    write_plan,
)
from spica.release.selection import evaluate_criteria
from tests.release.test_selection import demo_exposures, one

#: the seed's names of the four Deep stacks (Pending processes table)
SEED_DEEP_NAMES = ["CFHTLS_D_g_022559-042939", "CFHTLS_D_g_100028+021229",
                   "CFHTLS_D_g_141927+524056", "CFHTLS_D_g_221531-174356"]


def offset(ra: float, dec: float, north_arcmin: float = 0.0, east_arcmin: float = 0.0):
    """Move a position by true angular offsets (small-offset, tangent plane)."""
    dec2 = dec + north_arcmin / 60.0
    ra2 = (ra + east_arcmin / 60.0 / np.cos(np.radians(dec))) % 360.0
    return ra2, dec2


def plan_of(frame, cfg, survey, release="T0002", **kwargs) -> Plan:
    return plan_release(frame, release, cfg["releases"][release], survey, cfg["planning"],
                        **kwargs)


def sel_failure(plan: Plan, expnum: int) -> str:
    return plan.selection.set_index("expnum").loc[expnum, "first_failure"]


def stacked(frame, cfg, survey, release="T0002") -> pd.DataFrame:
    sel = evaluate_criteria(frame, cfg["releases"][release], survey)
    return assign_stacks(sel, survey, image_version=cfg["releases"][release]["image_version"],
                         deep_match_factor=cfg["planning"]["deep_match_factor"])


# ------------------------------------------------------------- stack centres

def test_real_deep_stack_names(cfg, real_survey):
    """Deep stacks are named from the configured field centres (full-precision centres)."""
    survey = copy.deepcopy(real_survey)
    exact = [(2, 25, 59, -1, 4, 29, 39), (10, 0, 28, 1, 2, 12, 29), (14, 19, 27, 1, 52, 40, 56),
             (22, 15, 31, -1, 17, 43, 56)]
    for field, (h, m, s, sign, d, dm, ds) in zip(survey["deep_fields"], exact):
        field["ra"] = (h + m / 60 + s / 3600) * 15
        field["dec"] = sign * (d + dm / 60 + ds / 3600)
    frame = pd.concat([one(expnum=800000 + i, ra_deg=f["ra"] + 0.1, dec_deg=f["dec"] - 0.1)
                       for i, f in enumerate(survey["deep_fields"])], ignore_index=True)
    plan = plan_of(frame, cfg, survey)
    assert sorted(plan.stacks["name"]) == SEED_DEEP_NAMES
    assert set(plan.stacks["survey"]) == {"D"}
    assert all(len(v) == 1 for v in plan.stack_lists.values())


def test_real_deep_stack_names_from_cfhtls_yaml(cfg, real_survey):
    names = [stack_name("D", "g", f["ra"], f["dec"]) for f in real_survey["deep_fields"]]
    assert names == SEED_DEEP_NAMES


def test_deep_field_nearest_within_tile(cfg, real_survey):
    d3 = real_survey["deep_fields"][2]
    near = one(expnum=1, ra_deg=d3["ra"], dec_deg=d3["dec"] + 0.74)
    far = one(expnum=2, ra_deg=d3["ra"], dec_deg=d3["dec"] + 0.76)
    out = stacked(pd.concat([near, far], ignore_index=True), cfg, real_survey).set_index("expnum")
    assert out.loc[1, "stack"] == stack_name("D", "g", d3["ra"], d3["dec"])
    assert out.loc[1, "mode"] == "stack"
    assert out.loc[2, "stack"] == "" and out.loc[2, "first_failure"] == "no_stack"
    assert not out.loc[2, "selected"]


@pytest.mark.parametrize("arcmin, ok", [(9.99, True), (10.01, False)])
@pytest.mark.parametrize("direction", ["north", "east"])
def test_wide_ten_arcmin_rule(cfg, real_survey, arcmin, ok, direction):
    target = real_survey["wide_targets"][0]  # W3+2-1
    kwargs = {"north_arcmin": arcmin} if direction == "north" else {"east_arcmin": arcmin}
    ra, dec = offset(target["ra"], target["dec"], **kwargs)
    frame = one(runid="04AL05", object="W3+2-1", filter="i.MP9701", band="i", ra_deg=ra,
                dec_deg=dec)
    row = stacked(frame, cfg, real_survey).iloc[0]
    if ok:
        assert row["stack"] == "CFHTLS_W_i_143007+533430" == stack_name(
            "W", "i", target["ra"], target["dec"])
        assert row["selected"]
    else:
        assert row["stack"] == "" and row["first_failure"] == "wide_radius"
        assert row["failures"] == "wide_radius"


def test_wide_nearest_target_and_failures_reported(cfg, real_survey):
    target = real_survey["wide_targets"][0]
    ra, dec = offset(target["ra"], target["dec"], north_arcmin=30)
    frame = one(runid="04AL05", object="W3", ra_deg=ra, dec_deg=dec, airmass=1.7)
    row = stacked(frame, cfg, real_survey).iloc[0]
    assert row["first_failure"] == "airmass"
    assert row["failures"] == "airmass;wide_radius"


def wrap_survey(ra: float, dec: float) -> dict:
    return {"tile_size_deg": 1.0, "wide_match_radius_arcmin": 10.0, "astrometric_radius_deg": 2.5,
            "runid_programs": {"L05": "W", "L01": "D"}, "pre_survey_object_prefix": "PW",
            "deep_fields": [{"name": "DX", "ra": ra, "dec": dec}],
            "wide_targets": [{"name": "WX", "ra": ra, "dec": dec}]}


def test_ra_wrap(cfg):
    survey = wrap_survey(359.99, 0.0)
    frame = pd.concat([
        one(expnum=1, runid="04AL05", object="WX", ra_deg=0.01, dec_deg=0.0),
        one(expnum=2, runid="04AL01", object="DX", ra_deg=0.5, dec_deg=0.2),
    ], ignore_index=True)
    out = stacked(frame, cfg, survey).set_index("expnum")
    assert out.loc[1, "stack"] == "CFHTLS_W_g_235957+000000"
    assert out.loc[2, "stack"] == "CFHTLS_D_g_235957+000000"
    plan = plan_of(frame, cfg, survey)
    assert plan.astrometric_lists["CFHTLS_W_g_235957+000000"] == [1, 2]


@pytest.mark.parametrize("arcmin, ok", [(9.9, True), (10.1, False)])
def test_high_dec_ra_offsets_scaled(cfg, arcmin, ok):
    survey = wrap_survey(100.0, 85.0)
    # 9.9' east at Dec 85 is ~1.9 deg of RA: a flat RA/Dec distance would reject it
    ra, dec = offset(100.0, 85.0, east_arcmin=arcmin)
    assert abs(ra - 100.0) > 1.8
    frame = one(runid="04AL05", object="WX", ra_deg=ra, dec_deg=dec)
    row = stacked(frame, cfg, survey).iloc[0]
    assert (row["stack"] != "") == ok
    assert row["first_failure"] == ("" if ok else "wide_radius")


def test_pre_survey_and_very_wide(cfg, demo_survey):
    plan = plan_of(demo_exposures(), cfg, demo_survey)
    by = plan.stacks.set_index("name")
    pre = stack_name("Pre-W", "r", 215.0971192, 52.5946887)
    assert by.loc[pre, "survey"] == "Pre-W" and by.loc[pre, "n_swarp"] == 1
    assert by.loc[pre, "mode"] == "stack"
    vw = image_by_image_name(751197, "V0001", suffix="")
    assert vw == "751197p_V0001"
    assert by.loc[vw, "mode"] == "image" and by.loc[vw, "survey"] == "VW"
    assert plan.stack_lists[vw] == [751197]
    assert by.loc[vw, "version"] == "0001"
    d3 = demo_survey["deep_fields"][0]
    d3r = stack_name("D", "r", d3["ra"], d3["dec"])
    assert d3r == "CFHTLS_D_r_141927+524056"
    assert plan.stack_lists[d3r] == [751000, 751037, 751113]
    assert by.loc[d3r, "filter"] == "r.MP9601"
    assert by.loc[d3r, "version"] == "0002" and by.loc[d3r, "release"] == "T0002"
    # the demo puts 751142 16' (scaled) from W3+0+2: outside the Wide radius
    assert sel_failure(plan, 751142) == "wide_radius"
    w = stack_name("W", "r", 215.08051, 52.75886)
    assert plan.stack_lists[w] == [751050, 751058]
    assert list(plan.stacks.columns) == list(STACK_COLUMNS)
    assert set(plan.stacks["status"]) == {"pending"}
    assert (plan.stacks["size_deg"] == demo_survey["tile_size_deg"]).all()
    # stack lists hold only selected exposures of that band
    sel = plan.selection.set_index("expnum")
    for name, expnums in plan.stack_lists.items():
        assert sel.loc[expnums, "selected"].all()
        assert (sel.loc[expnums, "stack"] == name).all()
        assert sel.loc[expnums, "band"].nunique() == 1


def test_image_version_required_for_very_wide(cfg, demo_survey):
    sel = evaluate_criteria(demo_exposures(), cfg["releases"]["T0002"], demo_survey)
    with pytest.raises(ValueError, match="image_version"):
        assign_stacks(sel, demo_survey, deep_match_factor=cfg["planning"]["deep_match_factor"])


# --------------------------------------------------------- astrometric lists

def test_astrometric_list_other_filters_and_pi(cfg, real_survey):
    d3 = real_survey["deep_fields"][2]
    ra_in, dec_in = offset(d3["ra"], d3["dec"], north_arcmin=2.4 * 60)
    ra_out, dec_out = offset(d3["ra"], d3["dec"], north_arcmin=2.6 * 60)
    frame = pd.concat([
        one(expnum=1),                                                     # stacked
        one(expnum=2, filter="i.MP9701", band="i"),                        # other filter
        one(expnum=3, runid="04AC14", object="PI", ra_deg=ra_in, dec_deg=dec_in),  # PI, in
        one(expnum=4, runid="04AC14", object="PI", ra_deg=ra_out, dec_deg=dec_out),  # out
        one(expnum=5, qa_fwhm_arcsec=1.5),                                 # bad seeing: ok, A
        one(expnum=6, grade="C"),                                          # grade C
        one(expnum=7, status="quarantined", grade=None),                   # quarantined
        one(expnum=8, date_obs="2006-01-01", grade="B"),                   # outside the period
    ], ignore_index=True)
    plan = plan_of(frame, cfg, real_survey)
    g = stack_name("D", "g", d3["ra"], d3["dec"])
    assert plan.stack_lists[g] == [1]
    assert plan.astrometric_lists[g] == [1, 2, 3, 5, 8]
    row = plan.stacks.set_index("name").loc[g]
    assert (row["n_scamp"], row["n_swarp"]) == (5, 1)
    for name in plan.stack_lists:
        assert set(plan.stack_lists[name]) <= set(plan.astrometric_lists[name])


def test_regraded_d_enters_stack_and_astrometric_lists(cfg, demo_survey):
    exposures = demo_exposures()
    before = plan_of(exposures, cfg, demo_survey)
    d3i = stack_name("D", "i", 214.8625, 52.6822222222)
    assert 751126 not in before.stack_lists[d3i]
    assert 751126 not in before.astrometric_lists[d3i]
    assert before.selection.set_index("expnum").loc[751126, "first_failure"] == "grade"
    regraded = exposures.copy()
    regraded.loc[regraded["expnum"] == 751126, ["grade", "grade_provisional"]] = ["A", False]
    after = plan_of(regraded, cfg, demo_survey)
    assert 751126 in after.stack_lists[d3i]
    assert 751126 in after.astrometric_lists[d3i]
    d3 = demo_survey["deep_fields"][0]
    d3r = stack_name("D", "r", d3["ra"], d3["dec"])
    assert d3r == "CFHTLS_D_r_141927+524056"
    # the re-graded i exposure also joins the astrometric list of the r stack
    assert 751126 in after.astrometric_lists[d3r] and 751126 not in before.astrometric_lists[d3r]
    assert after.stack_lists[d3r] == before.stack_lists[d3r]


def test_grade_c_stays_out(cfg, demo_survey):
    plan = plan_of(demo_exposures(), cfg, demo_survey)
    assert all(751092 not in v for v in plan.astrometric_lists.values())


def test_lists_do_not_depend_on_row_order(cfg, demo_survey):
    plan = plan_of(demo_exposures(), cfg, demo_survey)
    again = plan_of(demo_exposures().sample(frac=1.0, random_state=1), cfg, demo_survey)
    assert again.stack_lists == plan.stack_lists
    assert again.astrometric_lists == plan.astrometric_lists


# ------------------------------------------------- products and tiles of a plan

D3 = "141927+524056"


def test_products_by_stem(cfg, demo_survey):
    plan = plan_of(demo_exposures(), cfg, demo_survey)
    products = plan.products()
    assert list(products) == [plan.stem_of(n) for n in plan.stacks["name"]]  # plan order
    d3r = products[f"CFHTLS_D_r_{D3}_T0002"]
    assert d3r == PlannedProduct(
        stem=f"CFHTLS_D_r_{D3}_T0002", name=f"CFHTLS_D_r_{D3}", mode="stack", band="r",
        ra=214.8625, dec=52.6822222222, size_deg=demo_survey["tile_size_deg"],
        tile=f"CFHTLS_D_ugriz_{D3}_T0002",
        solution=solution_id(f"CFHTLS_D_g_{D3}_T0002", plan.astrometric_lists[f"CFHTLS_D_r_{D3}"]))
    # an image-by-image product carries its own version in its stem
    vw = products["751197p_V0001"]
    assert (vw.name, vw.mode, vw.band, vw.tile) == ("751197p_V0001", "image", "r", "751197p_r_V0001")
    assert plan.name_of(f"CFHTLS_D_r_{D3}_T0002") == f"CFHTLS_D_r_{D3}"
    assert plan.stem_of("751197p_V0001") == "751197p_V0001"
    with pytest.raises(KeyError, match="not in the plan of T0002"):
        plan.name_of(f"CFHTLS_D_r_{D3}_T0001")
    with pytest.raises(KeyError, match="not in the plan"):
        plan.stem_of("CFHTLS_D_g_000000+000000")
    assert plan.products() is products  # computed once per plan


def test_tiles_group_the_filters_of_a_position(cfg, demo_survey):
    plan = plan_of(demo_exposures(), cfg, demo_survey)
    tiles = plan.tiles()
    assert tiles[f"CFHTLS_D_ugriz_{D3}_T0002"] == sorted(
        f"CFHTLS_D_{band}_{D3}_T0002" for band in "ugriz")
    assert tiles["751197p_r_V0001"] == ["751197p_V0001"]  # an image is its own tile
    assert list(tiles)[-1] == "751197p_r_V0001"  # release tiles first, images last
    # every product is detected on exactly one tile: the one it names
    assert sorted(s for stems in tiles.values() for s in stems) == sorted(plan.products())
    assert all(plan.products()[s].tile == tile for tile, stems in tiles.items() for s in stems)
    assert plan.tiles() is tiles


def test_products_and_tiles_survive_the_plan_files(cfg, demo_survey, tmp_path):
    plan = plan_of(demo_exposures(), cfg, demo_survey)
    write_plan(plan, tmp_path)
    back = read_plan(tmp_path)
    assert back.tiles() == plan.tiles()
    assert back.products() == plan.products()


def test_one_solution_per_distinct_astrometric_list(cfg, demo_survey):
    """Products with the same astrometric list share one SCAMP solution, named after
    the first of them (stack stem without its band, or the image stem) and the list."""
    plan = plan_of(demo_exposures(), cfg, demo_survey)
    solutions = plan.solutions()
    lists = {stem: tuple(plan.astrometric_lists[p.name]) for stem, p in plan.products().items()}
    # the five filters of the D3 tile share one list, hence one solution
    d3 = plan.products()[f"CFHTLS_D_g_{D3}_T0002"].solution
    assert re.fullmatch(rf"CFHTLS_D_{re.escape(D3)}_T0002_[0-9a-f]{{8}}", d3)
    assert {f"CFHTLS_D_{b}_{D3}_T0002" for b in "ugriz"} <= set(solutions[d3])
    assert len(solutions) == len(set(lists.values())) == 4 < len(plan.products()) == 11
    for solution, stems in solutions.items():
        assert re.fullmatch(SOLUTION_RE, solution)
        assert {lists[stem] for stem in stems} == {tuple(plan.solution_list(solution))}
        assert solution == solution_id(stems[0], plan.solution_list(solution))
        assert stems == [s for s in plan.products() if s in stems]  # plan order
        assert all(plan.products()[stem].solution == solution for stem in stems)
    assert sorted(s for stems in solutions.values() for s in stems) == sorted(plan.products())
    # the image-by-image product first in plan order names the solution it shares
    assert plan.products()["751197p_V0001"].solution.startswith("751197p_V0001_")
    with pytest.raises(KeyError, match="not a solution of the plan of T0002"):
        plan.solution_list(f"CFHTLS_D_{D3}_T0002_00000000")
    assert plan.solutions() is solutions  # computed once per plan


def test_solutions_follow_the_lists_not_the_row_order(cfg, demo_survey):
    frame = demo_exposures()
    plan = plan_of(frame, cfg, demo_survey)
    again = plan_of(frame.iloc[::-1].reset_index(drop=True), cfg, demo_survey)
    assert again.solutions() == plan.solutions()
    # a regrade that changes the D3 list renames its solution (SCAMP reruns once for the tile)
    regraded = frame.copy()
    regraded.loc[regraded["expnum"] == 751126, "grade"] = "A"
    after = plan_of(regraded, cfg, demo_survey)
    before_d3 = plan.products()[f"CFHTLS_D_r_{D3}_T0002"].solution
    after_d3 = after.products()[f"CFHTLS_D_r_{D3}_T0002"].solution
    assert after_d3 != before_d3 and after_d3.rsplit("_", 1)[0] == before_d3.rsplit("_", 1)[0]
    assert after.products()[f"CFHTLS_D_i_{D3}_T0002"].solution == after_d3
    assert 751126 in after.solution_list(after_d3) and 751126 not in plan.solution_list(before_d3)


def test_solutions_are_written_with_the_lists(cfg, demo_survey, tmp_path):
    plan = plan_of(demo_exposures(), cfg, demo_survey)
    paths = write_plan(plan, tmp_path)
    assert json.loads(paths["lists"].read_text())["solutions"] == plan.solutions()
    back = read_plan(tmp_path)
    assert back.solutions() == plan.solutions()
    assert {k: back.solution_list(k) for k in back.solutions()} == \
        {k: plan.solution_list(k) for k in plan.solutions()}


def test_missing_product_files_from_one_listing(tmp_path):
    """The files of a product the release target names because they are missing: in the
    order asked, the product's folder listed once; all of them without the folder."""
    stem = f"CFHTLS_D_r_{D3}_T0002"
    keys = ["image", "weight", "heads", "psf_m", "reg"]
    expected = [str(product_path(tmp_path, "T0002", stem, key)) for key in keys]
    assert missing_product_files(tmp_path, "T0002", stem, keys) == expected
    folder = tmp_path / "releases" / "T0002" / stem
    folder.mkdir(parents=True)
    (folder / f"{stem}.fits").write_bytes(b"")
    (folder / f"{stem}_heads").mkdir()  # a folder output (the delivered heads) counts
    (folder / f"{stem}_reg.txt").write_text("")
    (folder / "CFHTLS_D_i_x_T0002_weight.fits").write_bytes(b"")  # another product's name
    assert missing_product_files(tmp_path, "T0002", stem, keys) == [expected[1], expected[3]]
    assert missing_product_files(tmp_path, "T0002", stem, []) == []


def test_missing_files_across_folders(tmp_path, monkeypatch):
    """Missing files of several folders, in the order given, each folder listed once."""
    import spica.release.planning as planning

    (tmp_path / "a").mkdir()
    for name in ("x.png", "y.ps"):
        (tmp_path / "a" / name).write_text("")
    files = [tmp_path / "a" / "x.png", tmp_path / "b" / "z.ps", tmp_path / "a" / "w.ps",
             tmp_path / "a" / "y.ps", tmp_path / "b" / "v.ps"]
    listed = []
    listdir = planning.os.listdir
    monkeypatch.setattr(planning.os, "listdir", lambda path: listed.append(path) or listdir(path))
    assert missing_files(files) == [str(files[1]), str(files[2]), str(files[4])]
    assert sorted(map(str, listed)) == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert missing_files([]) == []


def test_done_products_are_the_stacks_made(cfg, demo_survey, tmp_path):
    plan = plan_of(demo_exposures(), cfg, demo_survey)
    assert done_products(plan, tmp_path) == []
    made = [f"CFHTLS_D_r_{D3}_T0002", "751197p_V0001"]
    for stem in made:  # the final stack image, as the rules name it
        folder = tmp_path / "releases" / "T0002" / stem
        folder.mkdir(parents=True)
        (folder / f"{stem}.fits").write_bytes(b"")
    # other files of a product do not make it done
    (tmp_path / "releases" / "T0002" / f"CFHTLS_D_r_{D3}_T0002" / "x_weight.fits").write_bytes(b"")
    assert done_products(plan, tmp_path) == sorted(plan.name_of(s) for s in made)
    asked = []
    assert done_products(plan, "res", exists=lambda p: asked.append(p) or False) == []
    assert str(asked[0]).startswith("res/releases/T0002/")
    # the pending view leaves the done products out
    report = pending_report(read_plan_with_done(plan, tmp_path), longest=cfg["planning"]["longest_stacks"])
    assert f"Pending processes ({len(plan.stacks) - 2})" in report


def read_plan_with_done(plan, results):
    """What rule report_pending does: the plan with the products made marked done."""
    write_plan(plan, results / "plan")
    return read_plan(results / "plan", done=set(done_products(plan, results)))


# ------------------------------------------------------------------- nodes

def test_greedy_node_assignment(cfg, demo_survey):
    planning = dict(cfg["planning"], nodes=["mix2", "mix3", "pix9"])
    plan = plan_release(demo_exposures(), "T0002", cfg["releases"]["T0002"], demo_survey,
                        planning)
    stacks = plan.stacks.sort_values(["n_scamp", "name"], ascending=[False, True])
    loads = {"mix2": 0, "mix3": 0, "pix9": 0}
    for _, row in stacks.iterrows():
        expected = min(loads, key=lambda n: loads[n])
        assert row["node"] == expected
        loads[expected] += row["n_scamp"]
    assert set(plan.stacks["node"]) == {"mix2", "mix3", "pix9"}


def test_done_stacks(cfg, demo_survey):
    first = plan_of(demo_exposures(), cfg, demo_survey)
    name = first.stacks["name"].iloc[0]
    plan = plan_of(demo_exposures(), cfg, demo_survey, done={name})
    status = plan.stacks.set_index("name")["status"]
    assert status[name] == "done"
    assert (status.drop(name) == "pending").all()
    report = pending_report(plan, longest=cfg["planning"]["longest_stacks"])
    assert f"Pending processes ({len(plan.stacks) - 1})" in report
    assert name not in report


# ---------------------------------------------------------------- releases

def test_t0001_and_t0003(cfg, demo_survey):
    t1 = plan_of(demo_exposures(), cfg, demo_survey, release="T0001")
    assert set(t1.stacks["version"]) <= {"0001"}
    assert not any(n.startswith("751197p") for n in t1.stacks["name"])   # VW after T0001
    extended = copy.deepcopy(cfg)
    extended["releases"]["T0003"] = dict(copy.deepcopy(cfg["releases"]["T0002"]),
                                         period={"start": "2003-06-01", "end": "2005-12-31"},
                                         image_version="V0002")
    late = pd.concat([demo_exposures(), one(expnum=760000, object="D3", runid="05AL01",
                                            date_obs="2005-06-01", ra_deg=214.86)],
                     ignore_index=True)
    t3 = plan_release(late, "T0003", extended["releases"]["T0003"], demo_survey,
                      extended["planning"])
    by = t3.stacks.set_index("name")
    assert 760000 in t3.stack_lists[stack_name("D", "g", 214.8625, 52.6822222222)]
    assert by.loc["751197p_V0002", "mode"] == "image"
    assert set(by.loc[by["mode"] == "stack", "version"]) == {"0003"}
    assert set(t3.stacks["release"]) == {"T0003"}


# ----------------------------------------------------------- files, report

def test_write_read_roundtrip_and_mtimes(cfg, demo_survey, tmp_path):
    plan = plan_of(demo_exposures(), cfg, demo_survey)
    paths = write_plan(plan, tmp_path / "plan")
    assert {p.name for p in paths.values()} == {f"T0002_{n}" for n in PLAN_FILES.values()}
    assert paths == plan_files(tmp_path / "plan", "T0002")
    back = read_plan(tmp_path / "plan")
    assert back.release == "T0002"
    assert read_plan(tmp_path / "plan", release="T0002").stack_lists == plan.stack_lists
    pd.testing.assert_frame_equal(back.stacks, plan.stacks.sort_values("name")
                                  .reset_index(drop=True), check_dtype=False)
    assert back.stack_lists == plan.stack_lists
    assert back.astrometric_lists == plan.astrometric_lists
    assert list(back.selection.columns) == [c for c in SELECTION_COLUMNS
                                            if c in plan.selection.columns]
    assert back.selection["selected"].dtype == bool
    assert back.stacks["version"].iloc[0] in {"0002", "0001"}

    old = {k: p.stat().st_mtime_ns for k, p in paths.items()}
    past = time.time() - 100
    for p in paths.values():
        os.utime(p, (past, past))
    old = {k: p.stat().st_mtime_ns for k, p in paths.items()}
    assert write_plan(read_plan(tmp_path / "plan"), tmp_path / "plan") == paths
    write_plan(plan, tmp_path / "plan")
    assert {k: p.stat().st_mtime_ns for k, p in paths.items()} == old

    regraded = demo_exposures()
    regraded.loc[regraded["expnum"] == 751126, "grade"] = "A"
    write_plan(plan_of(regraded, cfg, demo_survey), tmp_path / "plan")
    new = {k: p.stat().st_mtime_ns for k, p in paths.items()}
    assert new["lists"] != old["lists"] and new["selection"] != old["selection"]


def test_pending_report(cfg, real_survey):
    d1 = real_survey["deep_fields"][0]
    w = real_survey["wide_targets"][0]
    frame = pd.concat([
        one(expnum=1, ra_deg=d1["ra"], dec_deg=d1["dec"], filter="r.MP9601", band="r"),
        one(expnum=2, ra_deg=d1["ra"], dec_deg=d1["dec"], filter="r.MP9601", band="r"),
        one(expnum=3, runid="04AL05", object="W3+2-1", ra_deg=w["ra"], dec_deg=w["dec"],
            filter="i.MP9701", band="i"),
    ], ignore_index=True)
    plan = plan_release(frame, "T0002", cfg["releases"]["T0002"], real_survey,
                        dict(cfg["planning"], nodes=["mix3", "pix9"]))
    report = pending_report(plan, longest=1)
    lines = report.splitlines()
    assert lines[0] == "Pending processes (2)"
    assert lines[2].split("  ")[0] == "Image"
    assert "Scamp files" in lines[2] and "Swarp files" in lines[2]
    assert "02 h 25 m 59" in report
    assert "-04 \u00b0 29 ' 39" in report
    assert "14 h 30 m 07" in report and "+53 \u00b0 34 ' 30" in report
    filters = lines[lines.index(next(l for l in lines if l.startswith("Filter"))):]
    assert filters[1].split() == ["i.MP9701", "1"] and filters[2].split() == ["r.MP9601", "1"]
    for header in ("Survey", "Node", "Filter"):
        assert any(line.startswith(header) and "Number of remaining stack" in line
                   for line in lines)
    longest = lines[lines.index(next(l for l in lines if "Longest stack remaining" in l)) + 1]
    assert longest.split()[0].startswith("CFHTLS_D_r_0225") and longest.split()[-1] == "2"
    assert len(lines) == lines.index(longest) + 1


def test_stale_solutions_are_listed_in_the_pending_view(cfg, demo_survey, tmp_path):
    plan = plan_of(demo_exposures(), cfg, demo_survey)
    solutions = sorted(plan.solutions())
    assert stale_solutions(plan, tmp_path) == []  # no _scamp folder yet
    folder = tmp_path / "releases" / "T0002" / "_scamp"
    (folder / solutions[0] / "scamp").mkdir(parents=True)
    old = solutions[0].rsplit("_", 1)[0] + "_0123abcd"  # an earlier list of that product
    (folder / old / "scamp").mkdir(parents=True)
    (folder / "notes.txt").write_text("a file, not a solution")
    assert stale_solutions(plan, tmp_path) == [old]
    report = pending_report(plan, longest=1, stale=[old])
    assert report.splitlines()[-2:] == [
        "Stale SCAMP solutions (1): no planned product uses them", f"  {old}"]
    assert "Stale" not in pending_report(plan, longest=1)


def test_read_plan_done_and_unprefixed(cfg, demo_survey, tmp_path):
    plan = plan_of(demo_exposures(), cfg, demo_survey)
    write_plan(plan, tmp_path)
    name = plan.stacks["name"].iloc[1]
    back = read_plan(tmp_path, done={name})
    assert back.stacks.set_index("name")["status"][name] == "done"
    assert (back.stacks["status"] == "done").sum() == 1
    write_plan(Plan(stacks=plan.stacks, stack_lists=plan.stack_lists,
                    astrometric_lists=plan.astrometric_lists, selection=plan.selection),
               tmp_path / "bare")
    assert (tmp_path / "bare" / "plan.csv").is_file()
    assert read_plan(tmp_path / "bare").stack_lists == plan.stack_lists
    write_plan(plan_of(demo_exposures(), cfg, demo_survey, release="T0001"), tmp_path)
    with pytest.raises(FileNotFoundError, match="one plan file"):
        read_plan(tmp_path)


def test_exposure_lists(tmp_path):
    path = write_exposure_list([751035, 751034], tmp_path / "a" / "x_stack.list")
    assert path.read_text() == "751034p\n751035p\n"
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
    assert read_exposure_list(path) == [751034, 751035]
    past = time.time() - 100
    os.utime(path, (past, past))
    before = path.stat().st_mtime_ns
    write_exposure_list([751034, 751035], path)
    assert path.stat().st_mtime_ns == before
    write_exposure_list([], path)
    assert read_exposure_list(path) == []
