"""Automatic masks ``_reg.txt`` (spica.qualityfits_out.masks), on a small synthetic product
(no tool): an 800 x 800 TAN image at the survey's 0.186"/pixel, a weight map with a ragged
zero-weight border and a gap, a saturated bleed trail on one star, and a reference catalogue
written like the demo's (:func:`spica.demo.generate.refcat_hdulist`: true positions, noisy
magnitudes, 0.1-0.3 mag errors). The settings are config.yaml's ``qualityfits_out.masks``.

Stated limits: every truth star brighter than ``bright_mag - 0.75`` (0.75 mag: over 3 sigma
of the catalogue's magnitude errors) lies in a region; the halo fraction within 5 % of
sum(pi r^2) / area from the law (the halos lie inside and apart here); the total masked
fraction within 0.002 of an independent rasterisation of the file read back; at least 99 %
of the low-weight pixels in border regions and at most 2 % of the good-weight pixels; the
whole bleed trail inside a bleed box.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml
from numpy.testing import assert_array_equal
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from regions import PixCoord, Regions

from spica.demo.generate import refcat_hdulist
from spica.qualityfits_out.masks import (
    MASK_KINDS,
    MaskError,
    bleed_boxes,
    law_arcsec,
    low_weight_counts,
    mask_product,
    read_masked_fraction,
    read_reference_stars,
    weight_median,
)
from tests.conftest import REPO

SETTINGS = yaml.safe_load((REPO / "config" / "config.yaml").read_text())["qualityfits_out"]["masks"]
SHAPE = (800, 800)
SCALE = 0.186  # arcsec / pixel
SATURATE = 10000.0
MARGIN = 0.75  # mag: truth stars this much brighter than bright_mag must be masked
GAP = (500, 511)  # zero-weight columns
BLEED = (60, 48)  # rows below, above the bleed star


def _wcs() -> WCS:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [214.8625, 52.6822]
    wcs.wcs.crpix = [400.5, 400.5]
    wcs.wcs.cd = [[-SCALE / 3600.0, 0.0], [0.0, SCALE / 3600.0]]
    wcs.wcs.radesys = "ICRS"
    return wcs


@pytest.fixture(scope="module")
def product(tmp_path_factory) -> dict:
    """The synthetic product, its weight, refcat and truth; ``mask_product`` run on them."""
    folder = tmp_path_factory.mktemp("masks")
    rng = np.random.default_rng(12)
    wcs = _wcs()
    # bright stars on a jittered grid, 150 px apart, well inside: halos inside and apart
    grid = np.arange(100, 800, 150)
    gx, gy = (a.ravel() + rng.uniform(-15, 15, a.size) for a in np.meshgrid(grid[:-1], grid[:-1]))
    bright = rng.uniform(15.0, 18.6, gx.size)
    faint_x, faint_y = rng.uniform(0, 799, 60), rng.uniform(0, 799, 60)
    faint = rng.uniform(19.6, 21.0, 60)
    x, y, mag = np.concatenate([gx, faint_x]), np.concatenate([gy, faint_y]), np.concatenate([bright, faint])
    sky = wcs.pixel_to_world(x, y)
    hdul, _ = refcat_hdulist(sky.ra.deg, sky.dec.deg, mag, rng, 0.01, 2015.0, 19.0)
    refcat = folder / "refcat.ldac"
    hdul.writeto(refcat)
    image = rng.normal(100.0, 10.0, SHAPE).astype(np.float32)
    # a bleed trail along the readout column (y) of the first bright star, 3 columns wide
    bx, by = int(round(gx[0])), int(round(gy[0]))
    trail = (slice(by - BLEED[0], by + BLEED[1] + 1), slice(bx - 1, bx + 2))
    image[trail] = 1.05 * SATURATE
    header = wcs.to_header()
    header["SATURATE"] = SATURATE
    fits.PrimaryHDU(image, header).writeto(folder / "p.fits")
    weight = rng.uniform(0.9, 1.1, SHAPE).astype(np.float32)
    weight[:, :37] = 0.0  # a straight border
    cols = np.arange(SHAPE[1])
    top = (760 + 6 * np.sin(cols / 23.0)).astype(int)  # a ragged one
    rows = np.arange(SHAPE[0])[:, None]
    weight[rows >= top[None, :]] = 0.0
    weight[:, GAP[0]:GAP[1]] = 0.0
    weight[200:230, 600:700] = 0.2  # a low-weight patch (below 0.3 of the median)
    weight[[50, 300, 650], [300, 650, 150]] = 0.0  # isolated bad pixels: no polygon
    fits.PrimaryHDU(weight, header).writeto(folder / "p_weight.fits")
    result = mask_product(image=folder / "p.fits", weight=folder / "p_weight.fits", refcat=refcat,
                          settings=SETTINGS, out=folder / "p_reg.txt")
    regions = Regions.read(str(folder / "p_reg.txt"), format="ds9")
    return {"folder": folder, "wcs": wcs, "truth": (sky, mag), "refcat": refcat, "weight": weight,
            "trail": trail, "result": result, "regions": regions, "reg": folder / "p_reg.txt"}


def _of_kind(regions: Regions, kind: str) -> list:
    return [region for region in regions if region.meta["tag"] == [kind]]


def _inside(regions, wcs: WCS, shape: tuple[int, int], step: int = 1) -> np.ndarray:
    """Pixels (every ``step``) whose centre lies in any of ``regions``: the file's regions
    taken back to pixels by ``regions`` itself (``to_pixel``, ``contains``)."""
    yy, xx = np.mgrid[0:shape[0]:step, 0:shape[1]:step]
    points = PixCoord(xx.ravel(), yy.ravel())
    inside = np.zeros(points.x.size, bool)
    for region in regions:
        inside |= region.to_pixel(wcs).contains(points)
    return inside.reshape(xx.shape)


def test_the_size_laws():
    halo = SETTINGS["halo"]
    ref = halo["ref_mag"]
    assert law_arcsec(ref, halo, "radius_arcsec") == pytest.approx(halo["radius_arcsec"])
    # one magnitude brighter: 10**0.2 larger (as the square root of the flux), then clipped
    assert law_arcsec(ref - 1, halo, "radius_arcsec") == pytest.approx(halo["radius_arcsec"] * 10 ** 0.2)
    assert law_arcsec([ref - 30, ref + 30], halo, "radius_arcsec") == pytest.approx(
        [halo["max_arcsec"], halo["min_arcsec"]])
    spike = SETTINGS["spike"]
    assert law_arcsec(spike["ref_mag"] - 2, spike, "length_arcsec") == pytest.approx(
        spike["length_arcsec"] * 10 ** (2 * spike["slope"]))


def test_every_bright_truth_star_lies_in_a_region(product):
    sky, mag = product["truth"]
    bright = mag < SETTINGS["bright_mag"] - MARGIN
    assert bright.sum() >= 12
    stars = sky[bright]
    inside = np.zeros(len(stars), bool)
    for region in product["regions"]:
        inside |= region.contains(stars, product["wcs"])
    assert inside.all(), mag[bright][~inside]
    # the faint ones (beyond bright_mag + 0.5) get no halo of their own
    halos = _of_kind(product["regions"], "halo")
    faint = SkyCoord(sky[mag > SETTINGS["bright_mag"] + 0.5])
    centres = SkyCoord([h.center.icrs for h in halos])
    assert faint.match_to_catalog_sky(centres)[1].arcsec.min() > 0.1  # refcat errors: 0.01"


def test_the_file_parses_with_one_region_per_mask(product):
    text = product["reg"].read_text().splitlines()
    assert text[0].startswith("# Region file format: DS9") and "fk5" in text
    regions = product["regions"]
    _, _, refmag = read_reference_stars(product["refcat"])
    expected = {"halo": int(np.sum(refmag < SETTINGS["bright_mag"])),
                "spike": 2 * int(np.sum(refmag < SETTINGS["spike_mag"])),
                "bleed": 1}
    counts = {kind: len(_of_kind(regions, kind)) for kind in MASK_KINDS}
    assert {k: counts[k] for k in expected} == expected
    assert counts["border"] >= 3 and counts == product["result"]["counts"]
    assert sum(counts.values()) == len(regions)
    assert {region.center.frame.name for region in _of_kind(regions, "halo")} == {"fk5"}


def test_masked_fraction_within_limits(product):
    fractions = read_masked_fraction(product["reg"])
    assert fractions == pytest.approx(product["result"]["fractions"], abs=1e-6)
    _, _, refmag = read_reference_stars(product["refcat"])
    halo = SETTINGS["halo"]
    m = refmag[refmag < SETTINGS["bright_mag"]]
    radius = np.clip(halo["radius_arcsec"] * 10 ** (-halo["slope"] * (m - halo["ref_mag"])),
                     halo["min_arcsec"], halo["max_arcsec"])
    estimate = np.sum(math.pi * radius ** 2) / (SHAPE[0] * SHAPE[1] * SCALE ** 2)
    assert fractions["halo"] == pytest.approx(estimate, rel=0.05)
    # the total, from the file read back and rasterised independently (every pixel)
    inside = _inside(product["regions"], product["wcs"], SHAPE)
    assert fractions["masked"] == pytest.approx(inside.mean(), abs=0.002)
    assert max(fractions[k] for k in MASK_KINDS) <= fractions["masked"] <= sum(fractions[k] for k in MASK_KINDS)


def test_border_regions_cover_the_low_weight_pixels(product):
    weight = product["weight"]
    low = weight < SETTINGS["low_weight_fraction"] * np.median(weight[weight > 0])
    inside = _inside(_of_kind(product["regions"], "border"), product["wcs"], SHAPE)
    isolated = np.zeros(SHAPE, bool)
    isolated[[50, 300, 650], [300, 650, 150]] = True
    assert inside[low & ~isolated].mean() >= 0.99
    assert not inside[isolated].any()
    assert inside[~low].mean() <= 0.02
    assert inside[:, GAP[0]:GAP[1]].all() and inside[:, :37].all()


def test_bleed_trail_is_covered(product):
    trail = np.zeros(SHAPE, bool)
    trail[product["trail"]] = True
    bleeds = _of_kind(product["regions"], "bleed")
    inside = _inside(bleeds, product["wcs"], SHAPE)
    assert inside[trail].all()
    # a box along the column: its height the trail's plus the margins, its width 3 + margins
    rows, cols = np.nonzero(inside)
    margin = SETTINGS["bleed_margin_pixels"]
    assert (np.ptp(rows) + 1, np.ptp(cols) + 1) == (sum(BLEED) + 1 + 2 * margin, 3 + 2 * margin)


def test_bleed_boxes_are_the_connected_areas():
    """The graph of neighbouring saturated pixels gives ndimage.label's 8-connected areas."""
    from scipy import ndimage

    rng = np.random.default_rng(3)
    saturated = rng.random((301, 257)) < 0.04
    saturated[100:160, 40:43] = True  # a trail
    saturated[10:14, 255:] = True  # at the edge
    labels, _ = ndimage.label(saturated, structure=np.ones((3, 3)))
    sizes = np.bincount(labels.ravel())
    expected = sorted((s[1].start - 0.5, s[1].stop - 0.5, s[0].start - 0.5, s[0].stop - 0.5)
                      for k, s in enumerate(ndimage.find_objects(labels), start=1) if sizes[k] >= 3)
    boxes = bleed_boxes(np.flatnonzero(saturated), saturated.shape, min_pixels=3, margin=0)
    assert sorted(map(tuple, boxes.tolist())) == expected and len(expected) > 50
    grown = bleed_boxes(np.flatnonzero(saturated), saturated.shape, min_pixels=3, margin=2)
    assert grown[:, 0].min() >= -0.5 and grown[:, 1].max() == 256.5  # clipped to the grid


