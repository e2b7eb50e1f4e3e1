"""Step 1's fast paths (issue 10, section 4) against their slower references: the same answers."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

from spica.step1.integrity import _constant


def _constant_reference(data: np.ndarray) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        low, high = np.nanmin(data), np.nanmax(data)
    return bool(np.isfinite(low) and low == high)


def test_constant_check_reads_the_first_row_first_and_answers_as_the_full_scan(tmp_path):
    """An integer CCD whose first row varies is not constant without a full scan; every
    other case (flat first row, flat image, floats, NaN) goes through the whole image."""
    rng = np.random.default_rng(3)
    cases = {
        "noise": rng.integers(-300, 300, (40, 30)).astype(np.int16),
        "flat": np.full((40, 30), 7, np.int16),
        "flat but the last pixel": np.full((40, 30), 7, np.int16),
        "flat first row": np.full((40, 30), 7, np.uint16),
        "float": rng.normal(0, 1, (40, 30)).astype(np.float32),
        "float flat with NaN": np.full((40, 30), 2.5, np.float32),
        "one row": np.array([[1, 1, 1]], np.int32),
    }
    cases["flat but the last pixel"][-1, -1] = 8
    cases["flat first row"][5:, 3] = 9
    cases["float flat with NaN"][0, :4] = np.nan
    for name, data in cases.items():
        assert _constant(data) == _constant_reference(data), name
    # a big-endian map of a file, as spica.step1._pixels.raw_integer_image gives
    path = tmp_path / "pixels.raw"
    cases["noise"].astype(">i2").tofile(path)
    mapped = np.memmap(path, dtype=">i2", mode="r", shape=(40, 30))
    assert _constant(mapped) is False and _constant_reference(mapped) is False
    assert [name for name, data in cases.items() if _constant(data)] == ["flat", "float flat with NaN", "one row"]


def test_trail_vetting_module_imported_by_several_threads_at_once():
    """The CCDs' trail searches run on threads, each of which may import acstools'
    vetting module first: every thread gets the whole module (stop 23's import under a
    stand-in package handed the threads that came while the first was importing a
    half-initialised one, and the demo's step 1 failed). In a fresh interpreter,
    sixteen threads starting 20 ms apart, through the first one's import."""
    code = """
import threading, time
from spica.step1.defects import _findsat_utils
got = []
def work(delay):
    time.sleep(delay)
    module = _findsat_utils()
    got.append((module.__name__, hasattr(module, "filter_sources"), hasattr(module, "streak_endpoints")))
threads = [threading.Thread(target=work, args=(0.02 * i,)) for i in range(16)]
[t.start() for t in threads]
[t.join() for t in threads]
print(len(got), sorted(set(got)))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == "16 [('acstools.utils_findsat_mrt', True, True)]", run.stdout


@pytest.mark.parametrize("fraction", [0.0, 0.0005, 0.02, 0.3])
def test_sparse_flatnonzero_on_a_ccd_sized_mask_equals_numpy(fraction):
    """The boolean word scan of ``sparse_flatnonzero`` on a 9.4 Mpixel 8-bit flag map (a CCD less one column)
    (values 1-255, sparse and dense) gives ``np.flatnonzero``'s indices."""
    from spica.step1._blocks import sparse_flatnonzero

    rng = np.random.default_rng(int(fraction * 1e4))
    shape = (4612, 2047)  # 9,440,764 pixels: 4 after the last whole 8-byte word
    flags = np.zeros(shape[0] * shape[1], np.uint8)
    where = rng.random(flags.size) < fraction
    flags[where] = rng.integers(1, 256, int(where.sum()))
    flags[-3:] = [0, 5, 128]  # in that tail
    np.testing.assert_array_equal(sparse_flatnonzero(flags.reshape(shape)), np.flatnonzero(flags))


def test_patches_from_the_sliding_window_view_equal_clipped_indexing():
    """``_patches`` (windows of the strided view inside, clipped indices at the edges)
    gives the edge-repeated patches of plain clipped 2-D indexing, for float and boolean
    images, every radius L.A.Cosmic uses, images smaller than a patch, and no pixel."""
    from spica.step1._lacosmic import _patches

    rng = np.random.default_rng(1)

    def reference(image, ys, xs, radius):
        offsets = np.arange(-radius, radius + 1)
        rows = np.clip(ys[:, None] + offsets, 0, image.shape[0] - 1)
        cols = np.clip(xs[:, None] + offsets, 0, image.shape[1] - 1)
        return image[rows[:, :, None], cols[:, None, :]]

    for shape in [(50, 40), (5, 9), (3, 3), (13, 13), (7, 100)]:
        for dtype in (np.float32, bool):
            image = (rng.random(shape) * 100).astype(dtype)
            for radius in (2, 3, 4, 6):
                ys, xs = rng.integers(0, shape[0], 200), rng.integers(0, shape[1], 200)
                patches = _patches(image, ys, xs, radius)
                assert patches.dtype == image.dtype
                np.testing.assert_array_equal(patches, reference(image, ys, xs, radius))
                if min(shape) > 2 * radius:  # all inside: the view's windows alone
                    ys_in = np.clip(ys, radius, shape[0] - 1 - radius)
                    xs_in = np.clip(xs, radius, shape[1] - 1 - radius)
                    np.testing.assert_array_equal(_patches(image, ys_in, xs_in, radius),
                                                  reference(image, ys_in, xs_in, radius))
                none = np.zeros(0, int)
                assert _patches(image, none, none, radius).shape == (0, 2 * radius + 1, 2 * radius + 1)


def test_median_by_selection_equals_numpy():
    """The QA's weight median (selection within a band around a subsample's median)
    is ``np.median``'s value for odd and even counts, ties, skewed and two-level data,
    and small arrays (numpy itself)."""
    from spica.step1.qa.measure import _median

    rng = np.random.default_rng(0)
    cases = [rng.normal(1, 0.05, 524_001), rng.normal(1, 0.05, 524_000), np.ones(600_000),
             np.round(rng.normal(5, 1, 100_000)), np.concatenate([np.zeros(300_000), rng.random(300_000)]),
             np.sort(rng.random(50_000)), rng.exponential(1, 20_001), rng.random(9_000), rng.random(101)]
    for values in cases:
        values = values.astype(np.float64)
        got = _median(values)
        assert type(got) is float and got == float(np.median(values))


def test_trail_band_pixels_hold_the_whole_band_and_give_the_same_extent():
    """A kept trail is measured and masked on its band's pixels only: the band holds every
    pixel within the distance asked (any angle: steep, shallow, along the rows or the
    columns, a point), with _signed_distance's distances, and the extent measured on it
    is the whole image's."""
    from spica.step1.defects import _band_pixels, _signed_distance, _trail_extent, _trail_extent_at

    rng = np.random.default_rng(9)
    shape = (300, 200)
    image = rng.normal(100.0, 5.0, shape).astype(np.float32)
    image[rng.random(shape) < 0.01] = np.nan  # bad pixels
    lines = [((10.3, 5.0), (190.7, 290.2)), ((0.0, 150.0), (199.0, 150.0)), ((50.5, 0.0), (50.5, 299.0)),
             ((-20.0, 10.0), (230.0, 40.0)), ((120.0, 310.0), (130.0, -15.0)), ((60.0, 60.0), (60.0, 60.0))]
    measured = 0
    for p0, p1 in lines:
        full = _signed_distance(shape, p0, p1)
        line = np.zeros(shape, bool)
        (x0, y0), (x1, y1) = p0, p1
        for t in np.linspace(0, 1, 400):
            y, x = int(round(y0 + t * (y1 - y0))), int(round(x0 + t * (x1 - x0)))
            if 0 <= y < shape[0] and 0 <= x < shape[1]:
                line[max(0, y - 2):y + 3, max(0, x - 2):x + 3] = True
        bright = np.where(line, image + 40, image)
        for half in (3.0, 10.0, 27.5):
            ys, xs = _band_pixels(shape, p0, p1, half)
            band = np.zeros(shape, bool)
            band[ys, xs] = True
            assert band[np.abs(full) <= half].all()
            assert len(ys) == band.sum()  # each pixel once
            distance = ((y1 - y0) * xs - (x1 - x0) * ys + (x1 * y0 - y1 * x0)) / (np.hypot(x1 - x0, y1 - y0) or 1.0)
            np.testing.assert_array_equal(distance, full[ys, xs])
            for width in (2.0, 4.0, 9.0):
                if 2 * max(width, 4.0) + 1 > half:
                    continue
                extent = _trail_extent(bright, full, width)
                assert _trail_extent_at(bright[ys, xs], distance, width) == extent
                measured += extent is not None
    assert measured >= 10


def _read_ldac_reference(path):
    """spica.astromatic.sextractor.read_ldac before its fast path: astropy for every table."""
    from astropy.io import fits
    from astropy.table import Table

    out = []
    with fits.open(path, memmap=False) as hdul:
        head = None
        for hdu in hdul[1:]:
            extname = hdu.header.get("EXTNAME", "")
            if extname == "LDAC_IMHEAD":
                text = "".join(str(c).ljust(80) for c in np.atleast_1d(hdu.data.field(0)[0]))
                head = fits.Header.fromstring(text)
            elif extname == "LDAC_OBJECTS":
                names = [c.name for c in hdu.columns if len(hdu.data[c.name].shape) <= 1]
                table = Table({n: np.asarray(hdu.data[n]) for n in names}) if len(hdu.data) else Table(
                    {n: np.zeros(0, dtype=hdu.data[n].dtype) for n in names})
                out.append((head if head is not None else fits.Header(), table))
                head = None
    return out


def _write_ldac(path, rows, *, logical=False, scaled=False):
    from astropy.io import fits

    rng = np.random.default_rng(len(rows))
    hdus = [fits.PrimaryHDU()]
    for k, n in enumerate(rows):
        ccd = fits.Header({"EXTNAME": f"ccd{k:02d}", "GAIN": 1.5 + k, "SATURATE": 60000.0})
        text = ccd.tostring(sep="", endcard=True, padding=False)
        cards = np.array([text[i:i + 80] for i in range(0, len(text), 80)])
        imhead = fits.BinTableHDU.from_columns(
            [fits.Column(name="Field Header Card", format=f"{80 * cards.size}A", array=["".join(cards)])])
        imhead.header["EXTNAME"] = "LDAC_IMHEAD"
        columns = [
            fits.Column(name="NUMBER", format="J", array=np.arange(1, n + 1)),
            fits.Column(name="MAG_AUTO", format="E", array=rng.normal(22, 2, n)),
            fits.Column(name="ALPHA_J2000", format="D", unit="deg", array=rng.uniform(214, 215, n)),
            fits.Column(name="FLAGS", format="I", array=rng.integers(0, 4, n)),
            fits.Column(name="IMAFLAGS_ISO", format="B", array=rng.integers(0, 255, n)),
            fits.Column(name="FLUX_APER", format="2E", array=rng.normal(100, 5, (n, 2))),
            fits.Column(name="VIGNET", format="9E", dim="(3,3)", array=rng.normal(0, 1, (n, 3, 3))),
        ]
        if logical:
            columns.append(fits.Column(name="GOOD", format="L", array=rng.random(n) < 0.5))
        if scaled:
            columns.append(fits.Column(name="SCALED", format="I", array=rng.integers(0, 100, n)))
        objects = fits.BinTableHDU.from_columns(columns)
        if scaled:  # stored integers, read as 0.5 x + 10
            objects.header[f"TSCAL{len(columns)}"] = 0.5
            objects.header[f"TZERO{len(columns)}"] = 10.0
        objects.header["EXTNAME"] = "LDAC_OBJECTS"
        hdus += [imhead, objects]
    fits.HDUList(hdus).writeto(path)


@pytest.mark.parametrize("variant", ["plain", "logical", "scaled"])
def test_read_ldac_fast_path_equals_astropy(tmp_path, variant):
    """Objects tables after the first, read from the file as the first table's records,
    give astropy's columns (names, types, values) and the CCD headers, for every table;
    layouts astropy converts (logical, scaled columns) stay astropy's, as do empty tables."""
    from spica.astromatic.sextractor import read_ldac

    path = tmp_path / "cat_ldac.fits"
    _write_ldac(path, [50, 0, 73, 1, 40], logical=variant == "logical", scaled=variant == "scaled")
    fast, slow = read_ldac(path), _read_ldac_reference(path)
    assert len(fast) == len(slow) == 5
    for (head, table), (head_ref, table_ref) in zip(fast, slow):
        assert head == head_ref and head["GAIN"] == head_ref["GAIN"]
        assert table.colnames == table_ref.colnames and "VIGNET" not in table.colnames
        assert len(table) == len(table_ref)
        for name in table.colnames:
            assert table[name].dtype == table_ref[name].dtype, name
            np.testing.assert_array_equal(np.asarray(table[name]), np.asarray(table_ref[name]))
    assert [len(t) for _, t in fast] == [50, 0, 73, 1, 40]
    from astropy.io import fits

    from spica.astromatic.sextractor import _layout_key, _objects_layout

    with fits.open(path) as hdul:
        first = hdul[2]
        names = [c.name for c in first.columns if len(first.data[c.name].shape) <= 1]
        layout = _objects_layout(first, names) if _layout_key(first.header) is not None else None
    assert (layout is not None) == (variant == "plain")  # the fast path is taken for plain layouts only
    if variant == "scaled":
        assert fast[0][1]["SCALED"].dtype.kind == "f"  # astropy's scaling kept


def test_strong_pixels_inside_strips_equal_the_lplus_image():
    """The candidate search's strips inside the image (neighbour rows read in place, no
    padded copy) and at its edges give the pixels where laplacian_plus exceeds the
    threshold, for narrow, short and single-row or single-column images too."""
    from spica.step1._lacosmic import _strong_pixels, laplacian_plus

    rng = np.random.default_rng(0)
    for shape, rows in [((300, 200), 37), ((64, 50), 64), ((65, 3), 8), ((10, 2), 3), ((129, 1), 64),
                        ((1, 40), 64), ((200, 1), 7)]:
        image = rng.normal(1000, 30, shape).astype(np.float32)
        image[rng.random(shape) < 0.01] += 500
        lplus = laplacian_plus(image)
        for threshold in (5.0, 60.0, 200.0):
            np.testing.assert_array_equal(_strong_pixels(image, threshold, rows=rows),
                                          np.flatnonzero(lplus > threshold))


def test_native_image_equals_astropys_pixels(tmp_path):
    """Uncompressed unscaled images read by ``native_image`` (a map of the file swapped
    into a native copy; bytes by one read) are astropy's pixels, in native order and not
    a map; a truncated file or a scaled image gives None (astropy reads those)."""
    from astropy.io import fits

    from spica.step1._pixels import native_image

    rng = np.random.default_rng(4)
    arrays = [rng.normal(1, 0.1, (37, 23)).astype(np.float32), rng.normal(0, 1, (5, 9)),
              rng.integers(-3000, 3000, (11, 7)).astype(np.int16), rng.integers(0, 2**30, (4, 6)).astype(np.int32),
              rng.integers(0, 255, (13, 17)).astype(np.uint8)]
    path = tmp_path / "images.fits"
    fits.HDUList([fits.PrimaryHDU()] + [fits.ImageHDU(a) for a in arrays]).writeto(path)
    with fits.open(path) as hdul:
        for hdu, expected in zip(hdul[1:], arrays):
            got = native_image(hdu, path)
            assert type(got) is np.ndarray and got.dtype.isnative and got.dtype.kind == expected.dtype.kind
            np.testing.assert_array_equal(got, expected)
    scaled = tmp_path / "scaled.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.arange(12, dtype=np.uint16).reshape(3, 4))]).writeto(scaled)
    with fits.open(scaled) as hdul:
        assert native_image(hdul[1], scaled) is None  # BZERO = 32768
    cut = tmp_path / "cut.fits"
    cut.write_bytes(path.read_bytes()[: 2880 * 3 + 100])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy: the file is truncated
        with fits.open(cut, ignore_missing_end=True) as hdul:
            assert native_image(hdul[1], cut) is None


@pytest.mark.parametrize("gain", [1.6, 0.5])
def test_one_saturation_comparison_for_the_flag_and_lacosmic(monkeypatch, gain):
    """defect_flags compares a finite float32 CCD once with the lower of SATURATE and
    SATURATE / GAIN (L.A.Cosmic's level): its flags equal those of the two separate
    comparisons, for a gain above and below 1, a DATASEC view and a known-bad mask."""
    from spica.step1 import defects
    from tests.step1.test_defects import COSMICS, READNOISE, SATURATE, TRAILS, make_ccd

    ccd = make_ccd(31)
    data = ccd["data"].astype(np.float32)
    data[40:44, 60:64] = SATURATE + 500  # a saturated core
    data[100:103, 20:23] = SATURATE / gain + 10 if gain > 1 else SATURATE - 10  # between the two levels
    mask = np.zeros(data.shape, bool)
    mask[:, 150] = True

    def cases():  # fresh pixels each time (overwrite: cosmic rays cleaned in place)
        view = np.pad(data, ((0, 0), (3, 5)), constant_values=900.0)[:, 3:-5]  # not contiguous
        return [(data.copy(), None), (data.copy(), mask), (view, mask)]

    shared = [defects._saturated_pixels(d, SATURATE, gain) for d, _ in cases()]
    assert all(s is not None for s in shared)
    np.testing.assert_array_equal(shared[2][0], data >= SATURATE)
    np.testing.assert_array_equal(shared[2][1], np.flatnonzero(data >= SATURATE / gain))
    fast = [defects.defect_flags(d, m, gain=gain, readnoise=READNOISE, saturate=SATURATE,
                                 cosmics=COSMICS, trails=TRAILS, overwrite=True) for d, m in cases()]
    monkeypatch.setattr(defects, "_saturated_pixels", lambda *args: None)
    slow = [defects.defect_flags(d, m, gain=gain, readnoise=READNOISE, saturate=SATURATE,
                                 cosmics=COSMICS, trails=TRAILS, overwrite=True) for d, m in cases()]
    for got, expected in zip(fast, slow):
        np.testing.assert_array_equal(got, expected)
    assert (fast[0] & 2).any() and (fast[0] & 4).any()
