"""Release selection (spica.release.selection): every criterion at its boundary.

The fixture is the demo survey's truth table (spica-demo), mapped as the
registry would see it: seeing -> qa_fwhm_arcsec, guiding jump -> grade C,
wrong CCD WCS -> grade D, broken / not OBJECT -> quarantined, others A/B.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest
import yaml
from snakemake.utils import update_config, validate

from spica.release.selection import (
    CRITERIA,
    evaluate_criteria,
    program_code,
    seeing_limit,
    survey_component,
)

REPO = Path(__file__).resolve().parents[2]
RELEASES_YAML = REPO / "config" / "releases.yaml"
RELEASES_SCHEMA = REPO / "config" / "schemas" / "releases.schema.yaml"

# expnum, fate, object, runid, filter, date_obs, exptime, airmass, ra, dec, seeing, skyprobe
DEMO_TRUTH = [
    (751000, 'good', 'D3', '03AL01', 'r.MP9601', '2003-06-03', 300.097, 1.151, 214.8554986, 52.6873211, 0.771, 0.007),
    (751008, 'good', 'D3', '03AL01', 'i.MP9701', '2003-06-04', 360.426, 1.239, 214.8666946, 52.6875665, 0.792, 0.001),
    (751016, 'high_airmass', 'D3', '03AL01', 'r.MP9601', '2003-06-05', 300.284, 1.72, 214.8636133, 52.6863415, 0.785, 0.011),
    (751021, 'good', 'PW3+1-3', '03AL02', 'r.MP9601', '2003-06-06', 500.446, 1.155, 215.0971192, 52.5946887, 0.756, 0.003),
    (751029, 'good', 'D3', '04AL01', 'g.MP9401', '2004-03-20', 300.317, 1.278, 214.857254, 52.6837339, 0.736, 0.005),
    (751037, 'good', 'D3', '04AL01', 'r.MP9601', '2004-03-21', 300.439, 1.201, 214.8696934, 52.6756986, 0.796, 0.145),
    (751042, 'short_exposure', 'D3', '04AL01', 'g.MP9401', '2004-03-22', 45.0, 1.239, 214.8527918, 52.6858345, 0.883, 0.008),
    (751050, 'good', 'W3+2-1', '04AL02', 'r.MP9601', '2004-03-23', 500.388, 1.217, 215.0776876, 52.7571025, 0.809, 0.01),
    (751058, 'good', 'W3+2-1', '04AL02', 'r.MP9601', '2004-03-23', 500.08, 1.259, 215.0844389, 52.7630249, 0.684, 0.01),
    (751063, 'good', 'D3', '04AL01', 'i.MP9701', '2004-04-18', 360.472, 1.257, 214.8605301, 52.6876022, 0.791, 0.009),
    (751071, 'bad_seeing', 'D3', '04AL01', 'i.MP9701', '2004-04-19', 360.279, 1.307, 214.8593029, 52.675356, 1.45, 0.001),
    (751079, 'good', 'D3', '04AL01', 'z.MP9801', '2004-05-15', 360.325, 1.116, 214.8616556, 52.6789467, 0.735, 0.015),
    (751084, 'good', 'D3', '04AL01', 'u.MP9301', '2004-05-16', 600.198, 1.231, 214.8555721, 52.6805526, 0.656, 0.001),
    (751092, 'guiding_jump', 'D3', '04AL01', 'r.MP9601', '2004-05-17', 300.154, 1.153, 214.867786, 52.6872394, 0.917, 0.007),
    (751100, 'good', 'UMaII_demo', '04AC14', 'r.MP9601', '2004-05-18', 468.286, 1.149, 214.8999508, 52.6740138, 0.75, 0.004),
    (751105, 'good', 'D3', '04AL01', 'i.MP9701', '2004-06-12', 360.237, 1.076, 214.8655449, 52.6875452, 0.811, 0.069),
    (751113, 'good', 'D3', '04AL01', 'r.MP9601', '2004-06-13', 300.036, 1.215, 214.8614208, 52.6813395, 0.89, 0.0),
    (751121, 'good', 'D3', '04AL01', 'g.MP9401', '2004-06-14', 300.422, 1.171, 214.8719329, 52.6783285, 0.633, 0.022),
    (751126, 'wrong_wcs_ccd', 'D3', '04AL01', 'i.MP9701', '2004-06-15', 360.469, 1.073, 214.8560686, 52.6862166, 0.911, 0.003),
    (751134, 'good', 'W3+0+2', '04AL02', 'i.MP9701', '2004-06-16', 620.075, 1.243, 214.8321366, 52.8329729, 0.655, 0.01),
    (751142, 'good', 'W3+0+2', '04AL02', 'i.MP9701', '2004-06-16', 620.053, 1.213, 214.797796, 52.8433935, 0.985, 0.017),
    (751147, 'broken:truncated', 'D3', '04AL01', 'r.MP9601', '2004-06-17', 300.338, 1.283, 214.8613718, 52.6827541, 0.698, 0.004),
    (751155, 'good', 'W3+1-3', '04BL02', 'g.MP9401', '2004-09-10', 500.159, 1.247, 215.0821079, 52.607365, 0.653, 0.008),
    (751163, 'broken:nextend_lie', 'D3', '04BL01', 'i.MP9701', '2004-09-11', 360.095, 1.206, 214.8621444, 52.6840722, 0.916, 0.002),
    (751168, 'good', 'W3-3-1', '04BL02', 'r.MP9601', '2004-10-12', 500.141, 1.295, 214.4581183, 52.7621939, 0.753, 0.226),
    (751176, 'broken:missing_filter', 'D3', '04BL01', 'g.MP9401', '2004-10-13', 300.264, 1.088, 214.8543993, 52.679933, 0.913, 0.008),
    (751184, 'broken:all_nan_ccd', 'D3', '04BL01', 'z.MP9801', '2004-11-05', 360.095, 1.166, 214.872275, 52.6835096, 0.986, 0.016),
    (751189, 'not_object', 'Flat', '04BQ99', 'r.MP9601', '2004-11-06', 5.251, 1.088, 214.8703601, 52.6783996, 0.673, 0.008),
    (751197, 'good', 'VW3+0+2', '04BL03', 'r.MP9601', '2004-11-08', 180.254, 1.226, 214.8202507, 52.8477117, 0.838, 0.008),
]


def load_yaml(name: str) -> dict:
    """Load a configuration of the repository as the workflow sees it: an overlay
    (``cfhtls.yaml``) deep-merged over ``config.yaml``, as ``--configfile`` is."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    if name != "config.yaml":
        update_config(config, yaml.safe_load((REPO / "config" / name).read_text()))
    return config


