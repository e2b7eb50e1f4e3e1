"""QualityFITS-out end to end: the products of the e2e release (fixture ``release``: D3 r
and i stacks, the Very Wide image 751042p_V0001) against the simulator's truth, and what
a QualityFITS-out change reruns. (Here, beside the phase fixtures it reads; the unit
tests of spica.qualityfits_out are in tests/qualityfits_out/.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS

from spica import paths
from spica.products.summary import read_product_summary
from spica.qualityfits_out.completeness import completeness_magnitudes, read_completeness
from spica.qualityfits_out.figures import read_figures
from spica.qualityfits_out.masks import read_masked_fraction
from spica.qualityfits_out.measure import load_product, measure_product
from tests.conftest import REPO
from tests.e2e.conftest import D3, VW, job_counts, snakemake

pytestmark = [pytest.mark.e2e, pytest.mark.tools,
              pytest.mark.filterwarnings("ignore::astropy.wcs.FITSFixedWarning")]

PRODUCTS = {D3["r"]: "r", D3["i"]: "i", VW: "r"}


@pytest.fixture(scope="module")
def qfo(release: dict) -> dict:
    """The release with every product's QualityFITS-out files (``release_T0002`` makes them
    through the SPICA summaries; a reused work directory made before they existed gets them here)."""
    results = release["workdir"] / release["config"]["results"]
    wanted = [paths.product_path(results, "T0002", stem, key) for stem in PRODUCTS
              for key in ("summary", "diag", "comptness_table", *paths.QUALITYFITS_OUT_PRODUCTS,
                          *paths.MASK_PRODUCTS)]
    if not all(path.is_file() for path in wanted):
        run = snakemake(release["workdir"], *[str(path) for path in wanted if "_spica.xml" in path.name])
        assert run.returncode == 0, run.stderr[-3000:]
    return {**release, "results": results}


def _file(survey: dict, stem: str, key: str) -> Path:
    return paths.product_path(survey["results"], "T0002", stem, key)


def _truth(survey: dict) -> pd.DataFrame:
    return pd.read_csv(survey["truth"] / "sources.csv")


def _truth_completeness(survey: dict, stem: str, band: str, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Truth stars inside the completeness cut-out, where the product has weight, and how
    many of them SExtractor detects there without simulated stars (the match of the
    injected ones: 1", |MAG_AUTO - truth| <= 1 mag), per magnitude bin."""
    found = read_completeness(_file(survey, stem, "comptness_table"))
    header, baseline = found["header"], found["baseline"]
    wcs = WCS(fits.getheader(_file(survey, stem, "image")))
    weight = fits.getdata(_file(survey, stem, "weight"))
    truth = _truth(survey)
    stars = truth[truth["type"] == "star"]
    x, y = wcs.world_to_pixel_values(stars["ra"].to_numpy(), stars["dec"].to_numpy())
    border = 10
    inside = ((x >= header["SUBX0"] + border) & (x < header["SUBX0"] + header["SUBNX"] - border)
              & (y >= header["SUBY0"] + border) & (y < header["SUBY0"] + header["SUBNY"] - border))
    inside[inside] = weight[np.round(y[inside]).astype(int), np.round(x[inside]).astype(int)] > 0
    stars = stars[inside]
    mag = stars[f"mag_{band}"].to_numpy()
    index, separation, _ = SkyCoord(stars["ra"].to_numpy(), stars["dec"].to_numpy(), unit="deg").match_to_catalog_sky(
        SkyCoord(baseline["ra"], baseline["dec"], unit="deg"))
    detected = (separation.arcsec <= header["MATCHRAD"]) & (
        np.abs(np.asarray(baseline["mag_auto"])[index] - mag) <= header["MAXDMAG"])
    bins = np.digitize(mag, edges) - 1
    n = np.array([np.count_nonzero(bins == k) for k in range(len(edges) - 1)])
    k = np.array([np.count_nonzero((bins == k) & detected) for k in range(len(edges) - 1)])
    return n, k


