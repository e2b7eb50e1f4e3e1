"""Colour diagrams and w(theta) of the stars (spica.qualityfits_out.colours), on synthetic
catalogues whose stars take the demo simulator's colours (no tool): the simulator puts its
stars on the reference stellar locus, so the measured locus is compared with the reference."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from scipy.spatial import cKDTree

from spica import paths
from spica.demo.generate import _colours
from spica.qualityfits_out.colours import (
    ColourError,
    angular_correlation,
    colour_colour_figures,
    locus_colours,
    locus_distance,
    make_star_clustering,
    make_tile_colours,
    match_filters,
    random_positions,
    read_star_table,
    reference_locus,
    star_table,
)

#: The median distance of the stars to the locus a tile passes with (mag).
TOLERANCE = 0.05
#: The demo simulator's stars against the reference locus they are drawn on (median distance,
#: mag): only the simulator's 0.02 mag scatter per colour.
SIMULATOR_VS_REFERENCE = 0.03
SETTINGS = {"min_snr": 20.0, "match_radius_pix": 0.6, "locus_tolerance_mag": TOLERANCE,
            "wtheta": {"theta_min_arcmin": 0.1, "theta_max_arcmin": 2.0, "nbins": 6, "randoms_per_star": 20,
                       "seed": 5}}
SIZE = 1600  # pixels of the synthetic tile (0.186"/px: 5')
ZEROPOINT = 30.0


def _wcs() -> WCS:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [214.86, 52.68]
    wcs.wcs.crpix = [SIZE / 2, SIZE / 2]
    wcs.wcs.cd = np.diag([-0.186 / 3600, 0.186 / 3600])
    return wcs


def _header() -> fits.Header:
    header = _wcs().to_header()
    header["NAXIS"], header["NAXIS1"], header["NAXIS2"] = 2, SIZE, SIZE
    header["MAGZERO"] = ZEROPOINT
    return header


def _truth_locus() -> pd.DataFrame:
    """The locus the simulator draws its stars on: the reference locus."""
    return reference_locus()


@pytest.fixture(scope="module")
def sky():
    """400 stars with the simulator's star colours and 300 galaxies with its galaxy colours."""
    rng = np.random.default_rng(12)
    n_star, n_gal = 400, 300
    stars = _colours(rng, rng.uniform(18.0, 22.0, n_star), True)
    galaxies = _colours(rng, rng.uniform(18.0, 22.0, n_gal), False)
    x = rng.uniform(20, SIZE - 20, n_star + n_gal)
    y = rng.uniform(20, SIZE - 20, n_star + n_gal)
    while True:  # no two sources closer than 3 pixels (SExtractor would blend them)
        distance, _ = cKDTree(np.column_stack([x, y])).query(np.column_stack([x, y]), k=2)
        close = np.flatnonzero(distance[:, 1] < 3.0)[1::2]
        if close.size == 0:
            break
        x[close], y[close] = rng.uniform(20, SIZE - 20, close.size), rng.uniform(20, SIZE - 20, close.size)
    return {"mags": {b: np.concatenate([stars[b], galaxies[b]]) for b in "ugriz"}, "x": x, "y": y,
            "star": np.arange(n_star + n_gal) < n_star, "rng": rng}


def _catalogue(sky: dict, band: str, *, offset: float = 0.0, seed: int = 0) -> Table:
    """A QualityFITS-out-like catalogue of one filter: stars on a half-light radius of 2 px,
    galaxies larger, magnitudes with 0.01 mag noise, positions with 0.1 px noise."""
    rng = np.random.default_rng(seed)
    n = sky["x"].size
    ra, dec = _wcs().all_pix2world(sky["x"] - 1, sky["y"] - 1, 0)
    radius = np.where(sky["star"], rng.normal(2.0, 0.02, n), rng.uniform(3.0, 6.0, n))
    return Table({
        "XWIN_IMAGE": sky["x"] + rng.normal(0, 0.1, n), "YWIN_IMAGE": sky["y"] + rng.normal(0, 0.1, n),
        "ALPHA_J2000": ra, "DELTA_J2000": dec, "FLUX_RADIUS": radius,
        "SNR_WIN": np.full(n, 100.0), "MAG_AUTO": sky["mags"][band] + offset + rng.normal(0, 0.01, n) - ZEROPOINT,
        "FLAGS": np.zeros(n, np.int16), "CLASS_STAR": np.where(sky["star"], 0.98, 0.1),
    })