def test_low_weight_counts_by_bands(tmp_path):
    """Block counts of low weights read band by band (bands not a multiple of the block,
    a partial last block) equal the whole array's."""
    rng = np.random.default_rng(4)
    weight = rng.uniform(0, 1, (103, 58)).astype(np.float32)
    weight[5, 7] = np.nan  # not finite: low
    fits.PrimaryHDU(weight).writeto(tmp_path / "w.fits")
    padded = np.zeros((104, 60), bool)
    padded[:103, :58] = ~(weight >= 0.3)
    with fits.open(tmp_path / "w.fits", memmap=False) as hdul:
        assert_array_equal(low_weight_counts(hdul[0], 0.3, 4, rows=10),
                           padded.reshape(26, 4, 15, 4).sum(axis=(1, 3)))
        assert weight_median(hdul[0], step=1, rows=9) == pytest.approx(np.nanmedian(weight))


def test_bad_inputs_get_a_named_error(product, tmp_path):
    folder = product["folder"]
    image = fits.getdata(folder / "p.fits")
    header = fits.getheader(folder / "p.fits")
    del header["SATURATE"]
    fits.PrimaryHDU(image, header).writeto(tmp_path / "nosat.fits")
    args = {"refcat": product["refcat"], "settings": SETTINGS, "out": tmp_path / "x_reg.txt"}
    with pytest.raises(MaskError, match="SATURATE"):
        mask_product(image=tmp_path / "nosat.fits", weight=folder / "p_weight.fits", **args)
    fits.PrimaryHDU(np.ones((10, 10), np.float32)).writeto(tmp_path / "small_weight.fits")
    with pytest.raises(MaskError, match="shape"):
        mask_product(image=folder / "p.fits", weight=tmp_path / "small_weight.fits", **args)
    (tmp_path / "junk.fits").write_text("not FITS")
    with pytest.raises(MaskError):
        mask_product(image=folder / "p.fits", weight=folder / "p_weight.fits",
                     **{**args, "refcat": tmp_path / "junk.fits"})
    with pytest.raises(MaskError, match="masked fraction"):
        read_masked_fraction(tmp_path / "junk.fits")
    assert not (tmp_path / "x_reg.txt").exists()


def test_summary_carries_the_masked_fraction():
    from spica.qualityfits_out.figures import FIGURES
    from tests.qualityfits_out.test_summary_table import _summary

    figures = {name: (7 if name.startswith(("n_", "psfex_")) else 0.5) for name, _, _ in FIGURES}
    table = _summary(quality=figures, masks={"masked": 0.142, "halo": 0.11})["QualityFITS_out"]
    assert table["reg_masked_fraction"][0] == pytest.approx(0.142)
    assert math.isnan(_summary(quality=figures)["QualityFITS_out"]["reg_masked_fraction"][0])