def releases_config() -> dict:
    """The ``releases`` and ``planning`` keys of config/releases.yaml."""
    return yaml.safe_load(RELEASES_YAML.read_text())


def demo_exposures() -> pd.DataFrame:
    """The registry's exposures table for the demo survey (see module docstring)."""
    rows = []
    for i, (expnum, fate, obj, runid, filt, date, exptime, airmass, ra, dec, seeing,
            skyprobe) in enumerate(DEMO_TRUTH):
        quarantined = fate.startswith("broken") or fate == "not_object"
        grade = {"guiding_jump": "C", "wrong_wcs_ccd": "D"}.get(fate, "AB"[i % 2])
        rows.append({
            "expnum": expnum, "status": "quarantined" if quarantined else "ok",
            "object": obj, "runid": runid, "qrunid": runid[:3] + "Q05", "filter": filt,
            "band": filt[0], "exptime": exptime, "airmass": airmass, "date_obs": date,
            "utc_obs": "07:30:42", "mjd_obs": 53000.0, "ra_deg": ra, "dec_deg": dec,
            "rel_date": "2006-05-01", "skyprobe": skyprobe, "photometric": True,
            "qa_fwhm_arcsec": seeing, "qa_elongation": 1.05,
            "provisional_grade": None if quarantined else grade,
            "provisional_reason": None,
            "grade": None if quarantined else grade,
            "grade_provisional": not quarantined,
        })
    return pd.DataFrame(rows)


def one(**values) -> pd.DataFrame:
    """A single good T0002 Deep g exposure, with ``values`` changed."""
    row = {
        "expnum": 800000, "status": "ok", "object": "D3", "runid": "04AL01", "filter": "g.MP9401",
        "band": "g", "exptime": 300.0, "airmass": 1.2, "date_obs": "2004-06-24",
        "ra_deg": 214.86, "dec_deg": 52.68, "skyprobe": 0.05, "qa_fwhm_arcsec": 0.8,
        "grade": "A", "grade_provisional": False,
    }
    row.update(values)
    return pd.DataFrame([row])


