"""Tests of spica.sky: great-circle distance and the sexagesimal texts (products)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from spica import paths
from spica.sky import (
    angular_distance,
    format_dec,
    format_dec_rounded,
    format_ra,
    format_ra_rounded,
)


def _scalar_haversine(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    """The step 1 integrity check's former scalar formula (math module)."""
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    hav = math.sin((d2 - d1) / 2) ** 2 + math.cos(d1) * math.cos(d2) * math.sin((r2 - r1) / 2) ** 2
    return math.degrees(2 * math.asin(min(1.0, math.sqrt(hav))))


def _vector_haversine(ra0, dec0, ra1, dec1):
    """The accept summary's former vectorised formula (no clipping)."""
    ra0, dec0, ra1, dec1 = (np.radians(np.asarray(v, float)) for v in (ra0, dec0, ra1, dec1))
    hav = np.sin((dec1 - dec0) / 2) ** 2 + np.cos(dec0) * np.cos(dec1) * np.sin((ra1 - ra0) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(hav)))


def test_angular_distance_matches_former_formulas() -> None:
    rng = np.random.default_rng(9)
    ra1, ra2 = rng.uniform(0, 360, (2, 2000))
    dec1, dec2 = rng.uniform(-90, 90, (2, 2000))
    # pixel-sized steps too, as the accept summary measures them
    ra2[:500] = ra1[:500] + rng.normal(0, 5e-5, 500)
    dec2[:500] = dec1[:500] + rng.normal(0, 5e-5, 500)
    distance = angular_distance(ra1, dec1, ra2, dec2)
    assert distance.shape == (2000,)
    assert_allclose(distance, _vector_haversine(ra1, dec1, ra2, dec2), rtol=0, atol=1e-12)
    scalar = [_scalar_haversine(*args) for args in zip(ra1, dec1, ra2, dec2)]
    assert_allclose(distance, scalar, rtol=0, atol=1e-12)


def test_angular_distance_cases() -> None:
    assert isinstance(angular_distance(10.0, 20.0, 10.0, 20.0), float)
    assert angular_distance(10.0, 20.0, 10.0, 20.0) == 0.0
    assert angular_distance(359.5, 0.0, 0.5, 0.0) == pytest.approx(1.0, abs=1e-12)  # across RA 0
    assert angular_distance(0.0, 90.0, 123.0, 90.0) == pytest.approx(0.0, abs=1e-12)  # at the pole
    assert angular_distance(0.0, 0.0, 180.0, 0.0) == pytest.approx(180.0, abs=1e-12)  # antipodes: no NaN
    assert angular_distance(0.0, 89.0, 180.0, 89.0) == pytest.approx(2.0, abs=1e-12)
    assert_allclose(angular_distance([0.0, 1.0], 0.0, 0.0, [1.0, 0.0]), [1.0, 1.0], atol=1e-12)


@pytest.mark.parametrize(
    ("ra", "name", "pending", "rounded"),
    [
        (214.8625, "141927", "14 h 19 m 27", "14:19:27.00"),
        (0.0, "000000", "00 h 00 m 00", "00:00:00.00"),
        (36.4958, "022558", "02 h 25 m 58", "02:25:58.99"),
        # 59.995 s of time: truncated to 59 in names, rounded up (carried) in the summary
        (15 * 59.995 / 3600, "000059", "00 h 00 m 59", "00:01:00.00"),
        (15 * 59.9949 / 3600, "000059", "00 h 00 m 59", "00:00:59.99"),
        (15 * (1 + 59 / 60 + 59.995 / 3600), "015959", "01 h 59 m 59", "02:00:00.00"),
        (359.99999999, "235959", "23 h 59 m 59", "24:00:00.00"),
        (360.0, "000000", "00 h 00 m 00", "24:00:00.00"),
        (-1.0, "235600", "23 h 56 m 00", "-00:04:00.00"),  # names wrap, the summary does not
    ],
)
def test_ra_texts(ra: float, name: str, pending: str, rounded: str) -> None:
    assert format_ra(ra) == name
    assert format_ra(ra, sep=(" h ", " m ")) == pending
    assert format_ra_rounded(ra) == rounded


@pytest.mark.parametrize(
    ("dec", "name", "pending", "rounded"),
    [
        (52.682222, "+524055", "+52 \u00b0 40 ' 55", "+52:40:56.0"),
        (52 + 40 / 60 + 56.95 / 3600, "+524056", "+52 \u00b0 40 ' 56", "+52:40:56.9"),
        (-52.682222, "-524055", "-52 \u00b0 40 ' 55", "-52:40:56.0"),
        (-4.49417, "-042939", "-04 \u00b0 29 ' 39", "-04:29:39.0"),
        (0.0, "+000000", "+00 \u00b0 00 ' 00", "+00:00:00.0"),
        # negative declinations near 0 keep their sign
        (-0.0, "+000000", "+00 \u00b0 00 ' 00", "-00:00:00.0"),
        (-1e-05, "-000000", "-00 \u00b0 00 ' 00", "-00:00:00.0"),
        (-0.5, "-003000", "-00 \u00b0 30 ' 00", "-00:30:00.0"),
        (59.995 / 3600, "+000059", "+00 \u00b0 00 ' 59", "+00:01:00.0"),
        (-59.95 / 3600, "-000059", "-00 \u00b0 00 ' 59", "-00:01:00.0"),
        (-59.96 / 3600, "-000059", "-00 \u00b0 00 ' 59", "-00:01:00.0"),
        (89.99999, "+895959", "+89 \u00b0 59 ' 59", "+90:00:00.0"),
    ],
)
def test_dec_texts(dec: float, name: str, pending: str, rounded: str) -> None:
    assert format_dec(dec) == name
    assert format_dec(dec, sep=(" \u00b0 ", " ' ")) == pending
    assert format_dec_rounded(dec) == rounded


def test_stack_names_use_the_same_text() -> None:
    assert paths.format_ra is format_ra and paths.format_dec is format_dec
    assert paths.stack_name("D", "g", 36.4958, -4.49417) == "CFHTLS_D_g_022558-042939"
