"""Grade D is repairable, not lost (issue 11, section 8).

Unit tests of the focal-plane check (:func:`spica.calibration.accept.ccd_layout`,
:func:`~spica.calibration.accept.focal_plane_deviations`) and of the planning of
conditional exposures, then the real workflow (SCAMP) on a small survey where
the only photometric r exposure, 751029, is graded D (its CCD 8 placed 45" off
by its header WCS): 751000 (metadata edited to non-photometric), 751008
(non-photometric) and 751029. With ``calibration.repairable_grades: [D]`` and
the three exposures in one SCAMP astrometric instrument (``ASTRINSTRU_KEY
FILTER``: FIX_FOCALPLANE takes the median layout of an instrument, so it needs
two good exposures beside the D one), SCAMP repairs 751029, the accept summary
says so, stacks it, and the D3 r stack is anchored; without the repair its
astrometric list has no photometric exposure.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml
from astropy.wcs import WCS

from spica import paths
from spica.calibration.accept import ccd_layout, focal_plane_deviations, read_accept_summary
from spica.release.planning import plan_release
from tests.conftest import REPO, require_binary, small_survey

CONFIG = REPO / "config" / "config.yaml"
STEM = "CFHTLS_D_r_141927+524056_T0002"
KEEP = (751000, 751008, 751029)
D_EXPOSURE = 751029


def _wcs(ra: float, dec: float, shift_arcsec: tuple[float, float] = (0.0, 0.0)) -> WCS:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra + shift_arcsec[0] / 3600 / np.cos(np.radians(dec)), dec + shift_arcsec[1] / 3600]
    wcs.wcs.crpix = [50.5, 100.5]
    wcs.wcs.cd = np.array([[-0.186, 0.0], [0.0, 0.186]]) / 3600
    return wcs


def _exposure(centre_ra: float, *, moved: dict[int, tuple[float, float]] | None = None) -> list[WCS]:
    """Four CCDs of 100x200 pixels in a row, 20" apart; ``moved``: CCD -> shift (arcsec)."""
    moved = moved or {}
    step = 20.0 / 3600 / np.cos(np.radians(52.7))
    return [_wcs(centre_ra + k * step, 52.7, moved.get(k, (0.0, 0.0))) for k in range(4)]


SHAPES = [(200, 100)] * 4


def test_layout_and_deviation_from_the_focal_plane():
    good = ccd_layout(_exposure(214.80), SHAPES)
    assert good[:, 1] == pytest.approx(0.0, abs=0.01)  # arcsec (the sky is curved)
    assert np.diff(good[:, 0]) == pytest.approx([20.0, 20.0, 20.0], abs=0.01)
    dithered = ccd_layout(_exposure(214.81), SHAPES)  # another pointing: same layout
    assert focal_plane_deviations(dithered, [good]) == pytest.approx(0.0, abs=1e-3)
    misplaced = ccd_layout(_exposure(214.80, moved={3: (30.0, -40.0)}), SHAPES)
    deviation = focal_plane_deviations(misplaced, [good, dithered])
    assert deviation[3] == pytest.approx(50.0, abs=0.1)  # the one CCD, 50" off
    assert deviation[:3] == pytest.approx(0.0, abs=0.1)
    assert np.isnan(focal_plane_deviations(good, [])).all()  # no reference: no verdict


def _exposures_table() -> pd.DataFrame:
    base = {"status": "ok", "object": "D3", "runid": "04AL01", "filter": "r.MP9601", "band": "r",
            "date_obs": "2004-04-20", "exptime": 300.0, "airmass": 1.1, "skyprobe": 0.01,
            "qa_fwhm_arcsec": 0.8, "ra_deg": 214.86, "dec_deg": 52.69}
    rows = [dict(base, expnum=751000, grade="A"), dict(base, expnum=751008, grade="B"),
            dict(base, expnum=751029, grade="D"), dict(base, expnum=751092, grade="C")]
    return pd.DataFrame(rows)