def verdict(frame: pd.DataFrame, release: dict, survey: dict) -> pd.Series:
    """The verdict of the single row of ``frame``."""
    return evaluate_criteria(frame, release, survey).iloc[0]


# ------------------------------------------------------------------ config

def test_releases_yaml_validates_against_schema(cfg):
    validate(copy.deepcopy(cfg), str(RELEASES_SCHEMA))


def test_schema_rejects_unknown_key(cfg):
    bad = copy.deepcopy(cfg)
    bad["releases"]["T0002"]["max_seeing"] = 1.0
    with pytest.raises(Exception, match="max_seeing"):
        validate(bad, str(RELEASES_SCHEMA))


def test_seed_tables_encoded_exactly(cfg):
    t1, t2 = cfg["releases"]["T0001"], cfg["releases"]["T0002"]
    assert t1["period"] == {"start": "2003-06-01", "end": "2004-07-22"}
    assert t2["period"] == {"start": "2003-06-01", "end": "2004-11-22"}
    assert (t1["min_exptime_s"], t1["max_airmass"], t1["max_skyprobe"]) == (60, 1.4, None)
    assert (t2["min_exptime_s"], t2["max_airmass"], t2["max_skyprobe"]) == (60, 1.5, 2.0)
    assert t1["grades"] == t2["grades"] == ["A", "B"]
    for component in ("D", "W", "Pre-W", "VW"):
        assert t1["seeing_arcsec"][component] == {"default": 1.0, "u": 1.3}
    assert t2["seeing_arcsec"] == {
        "D": {"default": 1.1, "u": 1.3}, "W": {"default": 1.1, "u": 1.4},
        "Pre-W": {"default": 1.1, "u": 1.4}, "VW": {"default": 1.2, "u": 1.5},
    }
    assert t1["image_version"] == t2["image_version"] == "V0001"
    assert cfg["planning"]["nodes"]


# ---------------------------------------------------------- survey component

def test_program_code():
    assert program_code("04AL05") == "L05"
    assert program_code(" 03bl01 ") == "L01"
    assert program_code(None) is None
    assert program_code(float("nan")) is None
    assert program_code("junk") is None


def test_survey_component(real_survey, demo_survey):
    programs, prefix = real_survey["runid_programs"], real_survey["pre_survey_object_prefix"]
    assert survey_component("04AL05", "W3+2-1", programs, prefix) == "W"
    assert survey_component("04AL05", "PW3+1-3", programs, prefix) == "Pre-W"
    assert survey_component("04AL01", "D3", programs, prefix) == "D"
    assert survey_component("04AL01", "PWD3", programs, prefix) == "D"  # prefix only for Wide
    assert survey_component("04BL03", "VW3+0+2", programs, prefix) == "VW"
    assert survey_component("04AC14", "UMaII", programs, prefix) == "PI"
    assert survey_component(None, "x", programs, prefix) == "PI"
    demo = demo_survey["runid_programs"]
    assert survey_component("03AL02", "PW3+1-3", demo, "PW") == "Pre-W"
    assert survey_component("04AL02", "W3+2-1", demo, "PW") == "W"


def test_demo_survey_verdicts(cfg, demo_survey):
    sel = evaluate_criteria(demo_exposures(), cfg["releases"]["T0002"], demo_survey)
    by = sel.set_index("expnum")
    assert by.loc[751000, "selected"] and by.loc[751000, "survey"] == "D"
    assert by.loc[751016, "first_failure"] == "airmass"
    assert by.loc[751021, "survey"] == "Pre-W" and by.loc[751021, "selected"]
    assert by.loc[751042, "first_failure"] == "exptime"
    assert by.loc[751071, "first_failure"] == "seeing"
    assert by.loc[751092, "first_failure"] == "grade"       # guiding jump: C
    assert by.loc[751126, "first_failure"] == "grade"       # wrong CCD WCS: D
    assert by.loc[751100, "failures"] == "pi_program"
    assert by.loc[751147, "first_failure"] == "status"
    assert by.loc[751189, "failures"].startswith("status;grade;")
    assert by.loc[751197, "survey"] == "VW" and by.loc[751197, "selected"]
    t1 = evaluate_criteria(demo_exposures(), cfg["releases"]["T0001"], demo_survey)
    assert t1.set_index("expnum").loc[751197, "first_failure"] == "period"
    assert list(sel.columns[-5:]) == ["survey", "failures", "first_failure", "selected", "conditional"]
    assert sel["selected"].dtype == bool


