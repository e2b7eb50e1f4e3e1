"""Fixtures of the SkyWatcher tests: a synthetic registry, raw headers, a workdir."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from astropy.io import fits
from astropy.wcs import WCS

from spica.registry import conform, schema

#: (expnum, status, runid, object, filter, ra, dec, date_obs)
ROWS = [
    (700001, "ok", "04AL01", "D3", "r.MP9601", 214.86, 52.68, "2004-03-21"),
    (700002, "ok", "04AL01", "D3", "i.MP9701", 214.87, 52.69, "2004-04-18"),
    (700003, "ok", "04AL02", "W3+2-1", "g.MP9401", 215.08, 52.76, "2004-05-02"),
    (700004, "ok", "04AL02", "PW3-1", "r.MP9601", 0.02, 10.0, "2004-06-10"),     # RA 0, Pre-W
    (700005, "ok", "04AL03", "VW1", "z.MP9801", 359.98, -5.0, "2004-07-01"),    # RA 360, VW
    (700006, "ok", "04BF99", "M31", "u.MP9301", 10.68, 41.27, "2004-08-15"),    # PI
    (700007, "quarantined", "04AL01", "D3", "r.MP9601", 214.86, 52.68, "2004-03-21"),
    (700008, "ok", "04AL01", "polar", "i.MP9701", 45.0, 89.97, "2004-09-01"),  # around the pole
]
SURVEY = {"runid_programs": {"L01": "D", "L02": "W", "L03": "VW"},
          "pre_survey_object_prefix": "PW"}


def exposure_frame() -> pd.DataFrame:
    frame = pd.DataFrame(ROWS, columns=["expnum", "status", "runid", "object", "filter",
                                        "ra_deg", "dec_deg", "date_obs"])
    frame["band"] = frame["filter"].str[0]
    frame["file"] = [f"{e}p.fits" for e in frame["expnum"]]
    return conform(frame, "exposures")


def ccd_wcs(ra: float, dec: float, dx: float, dy: float) -> WCS:
    """A 40 x 80 px CCD of 1"/px (x 90: 0.025 deg/px) offset by (dx, dy) px from (ra, dec)."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = [20.5 - dx, 40.5 - dy]
    wcs.wcs.cdelt = [-0.025, 0.025]
    return wcs


def write_raw(path: Path, ra: float, dec: float) -> list[WCS]:
    """A 2-CCD MEF whose CCD WCSs put the CCDs side by side around (ra, dec)."""
    hdus, wcss = [fits.PrimaryHDU()], []
    for dx in (-21.0, 21.0):
        wcs = ccd_wcs(ra, dec, dx, 0.0)
        header = wcs.to_header()
        hdus.append(fits.ImageHDU(np.zeros((80, 40), np.int16), header=header))
        wcss.append(wcs)
    fits.HDUList(hdus).writeto(path)
    return wcss


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Path:
    """A survey folder: registry, raw exposures, a release plan's lists, a config overlay."""
    root = tmp_path_factory.mktemp("survey")
    results = root / "results"
    results.mkdir()
    raw = root / "raw"
    raw.mkdir()
    for expnum, status, *_rest in ROWS:
        row = dict(zip(["ra", "dec"], _rest[3:5]))
        if status == "ok":
            write_raw(raw / f"{expnum}p.fits", row["ra"], row["dec"])
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{results / 'registry.sqlite'}")
    with engine.begin() as connection:
        schema().create_all(connection)
        exposure_frame().to_sql("exposures", connection, if_exists="append", index=False)
    engine.dispose()
    lists = results / "releases" / "T0002" / "T0002_lists.json"
    lists.parent.mkdir(parents=True)
    lists.write_text(json.dumps({"release": "T0002", "stack_lists": {"CFHTLS_D_r": [700001]},
                                 "astrometric_lists": {}, "solutions": {}}))
    (root / "overlay.yaml").write_text(yaml.safe_dump({
        "results": str(results), "registry": {"url": f"sqlite:///{results / 'registry.sqlite'}"},
        "inputs": {"exposures": str(raw)}}))
    return root
