"""The products' QualityFITS-out figures in the registry (``product_quality``), from their
``_spica.xml``: the same values, one row per release and product, reloads idempotent, and
the table outlives a rebuild of the step 1 tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from spica.products.quality import load_product_quality, read_product_quality
from spica.products.summary import product_summary, read_product_summary, write_product_summary
from spica.qualityfits_out.figures import FIGURES
from tests.conftest import REPO
from tests.products.test_summary import _header, _registry, _scamp

STEMS = ("CFHTLS_W_i_143007+533430_T0002", "CFHTLS_W_g_143007+533430_T0002")


def _figures(offset: float) -> dict:
    return {name: (412 + int(offset) if name.startswith(("n_", "psfex_")) else 0.5 + offset + k / 100)
            for k, (name, _, _) in enumerate(FIGURES)}


def _summary(tmp_path, stem, quality, completeness, product_grade=None):
    grading = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["qualityfits_out"]["grading"] \
        if quality else None
    tables = product_summary(name=stem.removesuffix("_T0002"), release="T0002", header=_header(),
                             registry=_registry(), stack_list=[751034], astrometric_list=[751034],
                             accept=pd.DataFrame(columns=["expnum", "accepted", "anchored"]),
                             scamp=_scamp(), quality=quality, completeness=completeness,
                             grading=grading, product_grade=product_grade)
    return write_product_summary(tables, tmp_path / f"{stem}_spica.xml")


@pytest.fixture()
def summaries(tmp_path) -> dict:
    team = [{"grade": "C", "comment": "halo over the south half", "graded_by": "rct", "date": "2006-02-01"}, None]
    found = {stem: _summary(tmp_path, stem, _figures(k), {"m50": 24.2 + k, "m80": 23.7 + k}, team[k])
             for k, stem in enumerate(STEMS)}
    found["751042p_V0001"] = _summary(tmp_path, "751042p_V0001", None, None)  # no QualityFITS-out row
    return found


def test_registry_rows_equal_the_summary_figures(tmp_path, summaries):
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    export = tmp_path / "T0002_product_quality.csv"
    for _ in range(2):  # idempotent: the release's rows are replaced
        assert load_product_quality(url=url, release="T0002", summaries=summaries, export_csv=export) == 2
    rows = read_product_quality(url, "T0002")
    assert rows["product"].tolist() == sorted(STEMS) and set(rows["release"]) == {"T0002"}
    for stem in STEMS:
        table = read_product_summary(summaries[stem])["QualityFITS_out"]
        row = rows.set_index("product").loc[stem]
        for name in [*(n for n, _, _ in FIGURES), "completeness_50_mag", "completeness_80_mag"]:
            assert row[name] == pytest.approx(float(table[name][0])), (stem, name)
        for name in ("provisional_grade", "provisional_reason", "grade", "problem_report"):  # text as delivered
            assert (row[name] or "") == str(table[name][0]), (stem, name)
        assert bool(row["provisional"]) == bool(table["provisional"][0])
        assert row["provisional_grade"] in ("A", "B", "C", "D") and row["provisional_reason"]
    graded = rows.set_index("product").loc[STEMS[0]]
    assert (graded["grade"], graded["problem_report"]) == ("C", "halo over the south half")
    assert rows.set_index("product").loc[STEMS[1], "n_galaxies"] == 413
    assert rows.set_index("product").loc[STEMS[0], "completeness_50_mag"] == pytest.approx(24.2)
    exported = pd.read_csv(export)
    assert exported["product"].tolist() == sorted(STEMS)
    assert np.allclose(exported["psf_fwhm_arcsec"], rows["psf_fwhm_arcsec"])


def test_other_releases_and_a_registry_rebuild_keep_their_rows(tmp_path, summaries):
    from tests.test_registry import _build, _inventory

    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    load_product_quality(url=url, release="T0002", summaries=summaries, export_csv=tmp_path / "a.csv")
    load_product_quality(url=url, release="T0003", summaries={STEMS[0]: summaries[STEMS[0]]},
                         export_csv=tmp_path / "b.csv")
    _build(tmp_path, _inventory(tmp_path, []))  # rebuilds exposures, ccds, quarantine only
    rows = read_product_quality(url)
    assert list(zip(rows["release"], rows["product"])) == [("T0002", STEMS[1]), ("T0002", STEMS[0]),
                                                            ("T0003", STEMS[0])]
    load_product_quality(url=url, release="T0002", summaries={}, export_csv=tmp_path / "c.csv")
    assert read_product_quality(url)["release"].tolist() == ["T0003"]


def test_an_empty_registry_gives_the_columns(tmp_path):
    rows = read_product_quality(f"sqlite:///{tmp_path / 'none.sqlite'}")
    assert len(rows) == 0 and {"release", "product", "seeing_arcsec", "completeness_80_mag"} <= set(rows)
