#!/usr/bin/env python
"""Accuracy of a demo release against the simulator's truth (issue targets: <= 15 mas, <= 5 mmag).

Run after a release of the demo survey (``bin/spica demo`` plans and builds
T0002), from the folder holding ``demo/`` and ``results/``::

    .venv/bin/python bench/accuracy.py [--workdir .] [--release T0002]

Prints, over every stack of the release:

* RMS position error (mas) of bright unsaturated stars in the stack
  catalogues (``_ldac.fits``, ALPHA/DELTA_J2000) against the truth;
* RMS of recovered minus injected per-exposure zero points (mmag): SCAMP's
  corrections from the registry export against ``-zp_offset`` of the truth,
  after removing the common offset (the photometric anchors' own scatter);
* stack photometry of stars against the truth (mmag, ZP = 30): robust RMS and
  median offset of MAG_APER (4") minus the true magnitude.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table

REPO = Path(__file__).resolve().parents[1]


def _robust_rms(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("."))
    parser.add_argument("--release", default="T0002")
    parser.add_argument("--config", type=Path, default=REPO / "config" / "config.yaml")
    args = parser.parse_args()
    config = yaml.safe_load(args.config.read_text())
    truth_dir = args.workdir / config["demo"]["truth_dir"]
    releases = args.workdir / config["results"] / "releases" / args.release
    sources = pd.read_csv(truth_dir / "sources.csv")
    exposures = pd.read_csv(truth_dir / "exposures.csv").set_index("expnum")
    stars = sources[sources["type"] == "star"]
    sky = SkyCoord(stars["ra"].values, stars["dec"].values, unit="deg")

    positions, photometry = [], []
    for catalogue in sorted(releases.glob("*/*_T*_ldac.fits")):
        band = catalogue.name.split("_")[2]
        table = Table(fits.open(catalogue)["LDAC_OBJECTS"].data)
        table = table[(table["FLAGS"] == 0) & (table["MAGERR_AUTO"] < 0.01)]
        found = SkyCoord(table["ALPHA_J2000"], table["DELTA_J2000"], unit="deg")
        index, separation, _ = found.match_to_catalog_sky(sky)
        ok = separation.arcsec < 0.5
        mag = stars[f"mag_{band}"].values[index[ok]]
        bright = mag > 17.5  # unsaturated in the inputs
        positions.append(separation.arcsec[ok][bright] * 1000)
        photometry.append((table["MAG_APER"][ok][bright, 1] - mag[bright]) * 1000)
    if not positions:
        print(f"no release catalogue under {releases}", file=sys.stderr)
        return 1
    positions, photometry = np.concatenate(positions), np.concatenate(photometry)

    fields = pd.read_csv(releases / f"{args.release}_scamp_fields.csv")
    fields = fields.drop_duplicates("expnum").set_index("expnum")
    residual = (fields["zeropoint_corr"] + exposures.loc[fields.index, "zp_offset"]) * 1000
    zp_rms = float(np.sqrt(np.mean((residual - residual.mean()) ** 2)))

    print(f"release {args.release}: {len(positions)} bright stars in the stack catalogues, "
          f"{len(fields)} calibrated exposures")
    print(f"astrometry  RMS position error vs truth:        {np.sqrt(np.mean(positions**2)):7.1f} mas"
          f"   (target <= 15; ratio {np.sqrt(np.mean(positions**2)) / 15:.2f})")
    print(f"photometry  RMS recovered - injected ZP:        {zp_rms:7.1f} mmag"
          f"  (target <= 5; ratio {zp_rms / 5:.2f})")
    print(f"photometry  stack MAG_APER(4\") - truth:  robust RMS {_robust_rms(photometry):6.1f} mmag,"
          f" median {np.median(photometry):+6.1f} mmag (aperture loss included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
