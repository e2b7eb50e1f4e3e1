"""RICE compression of outgoing images: ratios, lossless integers, and what quantization does
to a catalogue measured on the compressed image (SExtractor, run through spica.astromatic)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from spica.astromatic import sextractor
from spica.transfer import fpack
from tests.conftest import REPO, needs_tools
from tests.transfer.conftest import require, settings_for

SEX = shutil.which("source-extractor") or shutil.which("sex")
ASTROMATIC = REPO / "config" / "astromatic"


@pytest.fixture
def level(tmp_path):
    require("fpack", "funpack")
    return settings_for(tmp_path).quantize_level  # the configured level


def _stack(path, seed=5, shape=(600, 600)):
    """A float32 stack: sky 200 ADU, Poisson-like noise (GAIN 1), 250 stars from faint to bright."""
    rng = np.random.default_rng(seed)
    image = rng.normal(200.0, np.sqrt(200.0), shape)
    y, x = np.mgrid[: shape[0], : shape[1]]
    for _ in range(250):
        cx, cy = rng.uniform(10, shape[1] - 10), rng.uniform(10, shape[0] - 10)
        flux = 10 ** rng.uniform(2.7, 5.0)
        sigma = 1.6
        box = (slice(max(int(cy) - 12, 0), int(cy) + 13), slice(max(int(cx) - 12, 0), int(cx) + 13))
        image[box] += flux / (2 * np.pi * sigma**2) * np.exp(
            -((x[box] - cx) ** 2 + (y[box] - cy) ** 2) / (2 * sigma**2))
    fits.PrimaryHDU(image.astype(np.float32), header=fits.Header([("GAIN", 1.0)])).writeto(path)


def test_integer_images_are_lossless_and_both_readers_agree(tmp_path, level):
    rng = np.random.default_rng(3)
    flags = np.where(rng.random((400, 300)) < 0.02, rng.choice([1, 2, 4, 16], (400, 300)), 0).astype(np.uint8)
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(flags), fits.ImageHDU(flags[::-1].copy())]).writeto(
        tmp_path / "f.fits")
    fpack.compress(tmp_path / "f.fits", tmp_path / "f.fits.fz", quantize_level=level)
    fpack.uncompress(tmp_path / "f.fits.fz", tmp_path / "back.fits")
    ratio = (tmp_path / "f.fits").stat().st_size / (tmp_path / "f.fits.fz").stat().st_size
    with fits.open(tmp_path / "f.fits.fz") as packed, fits.open(tmp_path / "back.fits") as unpacked:
        assert [type(h).__name__ for h in packed] == ["PrimaryHDU", "CompImageHDU", "CompImageHDU"]
        for index in (1, 2):
            assert np.array_equal(packed[index].data, unpacked[index].data)  # astropy == funpack
        assert np.array_equal(unpacked[1].data, flags)  # lossless
    assert ratio > 5, ratio
    print(f"flag map compression ratio: {ratio:.1f}")
    # the same input gives the same bytes (deterministic dithering, no time stamps)
    fpack.compress(tmp_path / "f.fits", tmp_path / "again.fits.fz", quantize_level=level)
    assert (tmp_path / "again.fits.fz").read_bytes() == (tmp_path / "f.fits.fz").read_bytes()
    # tables are not images: they go uncompressed
    Table({"a": [1, 2]}).write(tmp_path / "t.fits")
    assert not fpack.is_image(tmp_path / "t.fits") and fpack.is_image(tmp_path / "f.fits")


@needs_tools(SEX is not None, "source-extractor/sex not on PATH (bin/spica install)")
def test_float_quantization_leaves_the_catalogue_well_inside_its_errors(tmp_path, level):
    _stack(tmp_path / "s.fits")
    fits.PrimaryHDU(np.ones((600, 600), np.float32)).writeto(tmp_path / "w.fits")
    fits.PrimaryHDU(np.zeros((600, 600), np.int16)).writeto(tmp_path / "flag.fits")
    fpack.compress(tmp_path / "s.fits", tmp_path / "s.fits.fz", quantize_level=level)
    ratio = (tmp_path / "s.fits").stat().st_size / (tmp_path / "s.fits.fz").stat().st_size
    fpack.uncompress(tmp_path / "s.fits.fz", tmp_path / "s_back.fits")
    original = fits.getdata(tmp_path / "s.fits")
    unpacked = fits.getdata(tmp_path / "s_back.fits")
    assert np.array_equal(fits.getdata(tmp_path / "s.fits.fz", 1), unpacked)  # astropy == funpack
    step = np.std(unpacked - original)
    assert 0 < step < np.sqrt(200.0) / level  # dithered quantization: sigma/level/sqrt(12)-ish

    catalogues = {}
    for name in ("s.fits", "s_back.fits"):
        catalogue = tmp_path / name.replace(".fits", "_ldac.fits")
        sextractor.run(SEX, images=tmp_path / name, config=ASTROMATIC / "step1.sex",
                       param=ASTROMATIC / "step1.param", conv=ASTROMATIC / "gauss_3.0_5x5.conv",
                       nnw=ASTROMATIC / "default.nnw", weights=tmp_path / "w.fits", flags=tmp_path / "flag.fits",
                       catalog=catalogue,
                       checkimage=tmp_path / "mini.fits", options={"VERBOSE_TYPE": "QUIET", "WRITE_XML": "N"},
                       log=subprocess.DEVNULL)
        catalogues[name] = Table.read(catalogue, hdu=2)
    a, b = catalogues["s.fits"], catalogues["s_back.fits"]
    assert abs(len(a) - len(b)) <= 0.02 * len(a) and len(a) > 150
    dx = a["X_IMAGE"][:, None] - b["X_IMAGE"][None, :]
    dy = a["Y_IMAGE"][:, None] - b["Y_IMAGE"][None, :]
    nearest = np.argmin(dx**2 + dy**2, axis=1)
    close = np.hypot(dx[np.arange(len(a)), nearest], dy[np.arange(len(a)), nearest]) < 0.5
    dmag = np.abs(a["MAG_AUTO"][close] - b["MAG_AUTO"][nearest[close]])
    relative = dmag / a["MAGERR_AUTO"][close]
    assert close.mean() > 0.97
    assert np.median(relative) < 0.1 and np.percentile(relative, 95) < 0.5
    print(f"float stack: compression ratio {ratio:.2f} at q={level:g}; {close.sum()} sources matched; "
          f"median |dMAG_AUTO| = {np.median(dmag):.5f} mag = {np.median(relative):.3f} MAGERR_AUTO "
          f"(95th percentile {np.percentile(relative, 95):.3f})")