def _write_ldac(path, header: fits.Header, table: Table) -> str:
    """A FITS-LDAC file: the image header in LDAC_IMHEAD, the sources in LDAC_OBJECTS."""
    text = header.tostring()
    imhead = fits.BinTableHDU.from_columns(
        [fits.Column(name="Field Header Card", format=f"{len(text)}A", array=np.array([text]))], name="LDAC_IMHEAD")
    objects = fits.table_to_hdu(table)
    objects.name = "LDAC_OBJECTS"
    fits.HDUList([fits.PrimaryHDU(), imhead, objects]).writeto(path)
    return str(path)


# ------------------------------------------------------------------ names
def test_every_set_of_three_filters_of_a_tile_gets_its_files():
    tile = "CFHTLS_W_griz_135934+533330_T0002"
    files = [p.name for p in paths.colour_paths("results", "T0002", tile)]
    assert [f for f in files if "_diagcc" in f] == [
        f"CFHTLS_W_{bands}_135934+533330_T0002_diagcc{suffix}"
        for bands in ("gri", "grz", "giz", "riz") for suffix in (".png", ".ps")]
    assert sorted({f.split("_")[2] for f in files if "_diagcm" in f}) == sorted(["gr", "gi", "gz", "ri", "rz", "iz"])
    assert all(p.parent.name == tile for p in paths.colour_paths("results", "T0002", tile))
    two = paths.colour_paths("results", "T0002", "CFHTLS_D_ri_141927+524056_T0002")
    assert [p.name for p in two] == ["CFHTLS_D_ri_141927+524056_T0002_diagcm.png",
                                     "CFHTLS_D_ri_141927+524056_T0002_diagcm.ps"]  # no triple
    assert paths.colour_paths("results", "T0002", "751042p_r_V0001") == []  # an image-by-image tile
    assert len(paths.band_sets("ugriz", 3)) == 10  # the seed's C(5,3)
    for bands in ("ugr", "rgi", "rri"):  # u is not a filter of the tile; not in ugriz order; twice r
        with pytest.raises(ValueError):
            paths.colour_stem(tile, bands)


def test_the_tile_patterns_read_back_the_paths():
    """One rule per number of filters: its patterns, filled with a tile's filters, are the
    tile's diagrams (colour_paths), in the same order; each key names its diagram's filters."""
    for tile in ("CFHTLS_D_ugriz_141927+524056_T0002", "CFHTLS_W_gri_022931-063000_T0002",
                 "CFHTLS_D_ri_141927+524056_T0002"):
        survey, bands, coords, release = tile.removeprefix("CFHTLS_").split("_")
        patterns = paths.tile_colour_patterns("res", len(bands))
        filled = [pattern.format(release=release, survey=survey, coords=coords,
                                 **{f"b{i + 1}": b for i, b in enumerate(bands)}) for pattern in patterns.values()]
        assert filled == [str(p) for p in paths.colour_paths("res", release, tile)]
        for key, path in zip(patterns, filled):
            assert Path(path).name.startswith(paths.colour_stem(tile, paths.tile_colour_bands(key, bands)) + "_")
    assert len(paths.tile_colour_patterns("res", 5)) == 2 * (10 + 10)
    with pytest.raises(ValueError):
        paths.tile_colour_patterns("res", 1)


# ------------------------------------------------------------------ locus
def test_reference_locus_is_covey_through_the_megacam_colour_terms():
    locus = reference_locus()
    assert len(locus) == 33 and locus["n"].sum() > 60000
    # g-i = 1.00 node of Covey et al. 2007: u-g 1.90, g-r 0.73, r-i 0.27, i-z 0.12 (SDSS)
    node = locus[np.isclose(locus["g_i_sdss"], 1.0)].iloc[0]
    assert node["g"] - node["r"] == pytest.approx(0.871 * 0.73, abs=1e-9)  # (1 - 0.153 + 0.024)
    assert node["r"] - node["i"] == pytest.approx(1.085 * 0.27 - 0.024 * 0.73, abs=1e-9)
    assert node["u"] - node["g"] == pytest.approx(0.759 * 1.90 + 0.153 * 0.73, abs=1e-9)
    assert node["i"] - node["z"] == pytest.approx(0.926 * 0.12 - 0.085 * 0.27, abs=1e-9)


def test_distance_to_a_polyline():
    d = locus_distance(np.array([0.5, 2.0, -1.0]), np.array([1.0, 0.5, 0.0]), np.array([0.0, 1.0, 1.0]),
                       np.array([0.0, 0.0, 1.0]))
    np.testing.assert_allclose(d, [0.5, 1.0, 1.0])


