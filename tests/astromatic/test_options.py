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


def test_configuration_files_by_key_from_the_scripts_folder():
    """A rule's ``configs`` param (key -> SHA-1) gives the scripts their files' paths:
    the workflow's ``config/astromatic/`` beside ``scripts/``; the checksum is the file's."""
    import hashlib
    from pathlib import Path

    from spica.astromatic.options import CONFIG_FILES, config_checksum, config_paths

    repo = Path(__file__).resolve().parents[2]
    configs = {key: config_checksum(repo / "config" / "astromatic" / name) for key, name in CONFIG_FILES.items()}
    paths = config_paths(configs, repo / "scripts")
    assert list(paths) == list(CONFIG_FILES)
    assert paths["conv"] == str(repo / "config" / "astromatic" / "gauss_3.0_5x5.conv")
    for key, path in paths.items():
        assert hashlib.sha1(Path(path).read_bytes()).hexdigest() == configs[key]
    assert config_paths(["scamp"], "/elsewhere/scripts") == {"scamp": "/elsewhere/config/astromatic/scamp.scamp"}