def test_completeness_agrees_with_the_truth_stars(qfo):
    """The 50 % and 80 % magnitudes from injected stars agree within 0.2 mag with those
    of the simulator's own stars on the same product (the same logistic fit on their
    detected fraction), wherever the truth stars (16-24 mag) fall below that level;
    the curves agree bin by bin within 3 sigma (binomial) where both are measured."""
    compared = {0.5: [], 0.8: []}
    for stem, band in PRODUCTS.items():
        found = read_completeness(_file(qfo, stem, "comptness_table"))
        edges = np.arange(20.0, 24.01, 0.5)
        n, k = _truth_completeness(qfo, stem, band, edges)
        centre = 0.5 * (edges[1:] + edges[:-1])
        injected = found["injected"]
        for m, n_truth, k_truth in zip(centre, n, k):
            if n_truth < 15:
                continue
            sel = np.abs(np.asarray(injected["mag"]) - m) <= 0.25
            f_injected, f_truth = float(np.mean(injected["recovered"][sel])), k_truth / n_truth
            p = min(max(0.5 * (f_injected + f_truth), 0.05), 0.95)
            sigma = np.sqrt(p * (1 - p) * (1 / n_truth + 1 / np.count_nonzero(sel)))
            assert abs(f_injected - f_truth) <= 3 * sigma, (stem, m, f_injected, f_truth)
        truth_levels = completeness_magnitudes(centre, n, k)
        faintest = centre[n >= 15].max()
        for level, measured, truth_level in zip((0.5, 0.8), (found["m50"], found["m80"]), truth_levels):
            if np.isfinite(truth_level) and truth_level <= faintest:
                assert abs(measured - truth_level) <= 0.2, (stem, level, measured, truth_level)
                compared[level].append(stem)
            else:  # the truth stars stay above the level to their faintest bin
                assert measured >= faintest - 0.2, (stem, level, measured)
        assert 20.0 < found["m80"] < found["m50"] < 26.5
    assert compared[0.5] and compared[0.8], compared  # each level checked on some product


def test_psf_and_elongation(qfo):
    """PSF FWHM within 10 % of the inputs' true seeing (mean of the IMCMB inputs) and the
    median stellar elongation below config qualityfits_out.max_elongation."""
    exposures = qfo["exposures"].set_index("expnum")
    limit = qfo["config"]["qualityfits_out"]["max_elongation"]
    for stem in PRODUCTS:
        header = fits.getheader(_file(qfo, stem, "image"))
        inputs = [paths.parse_exposure_name(header[k]) for k in header if k.startswith("IMCMB")]
        predicted = float(exposures.loc[inputs, "seeing_arcsec"].mean())
        figures = read_figures(_file(qfo, stem, "diag"))
        assert figures["psf_fwhm_arcsec"] == pytest.approx(predicted, rel=0.10), stem
        assert figures["psf_fwhm_min_arcsec"] <= figures["psf_fwhm_arcsec"] <= figures["psf_fwhm_max_arcsec"]
        assert 1.0 <= figures["elongation"] < limit, stem
        assert figures["psf_ellipticity_mean"] < 0.05, stem
        assert figures["psfex_accepted"] >= 50, stem
        # the PSF model delivered is the one measured: its FWHM in the model header
        with fits.open(_file(qfo, stem, "protopsf")) as psf:
            assert psf[1].header["ACCEPTED"] == figures["psfex_accepted"]


def test_star_and_galaxy_counts_match_the_truth(qfo):
    """Classified sources of 18-22 mag in the product's weighted area against the truth:
    stars within 15 %, stars and galaxies together within 10 %; galaxies within 70 % (blended
    star pairs are classified galaxies: the excess measured is +24-55 %)."""
    truth = _truth(qfo)
    for stem, band in PRODUCTS.items():
        inputs = load_product(image=_file(qfo, stem, "image"), weight=_file(qfo, stem, "weight"),
                              ldac=_file(qfo, stem, "qfo_ldac"), sex_xml=_file(qfo, stem, "qfo_sex_xml"),
                              psf=_file(qfo, stem, "protopsf"), psfex_xml=_file(qfo, stem, "qfo_psfex_xml"))
        row, sources, field = measure_product(inputs, min_snr=qfo["config"]["qualityfits_out"]["min_snr"])
        figures = read_figures(_file(qfo, stem, "diag"))
        assert (figures["n_stars"], figures["n_galaxies"]) == (field["n_stars"], field["n_galaxies"])
        weight = fits.getdata(_file(qfo, stem, "weight"))
        x, y = WCS(fits.getheader(_file(qfo, stem, "image"))).world_to_pixel_values(truth["ra"], truth["dec"])
        xi, yi = np.round(x).astype(int), np.round(y).astype(int)
        inside = (xi >= 0) & (yi >= 0) & (xi < weight.shape[1]) & (yi < weight.shape[0])
        inside[inside] = weight[yi[inside], xi[inside]] > 0
        seen = truth[inside]
        in_range = (seen[f"mag_{band}"] >= 18) & (seen[f"mag_{band}"] < 22)
        measured = sources[(sources["mag"] >= 18) & (sources["mag"] < 22)]
        true_stars = int(np.count_nonzero(in_range & (seen["type"] == "star")))
        true_galaxies = int(np.count_nonzero(in_range & (seen["type"] == "galaxy")))
        stars = int(np.count_nonzero(measured["cls"] == "star"))
        galaxies = int(np.count_nonzero(measured["cls"] == "galaxy"))
        assert stars == pytest.approx(true_stars, rel=0.15), (stem, stars, true_stars)
        assert stars + galaxies == pytest.approx(true_stars + true_galaxies, rel=0.10), stem
        assert galaxies == pytest.approx(true_galaxies, rel=0.70), (stem, galaxies, true_galaxies)