def test_simulated_stars_lie_on_the_locus_an_offset_filter_does_not(sky):
    truth = _truth_locus()
    tables = {b: star_table(_header(), _catalogue(sky, b, seed=k), min_snr=20) for k, b in enumerate("gri")}
    for band, table in tables.items():  # the rh-mag selection finds exactly the stars
        assert (table["star"].to_numpy() == sky["star"]).all(), band
    matched = match_filters(tables, radius_pix=0.6)
    assert len(matched) == sky["x"].size and matched["star"].sum() == sky["star"].sum()
    figures = colour_colour_figures(matched, "gri", locus=truth)
    print(f"gri: {figures['n_stars']} stars, median distance to the reference locus "
          f"{figures['median_distance']:.4f} mag")
    assert figures["n_stars"] == 400
    assert figures["median_distance"] < TOLERANCE
    # a 0.3 mag error of the i zero point: off the locus
    tables["i"] = star_table(_header(), _catalogue(sky, "i", offset=0.3, seed=2), min_snr=20)
    offset = colour_colour_figures(match_filters(tables, radius_pix=0.6), "gri", locus=truth)
    print(f"gri with i + 0.3 mag: median distance {offset['median_distance']:.4f} mag, "
          f"offsets {offset['median_offset_x']:+.3f} {offset['median_offset_y']:+.3f}")
    assert offset["median_distance"] > TOLERANCE
    assert offset["median_offset_y"] < -0.2  # r-i made bluer


def test_the_simulator_draws_its_stars_on_the_reference_locus():
    """The demo's stars (spica.demo.generate._colours) lie on the reference locus in every
    filter set, within their 0.02 mag scatter."""
    reference = reference_locus()
    stars = _colours(np.random.default_rng(0), np.zeros(2000), True, scatter_rng=np.random.default_rng(1))
    for bands in paths.band_sets("ugriz", 3):
        lx, ly = locus_colours(reference, bands)
        distance = float(np.median(locus_distance(*locus_colours(stars, bands), lx, ly)))
        print(f"{bands}: median distance of the simulator's stars to the reference locus {distance:.3f} mag")
        assert distance < SIMULATOR_VS_REFERENCE, bands


def test_the_tile_job_writes_every_diagram_and_refuses_two_grids(sky, tmp_path):
    catalogues = {b: _write_ldac(tmp_path / f"{b}.fits", _header(), _catalogue(sky, b, seed=k))
                  for k, b in enumerate("gri")}
    tile = "CFHTLS_D_gri_141927+524056_T0002"
    outputs = {bands: [tmp_path / f"{bands}{kind}.png", tmp_path / f"{bands}{kind}.ps"]
               for bands, kind in (("gri", "_diagcc"), ("gr", "_diagcm"), ("gi", "_diagcm"), ("ri", "_diagcm"))}
    figures = make_tile_colours(catalogues, outputs, settings=SETTINGS, tile=tile)
    assert list(figures) == ["gri", "gr", "gi", "ri"]
    assert figures["gri"]["n_stars"] == 400
    assert figures["gri"]["median_distance"] < TOLERANCE  # the reference locus, which the simulator draws on
    assert figures["ri"] == {"n_sources": 700, "n_stars": 400}
    assert matplotlib.image.imread(outputs["gri"][0]).shape[:2] == (450, 600)
    assert outputs["gri"][1].read_bytes().startswith(b"%!PS-Adobe")
    assert all(files[0].stat().st_size > 10000 for files in outputs.values())
    # the same diagram alone: the same figures (each catalogue read once for all of them)
    alone = make_tile_colours({b: catalogues[b] for b in "ri"}, {"ri": outputs["ri"]}, settings=SETTINGS,
                              tile="CFHTLS_D_ri_141927+524056_T0002")
    assert alone == {"ri": figures["ri"]}
    shifted = _header()
    shifted["CRPIX1"] += 3
    catalogues["i"] = _write_ldac(tmp_path / "i_other_grid.fits", shifted, _catalogue(sky, "i"))
    with pytest.raises(ColourError, match="one pixel grid"):
        make_tile_colours(catalogues, {"gri": outputs["gri"]}, settings=SETTINGS, tile=tile)
    for bands in ("grz", "rg", "gg", "g"):  # a filter the tile lacks; not in ugriz order; twice; one
        with pytest.raises(ColourError, match="no diagram of filters"):
            make_tile_colours(catalogues, {bands: outputs["gr"]}, settings=SETTINGS, tile=tile)


