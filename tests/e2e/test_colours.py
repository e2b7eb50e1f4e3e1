"""Colour diagrams and w(theta) end to end: the e2e release (fixture ``release``: D3 r and i
stacks, one tile of two filters, and the Very Wide image 751042p_V0001) against the
simulator's truth. The release has no tile of three filters: the colour-colour diagrams
are checked on synthetic catalogues only (tests/qualityfits_out/test_colours.py)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord

from spica import paths
from spica.qualityfits_out.colours import match_filters, read_star_table
from tests.e2e.conftest import D3, VW, snakemake

pytestmark = [pytest.mark.e2e, pytest.mark.tools,
              pytest.mark.filterwarnings("ignore::astropy.wcs.FITSFixedWarning")]

TILE = "CFHTLS_D_ri_141927+524056_T0002"


@pytest.fixture(scope="module")
def colours(release: dict) -> dict:
    """The release with its colour-magnitude diagram and every product's w(theta)
    (``release_T0002`` makes them; a reused work directory made before they existed gets them here)."""
    results = release["workdir"] / release["config"]["results"]
    wanted = [*paths.colour_paths(results, "T0002", TILE),
              *[paths.product_path(results, "T0002", stem, key) for stem in (*D3.values(), VW)
                for key in paths.STAR_CLUSTERING_PRODUCTS]]
    missing = [str(path) for path in wanted if not path.is_file()]
    if missing:
        run = snakemake(release["workdir"], *missing)
        assert run.returncode == 0, run.stderr[-3000:]
    return {**release, "results": results, "wanted": wanted}


def _log(survey: dict, folder: str, name: str) -> dict:
    """The JSON a job's script prints last in its log (after the tools' output)."""
    text = (survey["results"] / "logs" / "releases" / "T0002" / folder / f"{name}.log").read_text()
    return json.loads(text[text.rindex("\n{\n") + 1:] if "\n{\n" in text else text[text.index("{"):])


def test_the_two_filter_tile_gets_its_colour_magnitude_diagram_only(colours):
    names = sorted(p.name for p in (colours["results"] / "releases" / "T0002" / TILE).iterdir()
                   if "_diag" in p.name)
    assert names == [f"{TILE}_diagcm.png", f"{TILE}_diagcm.ps"]
    # one job per tile (rule plot_tile_colours_2: two filters), its log the figures per diagram
    assert list(_log(colours, TILE, "plot_tile_colours")) == ["ri"]
    assert _log(colours, TILE, "plot_tile_colours")["ri"]["n_stars"] > 300


def test_star_colours_are_the_truth_colours(colours):
    """r - i of the stars matched in both stacks against the simulator's r - i."""
    tables, headers = {}, {}
    for band, stem in D3.items():
        headers[band], tables[band] = read_star_table(
            paths.product_path(colours["results"], "T0002", stem, "qfo_ldac"), min_snr=20.0)
    matched = match_filters(tables, radius_pix=1.5, headers=headers)
    stars = matched[matched["star"]]
    truth = pd.read_csv(colours["truth"] / "sources.csv")
    truth = truth[truth["type"] == "star"]
    index, separation, _ = SkyCoord(stars["ra"], stars["dec"], unit="deg").match_to_catalog_sky(
        SkyCoord(truth["ra"], truth["dec"], unit="deg"))
    close = separation < 0.5 * u.arcsec
    measured = (stars["mag_r"] - stars["mag_i"]).to_numpy()[close]
    true = (truth["mag_r"] - truth["mag_i"]).to_numpy()[index[close]]
    bright = truth["mag_r"].to_numpy()[index[close]] < 22.0
    offset = float(np.median(measured[bright] - true[bright]))
    print(f"{int(bright.sum())} stars (r < 22): median r-i - truth {offset:+.3f} mag, "
          f"{close.mean():.1%} of the stars matched to truth stars")
    assert close.mean() > 0.9 and bright.sum() > 200
    assert abs(offset) < 0.05


def test_wtheta_of_the_simulated_stars_is_zero(colours):
    """The simulator draws its stars uniformly: no correlation within the errors."""
    for stem in (*D3.values(), VW):
        result = _log(colours, stem, "assess_product_quality")["clustering"]
        w, sigma = np.array(result["w"]), np.array(result["sigma"])
        print(stem, result["n_stars"], "stars, w/sigma", np.round(w / sigma, 1))
        assert result["n_stars"] > 300 and len(w) == 8
        assert np.all(np.abs(w) < 4 * sigma) and np.sum((w / sigma) ** 2) < 8 + 3 * 4
