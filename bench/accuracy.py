#!/usr/bin/env python
"""Accuracy of a demo release against the simulator's truth (issue targets: <= 15 mas, <= 5 mmag).

Run after a release of the demo survey (``bin/spica demo`` plans and builds
T0002), from the folder holding ``demo/`` and ``results/``::

    .venv/bin/python bench/accuracy.py [--workdir .] [--release T0002]

Prints, over every stack of the release:

* RMS position error (mas) of bright (S/N > 100) unsaturated, unblended stars
  that every input covers (no hole in the stack weight map) in the stack catalogues (``_ldac.fits``: windowed centroids XWIN/YWIN_IMAGE
  through the stack WCS; the isophotal ALPHA/DELTA_J2000 beside) against the
  truth;
  and, beside it, the reference catalogue's own offsets from the truth (the
  floor of a solution tied to it);
* RMS of recovered minus injected per-exposure zero points (mmag): SCAMP's
  corrections from the registry export against ``-zp_offset`` of the truth,
  after removing the common offset (the photometric anchors' own scatter);
* stack photometry of stars against the truth (mmag, ZP = 30): robust RMS and
  median offset of MAG_APER (4") minus the true magnitude, after each stack's
  aperture correction: the flux a 4" aperture misses of the simulator's Moffat
  PSF at the inputs' true seeing at the star's place in each input's focal
  plane (what a perfect stack at ZP = 30 would give).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import astropy.units as u
import yaml
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

REPO = Path(__file__).resolve().parents[1]


def _robust_rms(values: np.ndarray) -> float:
    values = values[np.isfinite(values)]
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def moffat_aperture_loss(fwhm_arcsec: float, radius_arcsec: float, beta: float) -> float:
    """Magnitudes a circular aperture misses of a Moffat PSF (the simulator's PSF)."""
    alpha = fwhm_arcsec / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    return float(-2.5 * np.log10(1.0 - (1.0 + (radius_arcsec / alpha) ** 2) ** (1.0 - beta)))


def aperture_corrections(header: fits.Header, exposures: pd.DataFrame, ra: np.ndarray, dec: np.ndarray,
                         config: dict, diameter_arcsec: float = 4.0) -> np.ndarray:
    """Aperture loss (mag) of each star in a stack: the mean over the stack's inputs
    (IMCMBnnn) of the loss of the simulator's Moffat PSF at the star's place in each
    input's focal plane (the seeing grows towards the mosaic corners, as simulated)."""
    from spica.demo.generate import demo_settings, mosaic_from_config
    from spica.demo.simulate import seeing_at, sky_to_focal

    demo, mosaic = demo_settings(config), mosaic_from_config(config)
    beta, r_edge = float(demo["psf_beta"]), mosaic.corner_radius
    kdist = float(demo["distortion_edge_pix"]) / r_edge**3
    inputs = [int(header[k][:-1]) for k in header if k.startswith("IMCMB")]
    losses = []
    for expnum in inputs:
        row = exposures.loc[expnum]
        u, v = sky_to_focal(ra, dec, row["ra_deg"], row["dec_deg"], mosaic.pixel_scale, kdist)
        fwhm = seeing_at(row["seeing_arcsec"], u, v, float(demo["seeing_variation"]), r_edge)
        losses.append([moffat_aperture_loss(f, diameter_arcsec / 2, beta) for f in fwhm])
    return np.mean(losses, axis=0)


def fully_covered(weight_path: Path, x: np.ndarray, y: np.ndarray, radius: int = 3) -> np.ndarray:
    """True where every input contributed within ``radius`` pixels of 0-based (x, y): the
    stack weight there is no less than 90 % of its 31 x 31 pixel median (a star
    saturated or flagged in one input leaves a hole in the weight map)."""
    weight = fits.getdata(weight_path)
    ok = np.zeros(len(x), bool)
    for k, (xc, yc) in enumerate(zip(np.round(x).astype(int), np.round(y).astype(int))):
        if 15 <= xc < weight.shape[1] - 15 and 15 <= yc < weight.shape[0] - 15:
            box = weight[yc - 15: yc + 16, xc - 15: xc + 16]
            core = weight[yc - radius: yc + radius + 1, xc - radius: xc + radius + 1]
            ok[k] = core.min() >= 0.9 * np.median(box) > 0
    return ok


def reference_errors(refcat: Path, stars: SkyCoord) -> np.ndarray:
    """Offsets (mas) of the reference catalogue's stars from their true positions:
    the floor a solution tied to that catalogue inherits (averaged over the
    reference stars of each CCD)."""
    table = Table(fits.open(refcat)["LDAC_OBJECTS"].data)
    reference = SkyCoord(table["X_WORLD"], table["Y_WORLD"], unit="deg")
    _, separation, _ = reference.match_to_catalog_sky(stars)
    return separation.to_value("mas")[separation.arcsec < 1.0]


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
    everything = SkyCoord(sources["ra"].values, sources["dec"].values, unit="deg")
    stars = sources[sources["type"] == "star"]
    sky = SkyCoord(stars["ra"].values, stars["dec"].values, unit="deg")
    star_index, other_index, pair_separation, _ = everything.search_around_sky(sky, 3.0 * u.arcsec)
    close = stars.index.values[star_index] != sources.index.values[other_index]
    separation_of_pairs = pair_separation.arcsec

    positions, barycentres, offsets, photometry, raw, noise, per_stack = [], [], [], [], [], [], []
    for catalogue in sorted(releases.glob("*/*_ldac.fits")):
        stem = catalogue.name.removesuffix("_ldac.fits")
        image = catalogue.with_name(f"{stem}.fits")
        band = fits.getheader(image)["FILTER"][0]
        contrast = (sources[f"mag_{band}"].values[other_index]
                    - stars[f"mag_{band}"].values[star_index])
        # unblended: nothing within 3" brighter than 4 % of the star
        unblended = np.ones(len(stars), bool)
        unblended[star_index[close & (contrast < 3.5) & (separation_of_pairs < 3.0)]] = False
        table = Table(fits.open(catalogue)["LDAC_OBJECTS"].data)
        table = table[(table["FLAGS"] == 0) & (table["MAGERR_AUTO"] < 0.01)]
        wcs = WCS(fits.getheader(image))
        # windowed centroids (XWIN/YWIN, what SCAMP uses) through the stack's WCS;
        # ALPHA/DELTA_J2000 are the isophotal barycentres, reported beside them
        ra, dec = wcs.all_pix2world(table["XWIN_IMAGE"], table["YWIN_IMAGE"], 1)
        found = SkyCoord(ra, dec, unit="deg")
        isophotal = SkyCoord(table["ALPHA_J2000"], table["DELTA_J2000"], unit="deg")
        index, separation, _ = found.match_to_catalog_sky(sky)
        mag = stars[f"mag_{band}"].values[index]
        x, y = wcs.all_world2pix(sky.ra.deg[index], sky.dec.deg[index], 0)
        covered = fully_covered(catalogue.with_name(f"{stem}_weight.fits"), x, y)
        # unsaturated, unblended, with every input exposure contributing
        keep = (separation.arcsec < 0.5) & (mag > 17.5) & unblended[index] & covered
        if keep.sum() < 5:
            continue
        truth = sky[index[keep]]
        positions.append(separation.arcsec[keep] * 1000)
        barycentres.append(isophotal[keep].separation(truth).to_value("mas"))
        offsets.append(np.column_stack([d.to_value("mas") for d in truth.spherical_offsets_to(found[keep])]))
        apcorr = aperture_corrections(fits.getheader(image), exposures, truth.ra.deg, truth.dec.deg, config)
        dmag = (table["MAG_APER"][keep, 1] - mag[keep]) * 1000
        raw.append(dmag)
        photometry.append(dmag - apcorr * 1000)
        noise.append(table["MAGERR_APER"][keep, 1] * 1000)
        per_stack.append((stem, int(keep.sum()), float(np.sqrt(np.mean(positions[-1] ** 2))),
                          float(np.mean(apcorr)) * 1000, float(np.median(photometry[-1]))))
    if not positions:
        print(f"no release catalogue under {releases}", file=sys.stderr)
        return 1
    positions, photometry, raw = np.concatenate(positions), np.concatenate(photometry), np.concatenate(raw)
    noise = np.concatenate(noise)
    offsets, barycentres = np.concatenate(offsets), np.concatenate(barycentres)

    all_fields = pd.read_csv(releases / f"{args.release}_scamp_fields.csv")
    # anchored: the SCAMP run holds a photometric exposure of the same photometric
    # instrument (filter); an exposure without one (a non-photometric night alone in
    # its astrometric list) keeps its Elixir zero point and is reported apart
    all_fields["anchored"] = (all_fields.groupby(["stack", "phot_instrument"])["photometric"]
                              .transform(lambda flags: flags.astype(str).str.lower().eq("true").any()))
    fields = (all_fields.sort_values("anchored", ascending=False)
              .drop_duplicates("expnum").set_index("expnum"))
    unlinked = fields[~fields["anchored"]]
    fields = fields[fields["anchored"]]
    residual = (fields["zeropoint_corr"] + exposures.loc[fields.index, "zp_offset"]) * 1000
    zp_rms = float(np.sqrt(np.mean((residual - residual.mean()) ** 2)))
    unlinked_stacks = set(all_fields.loc[~all_fields["anchored"], "stack"])

    linked = np.concatenate([np.full(n, stem not in unlinked_stacks) for stem, n, *_ in per_stack])
    print(f"release {args.release}: {len(positions)} unblended bright stars in {len(per_stack)} "
          f"catalogues, {len(fields)} calibrated exposures")
    for stem, n, rms, apcorr, median in per_stack:
        print(f"  {stem:38s} {n:5d} stars  RMS {rms:6.1f} mas  aperture correction {apcorr:+6.1f} mmag"
              f"  median {median:+6.1f} mmag")
    rms = float(np.sqrt(np.mean(positions**2)))
    print(f"astrometry  RMS position error vs truth (XWIN):  {rms:7.1f} mas"
          f"   (target <= 15; ratio {rms / 15:.2f}); median {np.median(positions):.1f} mas,"
          f" mean offset E {offsets[:, 0].mean():+.1f}, N {offsets[:, 1].mean():+.1f} mas")
    offsets_reference = reference_errors(args.workdir / config["inputs"]["refcat"], sky)
    print(f"            reference catalogue vs truth ({len(offsets_reference)} stars): RMS "
          f"{np.sqrt(np.mean(offsets_reference**2)):.1f} mas, median {np.median(offsets_reference):.1f} mas")
    print(f"            (ALPHA/DELTA_J2000, isophotal barycentres: RMS "
          f"{np.sqrt(np.mean(barycentres**2)):.1f} mas, median {np.median(barycentres):.1f} mas)")
    print(f"photometry  RMS recovered - injected ZP:        {zp_rms:7.1f} mmag"
          f"  (target <= 5; ratio {zp_rms / 5:.2f}) over {len(fields)} exposures anchored by a photometric one")
    for expnum, row in unlinked.iterrows():
        print(f"            no photometric anchor (ZP left at Elixir's): {expnum}p, "
              f"injected loss {1000 * exposures.loc[expnum, 'zp_offset']:.0f} mmag, in {row['stack']}")
    photometry, noise = photometry[linked], noise[linked]
    phot = _robust_rms(photometry)
    print(f"photometry  stack MAG_APER(4\") - truth, aperture-corrected: robust RMS {phot:6.1f} mmag,"
          f" median {np.median(photometry):+6.1f} mmag; photon noise alone: median MAGERR_APER "
          f"{np.median(noise):.1f} mmag, robust RMS of (MAG_APER - truth) / MAGERR_APER "
          f"{_robust_rms(photometry / noise):.2f}")
    print(f"            (stacks without a photometric anchor left out: {', '.join(sorted(unlinked_stacks)) or 'none'})")
    bright = noise < 3.0
    systematic = _robust_rms(photometry[bright])
    print(f"            stars with MAGERR_APER < 3 mmag ({bright.sum()}): robust RMS {systematic:6.1f} mmag"
          f" (target <= 5; ratio {systematic / 5:.2f}), median {np.median(photometry[bright]):+6.1f} mmag")
    print(f"            (uncorrected: robust RMS {_robust_rms(raw):6.1f} mmag, median {np.median(raw):+6.1f} mmag)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
