"""Tests of spica.step1.defects on tiny synthetic CCDs (stars, cosmic rays, a trail)."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from numpy.testing import assert_allclose, assert_array_equal

from spica.step1._lacosmic import detect_cosmics_sparse, laplacian_plus
from spica.step1.defects import (  # noqa: I001
    _bin_masked_mean,
    _median_radon,
    DEFECT_MAP_BITS,
    FLAG_BITS,
    defect_flags,
    detect_cosmics,
    detect_trails,
    flag_meaning,
    saturation_mask,
    write_defect_map,
)

GAIN = 1.6  # e-/ADU
READNOISE = 5.0  # e-
SKY = 1000.0  # ADU
SATURATE = 60000.0
COSMICS = {"sigclip": 5.0, "sigfrac": 0.3, "objlim": 5.0, "niter": 2}
TRAILS = {"threshold": 5.0, "min_mrt_snr": 15.0, "min_length_pix": 200, "dilate_pix": 6,
          "max_binned_pix": 256, "theta_step": 0.5}
SHAPE = (300, 200)  # ny, nx
FWHM = 3.0


def make_ccd(seed: int, *, trail: bool = True, shape: tuple[int, int] = SHAPE) -> dict:
    """Return a synthetic CCD in ADU and the truth masks of what was injected.

    Sky with Poisson + read noise, ~40 Gaussian stars of FWHM 3 px, one
    saturated star (clipped at SATURATE), ~40 cosmic-ray hits of 1-4 pixels
    and optionally a faint straight trail crossing the CCD.
    """
    rng = np.random.default_rng(seed)
    ny, nx = shape
    yy, xx = np.mgrid[:ny, :nx]
    model = np.full(shape, SKY)
    sigma = FWHM / 2.3548
    core = np.zeros(shape, dtype=bool)
    stars = [(rng.uniform(8, nx - 8), rng.uniform(8, ny - 8), 10 ** rng.uniform(2.5, 4.3))
             for _ in range(40)]
    for x0, y0, peak in stars:
        r2 = (xx - x0) ** 2 + (yy - y0) ** 2
        model += peak * np.exp(-0.5 * r2 / sigma**2)
        core |= r2 <= (FWHM / 2) ** 2
    # a saturated star, far from the others' cores
    sx, sy = nx * 0.7, ny * 0.2
    r2 = (xx - sx) ** 2 + (yy - sy) ** 2
    model += 5e5 * np.exp(-0.5 * r2 / sigma**2)
    core &= r2 > 8**2
    line = np.zeros(shape, dtype=bool)
    if trail:
        x0, y0, x1, y1 = 0.0, 30.0, nx - 1.0, ny - 40.0
        dist = np.abs((y1 - y0) * xx - (x1 - x0) * yy + x1 * y0 - y1 * x0) / np.hypot(
            x1 - x0, y1 - y0
        )
        model += 120.0 * np.exp(-0.5 * (dist / 1.0) ** 2)
        line = dist <= 1.0
    electrons = rng.poisson(model * GAIN).astype(float)
    data = electrons / GAIN + rng.normal(0, READNOISE / GAIN, shape)
    # cosmic rays: 1-4 adjacent pixels, 400-5000 ADU, away from star cores
    hits = np.zeros(shape, dtype=bool)
    far = ~ndi_dilate(core, 3)
    n = 0
    while n < 40:
        y, x = rng.integers(2, ny - 3), rng.integers(2, nx - 3)
        if not far[y, x]:
            continue
        length = rng.integers(1, 5)
        dy, dx = [(0, 1), (1, 0), (1, 1)][rng.integers(3)]
        for k in range(length):
            data[y + k * dy, x + k * dx] += rng.uniform(400, 5000)
            hits[y + k * dy, x + k * dx] = True
        n += 1
    data = np.minimum(data, SATURATE).astype(np.float32)
    return {"data": data, "core": core & ~hits, "hits": hits, "line": line,
            "saturated": data >= SATURATE}


def ndi_dilate(mask: np.ndarray, iterations: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_dilation(mask, iterations=iterations)


@pytest.fixture(scope="module")
def ccd() -> dict:
    return make_ccd(1)


def test_flag_bits_are_documented_single_bits():
    assert FLAG_BITS == {"bad_pixel": 1, "saturated": 2, "cosmic_ray": 4, "trail": 8,
                         "flat_range": 16, "nonfinite": 32}
    assert set(DEFECT_MAP_BITS) == {2, 4, 8, 32}
    assert flag_meaning(6) == ["saturated", "cosmic_ray"]


def test_saturation_mask():
    data = np.array([[1.0, 60000.0, np.nan, 70000.0]])
    assert_array_equal(saturation_mask(data, 60000.0), [[False, True, False, True]])
    assert not saturation_mask(data, 0).any()
    assert not saturation_mask(data, None).any()


def test_cosmics_found_and_star_cores_spared(ccd):
    crs = detect_cosmics(ccd["data"], gain=GAIN, readnoise=READNOISE, satlevel=SATURATE,
                         **COSMICS)
    assert crs.dtype == bool and crs.shape == SHAPE
    assert crs[ccd["hits"]].mean() >= 0.9
    assert crs[ccd["core"]].mean() < 0.01
    # false positives elsewhere stay rare
    elsewhere = ~ndi_dilate(ccd["hits"], 1)
    assert crs[elsewhere].mean() < 1e-3


def test_cosmics_ignore_nonfinite(ccd):
    data = ccd["data"].copy()
    data[50:52, :] = np.nan
    crs = detect_cosmics(data, gain=GAIN, readnoise=READNOISE, satlevel=SATURATE, **COSMICS)
    assert not crs[50:52].any()
    assert crs[ccd["hits"] & np.isfinite(data)].mean() >= 0.9


def test_trail_found(ccd):
    trail = detect_trails(ccd["data"], **TRAILS)
    assert trail.shape == SHAPE
    assert trail[ccd["line"]].mean() >= 0.8
    # a band, not the whole CCD
    assert trail.mean() < 0.25


def test_median_radon_medians_and_geometry():
    rng = np.random.default_rng(3)
    image = rng.normal(0.0, 1.0, (60, 90))
    image[rng.random(image.shape) < 0.1] = np.nan
    image[30, :] = 50.0  # a horizontal line through the centre row
    theta = np.arange(0.0, 180.0, 1.0)
    mrt, length = _median_radon(image, theta)
    n = mrt.shape[0]
    assert mrt.shape == length.shape and mrt.shape[1] == len(theta)
    # theta = 90 deg integrates along rows: the line is one column, at its rho
    long = np.where(length > 45, mrt, np.nan)
    row, column = np.unravel_index(np.nanargmax(long), mrt.shape)
    assert abs(theta[column] - 90.0) <= 1.0 and mrt[row, column] == 50.0
    at_90 = long[:, list(theta).index(90.0)]
    assert np.nanmax(at_90) == 50.0
    assert abs((np.nanargmax(at_90) - (n / 2 - 0.5)) - (30 - 60 // 2)) <= 1
    assert np.nanmax(long[:, theta < 80]) < 10  # off-angle: noise medians
    # theta = 0: columns of the (padded) image, medians of their finite pixels
    finite = np.isfinite(image).sum(axis=0)
    assert sorted(length[:, 0][length[:, 0] > 0].astype(int)) == sorted(finite)
    expected = np.nanmedian(image, axis=0)
    got = mrt[:, 0][length[:, 0] > 0]
    assert_allclose(np.sort(got), np.sort(expected), rtol=1e-6)


def test_noise_peaks_are_not_trails():
    """Star field + noise, no trail: MRT peaks below min_mrt_snr give no candidate."""
    for seed in (2, 4, 5):
        clean = make_ccd(seed, trail=False, shape=(800, 400))
        assert not detect_trails(clean["data"], clean["hits"], **TRAILS).any(), seed


def test_write_defect_map_threads_equal_serial(tmp_path):
    hdus = [fits.PrimaryHDU()]
    for k in range(3):
        ccd = make_ccd(10 + k, trail=k == 1)
        header = fits.Header({"EXTNAME": f"ccd{k:02d}", "GAIN": GAIN, "RDNOISE": READNOISE,
                              "SATURATE": SATURATE})
        hdus.append(fits.ImageHDU(ccd["data"], header))
    exposure = tmp_path / "123456p.fits"
    fits.HDUList(hdus).writeto(exposure)
    serial = write_defect_map(exposure, tmp_path / "serial.fits", cosmics=COSMICS,
                              trails=TRAILS)
    parallel = write_defect_map(exposure, tmp_path / "parallel.fits", cosmics=COSMICS,
                                trails=TRAILS, threads=2)
    assert serial == parallel
    assert serial["ccd01"]["trail"] > 0 and serial["ccd00"]["trail"] == 0
    with fits.open(tmp_path / "serial.fits") as a, fits.open(tmp_path / "parallel.fits") as b:
        assert [h.name for h in a] == [h.name for h in b] == ["PRIMARY", "ccd00", "ccd01", "ccd02"]
        for x, y in zip(a[1:], b[1:]):
            assert_array_equal(x.data, y.data)


def test_no_trail_in_a_clean_ccd():
    clean = make_ccd(2, trail=False)
    assert not detect_trails(clean["data"], **TRAILS).any()


def test_defect_flags_bits(ccd):
    data = ccd["data"].copy()
    data[5, 5] = np.nan
    flags = defect_flags(data, gain=GAIN, readnoise=READNOISE, saturate=SATURATE,
                         cosmics=COSMICS, trails=TRAILS)
    assert flags.dtype == np.uint8
    assert flags[5, 5] & FLAG_BITS["nonfinite"]
    assert_array_equal(flags & FLAG_BITS["saturated"] > 0, data >= SATURATE)
    assert (flags[ccd["hits"]] & FLAG_BITS["cosmic_ray"] > 0).mean() >= 0.9
    assert (flags[ccd["core"]] & FLAG_BITS["cosmic_ray"] > 0).mean() < 0.01
    assert (flags[ccd["line"]] & FLAG_BITS["trail"] > 0).mean() >= 0.8
    assert not (flags & (FLAG_BITS["bad_pixel"] | FLAG_BITS["flat_range"])).any()


def test_defect_flags_disabled(ccd):
    flags = defect_flags(ccd["data"], gain=GAIN, readnoise=READNOISE, saturate=SATURATE,
                         cosmics={**COSMICS, "enabled": False},
                         trails={**TRAILS, "enabled": False})
    assert set(np.unique(flags)) <= {0, FLAG_BITS["saturated"]}


def _write_exposure(path, ccds, *, compressed=False, bzero=True):
    hdus = [fits.PrimaryHDU()]
    for i, ccd in enumerate(ccds):
        header = fits.Header()
        header["EXTNAME"] = f"ccd{i:02d}"
        header["GAIN"] = GAIN
        header["RDNOISE"] = READNOISE
        header["SATURATE"] = SATURATE
        data = ccd["data"]
        if bzero:  # Elixir style: int16 with BZERO
            data = np.round(np.nan_to_num(data, nan=0.0)).astype(np.uint16)
        if compressed:
            hdus.append(fits.CompImageHDU(data, header=header))
        else:
            hdus.append(fits.ImageHDU(data, header=header))
    fits.HDUList(hdus).writeto(path, overwrite=True)


def test_write_defect_map(tmp_path):
    ccds = [make_ccd(3), make_ccd(4, trail=False)]
    image = tmp_path / "exp.fits"
    _write_exposure(image, ccds)
    out = tmp_path / "defects.fits"
    counts = write_defect_map(image, out, cosmics=COSMICS, trails=TRAILS)
    assert list(counts) == ["ccd00", "ccd01"]
    with fits.open(out) as hdul:
        assert [h.header["EXTNAME"] for h in hdul[1:]] == ["ccd00", "ccd01"]
        for hdu, ccd, name in zip(hdul[1:], ccds, counts):
            assert hdu.header["BITPIX"] == 8
            flags = hdu.data
            assert flags.dtype == np.uint8 and flags.shape == SHAPE
            assert_array_equal(flags & 2 > 0, ccd["saturated"])
            assert (flags[ccd["hits"]] & 4 > 0).mean() >= 0.9
            assert counts[name]["cosmic_ray"] == np.count_nonzero(flags & 4)
            assert counts[name]["trail"] == np.count_nonzero(flags & 8)
            assert counts[name]["npix"] == flags.size
            assert hdu.header["NCOSMIC"] == counts[name]["cosmic_ray"]
        assert (hdul[1].data[ccds[0]["line"]] & 8 > 0).mean() >= 0.8
        assert not (hdul[2].data & 8).any()


def test_write_defect_map_compressed_float(tmp_path):
    """.fits.fz (tile-compressed) input and float data with a NaN."""
    ccd = make_ccd(3, trail=False)
    ccd["data"][7, 9] = np.nan
    image = tmp_path / "exp.fits.fz"
    _write_exposure(image, [ccd], compressed=True, bzero=False)
    with fits.open(image) as hdul:
        assert isinstance(hdul[1], fits.CompImageHDU)
        stored = hdul[1].data  # float tiles are quantised: compare with these
    out = tmp_path / "defects.fits"
    counts = write_defect_map(image, out, cosmics=COSMICS, trails={"enabled": False})
    flags = fits.getdata(out, 1)
    assert flags[7, 9] == FLAG_BITS["nonfinite"]
    assert counts["ccd00"]["nonfinite"] == 1
    assert_array_equal(flags & 2 > 0, stored >= SATURATE)
    assert np.count_nonzero(stored >= SATURATE) > 0
    assert (flags[ccd["hits"]] & 4 > 0).mean() >= 0.9


def test_write_defect_map_mask_and_datasec(tmp_path):
    ccd = make_ccd(5, trail=False)
    image = tmp_path / "exp.fits"
    _write_exposure(image, [ccd])
    with fits.open(image, mode="update") as hdul:
        hdul[1].header["DATASEC"] = "[11:200,1:300]"
    # a hot column, flagged bad in the mask: must not become a trail
    with fits.open(image, mode="update") as hdul:
        hdul[1].data[:, 100] = 30000
    mask = np.ones(SHAPE, dtype=np.int16)
    mask[:, 100] = 0
    mask_path = tmp_path / "mask.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(mask, name="ccd00")]).writeto(mask_path)
    out = tmp_path / "defects.fits"
    write_defect_map(image, out, cosmics=COSMICS, trails=TRAILS, mask_path=mask_path)
    flags = fits.getdata(out, 1)
    assert not (flags & 8).any()
    assert not (flags[:, 100] & 4).any()
    assert not (flags[:, :10] & 4).any()  # outside DATASEC: no detections


def test_detections_on_a_demo_ccd():
    """A demo-sized CCD (400 x 800): detections work (their time: bench/unit_timings.py)."""
    big = make_ccd(6, shape=(800, 400))
    detect_cosmics(big["data"], gain=GAIN, readnoise=READNOISE, satlevel=SATURATE, **COSMICS)
    trail = detect_trails(big["data"], **TRAILS)
    assert trail[big["line"]].mean() >= 0.8


def test_laplacian_plus_is_lacosmics_subsampled_laplacian():
    """L+ at the original resolution equals astroscrappy's subsample-convolve-clip-rebin."""
    from astroscrappy.utils import laplaceconvolve, rebin, subsample

    data = make_ccd(6)["data"]
    convolved = laplaceconvolve(subsample(data))
    convolved[convolved < 0] = 0
    expected = rebin(convolved)
    # float32 sums in a different order; astroscrappy leaves the border alone
    assert_allclose(laplacian_plus(data)[1:-1, 1:-1], expected[1:-1, 1:-1], atol=0.02, rtol=0)


