"""QualityFITS-out pure functions on tiny synthetic data (no tool)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from astropy.nddata import Cutout2D
from astropy.table import Table
from numpy.testing import assert_allclose

from spica.qualityfits_out.assess import snapshot_count
from spica.qualityfits_out.completeness import (
    CATALOGUE_COLUMNS,
    add_stars,
    catalogue_parameters,
    completeness_curve,
    completeness_magnitude,
    injection_positions,
    magnitude_grid,
    match_injected,
    psf_stamp,
    subarea,
)
from spica.qualityfits_out.measure import count_peak, measurement_header, reference_counts, snapshot_grid
from spica.qualityfits_out.options import psfex_options, sextractor_options
from spica.step1.qa.measure import zeropoint
from tests.conftest import REPO


def _gaussian(size: int = 25, sigma: float = 1.8) -> np.ndarray:
    y, x = np.mgrid[:size, :size] - size // 2
    return np.exp(-(x**2 + y**2) / (2 * sigma**2))


def test_completeness_magnitude_interpolates_the_first_crossing():
    grid = magnitude_grid(20, 26, 0.5)
    assert grid[0] == 20 and grid[-1] == 26 and len(grid) == 13
    fraction = 1 / (1 + np.exp((grid - 24.3) / 0.3))  # logistic: 50 % at 24.3
    assert completeness_magnitude(grid, fraction, 0.5) == pytest.approx(24.3, abs=0.03)
    assert completeness_magnitude(grid, fraction, 0.8) == pytest.approx(24.3 - 0.3 * math.log(4), abs=0.06)
    assert math.isnan(completeness_magnitude(grid, np.ones(grid.size), 0.5))  # never falls
    with pytest.raises(ValueError):
        magnitude_grid(25, 20, 0.5)


def test_add_stars_conserves_flux_and_position():
    stamp = psf_stamp(_gaussian())
    assert stamp.sum() == pytest.approx(1.0)
    image = np.zeros((100, 120))
    add_stars(image, stamp, np.array([40.3]), np.array([60.7]), np.array([1000.0]))
    assert image.sum() == pytest.approx(1000.0, rel=1e-3)
    y, x = np.mgrid[:100, :120]
    assert_allclose([(image * x).sum() / image.sum(), (image * y).sum() / image.sum()], [40.3, 60.7], atol=0.02)
    edge = np.zeros((50, 50))
    add_stars(edge, stamp, np.array([1.0]), np.array([1.0]), np.array([100.0]))  # clipped, no error
    assert 20 < edge.sum() < 100


def test_psf_stamp_resamples_a_supersampled_model():
    model = _gaussian(31, sigma=3.6)  # sampled every 0.5 pixel: sigma 1.8 pixels
    stamp = psf_stamp(model, sampling=0.5)
    assert stamp.shape[0] % 2 == 1 and stamp.sum() == pytest.approx(1.0)
    y, x = np.mgrid[:stamp.shape[0], :stamp.shape[1]] - stamp.shape[0] // 2
    assert math.sqrt((stamp * x**2).sum()) == pytest.approx(1.8, rel=0.05)
    with pytest.raises(ValueError, match="no positive flux"):
        psf_stamp(np.zeros((5, 5)))


def test_injection_positions_are_spaced_and_inside():
    rng = np.random.default_rng(1)
    x, y = injection_positions((300, 400), spacing=40.0, margin=20.0, rng=rng)
    assert 50 <= x.size <= 80
    assert x.min() >= 20 - 4 and x.max() <= 380 + 4 and y.min() >= 16 and y.max() <= 284
    d = np.hypot(x[:, None] - x[None], y[:, None] - y[None]) + np.eye(x.size) * 1e9
    assert d.min() > 0.8 * 40.0 - 1e-9
    with pytest.raises(ValueError, match="no room"):
        injection_positions((30, 30), spacing=40.0, margin=20.0, rng=rng)


def test_match_injected_needs_position_and_magnitude():
    detections = Table({"X_IMAGE": [11.0, 51.0, 91.0], "Y_IMAGE": [11.0, 11.0, 11.0],
                        "MAG_AUTO": [22.1, 25.0, 23.0]})
    recovered, mag = match_injected(np.array([10.2, 50.0, 90.0, 130.0]), np.array([10.0] * 4),
                                    np.array([22.0, 22.0, 23.0, 23.0]), detections, radius=2.0, max_dmag=1.0)
    assert recovered.tolist() == [True, False, True, False]  # 2nd: 3 mag off (a brighter neighbour)
    assert_allclose(mag[[0, 2]], [22.1, 23.0])
    curve = completeness_curve(np.array([22.0, 22.0, 23.0, 23.0]), recovered, np.array([22.0, 23.0, 24.0]))
    assert curve["injected"].tolist() == [2, 2, 0] and curve["recovered"].tolist() == [1, 1, 0]
    assert_allclose(curve["fraction"][:2], [0.5, 0.5])
    assert math.isnan(curve["fraction"][2])


def test_snapshots_sampled_every_step_of_the_demo_tile():
    # the demo tile (0.0833 deg at 0.186"/px: 1612 px = 5') sampled every 0.833' (10'/12): 6 x 6,
    # as the real 1 deg tile every 10'
    assert snapshot_count(1612, 1612, 0.186, 0.833) == 6
    assert snapshot_count(19354, 19354, 0.186, 10.0) == 6
    assert snapshot_count(100, 100, 0.186, 10.0) == 1
    image = np.arange(6 * 4 * 6 * 4, dtype=float).reshape(24, 24)
    grid = snapshot_grid(image, 6)
    assert len(grid) == 6 and grid[0][1].shape == (4, 4)
    assert grid[2][3][0, 0] == image[8, 12]
    with pytest.raises(ValueError):
        snapshot_grid(np.zeros((25, 24)), 6)


def test_count_peak_and_reference_law():
    mags = np.concatenate([np.full(5, 21.2), np.full(9, 23.7), np.full(9, 24.1), np.full(3, 25.3)])
    assert count_peak(mags) == pytest.approx(24.25)  # equal bins: the faintest
    assert math.isnan(count_peak(np.array([99.0])))
    law = reference_counts("i")
    assert law["slope"] == pytest.approx(0.35) and "McCracken" in law["source"]
    with pytest.raises(KeyError):
        reference_counts("y")


def test_measurement_header_gives_the_product_zero_point():
    from astropy.io import fits

    header = fits.Header({"MAGZERO": 30.0, "EXPTIME": 900.0, "AIRMASS": 1.3})
    zp, calibrated = zeropoint(fits.Header(), measurement_header(header))
    assert calibrated and zp == pytest.approx(30.0)


def test_options_from_config():
    settings = {"detect_thresh": 2.0, "detect_minarea": 4, "back_size": 64, "psfex_min_snr": 30.0,
                "sextractor_overrides": {"DEBLEND_MINCONT": 0.01}, "psfex_overrides": {}}
    assert sextractor_options(settings) == {"ANALYSIS_THRESH": 2.0, "BACK_SIZE": 64, "DEBLEND_MINCONT": 0.01,
                                            "DETECT_MINAREA": 4, "DETECT_THRESH": 2.0}
    assert psfex_options(settings) == {"SAMPLE_MINSN": 30.0}


def test_subarea_is_the_centred_cut_out():
    """The completeness sub-area (read through a memory map) is astropy's centred Cutout2D."""
    for ny, nx, fraction in [(1612, 1612, 0.6), (100, 101, 0.5), (7, 9, 0.3), (10, 10, 1.0), (1, 1, 0.1)]:
        size = (max(1, round(ny * fraction)), max(1, round(nx * fraction)))
        cut = Cutout2D(np.zeros((ny, nx)), ((nx - 1) / 2, (ny - 1) / 2), size, mode="partial")
        (y0, y1), (x0, x1) = subarea(ny, nx, fraction)
        assert (x0, y0) == cut.origin_original and (y1 - y0, x1 - x0) == cut.data.shape


def test_completeness_asks_only_for_the_columns_it_reads(tmp_path):
    release = REPO / "config" / "astromatic" / "release.param"
    assert catalogue_parameters(release).split() == list(CATALOGUE_COLUMNS)
    short = tmp_path / "short.param"
    short.write_text("NUMBER\nX_IMAGE\nY_IMAGE\n# MAG_AUTO\n")
    with pytest.raises(ValueError, match="ALPHA_J2000, DELTA_J2000, MAG_AUTO"):
        catalogue_parameters(short)
