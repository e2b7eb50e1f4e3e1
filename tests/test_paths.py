"""The path grammar, both ways."""

import pytest

from spica import paths


@pytest.mark.parametrize("key", sorted({**paths.STEP1_PRODUCTS, **paths.STEP1_INTERMEDIATES}))
def test_step1_names_round_trip(key):
    name = paths.step1_name(546891, key)
    assert name.startswith("546891p")
    assert paths.parse_step1_name(name) == (546891, key)


def test_seed_step1_names():
    # names exactly as in the seed's product table (section 3.2.2)
    expected = {
        "weight": "546891p_weight.fits", "flag": "546891p_flag.fits",
        "ldac": "546891p_ldac.fits", "diag": "546891p_diag.fits", "qa_xml": "546891p.xml",
        "fwhm_histo": "546891p_fwhm_histo.png", "rhmag_gal_ps": "546891p_rhmag_gal.ps",
        "wmm_med": "546891p_wmm_med.png", "bkg_m": "546891p_bkg_m.png",
        "psf_m": "546891p_psf_m.png",
    }
    for key, name in expected.items():
        assert paths.step1_name("546891", key) == name
    # every seed step 1 auxiliary product is in the grammar
    seed_aux = ("bkg_histo.png bkg_histo.ps bkg_m.png ell.png fwhm_histo.png fwhm_histo.ps "
                "gal_histo.png gal_histo.ps m_med.png m.png psf_m.png star_histo.png "
                "star_histo.ps wmm_med.png wmm.png rhmag.png rhmag.ps rhmag_gal.png "
                "rhmag_gal.ps rhmag_star.png rhmag_star.ps").split()
    suffixes = set(paths.STEP1_PRODUCTS.values())
    assert {"_" + s for s in seed_aux} <= suffixes


def test_step1_pattern_and_path_agree(tmp_path):
    pattern = paths.step1_pattern(tmp_path, "weight")
    assert pattern.format(expnum="1257365") == str(paths.step1_path(tmp_path, 1257365, "weight"))


@pytest.mark.parametrize("bad", ["546891_weight.fits", "546891p_weights.fits", "54689p.xml", "x.fits"])
def test_parse_rejects_foreign_names(bad):
    with pytest.raises(ValueError):
        paths.parse_step1_name(bad)


def test_exposure_filenames():
    assert paths.exposure_filename(979412) == "979412p.fits"
    assert paths.parse_exposure_filename("/x/1257365p.fits.fz") == 1257365
    assert paths.parse_exposure_filename("979412o.fits") is None
    assert paths.parse_exposure_filename("979412p.fits.gz") is None


def test_exposure_names():
    assert paths.parse_exposure_name("751000p") == 751000
    assert paths.parse_exposure_name(paths.exposure_name(1257365)) == 1257365
    for bad in ("751000", "751000p.fits", "12345p", "12345678p", " 751000p"):
        with pytest.raises(ValueError):
            paths.parse_exposure_name(bad)
    assert paths.parse_exposure_prefix("751000p_ldac.fits") == 751000
    assert paths.parse_exposure_prefix("1257365p.head") == 1257365
    assert paths.parse_exposure_prefix("12345678p_ldac.fits") is None
    assert paths.parse_exposure_prefix("/x/751000p_ldac.fits") is None  # the text, not a file name
    assert paths.scamp_head_name(751000) == "751000p.head"


@pytest.mark.parametrize(
    "survey, band, ra, dec, name",
    [
        # seed names: W3 i-band target and the pre-survey r stack
        ("W", "i", (14 + 30 / 60 + 7 / 3600) * 15, 53.575, "CFHTLS_W_i_143007+533430"),
        ("Pre-W", "r", 34.5, -(3 + 44 / 60), "CFHTLS_Pre-W_r_021800-034400"),
        ("W", "gri", (13 + 59 / 60 + 34 / 3600) * 15, 53 + 33.5 / 60, "CFHTLS_W_gri_135934+533330"),
        # RA wrap and negative Dec near zero
        ("D", "u", 360.0, -0.0001, "CFHTLS_D_u_000000-000000"),
        ("D", "z", 359.9999, 89.99, "CFHTLS_D_z_235959+895924"),
    ],
)
def test_stack_names(survey, band, ra, dec, name):
    assert paths.stack_name(survey, band, ra, dec) == name
    parsed = paths.parse_stack_name(name)
    assert (parsed.survey, parsed.bands) == (survey, band)
    assert str(parsed) == name