@pytest.mark.parametrize("niter", [1, 2])
def test_sparse_cosmics_recover_truth_as_astroscrappy(niter):
    """The fast path (default engine) flags the injected hits as astroscrappy does.

    Four demo-sized CCDs (401 hits of 1-4 pixels): with the configured two
    iterations >= 98.2 % of the hit pixels (the demo's figure) are flagged
    (97.8 % with one), no star core, and the mask differs from astroscrappy's
    with the same settings by at most 3 pixels.
    """
    settings = {**COSMICS, "niter": niter}
    found = total = differ = 0
    for seed in (6, 7, 8, 21):
        ccd = make_ccd(seed, shape=(800, 400))
        fast = detect_cosmics(ccd["data"], gain=GAIN, readnoise=READNOISE, satlevel=SATURATE,
                              **settings)
        reference = detect_cosmics(ccd["data"], gain=GAIN, readnoise=READNOISE,
                                   satlevel=SATURATE, engine="astroscrappy", **settings)
        found += int(np.count_nonzero(fast[ccd["hits"]]))
        total += int(np.count_nonzero(ccd["hits"]))
        differ += int(np.count_nonzero(fast ^ reference))
        assert not fast[ccd["core"]].any(), seed
    assert total == 401
    assert found / total >= (0.982 if niter == 2 else 0.975), (found, total)
    assert differ <= 3, differ


