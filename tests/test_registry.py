"""Grades in force: human grade, else the provisional QualityFITS-in one."""

import pandas as pd
import pytest

from spica.registry import merge_grades, read_grades


def test_human_grade_wins_and_provisional_is_marked(tmp_path):
    grades_csv = tmp_path / "grades.csv"
    grades_csv.write_text("expnum,grade,comment,graded_by,date\n"
                          "1,c,doubled stars,YM,2005-01-10\n3,A,,HJMcC,2005-01-11\n")
    exposures = pd.DataFrame({"expnum": [1, 2, 3], "provisional_grade": ["A", "B", None]})
    merged = merge_grades(exposures, read_grades(grades_csv)).set_index("expnum")
    assert merged.loc[1, "grade"] == "C" and not merged.loc[1, "grade_provisional"]
    assert merged.loc[2, "grade"] == "B" and merged.loc[2, "grade_provisional"]
    assert merged.loc[3, "grade"] == "A" and not merged.loc[3, "grade_provisional"]
    assert merged.loc[1, "graded_by"] == "YM"


def test_invalid_grade_is_named(tmp_path):
    grades_csv = tmp_path / "grades.csv"
    grades_csv.write_text("expnum,grade,comment,graded_by,date\n7,E,?,x,2005-01-01\n")
    with pytest.raises(ValueError, match="invalid grade"):
        read_grades(grades_csv)


def test_missing_grades_file_means_no_human_grade(tmp_path):
    assert read_grades(tmp_path / "absent.csv").empty


def test_qa_xml_summary_round_trip(tmp_path):
    from spica.step1.qa.report import read_summary, write_qa_xml

    field = {"exposure": "751034p", "expnum": 751034, "filter": "i.MP9701", "exptime": 620.2,
             "airmass": 1.22, "fwhm_arcsec": 0.83, "n_stars": 412, "elongation": 1.04}
    reasons = ["D: astrometry: ccd05 off by 45.1 arcsec", "B: fwhm_scatter: 0.3"]
    write_qa_xml(tmp_path / "751034p.xml", [], field, "D", reasons)
    summary = read_summary(tmp_path / "751034p.xml")
    assert summary["expnum"] == 751034 and summary["grade"] == "D"
    assert summary["grade_reasons"] == reasons
    assert summary["fwhm_arcsec"] == pytest.approx(0.83)
    assert summary["n_stars"] == 412