def test_summary_carries_the_qualityfits_out_table(qfo):
    """``_spica.xml`` has the QualityFITS-out table with the product's figures and completeness."""
    for stem in PRODUCTS:
        table = read_product_summary(_file(qfo, stem, "summary"))["QualityFITS_out"]
        figures = read_figures(_file(qfo, stem, "diag"))
        found = read_completeness(_file(qfo, stem, "comptness_table"))
        assert len(table) == 1
        assert table["psf_fwhm_arcsec"][0] == pytest.approx(figures["psf_fwhm_arcsec"])
        assert table["n_galaxies"][0] == figures["n_galaxies"]
        assert table["completeness_50_mag"][0] == pytest.approx(found["m50"])
        assert table["completeness_80_mag"][0] == pytest.approx(found["m80"])
        assert 21.0 < table["galaxy_peak_mag"][0] < 26.0


def test_masks_cover_the_bright_truth_stars(qfo):
    """Every product's ``_reg.txt`` parses with ``regions``; every truth star brighter than
    ``masks.bright_mag`` - 0.75 (the demo reference catalogue's r magnitudes carry 0.1-0.3 mag
    errors) that falls on the product lies in a region; the masked fraction is the summary's."""
    from regions import Regions

    settings = qfo["config"]["qualityfits_out"]["masks"]
    truth = _truth(qfo)
    stars = truth[(truth["type"] == "star") & (truth["mag_r"] < settings["bright_mag"] - 0.75)]
    for stem in PRODUCTS:
        reg = _file(qfo, stem, "reg")
        regions = Regions.read(str(reg), format="ds9")
        kinds = {region.meta["tag"][0] for region in regions}
        header = fits.getheader(_file(qfo, stem, "image"))
        wcs = WCS(header)
        x, y = wcs.world_to_pixel_values(stars["ra"].to_numpy(), stars["dec"].to_numpy())
        on = (x > -0.5) & (x < header["NAXIS1"] - 0.5) & (y > -0.5) & (y < header["NAXIS2"] - 0.5)
        coords = SkyCoord(stars["ra"].to_numpy()[on], stars["dec"].to_numpy()[on], unit="deg")
        inside = np.zeros(len(coords), bool)
        for region in regions:
            inside |= region.contains(coords, wcs)
        assert len(coords) >= 20 and inside.all(), (stem, stars["mag_r"].to_numpy()[on][~inside])
        assert {"halo", "spike", "border"} <= kinds
        fraction = read_masked_fraction(reg)["masked"]
        assert 0.02 < fraction < 0.5
        table = read_product_summary(_file(qfo, stem, "summary"))["QualityFITS_out"]
        assert table["reg_masked_fraction"][0] == pytest.approx(fraction)


def test_qualityfits_out_changes_rerun_it_and_nothing_upstream(qfo, tmp_path, monkeypatch):
    """A change of QualityFITS-out's catalogue settings, of its completeness settings or of
    its code (a copy of the package on PYTHONPATH with one module edited) reruns its job (one
    per product since issue 10: the assessment, completeness, w(theta), masks, thumbnails
    and dust map), the colour diagrams that read its catalogue and the summaries. Nothing
    upstream; a change of the grading limits reruns only the summaries."""
    workdir = qfo["workdir"]
    override = tmp_path / "qfo-change.yaml"
    # the summaries, and the registry's product_quality rows read from them
    summaries = {"summarise_product": 3, "register_product_quality": 1, "release_T0002": 1}
    qfo = {"assess_product_quality": 3, "plot_tile_colours_2": 1}  # the diagrams read its catalogue
    override.write_text("qualityfits_out:\n  sextractor_overrides: {DEBLEND_MINCONT: 0.01}\n")
    run = snakemake(workdir, "-n", "release_T0002", overrides=override)
    # the PSF model it remakes is the completeness job's input
    assert job_counts(run.stdout + run.stderr) == {**qfo, **summaries}
    override.write_text("qualityfits_out:\n  completeness: {runs: 3}\n")  # the default is 2
    run = snakemake(workdir, "-n", "release_T0002", overrides=override)
    assert job_counts(run.stdout + run.stderr) == {**qfo, **summaries}
    override.write_text("qualityfits_out:\n  grading: {max_fwhm_ratio_b: 1.2}\n")
    run = snakemake(workdir, "-n", "release_T0002", overrides=override)
    assert job_counts(run.stdout + run.stderr) == summaries
    source = tmp_path / "src"
    shutil.copytree(REPO / "src" / "spica", source / "spica", ignore=shutil.ignore_patterns("__pycache__"))
    measure = source / "spica" / "qualityfits_out" / "measure.py"
    measure.write_text(measure.read_text() + "\n_A_CHANGE = 1  # code, not a comment: comments never rerun\n")
    monkeypatch.setenv("PYTHONPATH", str(source))
    run = snakemake(workdir, "-n", "release_T0002")
    assert job_counts(run.stdout + run.stderr) == {**qfo, **summaries}
