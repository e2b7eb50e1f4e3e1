"""WeightWatcher for step 1: arguments, config file, and real runs on tiny MEFs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from numpy.testing import assert_array_equal

from spica.step1.defects import DEFECT_MAP_BITS, FLAG_BITS, write_defect_map
from spica.astromatic.weightwatcher import (
    MASK_RANGE,
    check_weightwatcher_inputs,
    read_weightwatcher_xml,
    repair_single_extension_output,
    weightwatcher_arguments,
)

WW_CONFIG = Path(__file__).resolve().parents[2] / "config" / "astromatic" / "step1.ww"
WW = shutil.which("weightwatcher") or shutil.which("ww")
needs_ww = pytest.mark.skipif(WW is None, reason="weightwatcher not on PATH")

SHAPE = (300, 200)  # ny, nx
FLAT_RANGE = (0.5, 1.5)
GAIN, READNOISE, SKY = 1.6, 5.0, 1000.0
SATURATE = (61000.0, 62500.0)  # differs per CCD, as on MegaCam
COSMICS = {"sigclip": 5.0, "sigfrac": 0.3, "objlim": 5.0, "niter": 4}
TRAILS = {"enabled": True, "threshold": 5.0, "min_length_pix": 200, "dilate_pix": 6, "max_binned_pix": 256,
          "theta_step": 0.5}


def _read_ww(path: Path) -> dict[str, str]:
    """Keyword -> value (first token) of a WeightWatcher configuration file."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, _, value = line.partition(" ")
            out[key] = value.strip()
    return out


def make_inputs(tmp_path: Path) -> dict:
    """Write a 2-CCD exposure (Elixir int16+BZERO), its flat and its mask.

    CCD 0: a saturated star, cosmic rays, a trail, a bad column in the mask,
    a vignetted (low-flat) corner, a hot flat pixel, a NaN in the flat.
    CCD 1: a star between the two SATURATE values (saturated only on CCD 0's
    scale: it must not be flagged), cosmic rays, another bad column.
    """
    rng = np.random.default_rng(42)
    ny, nx = SHAPE
    yy, xx = np.mgrid[:ny, :nx]
    sigma = 3.0 / 2.3548
    truth = []
    images, flats, masks = [], [], []
    for ccd in range(2):
        model = np.full(SHAPE, SKY)
        if ccd == 0:
            model += 4e5 * np.exp(-0.5 * ((xx - 150) ** 2 + (yy - 60) ** 2) / sigma**2)
            x0, y0, x1, y1 = 0.0, 40.0, nx - 1.0, ny - 30.0
            dist = np.abs((y1 - y0) * xx - (x1 - x0) * yy + x1 * y0 - y1 * x0) / np.hypot(
                x1 - x0, y1 - y0
            )
            model += 150.0 * np.exp(-0.5 * dist**2)
            line = dist <= 1.0
        else:
            # peak ~61800 ADU: >= SATURATE of CCD 0, < SATURATE of CCD 1
            model += 60800.0 * np.exp(-0.5 * ((xx - 60) ** 2 + (yy - 200) ** 2) / sigma**2)
            line = np.zeros(SHAPE, dtype=bool)
        data = rng.poisson(model * GAIN) / GAIN + rng.normal(0, READNOISE / GAIN, SHAPE)
        hits = np.zeros(SHAPE, dtype=bool)
        for y, x in zip(rng.integers(10, ny - 10, 25), rng.integers(10, nx - 10, 25)):
            if abs(y - 60) + abs(x - 150) < 15 or abs(y - 200) + abs(x - 60) < 15:
                continue
            data[y, x] += rng.uniform(800, 5000)
            hits[y, x] = True
        data = np.minimum(data, SATURATE[ccd])
        images.append(data)
        truth.append({"hits": hits, "line": line, "saturated": data >= SATURATE[ccd],
                      "peak": data.max()})

        flat = rng.uniform(0.95, 1.05, SHAPE).astype(np.float32)
        flat[:40, :30] = 0.3  # vignetted corner -> bit 16
        flat[100, 100] = 1.8  # hot -> bit 16
        flat[101, 101] = np.nan  # NaN -> bit 16
        flats.append(flat)
        mask = np.ones(SHAPE, dtype=np.int16)
        mask[:, 120 + ccd] = 0  # bad column -> bit 1
        masks.append(mask)

    def write(path, arrays, kind):
        hdus = [fits.PrimaryHDU()]
        for i, arr in enumerate(arrays):
            header = fits.Header()
            header["EXTNAME"] = f"ccd{i:02d}"  # Elixir's lower-case names
            if kind == "image":
                header["GAIN"], header["RDNOISE"] = GAIN, READNOISE
                header["SATURATE"] = SATURATE[i]
                hdu = fits.ImageHDU(np.round(arr).astype(np.uint16), header=header)
            else:
                hdu = fits.ImageHDU(arr, header=header)
            hdus.append(hdu)
        fits.HDUList(hdus).writeto(path, overwrite=True)

    paths = {k: tmp_path / f"{k}.fits" for k in ("image", "flat", "mask")}
    write(paths["image"], images, "image")
    write(paths["flat"], flats, "flat")
    write(paths["mask"], masks, "mask")
    return {"paths": paths, "truth": truth, "flats": flats, "masks": masks}


