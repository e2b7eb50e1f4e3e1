"""The release's HTML report (``snakemake --report report.zip release_T0002``) on the e2e
release (fixture ``release``): the QA plots of step 1, SCAMP, the stacks and
QualityFITS-out, by category and subcategory, with their captions; the chi-squared
figure as PostScript beside its PNG; the registry's ``product_quality`` rows."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from spica import paths
from spica.products.quality import read_product_quality
from spica.products.summary import read_product_summary
from spica.release.planning import read_plan
from tests.e2e.conftest import D3, VW, snakemake

pytestmark = [pytest.mark.e2e, pytest.mark.tools]

#: PNG plots marked per exposure (step 1) and per product (stacks, QualityFITS-out).
STEP1_PNG = [key for key, suffix in paths.QA_PLOTS.items() if suffix.endswith(".png")]
QFO_PNG = [key for key, suffix in {**paths.QUALITYFITS_OUT_PRODUCTS, **paths.COMPLETENESS_PRODUCTS,
                                    **paths.STAR_CLUSTERING_PRODUCTS}.items()
           if suffix.endswith(".png")]


def _names(files: list[str]) -> list[str]:
    """File names of a subcategory's entries (a folder's files are listed by path)."""
    return sorted(Path(name).name for name in files)


@pytest.fixture(scope="module")
def report(release: dict, tmp_path_factory) -> dict:
    """The finished release and its report, unpacked: the ``categories`` and ``results``
    the report page holds, the zip's member names and the page's text. (``release_T0002``
    is run again with ``--rerun-triggers mtime``: nothing to do after the release phase,
    and a reused work directory made by older code gets only the files it lacks.)"""
    workdir = release["workdir"]
    run = snakemake(workdir, "release_T0002", "--rerun-triggers", "mtime")
    assert run.returncode == 0, run.stderr[-3000:]
    target = tmp_path_factory.mktemp("report") / "report.zip"
    run = snakemake(workdir, "--report", str(target), "report_T0002")
    assert run.returncode == 0, run.stderr[-3000:]
    with zipfile.ZipFile(target) as archive:
        names = archive.namelist()
        html = archive.read(next(n for n in names if n.endswith("report.html"))).decode()
    categories = json.loads(re.search(r"var categories = (\{.*?\});\n", html)[1])
    results = json.loads(re.search(r"var results = (\{.*?\});\n", html)[1])
    results_dir = workdir / release["config"]["results"]
    plan = read_plan(paths.release_path(results_dir, "T0002", "plan").parent, release="T0002")
    return {**release, "results": results_dir, "plan": plan, "names": names, "html": html,
            "categories": categories, "results_page": results}


def test_images_per_category(report):
    """Step 1: 14 PNG per exposure of the astrometric lists; SCAMP: every check plot (PNG) of
    every product; Stacks: 5 thumbnails per product and the chi-squared PNG of each tile;
    QualityFITS-out: 10 per product and the tiles' colour diagrams. Every one is an image of the zip."""
    plan, results = report["plan"], report["results"]
    products = plan.products()
    exposures = {int(e) for members in plan.astrometric_lists.values() for e in members}
    scamp = {stem: sorted(p.name for p in paths.scamp_folder(results, "T0002", stem).glob("*.png"))
             for stem in products}
    colour_png = [p for tile in plan.tiles() for p in paths.colour_paths(results, "T0002", tile)
                  if p.suffix == ".png"]
    counts = {category: sum(len(files) for files in sub.values())
              for category, sub in report["categories"].items()}
    assert counts == {"Step 1": len(STEP1_PNG) * len(exposures),
                      "SCAMP": sum(len(files) for files in scamp.values()),
                      "Stacks": len(paths.STACK_THUMBNAILS) * len(products) + len(plan.tiles()),
                      "QualityFITS-out": len(QFO_PNG) * len(products) + len(colour_png)}
    assert len(STEP1_PNG) == 14 and len(QFO_PNG) == 10 and counts["SCAMP"] >= 9 * len(products)
    assert len(colour_png) == 1  # D3 in r and i: one colour-magnitude diagram, no three filters
    assert sorted(report["categories"]["Step 1"]) == sorted(paths.exposure_name(e) for e in exposures)
    assert sorted(report["categories"]["SCAMP"]) == sorted(products)
    for stem, files in scamp.items():
        assert _names(report["categories"]["SCAMP"][stem]) == files
    images = [n for n in report["names"] if n.endswith(".png")]
    assert len(images) == sum(counts.values())


