"""The SPICA summary of a release product (``_spica.xml``) on tiny synthetic inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from spica.products.summary import SUMMARY_TABLES, product_summary, read_product_summary, write_product_summary


def _registry() -> pd.DataFrame:
    return pd.DataFrame({
        "expnum": [751034, 751035, 751197, 700001],
        "object": ["W3+2-1"] * 3 + ["W3-3-1"],
        "filter": ["i.MP9701"] * 3 + ["g.MP9401"],
        "ra_deg": [217.52583, 217.51371, 217.53, 359.95],
        "dec_deg": [53.58006, 53.57147, 53.58006, -0.2],
        "qa_fwhm_arcsec": [0.80, 0.91, 0.83, 0.95],
        "skyprobe": [0.285, 1.078, 0.093, 0.1],
        "photometric": [False, False, True, True],
        "airmass": [1.222, 1.232, 1.215, 1.3],
        "grade": ["B", "B", "A", "A"],
        "exptime": [620.183, 620.218, 620.195, 300.0],
        "runid": ["04AL05"] * 4,
        "qrunid": ["04AQ05"] * 4,
        "rel_date": ["2006-05-01T00:00:00"] * 4,
        "date_obs": ["2004-06-24", "2004-06-24", "2004-06-25", "2004-06-26"],
        "utc_obs": ["07:30:42", "07:42:29", "07:16:56", "08:00:00"],
        "qa_background_mag": [20.1, 20.3, 20.2, 21.9],
    })


def _scamp() -> dict:
    fields = pd.DataFrame({
        "catalog": ["751034p_ldac.fits", "751035p_ldac.fits", "751197p_ldac.fits", "700001p_ldac.fits"],
        "group": [1, 1, 1, 2], "astr_instrument": ["A1", "A1", "A1", "A2"],
        "phot_instrument": ["P1", "P1", "P1", "P2"], "ndetect": [4000, 3900, 4100, 2000],
        "zeropoint_corr": [-0.05, -0.12, 0.001, 0.0], "astrom_sigma_reference": [0.02, 0.02, 0.02, 0.03],
    })
    groups = pd.DataFrame({
        "group": ["G1", "G2"], "nfields": [3, 1],
        "astrom_sigma_internal": [0.13, 0.03], "astrom_sigma_reference_hisn": [0.33, 0.31],
        "astrom_ndets_reference": [6111, 3000], "phot_sigma_internal": [0.169, 0.2],
        "phot_chi2_internal": [14.8, 39.1],
    })
    return {"fields": fields, "groups": groups}


def _header() -> fits.Header:
    header = fits.Header()
    for key, value in (("NAXIS1", 100), ("NAXIS2", 120), ("CRVAL1", 217.5291667), ("CRVAL2", 53.575),
                       ("FILTER", "i.MP9701"), ("NCOMBINE", 2), ("EXPTIME", 1240.378), ("MAGZERO", 30.0),
                       ("SEEING", 0.815), ("BACKMEAN", 1.12), ("PHOTCAL", True),
                       ("REL_DATE", "2006-05-01T00:00:00")):
        header[key] = value
    return header


@pytest.fixture()
def tables() -> dict:
    accept = pd.DataFrame({"expnum": [751034, 751035, 751197], "accepted": [True, False, True],
                           "anchored": [True, True, True], "reasons": [[], ["CCD 3: pixel scale"], []]})
    return product_summary(name="CFHTLS_W_i_143007+533430", release="T0002", header=_header(),
                           registry=_registry(), stack_list=[751034, 751035, 751197],
                           astrometric_list=[751034, 751035, 751197, 700001], accept=accept, scamp=_scamp())


def test_stack_row_follows_the_header_and_the_stacked_inputs(tables):
    stack = tables["Stack"][0]
    assert stack["name"] == "CFHTLS_W_i_143007+533430"
    assert (stack["ra"], stack["dec"]) == ("14:30:07.00", "+53:34:30.0")
    assert stack["release_version"] == "0002" and stack["zeropoint"] == 30.0
    assert stack["exptime_total"] == pytest.approx(1240.378) and stack["ncombine"] == 2
    # means over the exposures actually stacked (751035 was rejected)
    assert stack["skyprobe"] == pytest.approx((0.285 + 0.093) / 2)
    assert stack["background_mag"] == pytest.approx((20.1 + 20.2) / 2)


def test_stacked_files_carry_the_seed_columns(tables):
    files = tables["Stacked_Files"]
    assert list(files["file"]) == ["751034p.fits", "751035p.fits", "751197p.fits"]
    assert list(files["photom_flag"]) == ["A", "A", "P"]
    assert list(files["stacked"]) == [True, False, True]
    assert list(files["grade"]) == ["B", "B", "A"]
    assert files["ra"][0] == "14:30:06.20" and files["dec"][0] == "+53:34:48.2"
    assert np.allclose(files["seeing_arcsec"], [0.80, 0.91, 0.83])


def test_astrometric_files_and_filter_distribution(tables):
    astrometric = tables["Astrometric_Files"]
    assert list(astrometric["group"]) == [1, 1, 1, 2]
    assert np.allclose(astrometric["zeropoint_corr"], [-0.05, -0.12, 0.001, 0.0])
    filters = {row["filter"]: row for row in tables["Filters"]}
    assert filters["i.MP9701"]["nfiles"] == 3 and filters["g.MP9401"]["nfiles"] == 1
    i_band = filters["i.MP9701"]
    assert (i_band["ra_min_deg"], i_band["ra_max_deg"]) == pytest.approx((217.51371, 217.53))
    assert (i_band["dec_min_deg"], i_band["dec_max_deg"]) == pytest.approx((53.57147, 53.58006))
    assert tables["Astrometry"]["nfields"].tolist() == [3, 1]
    assert "phot_chi2_internal" in tables["Photometry"].colnames
    assert "phot_chi2_internal" not in tables["Astrometry"].colnames


def test_votable_round_trip(tables, tmp_path):
    path = write_product_summary(tables, tmp_path / "x_spica.xml")
    back = read_product_summary(path)
    assert list(back) == list(SUMMARY_TABLES)
    assert list(back["Stacked_Files"]["photom_flag"]) == ["A", "A", "P"]
    assert back["Stack"]["exptime_total"].unit == "s"
    assert back["Astrometric_Files"]["zeropoint_corr"][1] == pytest.approx(-0.12)


SCAMP_EXCERPT = Path(__file__).parent / "data" / "scamp_excerpt.xml"


@pytest.fixture()
def scamp_tables(tmp_path) -> dict:
    """``_spica.xml`` of a product calibrated by the hand-written SCAMP XML excerpt, read back."""
    from spica.astromatic.scamp import parse_scamp_xml

    accept = pd.DataFrame(columns=["expnum", "accepted", "anchored"])
    tables = product_summary(name="CFHTLS_W_i_143007+533430", release="T0002", header=_header(),
                             registry=_registry(), stack_list=[751034, 751035, 751197],
                             astrometric_list=[751034, 751035, 751197, 700001], accept=accept,
                             scamp=parse_scamp_xml(SCAMP_EXCERPT))
    return read_product_summary(write_product_summary(tables, tmp_path / "x_spica.xml"))


def test_scamp_run_summary(scamp_tables):
    """The seed's run summary: groups, fields, instruments, photometric instruments."""
    run = scamp_tables["SCAMP_Run"]
    assert len(run) == 1
    assert (run["version"][0], run["date"][0]) == ("2.10.0", "2021-01-01")
    assert (run["ngroups"][0], run["nfields"][0]) == (2, 4)
    assert (run["n_astr_instruments"][0], run["n_phot_instruments"][0], run["n_warnings"][0]) == (3, 2, 1)


