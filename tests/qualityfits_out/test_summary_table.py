"""The QualityFITS-out table of ``_spica.xml`` (no tool)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from spica.products.summary import SUMMARY_TABLES, product_summary, read_product_summary, write_product_summary
from spica.qualityfits_out.figures import FIGURES
from tests.products.test_summary import _header, _registry, _scamp


def _summary(**quality) -> dict:
    accept = pd.DataFrame({"expnum": [751034], "accepted": [True], "anchored": [True], "reasons": [[]]})
    return product_summary(name="CFHTLS_W_i_143007+533430", release="T0002", header=_header(),
                           registry=_registry(), stack_list=[751034], astrometric_list=[751034],
                           accept=accept, scamp=_scamp(), **quality)


def test_qualityfits_out_table_round_trips(tmp_path):
    figures = {name: (7 if name.startswith(("n_", "psfex_")) else 0.5 + k) for k, (name, _, _) in enumerate(FIGURES)}
    tables = _summary(quality=figures, completeness={"m50": 24.21, "m80": 23.96})
    back = read_product_summary(write_product_summary(tables, tmp_path / "x_spica.xml"))
    assert list(back) == list(SUMMARY_TABLES) and SUMMARY_TABLES[-1] == "QualityFITS_out"
    row = back["QualityFITS_out"][0]
    assert row["psf_fwhm_arcsec"] == pytest.approx(figures["psf_fwhm_arcsec"])
    assert row["n_stars"] == 7 and str(back["QualityFITS_out"]["seeing_arcsec"].unit) == "arcsec"
    assert (row["completeness_50_mag"], row["completeness_80_mag"]) == pytest.approx((24.21, 23.96))
    # figures without a completeness measurement: the magnitudes are NaN; no figures: no row
    assert math.isnan(_summary(quality=figures)["QualityFITS_out"]["completeness_50_mag"][0])
    assert len(_summary()["QualityFITS_out"]) == 0