# ------------------------------------------------------------------ w(theta)
def _weight() -> np.ndarray:
    weight = np.ones((SIZE, SIZE), np.float32)
    weight[: SIZE // 2, : SIZE // 2] = 0.0  # a masked quadrant: no stars, no randoms
    return weight


def test_wtheta_of_a_poisson_field_is_zero_of_a_clustered_one_positive():
    wcs, weight = _wcs(), _weight()
    spec = {"theta_min_arcmin": 0.1, "theta_max_arcmin": 2.0, "nbins": 6}
    ra, dec = random_positions(weight, wcs, 1500, np.random.default_rng(1))
    x, y = wcs.all_world2pix(ra, dec, 0)
    assert np.all(weight[np.rint(y).astype(int), np.rint(x).astype(int)] > 0)
    rra, rdec = random_positions(weight, wcs, 30000, np.random.default_rng(2))
    poisson = angular_correlation(ra, dec, rra, rdec, **spec)
    chi2 = float(np.sum((poisson["w"] / poisson["sigma"]) ** 2))
    print("Poisson w(theta):", np.round(poisson["w"], 4), "sigma", np.round(poisson["sigma"], 4), f"chi2 {chi2:.1f}")
    assert np.all(np.abs(poisson["w"]) < 3.5 * poisson["sigma"]) and chi2 < 6 + 3 * np.sqrt(12)
    # Neyman-Scott: 75 clusters of 20 stars, 0.1' (Gaussian) around their centre
    rng = np.random.default_rng(3)
    cra, cdec = random_positions(weight, wcs, 75, rng)
    cx, cy = wcs.all_world2pix(cra, cdec, 0)
    sigma_px = 0.1 * 60 / 0.186
    px = np.repeat(cx, 20) + rng.normal(0, sigma_px, 1500)
    py = np.repeat(cy, 20) + rng.normal(0, sigma_px, 1500)
    inside = (px > 0) & (py > 0) & (px < SIZE - 1) & (py < SIZE - 1)
    inside &= weight[np.rint(py).astype(int).clip(0, SIZE - 1), np.rint(px).astype(int).clip(0, SIZE - 1)] > 0
    kra, kdec = wcs.all_pix2world(px[inside], py[inside], 0)
    clustered = angular_correlation(kra, kdec, rra, rdec, **spec)
    print("clustered w(theta):", np.round(clustered["w"], 3), "sigma", np.round(clustered["sigma"], 3))
    assert clustered["w"][0] > 10 * clustered["sigma"][0] and clustered["w"][0] > 1.0
    assert clustered["w"][0] > clustered["w"][-1]


def test_star_clustering_job(sky, tmp_path):
    weight = tmp_path / "weight.fits"
    fits.PrimaryHDU(np.ones((SIZE, SIZE), np.float32), header=_header()).writeto(weight)
    catalogue = _write_ldac(tmp_path / "r.fits", _header(), _catalogue(sky, "r"))
    outputs = [tmp_path / "r_wtheta.png", tmp_path / "r_wtheta.ps"]
    result = make_star_clustering(catalogue, weight, outputs, settings=SETTINGS, title="r")
    assert result["n_stars"] == 400 and len(result["w"]) == 6
    assert matplotlib.image.imread(outputs[0]).shape[:2] == (450, 600)
    # the stars are uniform over the tile: no correlation
    assert all(abs(w) < 4 * s for w, s in zip(result["w"], result["sigma"]))
    with pytest.raises(ColourError, match="weight map"):
        fits.PrimaryHDU(np.ones((10, 10), np.float32)).writeto(tmp_path / "small.fits")
        make_star_clustering(catalogue, tmp_path / "small.fits", outputs, settings=SETTINGS, title="r")


# ------------------------------------------------------------------ with SExtractor
@pytest.mark.tools
def test_three_rendered_filters_through_sextractor(tmp_path):
    """Three images of one grid (g, r, i) rendered with the demo's source renderer (Moffat stars
    with the simulator's star colours, Sersic galaxies, Gaussian noise, zero point 30), SExtractor
    with QualityFITS-out's configuration, then the colour-colour job: the stars found lie on the
    simulator's locus; with the i image 0.3 mag too faint (its zero point wrong) they do not."""
    import yaml

    from spica.astromatic import sextractor
    from spica.demo.generate import _render_sources
    from spica.qualityfits_out.options import sextractor_options
    from spica.tools import resolve_tools
    from tests.conftest import REPO

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    tool = resolve_tools(config["tools"]).get("sextractor")
    if tool is None:
        pytest.skip("SExtractor not installed (bin/spica install)")
    astromatic = REPO / "config" / "astromatic"
    rng = np.random.default_rng(7)
    size, n_star, n_gal, fwhm = 1000, 300, 200, 4.5
    stars = _colours(rng, rng.uniform(17.5, 22.0, n_star), True)
    galaxies = _colours(rng, rng.uniform(18.0, 23.0, n_gal), False)
    x, y = rng.uniform(30, size - 30, n_star + n_gal), rng.uniform(30, size - 30, n_star + n_gal)
    is_gal = np.arange(n_star + n_gal) >= n_star
    header = _header()
    header["NAXIS1"] = header["NAXIS2"] = size
    header["CRPIX1"] = header["CRPIX2"] = size / 2
    weight = tmp_path / "weight.fits"
    fits.PrimaryHDU(np.ones((size, size), np.float32), header=header).writeto(weight)
    psf_args = dict(fwhm=np.full(n_star + n_gal, fwhm), beta=3.0, is_gal=is_gal,
                    scale_pix=np.where(is_gal, rng.uniform(1.5, 4.0, n_star + n_gal), 0.0),
                    q=rng.uniform(0.4, 1.0, n_star + n_gal), pa=rng.uniform(0, 180, n_star + n_gal),
                    sersic=np.where(rng.random(n_star + n_gal) < 0.7, 1.0, 4.0))
    psf = np.outer(*[np.exp(-0.5 * (np.arange(21) - 10) ** 2 / (fwhm / 2.355) ** 2)] * 2)
    catalogues = {}
    for band in "gri":
        mags = np.concatenate([stars[band], galaxies[band]])
        image = np.zeros((size, size))
        _render_sources(image, x + 1, y + 1, 10 ** (-0.4 * (mags - ZEROPOINT)), psf=psf / psf.sum(), **psf_args)
        image += rng.normal(0.0, 3.0, image.shape)
        path = tmp_path / f"{band}.fits"
        fits.PrimaryHDU(image.astype(np.float32), header=header).writeto(path)
        catalogues[band] = tmp_path / f"{band}_qfo_ldac.fits"
        sextractor.run(tool.path, images=path, weights=weight, config=astromatic / "qualityfits_out.sex",
                       param=astromatic / "qualityfits_out.param", conv=astromatic / "gauss_3.0_5x5.conv",
                       nnw=astromatic / "default.nnw", catalog=catalogues[band], xml_out=tmp_path / f"{band}.xml",
                       options={"SEEING_FWHM": fwhm * 0.186, "CHECKIMAGE_TYPE": "NONE",
                                **sextractor_options(config["qualityfits_out"])})
    settings = config["qualityfits_out"]["colours"]
    truth = _truth_locus()
    tables = {b: read_star_table(catalogues[b], min_snr=settings["min_snr"]) for b in "gri"}
    matched = match_filters({b: t for b, (_, t) in tables.items()}, radius_pix=settings["match_radius_pix"],
                            headers={b: h for b, (h, _) in tables.items()})
    figures = colour_colour_figures(matched, "gri", locus=truth)
    galaxies_as_stars = int((matched["star"] & (np.hypot(*(
        np.array([matched["x"] - 1, matched["y"] - 1])[:, :, None]
        - np.array([x[is_gal], y[is_gal]])[:, None, :])).min(axis=1) < 1.0)).sum()) if len(matched) else 0
    print(f"SExtractor g, r, i: {figures['n_stars']} stars of {n_star}, {galaxies_as_stars} galaxies among them, "
          f"median distance to the reference locus {figures['median_distance']:.4f} mag")
    assert figures["n_stars"] > 0.7 * n_star and galaxies_as_stars < 0.05 * figures["n_stars"]
    assert figures["median_distance"] < TOLERANCE
    outputs = [tmp_path / "gri_diagcc.png", tmp_path / "gri_diagcc.ps"]
    result = make_tile_colours(catalogues, {"gri": outputs}, settings=settings,
                               tile="CFHTLS_D_gri_141927+524056_T0002")["gri"]
    assert result["n_stars"] == figures["n_stars"] and outputs[0].stat().st_size > 10000
    # the i image 0.3 mag fainter than its zero point says
    shifted = tables["i"][1].assign(mag=tables["i"][1]["mag"] + 0.3)
    off = colour_colour_figures(match_filters({"g": tables["g"][1], "r": tables["r"][1], "i": shifted},
                                              radius_pix=settings["match_radius_pix"]), "gri", locus=truth)
    print(f"i 0.3 mag off: median distance {off['median_distance']:.4f} mag")
    assert off["median_distance"] > TOLERANCE