def test_release_and_image_by_image_names():
    stack = "CFHTLS_W_r_135934+533330"
    assert paths.release_product(stack, "T0002") == "CFHTLS_W_r_135934+533330_T0002.fits"
    assert paths.release_product(stack, "T0001", "_weight.fits").endswith("_T0001_weight.fits")
    assert paths.image_by_image_name(546891, "V0001") == "546891p_V0001.fits"
    assert paths.parse_image_stem("546891p_V0001") == (546891, "V0001")
    assert "546891p_V0001" + paths.AHEAD_SUFFIX == "546891p_V0001_ahed.txt"  # the seed's spelling
    with pytest.raises(ValueError):
        paths.release_product(stack, "T2")
    with pytest.raises(ValueError):
        paths.parse_image_stem("CFHTLS_W_r_135934+533330_T0002")


def test_chi2_names_of_tiles_and_images():
    stems = ["CFHTLS_W_r_135934+533330_T0001", "CFHTLS_W_g_135934+533330_T0001",
             "CFHTLS_W_i_135934+533330_T0001"]
    # the seed's tile name: all bands in ugriz order
    assert paths.chi2_stem(stems) == "CFHTLS_W_gri_135934+533330_T0001"
    assert paths.chi2_stem(stems[:1]) == "CFHTLS_W_r_135934+533330_T0001"
    with pytest.raises(ValueError):
        paths.chi2_stem([stems[0], "CFHTLS_W_g_140000+533330_T0001"])
    # image by image: the seed's 546891p_gri_V0001_chi2.fits with the image's one filter
    assert paths.chi2_stem(["546891p_V0001"], band="r") == "546891p_r_V0001"
    with pytest.raises(ValueError):
        paths.chi2_stem(["546891p_V0001"])
    import re
    for name in ("CFHTLS_W_gri_135934+533330_T0001", "546891p_r_V0001"):
        assert re.fullmatch(paths.WILDCARD_CONSTRAINTS["chi2"], name)


def test_release_files_patterns_and_paths_agree(tmp_path):
    assert str(paths.release_path("results", "T0002", "plan")) == "results/releases/T0002/T0002_plan.csv"
    assert paths.release_pattern("results", "pending") == "results/releases/{release}/{release}_pending.txt"
    for key in paths.RELEASE_FILES:
        pattern = paths.release_pattern(tmp_path, key)
        assert pattern.format(release="T0002") == str(paths.release_path(tmp_path, "T0002", key))


def test_product_files_patterns_and_paths_agree(tmp_path):
    stem = "CFHTLS_D_r_141927+524056_T0002"
    assert str(paths.product_path("results", "T0002", stem, "weight")) == \
        f"results/releases/T0002/{stem}/{stem}_weight.fits"
    assert str(paths.product_path("r", "T0002", "546891p_V0001", "image_ahead")) == \
        "r/releases/T0002/546891p_V0001/546891p_V0001_ahed.txt"  # the seed's spelling
    assert paths.scamp_folder_pattern("results") == "results/releases/{release}/{stem}/scamp"
    for key in {**paths.STACK_PRODUCTS, **paths.IMAGE_PRODUCTS, **paths.STACK_INTERMEDIATES}:
        pattern = paths.product_pattern(tmp_path, key)
        assert pattern.format(release="T0002", stem=stem) == str(paths.product_path(tmp_path, "T0002", stem, key))
    tile = "CFHTLS_D_ri_141927+524056_T0002"
    assert str(paths.chi2_path("results", "T0002", tile, "image")) == f"results/releases/T0002/{tile}/{tile}_chi2.fits"
    for key in paths.CHI2_FILES:
        assert paths.chi2_pattern(tmp_path, key).format(release="T0002", chi2=tile) == \
            str(paths.chi2_path(tmp_path, "T0002", tile, key))


def test_release_product_suffixes_are_distinct():
    # one suffix, one file: no product of a stem overwrites another
    suffixes = [*paths.STACK_PRODUCTS.values(), *paths.IMAGE_PRODUCTS.values(),
                *paths.STACK_INTERMEDIATES.values()]
    assert len(set(suffixes)) == len(suffixes)
    assert len(set(paths.CHI2_FILES.values())) == len(paths.CHI2_FILES)
    # the stack thumbnails are named as the step 1 ones
    assert paths.STACK_THUMBNAILS == {k: paths.QA_PLOTS[k] for k in ("m", "m_med", "wmm", "wmm_med", "bkg_m")}
    assert set(paths.STACK_THUMBNAILS.items()) <= set(paths.STACK_PRODUCTS.items())