def test_d_exposure_is_a_conditional_member_of_both_lists(cfg, demo_survey):
    release = cfg["releases"]["T0002"]
    plain = plan_release(_exposures_table(), "T0002", release, demo_survey, cfg["planning"])
    name = STEM.removesuffix("_T0002")
    assert plain.stack_lists[name] == [751000, 751008]  # today: D out of both lists
    assert plain.astrometric_lists[name] == [751000, 751008] and not plain.conditional_lists
    plan = plan_release(_exposures_table(), "T0002", release, demo_survey, cfg["planning"],
                        repairable_grades=["D"])
    assert plan.stack_lists[name] == [751000, 751008, 751029]
    assert plan.astrometric_lists[name] == [751000, 751008, 751029]
    assert plan.conditional_lists == {name: [751029]}
    verdicts = plan.selection.set_index("expnum")
    assert verdicts.loc[751029, "selected"] and verdicts.loc[751029, "conditional"]
    assert verdicts.loc[751092, "first_failure"] == "grade"  # C stays lost
    # a D exposure alone is no stack: nothing would be left if it is not repaired
    alone = _exposures_table().query("expnum == 751029")
    lone = plan_release(alone, "T0002", release, demo_survey, cfg["planning"], repairable_grades=["D"])
    assert lone.stacks.empty
    assert lone.selection.set_index("expnum").loc[751029, "failures"] == "grade"


@pytest.fixture(scope="module")
def repaired_survey(tmp_path_factory) -> dict:
    """The three r exposures through step 1, the plan and SCAMP up to the accept summary."""
    for tool in (("source-extractor", "sex"), ("psfex",), ("weightwatcher", "ww"), ("scamp",)):
        require_binary(*tool)
    workdir = tmp_path_factory.mktemp("grade-d")
    config = small_survey(workdir, keep=KEEP)  # the grades and metadata of KEEP only
    metadata = workdir / config["inputs"]["metadata"]
    table = pd.read_csv(metadata, dtype=str)
    table.loc[table["expnum"] == "751000", "photometric"] = "false"  # 751029: the only photometric r
    table.to_csv(metadata, index=False)
    overlay = workdir / "repair.yaml"
    overlay.write_text(yaml.safe_dump({"calibration": {
        "repairable_grades": ["D"], "scamp_overrides": {"ASTRINSTRU_KEY": "FILTER"}}}))
    accept = paths.product_path("results", "T0002", STEM, "scamp_accept")
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "2",
               str(accept), "--configfile", str(CONFIG), str(overlay)]
    run = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    return {"workdir": workdir, "config": config, "accept": workdir / accept}


@pytest.mark.tools
@pytest.mark.e2e
def test_grade_d_repaired_by_the_focal_plane_anchors_its_stack(repaired_survey, cfg):
    workdir = repaired_survey["workdir"]
    registry = pd.read_csv(workdir / "results" / "registry" / "exposures.csv")
    grades = registry.set_index("expnum")
    assert grades.loc[D_EXPOSURE, "grade"] == "D"  # QualityFITS-in's provisional grade
    photometric = grades["photometric"].astype(str).str.lower() == "true"
    assert photometric[photometric].index.tolist() == [D_EXPOSURE]
    # without the repair the astrometric list holds no photometric exposure: not anchored
    config = repaired_survey["config"]
    without = plan_release(registry, "T0002", cfg["releases"]["T0002"], config["survey"], cfg["planning"])
    name = STEM.removesuffix("_T0002")
    assert not photometric.reindex(without.astrometric_lists[name]).any()

    summary = read_accept_summary(repaired_survey["accept"]).set_index("expnum")
    assert summary["accepted"].all(), summary["reasons"].to_dict()
    assert summary["anchored"].all()  # tied to the repaired photometric exposure
    assert summary.loc[D_EXPOSURE, "conditional"] and summary.loc[D_EXPOSURE, "repaired"]
    # the truth: CCD 8 of 751029 was put ~45" off by its header (demo wrong_wcs_offset_arcsec)
    truth = pd.read_csv(workdir / config["demo"]["truth_dir"] / "ccds.csv")
    wrong = truth[(truth["expnum"] == D_EXPOSURE) & truth["wrong_wcs"].astype(str).str.lower().eq("true")]
    injected = float(np.hypot(wrong["wcs_offset_east_arcsec"], wrong["wcs_offset_north_arcsec"]).iloc[0])
    removed = summary.loc[D_EXPOSURE, "offset_removed_arcsec"]
    assert removed == pytest.approx(injected, abs=3.0)  # less the CCDs' own ~1" jitter
    accepted = (repaired_survey["accept"].parent / f"{STEM}_accepted.list").read_text().split()
    assert accepted == ["751000p", "751008p", "751029p"]
    print(f"\ngrade D repaired: 751029 CCD offset removed {removed:.2f}\" (injected {injected:.2f}\"), "
          f"stack anchored: {bool(summary['anchored'].all())}")