def test_arguments():
    args = weightwatcher_arguments(
        flat="f.fits", mask="m.fits", defects="d.fits", weight_out="w.fits",
        flag_out="fl.fits", xml_out="ww.xml", flat_range=[0.6, 1.4],
    )
    assert args == [
        "-WEIGHT_NAMES", "f.fits,m.fits",
        "-WEIGHT_MIN", "0.6,0.5",
        "-WEIGHT_MAX", "1.4,1.5",
        "-FLAG_NAMES", "d.fits,d.fits,d.fits,d.fits",
        "-OUTWEIGHT_NAME", "w.fits",
        "-OUTFLAG_NAME", "fl.fits",
        "-XML_NAME", "ww.xml",
    ]  # fmt: skip
    with pytest.raises(ValueError):
        weightwatcher_arguments(flat="f", mask="m", defects="d", weight_out="w",
                                flag_out="fl", xml_out="x", flat_range=[1.5, 0.5])


def test_config_matches_defect_bits():
    """step1.ww's flag lists pass the defect-map bits through one file each."""
    cfg = _read_ww(WW_CONFIG)
    as_int = lambda s: [int(v, 0) for v in s.split(",")]  # noqa: E731
    assert as_int(cfg["FLAG_MASKS"]) == list(DEFECT_MAP_BITS)
    assert as_int(cfg["FLAG_OUTFLAGS"]) == list(DEFECT_MAP_BITS)
    assert as_int(cfg["FLAG_WMASKS"]) == list(DEFECT_MAP_BITS)
    assert as_int(cfg["WEIGHT_OUTFLAGS"]) == [FLAG_BITS["flat_range"], FLAG_BITS["bad_pixel"]]
    assert [float(v) for v in cfg["WEIGHT_MIN"].split(",")][1] == MASK_RANGE[0]
    assert cfg["GETAREA"] == "Y"


def test_check_inputs(tmp_path):
    a, b = tmp_path / "a.fits", tmp_path / "b.fits"
    one = fits.ImageHDU(np.zeros((3, 4), np.float32), name="ccd00")
    fits.HDUList([fits.PrimaryHDU(), one]).writeto(a)
    two = fits.ImageHDU(np.zeros((3, 4), np.float32), name="ccd01")
    fits.HDUList([fits.PrimaryHDU(), one.copy(), two]).writeto(b)
    assert check_weightwatcher_inputs(a, a) == [("ccd00", (3, 4))]
    with pytest.raises(ValueError, match="extensions"):
        check_weightwatcher_inputs(a, b)
    with pytest.raises(ValueError, match="compressed"):
        check_weightwatcher_inputs(a, tmp_path / "m.fits.gz")