def test_sparse_cosmics_respect_mask_and_saturation():
    ccd = make_ccd(7, shape=(800, 400))
    data = ccd["data"].astype(np.float32)
    mask = np.zeros(data.shape, dtype=bool)
    hit_rows = np.nonzero(ccd["hits"].any(axis=1))[0]
    mask[hit_rows[:5]] = True  # rows holding some hits: never flagged
    crs = detect_cosmics_sparse(data, mask, gain=GAIN, readnoise=READNOISE, satlevel=SATURATE * GAIN,
                                **COSMICS)
    assert not crs[mask].any()
    assert crs[ccd["hits"] & ~mask].mean() >= 0.98
    # the saturated star (its core >= SATURATE) and 4 pixels around it are protected
    core = np.argwhere(data >= SATURATE)
    y0, x0 = core.min(axis=0)
    y1, x1 = core.max(axis=0)
    assert not crs[y0 - 4 : y1 + 5, x0 - 4 : x1 + 5].any()
    # input left alone unless overwrite=True
    assert_array_equal(data, ccd["data"])


def test_bin_masked_mean_is_a_nan_mean_of_good_pixels():
    rng = np.random.default_rng(4)
    data = rng.normal(size=(47, 30)).astype(np.float32)
    bad = rng.random(data.shape) < 0.2
    bad[:5, :5] = True  # one block without a good pixel
    binned = _bin_masked_mean(data, bad, 5)
    assert binned.shape == (10, 6)
    expected = np.full((10, 6), np.nan)
    for i in range(10):
        for j in range(6):
            block = data[5 * i : 5 * i + 5, 5 * j : 5 * j + 5]
            good = ~bad[5 * i : 5 * i + 5, 5 * j : 5 * j + 5]
            if good.any():
                expected[i, j] = block[good].mean()
    assert np.isnan(binned[0, 0])
    assert_allclose(binned, expected, rtol=1e-5, atol=1e-6)