# --------------------------------------------------------------- boundaries

@pytest.mark.parametrize("exptime, ok", [(60.0, False), (60.01, True), (59.0, False)])
def test_exptime_strictly_greater(cfg, real_survey, exptime, ok):
    v = verdict(one(exptime=exptime), cfg["releases"]["T0002"], real_survey)
    assert v["selected"] is ok or v["selected"] == ok
    assert v["first_failure"] == ("" if ok else "exptime")


@pytest.mark.parametrize("release, airmass, ok", [
    ("T0002", 1.4999, True), ("T0002", 1.5, False),
    ("T0001", 1.3999, True), ("T0001", 1.4, False),
])
def test_airmass_strictly_less(cfg, real_survey, release, airmass, ok):
    v = verdict(one(airmass=airmass, date_obs="2004-06-01"), cfg["releases"][release],
                real_survey)
    assert v["selected"] == ok
    assert v["first_failure"] == ("" if ok else "airmass")


@pytest.mark.parametrize("release, runid, obj, band, seeing, ok", [
    ("T0002", "04AL01", "D3", "g", 1.0999, True),
    ("T0002", "04AL01", "D3", "g", 1.1, False),
    ("T0002", "04AL01", "D3", "u", 1.29, True),
    ("T0002", "04AL01", "D3", "u", 1.35, False),     # Deep u* < 1.3
    ("T0002", "04AL05", "W3+2-1", "u", 1.35, True),  # Wide u* < 1.4
    ("T0002", "04AL05", "W3+2-1", "u", 1.4, False),
    ("T0002", "04AL05", "PW3", "u", 1.35, True),     # Pre-W takes the Wide limits
    ("T0002", "04AL05", "W3+2-1", "r", 1.1, False),
    ("T0002", "04BL03", "VW3", "r", 1.19, True),     # Very Wide < 1.2
    ("T0002", "04BL03", "VW3", "r", 1.2, False),
    ("T0002", "04BL03", "VW3", "u", 1.49, True),
    ("T0001", "04AL01", "D3", "u", 1.29, True),      # u* relaxed to 1.3
    ("T0001", "04AL01", "D3", "u", 1.3, False),
    ("T0001", "04AL01", "D3", "i", 0.9999, True),
    ("T0001", "04AL01", "D3", "i", 1.0, False),
    ("T0001", "04BL03", "VW3", "r", 1.05, False),    # one limit for all components
])
def test_seeing_per_survey_and_band(cfg, real_survey, release, runid, obj, band, seeing, ok):
    frame = one(runid=runid, object=obj, band=band, filter=f"{band}.MP9x01",
                qa_fwhm_arcsec=seeing, date_obs="2004-06-01")
    v = verdict(frame, cfg["releases"][release], real_survey)
    assert v["selected"] == ok, v["failures"]
    assert v["first_failure"] == ("" if ok else "seeing")


def test_seeing_limit_lookup(cfg):
    t2 = cfg["releases"]["T0002"]
    assert seeing_limit(t2, "W", "u") == 1.4
    assert seeing_limit(t2, "W", "z") == 1.1
    assert seeing_limit(t2, "PI", "r") is None


def test_missing_seeing_fails(cfg, real_survey):
    v = verdict(one(qa_fwhm_arcsec=float("nan")), cfg["releases"]["T0002"], real_survey)
    assert v["failures"] == "seeing"


@pytest.mark.parametrize("date, ok", [
    ("2004-11-22", True), ("2004-11-23", False), ("2003-05-31", False), ("2003-06-01", True),
    ("2004-11-22T23:59:59", True), (None, False),
])
def test_period_inclusive(cfg, real_survey, date, ok):
    v = verdict(one(date_obs=date), cfg["releases"]["T0002"], real_survey)
    assert v["selected"] == ok
    assert v["first_failure"] == ("" if ok else "period")


