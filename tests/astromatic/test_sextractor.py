"""SExtractor's arguments (pure) and its XML reader."""

import pytest

from spica.astromatic import sextractor

FILES = {"config": "c/step1.sex", "param": "c/step1.param", "conv": "c/g.conv", "nnw": "c/d.nnw"}


def test_step1_arguments_are_the_rule_command():
    """The command the step 1 rule ran as a shell rule (recorded in 751000p_sex.xml)."""
    options = sextractor.step1_options(
        {"detect_thresh": 1.5, "detect_minarea": 5, "back_size": 128, "phot_apertures_arcsec": [3.0, 4.0],
         "overrides": {}},
        pixel_scale=0.186,
    )
    assert options == {"PHOT_APERTURES": "16.13,21.51", "ANALYSIS_THRESH": 1.5, "BACK_SIZE": 128,
                       "DETECT_MINAREA": 5, "DETECT_THRESH": 1.5}
    assert list(options) == ["PHOT_APERTURES", "ANALYSIS_THRESH", "BACK_SIZE", "DETECT_MINAREA", "DETECT_THRESH"]
    args = sextractor.arguments(
        images="raw/751000p.fits", **FILES, weights="s/751000p_weight.fits", flags="s/751000p_flag.fits",
        catalog="s/751000p_ldac.fits", xml_out="s/751000p_sex.xml", checkimage="s/751000p_minibkg.fits",
        options=options,
    )
    assert " ".join(args) == (
        "raw/751000p.fits -c c/step1.sex -PARAMETERS_NAME c/step1.param -FILTER_NAME c/g.conv"
        " -STARNNW_NAME c/d.nnw -WEIGHT_IMAGE s/751000p_weight.fits -FLAG_IMAGE s/751000p_flag.fits"
        " -PHOT_APERTURES 16.13,21.51 -ANALYSIS_THRESH 1.5 -BACK_SIZE 128 -DETECT_MINAREA 5 -DETECT_THRESH 1.5"
        " -CATALOG_NAME s/751000p_ldac.fits -XML_NAME s/751000p_sex.xml -CHECKIMAGE_NAME s/751000p_minibkg.fits"
    )


def test_step1_overrides_are_sorted_with_the_other_options():
    options = sextractor.step1_options(
        {"detect_thresh": 2, "detect_minarea": 3, "back_size": 64, "phot_apertures_arcsec": [1.0],
         "overrides": {"WEIGHT_GAIN": False, "BACK_SIZE": 256}},
        pixel_scale=0.5,
    )
    assert options == {"PHOT_APERTURES": "2.00", "ANALYSIS_THRESH": 2, "BACK_SIZE": 256, "DETECT_MINAREA": 3,
                       "DETECT_THRESH": 2, "WEIGHT_GAIN": False}
    assert list(options)[-1] == "WEIGHT_GAIN"


def test_dual_image_arguments():
    args = sextractor.arguments(
        images=("t_chi2.fits", "t_r.fits"), **FILES, weights=("t_chi2_weight.fits", "t_r_weight.fits"),
        catalog="r_ldac.fits", xml_out="r_sex.xml", options={"BACK_SIZE": 64, "PHOT_APERTURES": "16.13,21.51"},
    )
    assert args[:3] == ["t_chi2.fits,t_r.fits", "-c", "c/step1.sex"]
    pairs = dict(zip(args[3::2], args[4::2]))
    assert pairs["-WEIGHT_IMAGE"] == "t_chi2_weight.fits,t_r_weight.fits"
    assert "-FLAG_IMAGE" not in pairs and "-CHECKIMAGE_NAME" not in pairs
    assert args[-4:] == ["-CATALOG_NAME", "r_ldac.fits", "-XML_NAME", "r_sex.xml"]
    assert args.index("-BACK_SIZE") < args.index("-PHOT_APERTURES") < args.index("-CATALOG_NAME")


def test_optional_parts_and_errors():
    args = sextractor.arguments(images="i.fits", **FILES, catalog="i.cat",
                                checkimage=["back.fits", "rms.fits"], options={"VERBOSE_TYPE": "QUIET"})
    assert "-WEIGHT_IMAGE" not in args and "-XML_NAME" not in args
    assert args[-2:] == ["-CHECKIMAGE_NAME", "back.fits,rms.fits"]
    with pytest.raises(ValueError, match="weight"):
        sextractor.arguments(images=("a", "b"), **FILES, weights="w", catalog="c", options={})
    with pytest.raises(ValueError, match="image"):
        sextractor.arguments(images=("a", "b", "c"), **FILES, catalog="c", options={})
    with pytest.raises(ValueError, match="CATALOG_NAME"):
        sextractor.arguments(images="a", **FILES, catalog="c", options={"CATALOG_NAME": "d"})


def test_read_extension_data(tmp_path):
    xml = tmp_path / "x_sex.xml"
    xml.write_text(
        '<VOTABLE><RESOURCE><TABLE ID="Extension_Data" name="Extension_Data">'
        '<FIELD name="Extension" datatype="int"/><FIELD name="Background_Mean" datatype="float" arraysize="1"/>'
        "<DATA><TABLEDATA><TR><TD>1</TD><TD>1000.5</TD></TR><TR><TD>2</TD><TD>990</TD></TR></TABLEDATA></DATA>"
        "</TABLE></RESOURCE></VOTABLE>"
    )
    rows = sextractor.read_extension_data(xml)
    assert rows == {1: {"Extension": 1, "Background_Mean": 1000.5}, 2: {"Extension": 2, "Background_Mean": 990.0}}
    assert sextractor.read_extension_data(tmp_path / "absent.xml") == {}
    assert sextractor.read_extension_data(None) == {}