def _fullsize_ccd(seed: int, trail: bool) -> tuple[np.ndarray, np.ndarray]:
    """A MegaCam-shaped CCD (4612 x 2048): integer ADU sky + noise, optionally the
    full-size demo's trail (3.4 deg from the columns, Gaussian sigma 1.8 px)."""
    rng = np.random.default_rng(seed)
    ny, nx = 4612, 2048
    data = rng.normal(SKY, 20.0, (ny, nx)).astype(np.float32)
    x0, x1 = 833.5, 1108.6  # ccd04 of exposure 751008 in the full-size demo
    yy, xx = np.mgrid[:ny, :nx]
    dist = np.abs((xx - x0) * ny - (x1 - x0) * yy) / np.hypot(ny, x1 - x0)
    if trail:
        data += (300.0 * np.exp(-0.5 * (dist / 1.8) ** 2)).astype(np.float32)
    return np.rint(data), dist


def test_trail_found_on_a_fullsize_ccd():
    """A trail across a 2048 x 4612 CCD (binned 19 x 19) is found with a narrow band.

    Two faults hid it on the full-size demo: the width test's floor (3 binned
    px) below the width acstools measures for an unresolved trail (~5), and
    the MAD of integer-valued full-resolution medians being 0.
    """
    config = {**TRAILS, "theta_step": 1.0}
    data, dist = _fullsize_ccd(11, trail=True)
    trail = detect_trails(data, **config)
    assert trail[dist <= 1.0].mean() >= 0.99
    per_row = trail.sum(axis=1)
    assert 15 <= np.median(per_row) <= 40, np.median(per_row)  # 6-8 px band + 2 x 6 px dilation
    assert not trail[dist > 40].any()
    clean, _ = _fullsize_ccd(12, trail=False)
    assert not detect_trails(clean, **config).any()