def test_period_t0001_edges(cfg, real_survey):
    t1 = cfg["releases"]["T0001"]
    assert verdict(one(date_obs="2004-07-22", airmass=1.2), t1, real_survey)["selected"]
    assert verdict(one(date_obs="2004-07-23", airmass=1.2), t1, real_survey)["first_failure"] \
        == "period"


@pytest.mark.parametrize("skyprobe, ok", [(1.999, True), (2.0, False), (float("nan"), False)])
def test_skyprobe_t0002(cfg, real_survey, skyprobe, ok):
    v = verdict(one(skyprobe=skyprobe), cfg["releases"]["T0002"], real_survey)
    assert v["selected"] == ok
    assert v["first_failure"] == ("" if ok else "skyprobe")


def test_skyprobe_missing_column(cfg, real_survey):
    frame = one().drop(columns=["skyprobe"])
    assert verdict(frame, cfg["releases"]["T0002"], real_survey)["failures"] == "skyprobe"


def test_t0001_has_no_skyprobe_criterion(cfg, real_survey):
    v = verdict(one(skyprobe=float("nan"), qa_fwhm_arcsec=0.8, date_obs="2004-06-01"),
                cfg["releases"]["T0001"], real_survey)
    assert v["selected"]
    v = verdict(one(skyprobe=5.0, date_obs="2004-06-01"), cfg["releases"]["T0001"], real_survey)
    assert v["selected"]


# ------------------------------------------------------------------ grades

@pytest.mark.parametrize("grade, ok", [
    ("A", True), ("B", True), ("C", False), ("D", False), (None, False), ("", False), ("a", True),
])
def test_grades(cfg, real_survey, grade, ok):
    v = verdict(one(grade=grade), cfg["releases"]["T0002"], real_survey)
    assert v["selected"] == ok
    assert v["first_failure"] == ("" if ok else "grade")


def test_provisional_grade_used_when_no_human_grade(cfg, real_survey):
    # the registry's `grade` is the grade in force: the provisional one here
    v = verdict(one(grade="B", grade_provisional=True, provisional_grade="B"),
                cfg["releases"]["T0002"], real_survey)
    assert v["selected"]


def test_quarantined_is_first_failure(cfg, real_survey):
    v = verdict(one(status="quarantined", grade=None), cfg["releases"]["T0002"], real_survey)
    assert v["first_failure"] == "status"
    assert v["failures"] == "status;grade"


# --------------------------------------------------------- all the failures

def test_first_and_all_failures_in_criteria_order(cfg, real_survey):
    assert CRITERIA == ("status", "grade", "period", "exptime", "airmass", "skyprobe",
                        "seeing", "pi_program")
    frame = one(exptime=30.0, airmass=1.6, qa_fwhm_arcsec=1.5, skyprobe=2.5, grade="C",
                date_obs="2005-01-01")
    v = verdict(frame, cfg["releases"]["T0002"], real_survey)
    assert v["first_failure"] == "grade"
    assert v["failures"] == "grade;period;exptime;airmass;skyprobe;seeing"
    assert not v["selected"]


def test_pi_programs_on_request(cfg, real_survey):
    release = copy.deepcopy(cfg["releases"]["T0002"])
    frame = one(runid="04AC14", object="UMaII")
    assert verdict(frame, release, real_survey)["failures"] == "pi_program"
    release["pi_programs"] = ["04AC14"]
    v = verdict(frame, release, real_survey)
    assert v["selected"] and v["survey"] == "PI"
    release["pi_programs"] = ["C14"]
    assert verdict(frame, release, real_survey)["selected"]


def test_t0003_is_a_config_edit(cfg, real_survey):
    extended = copy.deepcopy(cfg)
    extended["releases"]["T0003"] = copy.deepcopy(extended["releases"]["T0002"])
    extended["releases"]["T0003"]["period"]["end"] = "2005-10-31"
    validate(copy.deepcopy(extended), str(RELEASES_SCHEMA))
    frame = one(date_obs="2005-06-01")
    assert not verdict(frame, extended["releases"]["T0002"], real_survey)["selected"]
    assert verdict(frame, extended["releases"]["T0003"], real_survey)["selected"]


def test_input_not_modified(cfg, real_survey):
    frame = demo_exposures()
    before = frame.copy()
    evaluate_criteria(frame, cfg["releases"]["T0002"], real_survey)
    pd.testing.assert_frame_equal(frame, before)