def test_scamp_instrument_key_table(scamp_tables):
    """One row per instrument, astrometric first, its keys as ``KEY = value`` and the ZP."""
    instruments = scamp_tables["SCAMP_Instruments"]
    assert list(instruments["name"]) == ["A1", "A2", "A3", "P1", "P2"]
    assert list(instruments["kind"]) == ["astrometric"] * 3 + ["photometric"] * 2
    assert list(instruments["nfields"]) == [2, 1, 1, 3, 1]
    assert instruments["keys"][0] == "FILTER = i.MP9701, QRUNID = 04AQ05"
    assert instruments["keys"][4] == "FILTER = g.MP9401"
    magzero = np.ma.filled(instruments["magzero"], np.nan)  # NaN is written as a null
    assert np.isnan(magzero[0]) and magzero[3] == 30.0


def test_scamp_photometric_statistics_per_instrument(scamp_tables):
    """P1 and P2 of group G1 and P1 of G2 with the seed's figures (4.4), in the seed's order:
    internal all / high S/N, external all / high S/N; sigma, chi2/dof, detections."""
    stats = scamp_tables["SCAMP_Photometric_Statistics"]
    assert [(g, p) for g, p in zip(stats["group"], stats["instrument"])] == [("G1", "P1"), ("G1", "P2"),
                                                                             ("G2", "P1")]
    p2 = stats[1]
    assert (p2["sigma_internal"], p2["chi2_internal"], p2["ndets_internal"]) == pytest.approx((0.219, 39.1054, 0))
    assert (p2["sigma_internal_hisn"], p2["chi2_internal_hisn"], p2["ndets_internal_hisn"]) == pytest.approx(
        (0.099, 420.327, 19960))
    assert (p2["sigma_reference"], p2["chi2_reference"], p2["ndets_reference"]) == pytest.approx(
        (0.113, 10.7801, 835914))
    assert (p2["sigma_reference_hisn"], p2["ndets_reference_hisn"]) == pytest.approx((0.025, 835914))
    g2 = stats[2]  # one photometric instrument: SCAMP writes scalars
    assert (g2["sigma_internal"], g2["chi2_reference_hisn"], g2["ndets_reference"]) == pytest.approx(
        (0.13, 66.9782, 312523))
    assert stats[0]["nfields"] == 3 and stats["sigma_internal"].unit == "mag"
