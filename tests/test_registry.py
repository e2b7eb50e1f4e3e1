"""Grades in force: human grade, else the provisional QualityFITS-in one."""

import json

import pandas as pd
import pytest

from spica.registry import TableError, merge_grades, read_grades, read_product_grades


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


def test_product_grades_are_read_like_exposure_grades(tmp_path):
    """The team's product grades: a stem or release/stem, the last row of a product wins,
    provisional where nobody signed; a bad grade names its line and column."""
    grades_csv = tmp_path / "product_grades.csv"
    grades_csv.write_text("product,grade,comment,graded_by,date\n"
                          "CFHTLS_D_r_141927+524056_T0002, b ,halo,YM,2006-02-01\n"
                          "T0002/751042p_V0001,c,,,2006-02-02\n"
                          "CFHTLS_D_r_141927+524056_T0002,a,fixed,YM,2006-02-03\n")
    grades = read_product_grades(grades_csv).set_index("product")
    assert grades.loc["CFHTLS_D_r_141927+524056_T0002", "grade"] == "A"
    assert grades.loc["CFHTLS_D_r_141927+524056_T0002", "comment"] == "fixed"
    assert not grades.loc["CFHTLS_D_r_141927+524056_T0002", "provisional"]
    assert grades.loc["T0002/751042p_V0001", "grade"] == "C" and grades.loc["T0002/751042p_V0001", "provisional"]
    assert len(grades) == 2
    assert read_product_grades(tmp_path / "absent.csv").empty
    grades_csv.write_text("product,grade,comment,graded_by,date\nX_T0002,A,,YM,d\nY_T0002,E,,YM,d\n")
    with pytest.raises(TableError, match=r"line 3, column grade: invalid grade 'E'") as error:
        read_product_grades(grades_csv)
    assert (error.value.line, error.value.column) == (3, "grade")


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


# ---------------------------------------------------------------- the schema and an empty survey
def _inventory(tmp_path, rows):
    """An inventory CSV (expnum, path, status, reason, message) of ``rows``."""
    from spica.step1.inventory import INVENTORY_COLUMNS

    path = tmp_path / "inventory.csv"
    pd.DataFrame(rows, columns=INVENTORY_COLUMNS).to_csv(path, index=False)
    return path


def _build(tmp_path, inventory, *, qa_xml=(), diag=(), checks=()):
    from spica.registry import build_registry

    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    counts = build_registry(url=url, inventory_csv=inventory, checks=checks, qa_xml=qa_xml,
                            diag=diag, metadata_csv=None, grades_csv=None,
                            export_csv=tmp_path / "exposures.csv")
    return counts, url


def _read_tables(url):
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.connect() as connection:
        inspector = sa.inspect(connection)
        found = {name: ([c["name"] for c in inspector.get_columns(name)],
                        pd.read_sql(sa.text(f'select * from "{name}"'), connection))
                 for name in inspector.get_table_names()}
    engine.dispose()
    return found


def _schema_columns(table):
    from spica.registry import schema

    return [column.name for column in schema().tables[table].columns]


def test_every_file_quarantined_gives_empty_tables_with_their_columns(tmp_path):
    inventory = _inventory(tmp_path, [
        {"expnum": 751901, "path": "in/751901p.fits", "status": "quarantined",
         "reason": "missing_keyword", "message": "missing_keyword: primary header: keyword FILTER is missing"},
        {"expnum": 751902, "path": "in/751902p.fits", "status": "quarantined",
         "reason": "missing_keyword", "message": "missing_keyword: primary header: keyword FILTER is missing"},
    ])
    counts, url = _build(tmp_path, inventory)
    assert counts == {"exposures": 2, "ccds": 0, "quarantine": 2}
    tables = _read_tables(url)
    assert sorted(tables) == ["ccds", "exposures", "quarantine"]
    for name, (columns, _) in tables.items():
        assert columns == _schema_columns(name), name
    assert "qa_fwhm_arcsec" in tables["exposures"][0] and "fwhm_arcsec" in tables["ccds"][0]
    assert tables["ccds"][1].empty
    quarantine = tables["quarantine"][1]
    assert quarantine["expnum"].tolist() == [751901, 751902]
    assert set(quarantine["reason"]) == {"missing_keyword"}
    exposures = tables["exposures"][1]
    assert exposures["status"].tolist() == ["quarantined"] * 2 and exposures["grade"].isna().all()
    export = pd.read_csv(tmp_path / "exposures.csv")
    assert list(export.columns) == _schema_columns("exposures") and len(export) == 2


def test_no_incoming_file_gives_empty_tables(tmp_path):
    counts, url = _build(tmp_path, _inventory(tmp_path, []))
    assert counts == {"exposures": 0, "ccds": 0, "quarantine": 0}
    tables = _read_tables(url)
    assert {name: len(frame) for name, (_, frame) in tables.items()} == {
        "ccds": 0, "exposures": 0, "quarantine": 0}
    assert tables["exposures"][0] == _schema_columns("exposures")


def _sample_ccd():
    """A CCD row with a value of the schema's kind for every column of the diag table."""
    from spica.registry import _CCD_KINDS
    from spica.step1.qa.report import CCD_COLUMNS

    values = {"int": 3, "bool": True, "text": "ccd03", "float": 0.25}
    return {name: values[_CCD_KINDS.get(name, "float")] for name, _, _ in CCD_COLUMNS}


