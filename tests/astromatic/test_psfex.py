"""PSFEx's arguments (pure) and its readers."""

import numpy as np
import pytest
from astropy.io import fits

from spica.astromatic import psfex


def test_step1_arguments_are_the_rule_command():
    """The command the step 1 rule ran as a shell rule (recorded in 751000p_psfex.xml)."""
    options = psfex.step1_options({"min_snr": 20.0, "overrides": {}})
    args = psfex.arguments(catalog="s/751000p_ldac.fits", config="c/step1.psfex", psf_dir="s",
                           xml_out="s/751000p_psfex.xml", options=options)
    assert " ".join(args) == (
        "s/751000p_ldac.fits -c c/step1.psfex -SAMPLE_MINSN 20.0 -PSF_DIR s -XML_NAME s/751000p_psfex.xml"
    )


def test_overrides_sorted_with_sample_minsn():
    options = psfex.step1_options({"min_snr": 25, "overrides": {"PSF_SIZE": (25, 25), "BASIS_TYPE": "PIXEL_AUTO"}})
    assert list(options) == ["BASIS_TYPE", "PSF_SIZE", "SAMPLE_MINSN"]
    args = psfex.arguments(catalog="a.fits", config="p", psf_dir="d", xml_out="x", options=options)
    assert args[3:9] == ["-BASIS_TYPE", "PIXEL_AUTO", "-PSF_SIZE", "25,25", "-SAMPLE_MINSN", "25"]
    with pytest.raises(ValueError, match="PSF_DIR"):
        psfex.arguments(catalog="a", config="p", psf_dir="d", xml_out="x", options={"PSF_DIR": "e"})


def test_read_psf_models(tmp_path):
    mask = np.zeros((1, 3, 5, 5), np.float32)
    mask[0, 0, 2, 2] = 1.0
    good = fits.BinTableHDU.from_columns([fits.Column("PSF_MASK", "75E", dim="(5,5,3)", array=mask)])
    good.header.update({"PSF_FWHM": 3.5, "LOADED": 40, "ACCEPTED": 30})
    bad = fits.BinTableHDU.from_columns([fits.Column("PSF_MASK", "75E", dim="(5,5,3)", array=mask)])
    bad.header["PSF_FWHM"] = 0.0
    path = tmp_path / "x_ldac.psf"
    fits.HDUList([fits.PrimaryHDU(), good, bad]).writeto(path)
    (figs, image), (bad_figs, bad_image) = psfex.read_psf_models(path)
    assert figs == {"PSF_FWHM": 3.5, "LOADED": 40.0, "ACCEPTED": 30.0}
    assert image.shape == (5, 5) and image[2, 2] == 1.0
    assert bad_figs == {"PSF_FWHM": 0.0} and bad_image is None
    assert psfex.read_psf_models(tmp_path / "absent.psf") == [] and psfex.read_psf_models(None) == []


def test_read_psf_extensions(tmp_path):
    xml = tmp_path / "x_psfex.xml"
    xml.write_text(
        '<VOTABLE><RESOURCE><TABLE ID="PSF_Extensions" name="PSF_Extensions">'
        '<FIELD name="Extension" datatype="int"/><FIELD name="FWHM_PixelFree_Mean" datatype="float"/>'
        '<FIELD name="NStars_Loaded_Total" datatype="int"/>'
        "<DATA><TABLEDATA><TR><TD>1</TD><TD>3.25</TD><TD>40</TD></TR></TABLEDATA></DATA>"
        "</TABLE></RESOURCE></VOTABLE>"
    )
    assert psfex.read_psf_extensions(xml) == {1: {"Extension": 1, "FWHM_PixelFree_Mean": 3.25, "NStars_Loaded_Total": 40}}
    assert psfex.read_psf_extensions(tmp_path / "absent.xml") == {}
