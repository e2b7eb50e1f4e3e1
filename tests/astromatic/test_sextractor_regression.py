"""Driving SExtractor: reproduce the real fixture catalogue of kbarbary/sep.

``../shared/data/sep/image.cat`` was made by SExtractor from ``image.fits``
with the ``default.*`` files beside it. Running the binary the way the
pipeline resolves it (:mod:`spica.tools`), with the command line of
:func:`spica.astromatic.sextractor.arguments`, must give the same catalogue.
"""

import subprocess

import numpy as np
import pytest
from astropy.io import ascii

from spica.astromatic import sextractor
from spica.tools import resolve_tool


def _read(path):
    return ascii.read(path, format="sextractor")


@pytest.mark.tools
def test_reproduces_sep_fixture_catalogue(shared_data, tmp_path):
    sep = shared_data / "sep"
    try:
        sex = resolve_tool("sextractor", ["source-extractor", "sex"])
    except RuntimeError as error:
        pytest.skip(str(error))
    out = tmp_path / "image.cat"
    args = sextractor.arguments(
        images=sep / "image.fits", config=sep / "default.sex", param=sep / "default.param",
        conv=sep / "default.conv", nnw=sep / "default.nnw", catalog=out,
        checkimage=(tmp_path / "back.fits", tmp_path / "rms.fits"), options={"VERBOSE_TYPE": "QUIET"},
    )
    subprocess.run([sex.path, *args], check=True, cwd=tmp_path)
    reference, ours = _read(sep / "image.cat"), _read(out)
    assert len(ours) == len(reference) == 65
    assert ours.colnames == reference.colnames
    # Windowed centroids of two blended objects (rows 17 and 30) converge
    # elsewhere with Debian's SExtractor 2.25 than with the version that made
    # the fixture; every other value is reproduced to the printed precision.
    windowed = {"XWIN_IMAGE", "YWIN_IMAGE"}
    blended = np.zeros(len(reference), bool)
    blended[[17, 30]] = True
    for name in reference.colnames:
        rows = ~blended if name in windowed else slice(None)
        np.testing.assert_allclose(ours[name][rows], reference[name][rows], rtol=1e-4,
                                   atol=2e-3, err_msg=name)
    # the isolated objects' windowed centroids agree to 1e-3 pixel
    assert np.max(np.abs(ours["XWIN_IMAGE"][~blended] - reference["XWIN_IMAGE"][~blended])) < 1e-3
