"""The chi-squared figure: ``_chi2.png`` and ``_chi2.ps``, one figure in two formats."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from spica.products.chi2_figure import write_chi2_figure


def _bounding_box(ps: bytes) -> tuple[float, float, float, float]:
    match = re.search(rb"^%%BoundingBox:\s*(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)\s+(-?[\d.]+)", ps, re.MULTILINE)
    assert match, "no %%BoundingBox"
    return tuple(float(v) for v in match.groups())


@pytest.fixture()
def figure(tmp_path):
    rng = np.random.default_rng(1)
    image = rng.chisquare(2, (300, 450)).astype(np.float32)
    image[100:110, 200:210] += 500.0  # a source
    fits.writeto(tmp_path / "t_chi2.fits", image)
    fits.writeto(tmp_path / "t_chi2_weight.fits", np.ones_like(image))
    return write_chi2_figure(tmp_path / "t_chi2.fits", tmp_path / "t_chi2_weight.fits",
                             png=tmp_path / "t_chi2.png", ps=tmp_path / "t_chi2.ps", title="CFHTLS_D_ri_test")


def test_the_postscript_is_the_png_figure(figure):
    png, ps = figure
    text = ps.read_bytes()
    assert text.startswith(b"%!PS-Adobe-3.0") and text.rstrip().endswith(b"%EOF")
    x0, y0, x1, y1 = _bounding_box(text)
    width, height = Image.open(png).size
    # the same figure: PostScript points (1/72 in) and PNG pixels (100 dpi) give one aspect ratio
    assert (x1 - x0) / (y1 - y0) == pytest.approx(width / height, rel=0.02)
    assert (x1 - x0) == pytest.approx(width * 72 / 100, abs=2)  # and one size, on a page of its size
    assert (x0, y0) == (0, 0)


@pytest.mark.skipif(shutil.which("gs") is None, reason="Ghostscript (gs) is not installed")
def test_the_postscript_renders(figure, tmp_path):
    """Ghostscript renders it; the source's bright pixels show where the PNG has them."""
    png, ps = figure
    out = tmp_path / "rendered.png"
    # a page of the BoundingBox's size (Ghostscript's default page is A4/letter)
    box = re.search(rb"^%%BoundingBox: 0 0 (\d+) (\d+)\s*$", ps.read_bytes(), re.M)
    subprocess.run(["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pnggray", "-r100",
                    f"-dDEVICEWIDTHPOINTS={int(box[1])}", f"-dDEVICEHEIGHTPOINTS={int(box[2])}", "-dFIXEDMEDIA",
                    f"-sOutputFile={out}", str(ps)], check=True, timeout=60)
    rendered = np.asarray(Image.open(out).convert("L"), float)
    original = np.asarray(Image.open(png).convert("L"), float)
    assert rendered.shape == pytest.approx(original.shape, abs=3)
    h, w = min(rendered.shape[0], original.shape[0]) - 2, min(rendered.shape[1], original.shape[1]) - 2
    # the page is rounded to whole points: the drawing may sit one pixel off
    correlation = max(np.corrcoef(rendered[1 + dy:1 + dy + h, 1 + dx:1 + dx + w].ravel(),
                                  original[1:1 + h, 1:1 + w].ravel())[0, 1]
                      for dy in (-1, 0, 1) for dx in (-1, 0, 1))
    assert correlation > 0.95
