"""The provisional product grade (spica.qualityfits_out.grading): each limit of config
``qualityfits_out.grading`` gives its grade and a reason naming the figure, and the
grade columns of ``_spica.xml`` (provisional, the team's, the problem report)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import yaml

from spica.qualityfits_out.grading import (
    GRADE_COLUMNS,
    grade_columns,
    grading_figures,
    predicted_seeing,
    provisional_product_grade,
    team_grade,
)
from tests.conftest import REPO

LIMITS = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["qualityfits_out"]["grading"]

#: A sound product: the figures of a good two-exposure D3 r stack of the demo (measured by
#: QualityFITS-out in tests/qualityfits_out/test_bad_product.py).
GOOD = {"psf_fwhm_arcsec": 0.789, "predicted_seeing_arcsec": 0.816, "elongation": 1.06,
        "multiple_image_fraction": 0.012, "n_stars": 706, "completeness_50_mag": 24.6,
        "masked_fraction": 0.025, "astrometric_chi2": 0.41}


def test_a_good_product_is_graded_a():
    assert provisional_product_grade(GOOD, LIMITS) == ("A", "A: every figure within its limits")


@pytest.mark.parametrize(("change", "grade", "rule"), [
    ({"psf_fwhm_arcsec": 0.816 * 1.2}, "B", "fwhm"),              # 1.2 x the inputs' seeing
    ({"psf_fwhm_arcsec": 0.816 * 1.32}, "C", "fwhm"),             # an input misregistered by ~1 FWHM
    ({"psf_fwhm_arcsec": math.nan}, "C", "fwhm"),                 # no PSF model
    ({"elongation": 1.17}, "B", "elongation"),
    ({"elongation": 1.26}, "C", "elongation"),
    ({"multiple_image_fraction": 0.31}, "C", "multiple_images"),  # doubled stars
    ({"n_stars": 12}, "C", "star_count"),
    ({"completeness_50_mag": 22.4}, "B", "completeness"),
    ({"completeness_50_mag": math.nan}, "B", "completeness"),
    ({"masked_fraction": 0.45}, "B", "masked"),
    ({"astrometric_chi2": 88.97}, "D", "astrometry"),             # the seed's W3 chi2_ref, above 10
])
def test_each_limit_gives_its_grade_and_reason(change, grade, rule):
    found, reason = provisional_product_grade({**GOOD, **change}, LIMITS)
    assert found == grade
    assert reason.startswith(f"{grade}: {rule}: ")


def test_the_worst_rule_decides_and_every_reason_is_kept():
    grade, reason = provisional_product_grade(
        {**GOOD, "elongation": 1.17, "masked_fraction": 0.45, "multiple_image_fraction": 0.4}, LIMITS)
    assert grade == "C"
    assert [part.split(":")[1].strip() for part in reason.split("; ")] == \
        ["multiple_images", "elongation", "masked"]
    assert "40% of bright sources" in reason


def test_the_fwhm_ratio_uses_the_worst_input():
    assert predicted_seeing([0.797, 0.816, math.nan]) == 0.816
    assert math.isnan(predicted_seeing([]))
    # no known input seeing: no ratio, no grade from it
    assert provisional_product_grade({**GOOD, "psf_fwhm_arcsec": 2.0,
                                      "predicted_seeing_arcsec": math.nan}, LIMITS)[0] == "A"


def test_a_missing_limit_is_a_named_error():
    limits = {k: v for k, v in LIMITS.items() if k != "min_stars"}
    with pytest.raises(KeyError, match="min_stars"):
        provisional_product_grade(GOOD, limits)


def test_grading_figures_from_what_the_summary_reads():
    quality = {k: GOOD[k] for k in ("psf_fwhm_arcsec", "elongation", "multiple_image_fraction",
                                    "n_stars", "masked_fraction")}
    figures = grading_figures(quality, {"m50": 24.6, "m80": 24.1}, [0.797, 0.816], [0.41, 0.2])
    assert figures == pytest.approx(GOOD)
    assert grading_figures(None, None, [], []) is None


GRADES = pd.DataFrame([
    {"product": "CFHTLS_D_r_141927+524056_T0002", "grade": "C", "comment": "ghost stars: 751008 off by 3\"",
     "graded_by": "YM", "date": "2006-02-01", "provisional": False},
    {"product": "751042p_V0001", "grade": "A", "comment": "", "graded_by": "EB", "date": "2006-02-02",
     "provisional": False},
    {"product": "V0001/751042p_V0001", "grade": "B", "comment": "bright halo", "graded_by": "EB",
     "date": "2006-02-03", "provisional": False},
    {"product": "CFHTLS_D_i_141927+524056_T0002", "grade": "A", "comment": "", "graded_by": "",
     "date": "", "provisional": True},
])


def test_team_grade_of_a_product():
    assert team_grade(GRADES, "T0002", "CFHTLS_D_r_141927+524056_T0002") == {
        "grade": "C", "comment": "ghost stars: 751008 off by 3\"", "graded_by": "YM", "date": "2006-02-01"}
    # one image name in two folders: <release>/<stem> wins, else the bare stem
    assert team_grade(GRADES, "V0001", "751042p_V0001")["grade"] == "B"
    assert team_grade(GRADES, "T0002", "751042p_V0001")["grade"] == "A"
    # a row without graded_by is provisional: not the team's grade
    assert team_grade(GRADES, "T0002", "CFHTLS_D_i_141927+524056_T0002") == {}


def test_grade_columns_carry_the_problem_report_of_c_and_d():
    bad = grade_columns({**GOOD, "multiple_image_fraction": 0.31}, LIMITS,
                        team_grade(GRADES, "T0002", "CFHTLS_D_r_141927+524056_T0002"))
    assert set(bad) == set(GRADE_COLUMNS)
    assert bad["provisional_grade"] == ["C"] and bad["provisional"] == [False]
    assert bad["grade"] == ["C"] and bad["problem_report"] == ["ghost stars: 751008 off by 3\""]
    good = grade_columns(GOOD, LIMITS, team_grade(GRADES, "V0001", "751042p_V0001"))
    assert good["grade"] == ["B"] and good["comment"] == ["bright halo"] and good["problem_report"] == [""]
    ungraded = grade_columns(GOOD, LIMITS, {})
    assert ungraded["provisional"] == [True] and ungraded["grade"] == [""]
    assert grade_columns(None, LIMITS, {}) == {name: [] for name in GRADE_COLUMNS}


def test_spica_xml_carries_the_grades(tmp_path):
    from spica.products.summary import product_summary, read_product_summary, write_product_summary
    from spica.qualityfits_out.figures import FIGURES
    from tests.products.test_summary import _header, _registry, _scamp

    quality = {name: (700 if name.startswith(("n_", "psfex_")) else 0.05) for name, _, _ in FIGURES}
    quality.update(psf_fwhm_arcsec=1.2, elongation=1.06, multiple_image_fraction=0.01)
    accept = pd.DataFrame({"expnum": [751034], "accepted": [True], "anchored": [True], "reasons": [[]]})
    tables = product_summary(
        name="CFHTLS_W_i_143007+533430", release="T0002", header=_header(), registry=_registry(),
        stack_list=[751034], astrometric_list=[751034], accept=accept, scamp=_scamp(),
        quality=quality, completeness={"m50": 24.6, "m80": 24.1}, grading=LIMITS,
        product_grade={"grade": "D", "comment": "751034 CCD 12 off by 40 arcsec", "graded_by": "YM",
                       "date": "2006-02-01"})
    row = read_product_summary(write_product_summary(tables, tmp_path / "x_spica.xml"))["QualityFITS_out"][0]
    seeing = _registry().set_index("expnum").loc[751034, "qa_fwhm_arcsec"]
    # the provisional grade from the figures: PSF FWHM 1.2" against the input's seeing
    expected = provisional_product_grade({**quality, "completeness_50_mag": 24.6, "predicted_seeing_arcsec": seeing,
                                          "astrometric_chi2": math.nan}, LIMITS)
    assert (row["provisional_grade"], row["provisional_reason"]) == expected
    assert bool(row["provisional"]) is False  # the team graded it
    assert (row["grade"], row["graded_by"], row["grade_date"]) == ("D", "YM", "2006-02-01")
    assert row["problem_report"] == "751034 CCD 12 off by 40 arcsec" == row["comment"]
