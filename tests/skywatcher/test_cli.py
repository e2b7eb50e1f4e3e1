"""The command line (every option), the PNG/PDF/SVG outputs, the footprints read from headers."""

from __future__ import annotations

import io
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.table import Table
from PIL import Image

from spica.skywatcher import MapOptions, draw_map, read_ccd_footprints, render
from spica.skywatcher.cli import build_parser, main
from tests.skywatcher.conftest import ROWS, ccd_wcs

SELECTION = pd.DataFrame({"expnum": [1, 2], "ra_deg": [214.86, 10.0], "dec_deg": [52.68, -30.0],
                          "band": ["r", "i"], "progress": ["step1", "release"]})


def test_png_size_and_content():
    figure = draw_map(SELECTION, MapOptions(projection="MOL", width_px=640, height_px=360, dpi=80))
    image = Image.open(io.BytesIO(render(figure, "png")))
    assert image.size == (640, 360)
    pixels = np.asarray(image.convert("RGB"))
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 10


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="pdftoppm (poppler-utils) absent")
def test_pdf_renders_with_pdftoppm(tmp_path):
    figure = draw_map(SELECTION, MapOptions(projection="AIT", width_px=800, height_px=450, dpi=100))
    pdf = tmp_path / "map.pdf"
    pdf.write_bytes(render(figure, "pdf"))
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-singlefile", str(pdf), str(tmp_path / "page")],
                   check=True, capture_output=True)
    page = Image.open(tmp_path / "page.png")
    assert page.size == (400, 225)  # 8 x 4.5 inches at 50 dpi
    pixels = np.asarray(page.convert("L"))
    assert pixels.min() < 128 < pixels.max()


def test_svg_size():
    figure = draw_map(SELECTION, MapOptions(projection="CAR", width_px=500, height_px=300, dpi=100))
    root = ET.fromstring(render(figure, "svg"))
    assert root.get("width") == "360pt" and root.get("height") == "216pt"  # 5 x 3 inches


def test_footprints_from_raw_and_ldac_headers(workdir, tmp_path):
    # raw headers: the CCD corners are those of the WCS written
    table = read_ccd_footprints([700001], results=tmp_path, exposures_dir=workdir / "raw")
    expected = ccd_wcs(214.86, 52.68, -21.0, 0.0).calc_footprint(axes=(40, 80))
    np.testing.assert_allclose(table.iloc[0, 2:].to_numpy(float).reshape(4, 2), expected,
                               atol=1e-9)
    # a step 1 catalogue's LDAC_IMHEAD wins over the raw file
    ldac = tmp_path / "step1" / "700001p" / "700001p_ldac.fits"
    ldac.parent.mkdir(parents=True)
    header = ccd_wcs(10.0, -30.0, 0.0, 0.0).to_header()
    header["NAXIS"], header["NAXIS1"], header["NAXIS2"] = 2, 40, 80
    cards = np.array([card.image for card in header.cards])
    imhead = fits.BinTableHDU.from_columns(
        [fits.Column(name="Field Header Card", format=f"{80 * len(cards)}A", dim=f"(80, {len(cards)})",
                     array=cards[None])], name="LDAC_IMHEAD")
    fits.HDUList([fits.PrimaryHDU(), imhead]).writeto(ldac)
    cache = tmp_path / "cache.csv"
    table = read_ccd_footprints([700001], results=tmp_path, exposures_dir=workdir / "raw",
                                cache=cache)
    expected = ccd_wcs(10.0, -30.0, 0.0, 0.0).calc_footprint(axes=(40, 80))
    np.testing.assert_allclose(table.iloc[0, 2:].to_numpy(float).reshape(4, 2), expected,
                               atol=1e-9)
    assert len(table) == 1 and cache.is_file()
    ldac.unlink()  # the cache answers now
    again = read_ccd_footprints([700001], results=tmp_path, cache=cache)
    pd.testing.assert_frame_equal(again, table)


def votable(path):
    Table({"RAJ2000": [214.9, 215.0], "DEJ2000": [52.7, 52.6], "name": ["a", "b"]}).write(
        path, format="votable")
    return path