def test_given_plots_are_in_their_subcategory(report):
    categories, plan = report["categories"], report["plan"]
    expnum = min(int(e) for e in plan.astrometric_lists[plan.name_of(D3["r"])])
    exposure = paths.exposure_name(expnum)
    assert f"{exposure}_fwhm_histo.png" in _names(categories["Step 1"][exposure])
    assert f"{D3['r']}_astr_interror1d_1.png" in _names(categories["SCAMP"][D3["r"]])
    assert f"{D3['r']}_m.png" in _names(categories["Stacks"][D3["r"]])
    tile = paths.chi2_stem([D3["r"], D3["i"]])
    assert _names(categories["Stacks"][tile]) == [f"{tile}_chi2.png"]
    assert f"{VW}_comptness.png" in _names(categories["QualityFITS-out"][VW])
    assert f"{D3['i']}_psf_m.png" in _names(categories["QualityFITS-out"][D3["i"]])
    assert f"{D3['r']}_wtheta.png" in _names(categories["QualityFITS-out"][D3["r"]])
    (diagcm,) = [p for t in plan.tiles() for p in paths.colour_paths(report["results"], "T0002", t)
                 if p.suffix == ".png"]
    assert diagcm.name.endswith("_ri_141927+524056_T0002_diagcm.png")
    assert _names(categories["QualityFITS-out"][diagcm.parent.name]) == [diagcm.name]  # the tile's
    # the zip holds the very files
    for name in (f"{exposure}_fwhm_histo.png", f"{D3['r']}_astr_interror1d_1.png", f"{tile}_chi2.png"):
        assert any(n.endswith("/" + name) for n in report["names"]), name


def test_captions_say_what_each_plot_shows(report):
    """Each plot carries its kind's caption (report/<kind>.rst); SCAMP's follows the plot's kind."""
    page = {Path(key).name: value for key, value in report["results_page"].items()}
    expnum = min(int(e) for members in report["plan"].astrometric_lists.values() for e in members)
    exposure = paths.exposure_name(expnum)
    assert "Half-light radius against magnitude for the stars only" in page[f"{exposure}_rhmag_star.png"]["caption"]
    assert "simulated stars" in page[f"{D3['r']}_comptness.png"]["caption"]
    distortion = page[f"{D3['r']}_distortion_1.png"]["caption"]
    assert "Distortion map" in distortion and "Field groups" not in distortion
    assert "Field groups" in page[f"{D3['r']}_fgroups_1.png"]["caption"]
    assert "chi-squared image of the tile" in report["html"]
    assert "Angular two-point correlation function" in page[f"{D3['i']}_wtheta.png"]["caption"]


def test_chi2_postscript_beside_the_png(report):
    for tile in report["plan"].tiles():
        ps = paths.chi2_path(report["results"], "T0002", tile, "ps")
        text = ps.read_bytes()
        assert text.startswith(b"%!PS-Adobe-3.0") and text.rstrip().endswith(b"%EOF")
        box = re.search(rb"^%%BoundingBox: (\d+) (\d+) (\d+) (\d+)\s*$", text, re.M)
        width, height = Image.open(ps.with_suffix(".png")).size
        # the PNG's figure (100 dpi) on a page of its own size (72 points an inch)
        assert [int(v) for v in box.groups()] == pytest.approx([0, 0, width * 0.72, height * 0.72], abs=1), tile


def test_registry_rows_equal_the_summaries(report):
    """``product_quality`` holds each product's QualityFITS-out row of ``_spica.xml``."""
    url = report["config"]["registry"]["url"]
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        url = f"sqlite:///{report['workdir'] / url.removeprefix('sqlite:///')}"
    rows = read_product_quality(url, "T0002").set_index("product")
    assert sorted(rows.index) == sorted(report["plan"].products())
    for stem in rows.index:
        table = read_product_summary(paths.product_path(report["results"], "T0002", stem, "summary"))
        quality = table["QualityFITS_out"]
        for name in ("psf_fwhm_arcsec", "elongation", "n_stars", "n_galaxies", "galaxy_peak_mag",
                     "masked_fraction", "completeness_50_mag", "completeness_80_mag"):
            assert rows.loc[stem, name] == pytest.approx(float(quality[name][0])), (stem, name)
        # the SCAMP tables of seed 4.4, read from the product's _scamp.xml
        run = table["SCAMP_Run"][0]
        assert run["nfields"] == len(report["plan"].astrometric_lists[report["plan"].name_of(stem)])
        instruments = table["SCAMP_Instruments"]
        assert (instruments["kind"] == "photometric").sum() == run["n_phot_instruments"]
        statistics = table["SCAMP_Photometric_Statistics"]
        assert set(statistics["instrument"]) <= set(instruments["name"])
