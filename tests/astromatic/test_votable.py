"""The one reader of AstrOmatic XML reports, on tiny synthetic documents."""

import math

import pytest

from spica.astromatic.votable import convert, read_table_rows, read_xml

XML = """<?xml version="1.0"?>
<VOTABLE xmlns="http://www.ivoa.net/xml/VOTable/v1.1">
<RESOURCE ID="Tool" name="Tool">
 <RESOURCE ID="MetaData" name="MetaData">
  <PARAM name="Version" datatype="char" arraysize="*" value=" 2.10 "/>
  <PARAM name="NThreads" datatype="int" value="4"/>
  <TABLE ID="Fields" name="Fields">
   <PARAM name="NExtensions" datatype="int" value="2"/>
   <FIELD name="Catalog_Name" datatype="char" arraysize="*"/>
   <FIELD name="Extension" datatype="int"/>
   <FIELD name="Flag" datatype="boolean"/>
   <FIELD name="Sigma" datatype="float" arraysize="2"/>
   <FIELD name="Mean" datatype="double"/>
   <DATA><TABLEDATA>
    <TR><TD>a.fits</TD><TD>1</TD><TD>T</TD><TD>0.5 0.25</TD><TD>28.625</TD></TR>
    <TR><TD>b.fits</TD><TD>x</TD><TD>F</TD><TD></TD><TD></TD></TR>
    <TR><TD>c.fits</TD></TR>
   </TABLEDATA></DATA>
  </TABLE>
 </RESOURCE>
 <RESOURCE ID="Config" name="Config">
  <PARAM name="NThreads" datatype="int" value="8"/>
  <PARAM name="Getarea" datatype="boolean" value="T"/>
  <TABLE ID="Other" name="other name"><FIELD datatype="short"/><DATA><TABLEDATA><TR><TD>7</TD></TR></TABLEDATA></DATA></TABLE>
 </RESOURCE>
</RESOURCE>
</VOTABLE>
"""


@pytest.fixture
def report(tmp_path):
    path = tmp_path / "report.xml"
    path.write_text(XML)
    return path


def test_convert_types_cells_from_datatype_and_arraysize():
    assert convert(" text ", "char") == "text"
    assert convert("3", "unknownType") == "3"
    assert convert("12", "int") == 12 and isinstance(convert("12", "int"), int)
    assert convert("12", "float") == 12.0 and isinstance(convert("12", "float"), float)
    assert math.isnan(convert("abc", "double"))
    assert math.isnan(convert("", "float", "1"))
    assert convert("1.5 2.5", "float", "2") == [1.5, 2.5]
    assert convert("T", "boolean") is True and convert("F", "boolean") is False
    assert convert("", "boolean") is None
    assert convert("T F", "boolean", "*") == [True, False]
    assert convert(None) == ""


def test_read_xml_tables_params_and_resources(report):
    doc = read_xml(report)
    assert [(t.name, t.id) for t in doc.tables] == [("Fields", "Fields"), ("other name", "Other")]
    fields = doc.table("Fields")
    assert fields.names == ["Catalog_Name", "Extension", "Flag", "Sigma", "Mean"]
    assert fields.params == {"NExtensions": 2}
    first, second, third = fields.rows
    assert first == {"Catalog_Name": "a.fits", "Extension": 1, "Flag": True, "Sigma": [0.5, 0.25], "Mean": 28.625}
    assert math.isnan(second["Extension"]) and second["Sigma"] == [] and math.isnan(second["Mean"])
    assert third == {"Catalog_Name": "c.fits"}
    # a table by name or ID; unnamed fields get col<i>
    assert doc.table("Other") is doc.table("other name") and doc.table("Other").rows == [{"col0": 7}]
    assert doc.table("absent") is None
    # every PARAM (the first of a name), and each resource's own
    assert doc.params["NThreads"] == 4 and doc.params["Version"] == "2.10" and doc.params["Getarea"] is True
    assert doc.resources["MetaData"] == {"Version": "2.10", "NThreads": 4}
    assert doc.resources["Config"] == {"NThreads": 8, "Getarea": True}
    frame = fields.frame()
    assert list(frame.columns) == fields.names and len(frame) == 3


def test_read_table_rows_tolerates_missing_reports(report, tmp_path):
    assert [row["Catalog_Name"] for row in read_table_rows(report, "Fields")] == ["a.fits", "b.fits", "c.fits"]
    assert read_table_rows(report, "absent") == []
    assert read_table_rows(tmp_path / "absent.xml", "Fields") == []
    assert read_table_rows(None, "Fields") == []
    broken = tmp_path / "broken.xml"
    broken.write_text("<VOTABLE><TABLE>")
    assert read_table_rows(broken, "Fields") == []
