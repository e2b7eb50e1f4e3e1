"""The one formatter of AstrOmatic command-line options."""

import pytest

from spica.astromatic.options import (
    astromatic_setting,
    format_value,
    option_arguments,
    read_param_file,
)


@pytest.mark.parametrize(
    ("value", "text"),
    [(True, "Y"), (False, "N"), (1.5, "1.5"), (20.0, "20.0"), (5, "5"), ("16.13,21.51", "16.13,21.51"),
     ((5, 50), "5,50"), ([True, False, 3], "Y,N,3"), ([], "")],
)
def test_format_value(value, text):
    assert format_value(value) == text


def test_option_arguments_keep_the_mapping_order():
    args = option_arguments({"DETECT_THRESH": 1.5, "BACK_SIZE": 128, "SOLVE_PHOTOM": False, "SN_THRESHOLDS": [5, 50]})
    assert args == ["-DETECT_THRESH", "1.5", "-BACK_SIZE", "128", "-SOLVE_PHOTOM", "N", "-SN_THRESHOLDS", "5,50"]
    assert option_arguments({}) == []


@pytest.mark.parametrize("key", ["detect_thresh", "-DETECT", "1KEY", "KEY VALUE", ""])
def test_option_arguments_reject_what_is_not_a_keyword(key):
    with pytest.raises(ValueError, match="keyword"):
        option_arguments({key: 1})


def test_option_arguments_reject_fixed_keys():
    with pytest.raises(ValueError, match="XML_NAME"):
        option_arguments({"XML_NAME": "x.xml"}, fixed={"XML_NAME"})
    assert option_arguments({"XML_NAME": "x.xml"}, fixed={"CATALOG_NAME"}) == ["-XML_NAME", "x.xml"]


def test_configuration_file_readers(tmp_path):
    conf = tmp_path / "a.sex"
    conf.write_text("# comment\nDETECT_THRESH   1.5   # sigmas\nBACK_SIZE 64\nEMPTY\n")
    assert astromatic_setting(conf, "DETECT_THRESH") == "1.5"
    assert astromatic_setting(conf, "EMPTY", "dflt") == "dflt"
    assert astromatic_setting(conf, "MAG_ZEROPOINT") is None
    param = tmp_path / "a.param"
    param.write_text("NUMBER\n# FLAGS\nMAG_APER(2)   # two apertures\n\n")
    assert read_param_file(param) == ["NUMBER", "MAG_APER(2)"]