def test_every_option(workdir, tmp_path, capsys):
    parser = build_parser()
    every = {action.option_strings[0] for action in parser._actions
             if action.option_strings and action.dest != "help"}
    args = [
        "-o", str(tmp_path / "map.png"), "--workdir", str(workdir),
        "--configfile", str(workdir / "overlay.yaml"), "--list", str(tmp_path / "list.csv"),
        "--footprint-cache", str(tmp_path / "fp.csv"),
        "--runid", "04AL01,04AL02", "--component", "D,W", "--filter", "r,i,g",
        "--box", "214", "216", "52", "53", "--cone", "215", "52.7", "2",
        "--date-start", "2004-01-01", "--date-end", "2004-12-31", "--status", "step1",
        "--expnum", "700001,700002,700003,700007",
        "--projection", "sfl", "--centre", "214.9,52.7", "--fov", "3", "--size", "600,400",
        "--dpi", "80", "--outline", "field", "--color-by", "status", "--alpha", "0.5",
        "--background", "black", "--grid-color", "yellow", "--no-grid", "--no-galactic-plane",
        "--no-boxes", "--products", "--catalogue", str(votable(tmp_path / "stars.xml")),
        "--dust", "--dust-cuts", "0,0.1", "--dust-cmap", "magma", "--title", "test map",
    ]
    used = {a for a in args if a.startswith("-")}
    assert every <= used, f"options not exercised: {every - used}"
    assert main(args) == 0
    image = Image.open(tmp_path / "map.png")
    assert image.size == (600, 400)
    listing = pd.read_csv(tmp_path / "list.csv")
    assert sorted(listing["expnum"]) == [700001, 700002, 700003]  # 700007 is quarantined
    assert set(listing["progress"]) == {"release", "step1"}
    assert len(pd.read_csv(tmp_path / "fp.csv")) == 6   # 3 exposures x 2 CCDs, from raw headers


@pytest.mark.parametrize("fmt", ["pdf", "svg"])
def test_formats_by_extension(workdir, tmp_path, fmt):
    out = tmp_path / f"map.{fmt}"
    assert main(["-o", str(out), "--workdir", str(workdir), "--configfile",
                 str(workdir / "overlay.yaml"), "--size", "400,300"]) == 0
    assert out.read_bytes()[:5] == (b"%PDF-" if fmt == "pdf" else b"<?xml")


@pytest.mark.parametrize("bad, message", [
    (["-o", "map.gif"], "unknown format"),
    (["-o", "map.png", "--component", "X"], "unknown survey component"),
    (["-o", "map.png", "--status", "sent"], "no 'sent' column"),
    (["-o", "map.png", "--fov", "3"], "needs a centre"),
    (["-o", "map.png", "--catalogue", "missing.xml"], "not a readable VOTable"),
])
def test_bad_input_is_a_named_error(workdir, tmp_path, capsys, bad, message):
    bad = [str(tmp_path / b) if b.startswith(("map.", "missing")) else b for b in bad]
    code = main([*bad, "--workdir", str(workdir), "--configfile", str(workdir / "overlay.yaml")])
    assert code == 2
    assert message in capsys.readouterr().err
    assert len(ROWS) == 8


def test_products_and_catalogue_overlay(tmp_path):
    from spica.skywatcher import read_catalogue_positions

    products = pd.DataFrame({"name": ["CFHTLS_D_r_141927+524056"], "band": ["r"],
                             "ra": [214.8625], "dec": [52.6822], "size_deg": [1.0]})
    stars = votable(tmp_path / "stars.xml")
    figure = draw_map(SELECTION, MapOptions(projection="CAR", centre=(214.9, 52.7), fov_deg=4.0,
                                            catalogue=stars), products=products)
    ax = figure.axes[0]
    tiles = ax.skywatcher_products
    assert len(tiles.get_paths()) == 1
    assert tiles.get_linestyle()[0][1] is not None     # dashed: planned, not made
    corners = ax.get_transform("world").inverted().transform(
        tiles.get_transform().transform(tiles.get_paths()[0].vertices[:4]))
    from astropy.coordinates import SkyCoord

    centre = SkyCoord(214.8625, 52.6822, unit="deg")
    separation = centre.separation(SkyCoord(corners[:, 0], corners[:, 1], unit="deg")).deg
    np.testing.assert_allclose(separation, np.hypot(0.5, 0.5), rtol=1e-3)  # a 1 deg tile
    markers = ax.collections[-1]
    np.testing.assert_allclose(
        ax.get_transform("world").inverted().transform(
            ax.transData.transform(markers.get_offsets())),
        [[214.9, 52.7], [215.0, 52.6]], atol=1e-6)
    # sexagesimal columns with UCDs
    table = Table({"RA": ["14:19:36.0"], "DE": ["+52:42:00"]})
    table["RA"].meta["ucd"] = "pos.eq.ra;meta.main"
    from astropy.io.votable import from_table

    vot = from_table(table)
    vot.get_first_table().fields[0].ucd = "pos.eq.ra;meta.main"
    vot.get_first_table().fields[1].ucd = "pos.eq.dec;meta.main"
    vot.to_xml(str(tmp_path / "sexa.xml"))
    ra, dec = read_catalogue_positions(tmp_path / "sexa.xml")
    np.testing.assert_allclose([ra[0], dec[0]], [214.9, 52.7], atol=1e-9)