def test_write_defect_map_hands_each_ccd_to_keep(tmp_path):
    """``keep`` sees every CCD once, in order, as read (float32 after BZERO, from the
    file's int16 read straight: the same values as astropy's), with the BZERO of a
    16-bit CCD; KeptPixels gives them back exactly from 16 bits; a compressed
    exposure goes through astropy (no raw pixels) and gives the same map."""
    from spica.step1.reduce import KeptPixels

    ccds = [make_ccd(7, trail=False), make_ccd(8, trail=False)]
    maps = {}
    for compressed in (False, True):
        image = tmp_path / f"exp{int(compressed)}.fits"
        _write_exposure(image, ccds, compressed=compressed)
        seen, kept = [], KeptPixels()

        def keep(index, pixels, offset, raw):
            seen.append((index, pixels.dtype, offset, None if raw is None else raw.dtype.itemsize))
            kept.keep(index, pixels, offset, raw)

        maps[compressed] = tmp_path / f"defects{int(compressed)}.fits"
        write_defect_map(image, maps[compressed], cosmics=COSMICS, trails=TRAILS, keep=keep)
        assert seen == [(i, np.float32, 32768.0, None if compressed else 2) for i in range(2)]
        with fits.open(image) as hdul:
            for index in range(2):
                assert_array_equal(kept(index), np.asarray(hdul[index + 1].data, np.float32))
                assert kept._ccds[index][0].dtype.itemsize == 2
    with fits.open(maps[False]) as plain, fits.open(maps[True]) as packed:
        for a, b in zip(plain[1:], packed[1:]):
            assert_array_equal(a.data, b.data)