@pytest.fixture(scope="module")
def ww_run(tmp_path_factory):
    if WW is None:
        pytest.skip("weightwatcher not on PATH")
    tmp = tmp_path_factory.mktemp("ww")
    inputs = make_inputs(tmp)
    paths = inputs["paths"]
    defects = tmp / "defects.fits"
    counts = write_defect_map(paths["image"], defects, cosmics=COSMICS, trails=TRAILS,
                              mask_path=paths["mask"])
    check_weightwatcher_inputs(paths["flat"], paths["mask"], defects)
    out = {"weight": tmp / "x_weight.fits", "flag": tmp / "x_flag.fits", "xml": tmp / "x_ww.xml"}
    args = weightwatcher_arguments(
        flat=paths["flat"], mask=paths["mask"], defects=defects, weight_out=out["weight"],
        flag_out=out["flag"], xml_out=out["xml"], flat_range=FLAT_RANGE,
    )
    proc = subprocess.run([WW, "-c", str(WW_CONFIG), *args], cwd=tmp,
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return {**inputs, "defects": defects, "counts": counts, "out": out, "stderr": proc.stderr}


@pytest.mark.tools
@needs_ww
def test_outputs_are_8bit_flags_and_float32_weights(ww_run):
    for key, bitpix, dtype in (("flag", 8, np.uint8), ("weight", -32, np.float32)):
        with fits.open(ww_run["out"][key]) as hdul:
            assert len(hdul) == 3
            assert [h.header["EXTNAME"] for h in hdul[1:]] == ["ccd00", "ccd01"]
            for hdu in hdul[1:]:
                assert hdu.header["BITPIX"] == bitpix
                assert "BZERO" not in hdu.header
                assert hdu.data.dtype.type is dtype and hdu.data.shape == SHAPE


@pytest.mark.tools
@needs_ww
def test_pixel_by_pixel(ww_run):
    lo, hi = FLAT_RANGE
    for ext in (1, 2):
        flat = ww_run["flats"][ext - 1]
        mask = ww_run["masks"][ext - 1]
        defects = fits.getdata(ww_run["defects"], ext)
        flags = fits.getdata(ww_run["out"]["flag"], ext)
        weight = fits.getdata(ww_run["out"]["weight"], ext)
        with np.errstate(invalid="ignore"):
            bad_flat = ~((flat >= lo) & (flat <= hi))
        expected = (
            np.where(mask < 0.5, FLAG_BITS["bad_pixel"], 0)
            | np.where(bad_flat, FLAG_BITS["flat_range"], 0)
            | defects
        ).astype(np.uint8)
        assert_array_equal(flags, expected)
        # weight: 0 exactly where a flag is set, the flat elsewhere
        assert_array_equal(weight[flags > 0], 0.0)
        assert_array_equal(weight[flags == 0], flat[flags == 0])
        assert np.all(weight[flags == 0] > 0)


@pytest.mark.tools
@needs_ww
def test_each_bit_at_its_place(ww_run):
    truth = ww_run["truth"]
    f0 = fits.getdata(ww_run["out"]["flag"], 1)
    f1 = fits.getdata(ww_run["out"]["flag"], 2)
    # 1: the mask's bad column, and only there (plus overlaps)
    assert np.all(f0[:, 120] & 1) and np.all(f1[:, 121] & 1)
    assert not (f0[:, :120] & 1).any() and not (f1[:, 122:] & 1).any()
    # 16: vignetted corner, hot and NaN flat pixels
    assert np.all(f0[:40, :30] & 16) and f0[100, 100] & 16 and f0[101, 101] & 16
    assert np.count_nonzero(f0 & 16) == 40 * 30 + 2
    # 2: per-CCD SATURATE
    assert_array_equal(f0 & 2 > 0, truth[0]["saturated"])
    assert truth[0]["saturated"].sum() > 0
    assert truth[1]["peak"] >= SATURATE[0] and not (f1 & 2).any()
    # 4: cosmic rays (those not on a masked column / vignetted corner)
    for flags, t in ((f0, truth[0]), (f1, truth[1])):
        assert (flags[t["hits"]] & 4 > 0).mean() >= 0.9
    # 8: the trail on CCD 0 only
    assert (f0[truth[0]["line"]] & 8 > 0).mean() >= 0.8
    assert not (f1 & 8).any()
    # 32: no non-finite image pixel here
    assert not ((f0 | f1) & 32).any()


@pytest.mark.tools
@needs_ww
def test_xml(ww_run):
    info = read_weightwatcher_xml(ww_run["out"]["xml"])
    assert info["version"].startswith("1.")
    assert info["nextensions"] == 2
    assert len(info["flag_area"]) == 2 and len(info["weight_area"]) == 2
    for ext, area in enumerate(info["flag_area"], start=1):
        flags = fits.getdata(ww_run["out"]["flag"], ext)
        assert area == pytest.approx(np.mean(flags == 0), abs=1e-5)
        assert fits.getheader(ww_run["out"]["flag"], ext)["EFF_AREA"] == pytest.approx(area)
    assert not any(re.search("not found", w) for w in info["warnings"])


@pytest.mark.tools
@needs_ww
def test_nonfinite_image_pixel(tmp_path):
    """A NaN in a float image reaches the flag map as bit 32 and weight 0."""
    data = np.full(SHAPE, SKY, dtype=np.float32)
    data += np.random.default_rng(0).normal(0, 20, SHAPE).astype(np.float32)
    data[7, 9] = np.nan
    header = fits.Header({"EXTNAME": "ccd00", "GAIN": GAIN, "RDNOISE": READNOISE,
                          "SATURATE": 65000.0})
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, header=header)]).writeto(
        tmp_path / "img.fits")
    fits.HDUList([fits.PrimaryHDU(),
                  fits.ImageHDU(np.ones(SHAPE, np.float32), header=fits.Header(
                      {"EXTNAME": "ccd00"}))]).writeto(tmp_path / "flat.fits")
    fits.HDUList([fits.PrimaryHDU(),
                  fits.ImageHDU(np.ones(SHAPE, np.int16), header=fits.Header(
                      {"EXTNAME": "ccd00"}))]).writeto(tmp_path / "mask.fits")
    write_defect_map(tmp_path / "img.fits", tmp_path / "d.fits", cosmics=COSMICS,
                     trails={**TRAILS, "enabled": False})
    args = weightwatcher_arguments(
        flat=tmp_path / "flat.fits", mask=tmp_path / "mask.fits", defects=tmp_path / "d.fits",
        weight_out=tmp_path / "w.fits", flag_out=tmp_path / "f.fits",
        xml_out=tmp_path / "x.xml", flat_range=FLAT_RANGE)
    subprocess.run([WW, "-c", str(WW_CONFIG), *args], check=True, capture_output=True)
    # a single-extension MEF comes out without primary HDU: repaired in place
    for name in ("f.fits", "w.fits"):
        assert repair_single_extension_output(tmp_path / name)
        assert not repair_single_extension_output(tmp_path / name)
    with fits.open(tmp_path / "f.fits") as hdul:
        assert len(hdul) == 2 and hdul[1].header["EXTNAME"] == "ccd00"
        assert hdul[1].header["BITPIX"] == 8
    flags = fits.getdata(tmp_path / "f.fits", 1)
    weight = fits.getdata(tmp_path / "w.fits", 1)
    assert flags[7, 9] == 32 and weight[7, 9] == 0
    assert np.count_nonzero(flags) == 1
