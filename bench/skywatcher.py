#!/usr/bin/env python
"""SkyWatcher drawing speed: 10,000 exposures of 36 CCDs on one map, per projection.

Target (issue 15): <= 5 s per map. The exposures are synthetic (random
pointings over the sky, some across RA 0/360 and near the poles, each a 9 x 4
MegaCam-like CCD mosaic from a TAN WCS), so the bench needs no survey. The
time per map is :func:`spica.skywatcher.draw_map` plus :func:`render` to PNG
(the outlines, grid, galactic plane and the default contour boxes)::

    .venv/bin/python bench/skywatcher.py [--exposures 10000] [--format png] [--projections AIT,MOL]

Prints one line per projection: seconds per map (wall clock; the CPU time of the
process beside it, which other work on the machine does not inflate) and the
ratio of the wall time to the 5 s target
(after one small warm-up map: imports and font caches are not counted).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

TARGET_S = 5.0


def synthetic_survey(n_exposures: int, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Exposures and their 36 CCD footprints (9 x 4 mosaic of 2048 x 4612 px, 0.186"/px)."""
    from astropy.wcs import WCS

    from spica.skywatcher import FOOTPRINT_COLUMNS

    rng = np.random.default_rng(seed)
    ra = rng.uniform(0, 360, n_exposures)
    dec = np.degrees(np.arcsin(rng.uniform(-0.95, 0.999, n_exposures)))
    ra[:20], dec[:20] = rng.uniform(-0.5, 0.5, 20) % 360, rng.uniform(-40, 40, 20)  # across RA 0
    dec[20:30] = rng.uniform(88.5, 89.9, 10)                                         # near the pole
    scale = 0.186 / 3600
    cx = (np.arange(9) - 4) * 2112 * scale
    cy = (np.arange(4) - 1.5) * 4700 * scale
    gx, gy = np.meshgrid(cx, cy)
    half = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * np.array([1024, 2306]) * scale
    # native offsets of the 36 x 4 corners, projected with one TAN WCS per exposure
    offsets = (np.stack([gx.ravel(), gy.ravel()], axis=1)[:, None, :] + half[None]).reshape(-1, 2)
    rows = []
    for i in range(n_exposures):
        wcs = WCS(naxis=2)
        wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        wcs.wcs.crval = [ra[i], dec[i]]
        wcs.wcs.cdelt = [-1.0, 1.0]
        r, d = wcs.wcs_pix2world(offsets[:, 0], offsets[:, 1], 0)
        block = np.column_stack([r.reshape(36, 4), d.reshape(36, 4)])
        rows.append(np.column_stack([np.full(36, 700000 + i), np.arange(36),
                                     block[:, [0, 4, 1, 5, 2, 6, 3, 7]]]))
    footprints = pd.DataFrame(np.concatenate(rows), columns=list(FOOTPRINT_COLUMNS))
    footprints = footprints.astype({"expnum": int, "ccd": int})
    exposures = pd.DataFrame({"expnum": 700000 + np.arange(n_exposures), "ra_deg": ra,
                              "dec_deg": dec, "band": rng.choice(list("ugriz"), n_exposures),
                              "progress": rng.choice(["step1", "release"], n_exposures)})
    return exposures, footprints


def main() -> None:
    from spica.skywatcher import PROJECTIONS, MapOptions, config_boxes, draw_map, load_config, render

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exposures", type=int, default=10_000)
    parser.add_argument("--format", default="png", choices=["png", "pdf", "svg"])
    parser.add_argument("--projections", default=",".join(PROJECTIONS))
    args = parser.parse_args()
    t0 = time.perf_counter()
    exposures, footprints = synthetic_survey(args.exposures)
    print(f"synthetic survey: {len(exposures)} exposures, {len(footprints)} CCDs "
          f"({time.perf_counter() - t0:.1f} s to make, not timed below)")
    boxes = config_boxes(load_config([Path(__file__).resolve().parents[1] / "config" / "cfhtls.yaml"]))
    # one small map first: imports and font caches are not the drawing's time
    render(draw_map(exposures[:10], MapOptions(), footprints=footprints[:360]), args.format)
    for projection in args.projections.split(","):
        options = MapOptions(projection=projection, boxes=boxes)
        start, cpu = time.perf_counter(), time.process_time()
        figure = draw_map(exposures, options, footprints=footprints)
        data = render(figure, args.format)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        print(f"{projection}: {elapsed:.2f} s per map (CPU {cpu:.2f} s; {len(data) / 1e6:.1f} MB "
              f"{args.format}), ratio to {TARGET_S:g} s target: {elapsed / TARGET_S:.2f}")


if __name__ == "__main__":
    main()