def test_radon_prescreen_never_misses_a_candidate():
    """The counting pre-screen of detect_trails (_radon_may_exceed) is a necessary
    condition: wherever the median Radon transform has a line above the candidate
    S/N, it says so; on pure noise it spares the transform. Checked at S/N limits
    around the lines' own maxima (exact medians, odd and even lengths)."""
    from spica.step1.defects import _median_radon, _radon_may_exceed

    rng = np.random.default_rng(11)
    theta = np.arange(0.0, 180.0, 3.0)
    noise = rng.normal(0, 1, (60, 40)).astype(np.float32)
    noise[5:9, 3:7] = np.nan
    trail = noise.copy()
    trail[np.arange(60), np.clip(np.arange(60) // 2 + 5, 0, 39)] += 4.0
    for image in (noise, trail):
        mrt, length = _median_radon(image, theta)
        score = np.where(length >= 10, mrt * np.sqrt(length), -np.inf)
        best = float(np.max(score))
        assert _radon_may_exceed(image, theta, best * 0.999, 10)  # one line is above
        assert not _radon_may_exceed(image, theta, best * 1.5 + 50, 10)  # no line is
    # pure noise at the configured S/N (15 x 1.25 sigma): no candidate, no transform needed
    assert not _radon_may_exceed(noise, theta, 15 * 1.25 * 1.0, 10)
    assert _radon_may_exceed(trail, theta, 15 * 1.25 * 1.0, 10)


def test_sparse_flatnonzero_equals_numpy():
    """The word-at-a-time nonzero of the defect and QA steps gives np.flatnonzero's
    indices (bool and uint8, any length, sparse and dense), and None above ``limit``."""
    from spica.step1._blocks import sparse_flatnonzero

    rng = np.random.default_rng(5)
    for size in (0, 1, 7, 8, 9, 1001, 40_000):
        for fraction in (0.0, 0.001, 0.05, 0.5):
            mask = rng.random(size) < fraction
            codes = (mask * rng.integers(1, 255, size)).astype(np.uint8)
            assert_array_equal(sparse_flatnonzero(mask), np.flatnonzero(mask))
            assert_array_equal(sparse_flatnonzero(codes), np.flatnonzero(codes))
    square = rng.random((60, 70)) < 0.01
    assert_array_equal(sparse_flatnonzero(square), np.flatnonzero(square))
    assert sparse_flatnonzero(square, limit=int(square.sum()) - 1) is None
    with pytest.raises(ValueError):
        sparse_flatnonzero(np.zeros(4, np.float32))


def test_strong_pixels_and_lplus_patches_equal_the_lplus_image():
    """L+ computed where needed (the bound's candidates; 7 x 7 patches around pixels,
    edges included) has laplacian_plus's values to the last bit."""
    from spica.step1._lacosmic import _lplus_patches, _patches, _strong_pixels

    ccd = make_ccd(21)["data"].astype(np.float32)
    lplus = laplacian_plus(ccd)
    for threshold in (5.0, 60.0, 400.0):
        assert_array_equal(_strong_pixels(ccd, threshold, rows=37), np.flatnonzero(lplus > threshold))
    rng = np.random.default_rng(2)
    ys = np.concatenate([rng.integers(0, SHAPE[0], 200), [0, 1, 3, 4, SHAPE[0] - 1, SHAPE[0] - 4]])
    xs = np.concatenate([rng.integers(0, SHAPE[1], 200), [0, SHAPE[1] - 1, 2, 4, 5, SHAPE[1] - 5]])
    assert_array_equal(_lplus_patches(ccd, ys, xs, 3), _patches(lplus, ys, xs, 3))


def test_binned_medians_equal_scipy():
    """The trail profile's medians per distance bin are scipy.ndimage.median's, empty
    bins included (scipy gives them the smallest value of the lowest bin)."""
    from scipy import ndimage

    from spica.step1.defects import _binned_medians

    rng = np.random.default_rng(9)
    values = np.rint(rng.normal(1000, 30, 20_000)).astype(np.float32)
    values[:5000] += rng.normal(0, 1, 5000).astype(np.float32)  # not only integers
    labels = rng.integers(0, 40, values.size)
    labels[labels == 7] = 8  # an empty bin inside
    for nbin in (40, 45):  # and empty bins beyond the last label
        expected = np.asarray(ndimage.median(values, labels=labels, index=np.arange(nbin)))
        assert_array_equal(_binned_medians(values, labels, nbin), expected)
    integers = values.astype(np.int32)  # scipy gives float64 halves for integers
    expected = np.asarray(ndimage.median(integers, labels=labels, index=np.arange(40)))
    assert_array_equal(_binned_medians(integers, labels, 40), expected)


def test_radon_prescreen_codes_equal_the_general_count(monkeypatch):
    """On an image without NaN the pre-screen counts 16-bit length codes; its answer is
    the general float count's at every S/N limit (the general path is forced by a
    longest line beyond the codes' range)."""
    from spica.step1 import defects

    rng = np.random.default_rng(12)
    theta = np.arange(0.0, 180.0, 3.0)
    noise = rng.normal(0, 1, (61, 40)).astype(np.float32)
    trail = noise.copy()
    trail[np.arange(61), np.clip(np.arange(61) // 2 + 5, 0, 39)] += 3.0
    limits = (2.0, 4.0, 6.0, 8.0, 12.0, 18.75, 30.0)
    fast = [defects._radon_may_exceed(image, theta, scale, 10) for image in (noise, trail) for scale in limits]
    lengths = defects._radon_lengths
    monkeypatch.setattr(defects, "_radon_lengths", lambda shape, angles: (lengths(shape, angles)[0], 2**16))
    general = [defects._radon_may_exceed(image, theta, scale, 10) for image in (noise, trail) for scale in limits]
    assert fast == general
    assert any(fast) and not all(fast)