def test_schema_kinds_match_what_the_diag_table_holds():
    # a CCD column whose kind the registry gets wrong would be refused or mangled
    from spica.registry import _CCD_KINDS, conform
    from spica.step1.qa.report import ccd_table

    table = ccd_table([_sample_ccd()]).to_pandas()
    kinds = {"int": "i", "bool": "b", "text": "OU", "float": "f"}  # numpy dtype kinds
    for name in table.columns:
        assert table[name].dtype.kind in kinds[_CCD_KINDS.get(name, "float")], (name, table[name].dtype)
    conformed = conform(table.assign(expnum=751000), "ccds")
    assert conformed.loc[0, "expnum"] == 751000 and conformed.loc[0, "ccd"] == 3
    assert conformed.loc[0, "extname"] == "ccd03" and bool(conformed.loc[0, "psfex_ok"])


def test_one_row_per_odometer_and_a_unique_expnum(tmp_path):
    import sqlalchemy as sa

    from spica.step1.qa.report import write_diag, write_qa_xml

    step1 = tmp_path / "751000p"
    field = {"exposure": "751000p", "expnum": 751000, "filter": "r.MP9601", "fwhm_arcsec": 0.8,
             "n_stars": 412}
    write_qa_xml(step1 / "751000p.xml", [_sample_ccd()], field, "A", [])
    write_diag(step1 / "751000p_diag.fits", [_sample_ccd(), {**_sample_ccd(), "ccd": 4}],
               field, "A", [])
    check = tmp_path / "751000p_check.json"
    info = {"object": "D3", "runid": "04AL01", "filter": "r.MP9601", "exptime": 300.0,
            "ra_deg": 214.86, "dec_deg": 52.69, "mjd_obs": 53085.3}
    check.write_text(json.dumps({"expnum": 751000, "path": "in/751000p.fits", "n_ccd": 2,
                                 "sha256": "abc", "info": info}))
    inventory = _inventory(tmp_path, [
        {"expnum": 751000, "path": "in/751000p.fits", "status": "ok", "reason": "", "message": ""},
        {"expnum": 751000, "path": "in/751000p.fits.fz", "status": "quarantined",
         "reason": "duplicate_expnum", "message": "odometer 751000 already provided by 751000p.fits"},
        {"expnum": "", "path": "in/README.txt", "status": "quarantined",
         "reason": "unrecognised_name", "message": "not NNNNNNp.fits"},
    ])
    counts, url = _build(tmp_path, inventory, checks=[check], qa_xml=[step1 / "751000p.xml"],
                         diag=[step1 / "751000p_diag.fits"])
    assert counts == {"exposures": 2, "ccds": 2, "quarantine": 2}
    tables = _read_tables(url)
    exposures = tables["exposures"][1]
    assert exposures["file"].tolist() == ["in/751000p.fits", "in/README.txt"]
    kept = exposures.iloc[0]
    assert kept["status"] == "ok" and kept["n_ccd"] == 2 and kept["qa_n_stars"] == 412
    assert kept["qa_fwhm_arcsec"] == pytest.approx(0.8) and kept["filter"] == "r.MP9601"
    assert tables["quarantine"][1]["file"].tolist() == ["in/751000p.fits.fz", "in/README.txt"]
    ccds = tables["ccds"][1]
    assert ccds["expnum"].tolist() == [751000, 751000] and ccds["ccd"].tolist() == [3, 4]
    engine = sa.create_engine(url)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(sa.text("insert into exposures (expnum, file) values (751000, 'again')"))
    engine.dispose()


def test_a_column_outside_the_schema_is_refused():
    from spica.registry import conform

    with pytest.raises(ValueError, match="not in its schema: \\['qa_new_figure'\\]"):
        conform(pd.DataFrame({"expnum": [1], "qa_new_figure": [2.0]}), "exposures")


def test_calibration_of_an_empty_plan_gives_empty_scamp_tables(tmp_path):
    from spica.registry import load_calibration

    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    counts = load_calibration(url=url, release="T0002", scamp_xml={},
                              export_csv=tmp_path / "T0002_scamp_fields.csv")
    assert counts == {"scamp_fields": 0, "scamp_groups": 0}
    tables = _read_tables(url)
    assert tables["scamp_fields"][0] == _schema_columns("scamp_fields")
    assert tables["scamp_groups"][0] == _schema_columns("scamp_groups")
    assert pd.read_csv(tmp_path / "T0002_scamp_fields.csv").columns.tolist() == \
        _schema_columns("scamp_fields")


def test_calibration_tables_hold_what_scamp_xml_gives(tmp_path):
    # the schema declares every column parse_scamp_xml makes (an unknown one is refused)
    from spica.registry import load_calibration
    from tests.calibration.test_calibration import _XML

    (tmp_path / "scamp.xml").write_text(_XML)
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    export = tmp_path / "T0002_scamp_fields.csv"
    for _ in range(2):  # a rerun replaces the release's rows
        counts = load_calibration(url=url, release="T0002", scamp_xml={"S_T0002": tmp_path / "scamp.xml"},
                                  export_csv=export)
    assert counts == {"scamp_fields": 2, "scamp_groups": 1}
    fields = _read_tables(url)["scamp_fields"][1]
    assert fields["catalog"].tolist() == ["a_ldac.fits", "b_ldac.fits"]
    assert fields["ndetect"].iloc[0] == 662 and fields["stack"].tolist() == ["S_T0002"] * 2
    assert fields["zeropoint_corr"].iloc[1] == pytest.approx(0.125)
