"""Write the demo survey: exposures, Elixir calibrations, metadata, grades, refcat, truth.

:func:`simulate_survey` is the entry point; everything is seeded by
``demo.seed`` and written byte-identically from run to run. Raw files are made
read-only (0444): they are inputs to the pipeline. The human-edited
``grades.csv`` is left writable.
"""

from __future__ import annotations

import copy
import csv
import functools
import hashlib
import io
import json
import math
import os
import stat
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, NamedTuple

import numpy as np
from astropy.io import fits

from spica.demo import simulate as sim
from spica.demo.survey import PlannedExposure, human_grades, plan_survey, rng_for
from spica.paths import exposure_filename
from spica.provenance import file_sha256
from spica.tools import code_hash

__all__ = [
    "GENERATOR_VERSION",
    "DEFAULTS",
    "Manifest",
    "demo_settings",
    "mosaic_from_config",
    "output_paths",
    "config_hash",
    "make_sky",
    "ccd_properties",
    "make_flat",
    "bad_columns",
    "RenderedCCD",
    "flat_ccd",
    "render_ccds",
    "render_exposure",
    "exposure_primary_hdu",
    "exposure_ccd_hdu",
    "MefWriter",
    "write_exposure",
    "exposure_hdulist",
    "refcat_hdulist",
    "refcat_sigma",
    "simulate_survey",
]

#: Bumped whenever the simulation changes its output for a given config.
GENERATOR_VERSION = "1"

#: Fallbacks for library callers passing a partial ``demo:`` section. The workflow's
#: values are config/config.yaml's (spica-demo requires every key, see
#: config/schemas/demo.schema.yaml); tests/demo checks this is a valid section.
DEFAULTS: dict[str, Any] = {
    "seed": 20040624,
    "odometer_start": 751000,
    "truth_dir": "demo/raw/truth",
    "processes": 2,
    "mosaic": {"nx": 4, "ny": 2, "ccd_nx": 400, "ccd_ny": 800, "gap_x": 20, "gap_y": 40},
    "dither_arcsec": 25.0,
    "psf_beta": 3.0,
    "seeing_variation": 0.06,
    "distortion_edge_pix": 6.0,
    "wcs_offset_arcsec": 1.0,
    "wcs_ccd_jitter_arcsec": 0.7,
    "wcs_rotation_deg": 0.01,
    "wrong_wcs_offset_arcsec": 45.0,
    "guiding_jump_arcsec": 2.0,
    "stars": {"per_ccd": 110.0, "mag_min": 16.0, "mag_max": 24.0, "slope": 0.15, "bright_per_field": 4.0},
    "galaxies": {"per_ccd": 90.0, "mag_min": 18.0, "mag_max": 25.0, "slope": 0.3},
    "cosmic_rays_per_ccd": 30,
    "bad_columns_per_ccd": 2,
    "low_flat_pixels_per_ccd": 20,
    "vignetting": 0.12,
    "truncate_fraction": 0.6,
    "plan": "default",
    "refcat": {"mag_max": 21.0, "mag_min": 12.0, "sigma_arcsec": 0.25, "sigma_knee_mag": 99.0, "epoch": 1985.0},
}


def _merge(defaults: dict, given: dict | None) -> dict:
    out = copy.deepcopy(defaults)
    for k, v in (given or {}).items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def demo_settings(config: dict) -> dict:
    """The ``demo:`` section with defaults filled in."""
    return _merge(DEFAULTS, config.get("demo"))


def mosaic_from_config(config: dict) -> sim.Mosaic:
    """The demo mosaic geometry (``demo.mosaic``, ``survey.pixel_scale``)."""
    m = demo_settings(config)["mosaic"]
    return sim.Mosaic(
        nx=int(m["nx"]),
        ny=int(m["ny"]),
        ccd_nx=int(m["ccd_nx"]),
        ccd_ny=int(m["ccd_ny"]),
        gap_x=int(m["gap_x"]),
        gap_y=int(m["gap_y"]),
        pixel_scale=float(config["survey"]["pixel_scale"]),
    )


def output_paths(config: dict, outdir: Path | None = None) -> dict[str, Path]:
    """Where every demo input lands: the ``inputs:`` paths plus ``truth``."""
    base = Path(outdir) if outdir is not None else Path.cwd()
    inp = config["inputs"]
    paths = {k: base / inp[k] for k in ("exposures", "calibrations", "metadata", "grades", "refcat")}
    paths["truth"] = base / demo_settings(config)["truth_dir"]
    return paths


def config_hash(config: dict, small: bool) -> str:
    """Hash of everything that determines the demo's bytes."""
    payload = {
        "version": GENERATOR_VERSION,
        "code": code_hash("spica.demo"),  # a simulator fix regenerates the demo
        "small": bool(small),
        "survey": config["survey"],
        "inputs": config["inputs"],
        "demo": demo_settings(config),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Manifest:
    """Every file the demo wrote and each exposure's intended fate."""

    config_hash: str
    small: bool
    root: str
    files: list[dict[str, Any]] = field(default_factory=list)
    exposures: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> str:
        """Serialise (stable key order)."""
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Parse :meth:`to_json` output."""
        return cls(**json.loads(text))

    def fate(self, expnum: int) -> str:
        """Intended fate of an exposure."""
        for e in self.exposures:
            if int(e["expnum"]) == int(expnum):
                return str(e["fate"])
        raise KeyError(expnum)


# --------------------------------------------------------------------------
# The sky
# --------------------------------------------------------------------------

_BANDS = ("u", "g", "r", "i", "z")


#: Range of SDSS g-i the simulator's stars take along the reference stellar locus.
STAR_G_I = (0.4, 2.8)
#: Scatter (mag) of each star's colours about the locus.
STAR_LOCUS_SCATTER = 0.02


@functools.lru_cache(maxsize=1)
def _star_locus() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The reference stellar locus (spica.qualityfits_out.colours; Covey et al. 2007 in
    MegaCam colours): its SDSS g-i nodes and each band's magnitude minus r."""
    from spica.qualityfits_out.colours import reference_locus

    locus = reference_locus()
    return locus["g_i_sdss"].to_numpy(float), {b: (locus[b] - locus["r"]).to_numpy(float) for b in _BANDS}


def _colours(rng: np.random.Generator, mag_r: np.ndarray, star: bool,
             scatter_rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """Magnitudes in u, g, r, i, z of sources of r magnitude ``mag_r``.

    Stars lie on the reference stellar locus (the one QualityFITS-out's
    colour-colour diagrams compare with), at a g-i drawn uniformly in
    :data:`STAR_G_I`, each colour scattered by :data:`STAR_LOCUS_SCATTER` drawn
    from ``scatter_rng`` (so ``rng`` gives exactly one draw per source, as
    for galaxies). Galaxies follow simple linear colour relations.
    """
    n = len(mag_r)
    if star:
        nodes, offsets = _star_locus()
        g_i = rng.uniform(*STAR_G_I, n)
        scatter = (scatter_rng or np.random.default_rng(0)).normal(0.0, STAR_LOCUS_SCATTER, (len(_BANDS), n))
        return {b: mag_r + np.interp(g_i, nodes, offsets[b]) + (0.0 if b == "r" else scatter[k])
                for k, b in enumerate(_BANDS)}
    gr = rng.uniform(0.2, 1.2, n)
    ug, ri, iz = 0.4 + 0.5 * gr, 0.1 + 0.35 * gr, 0.05 + 0.2 * gr
    g = mag_r + gr
    i = mag_r - ri
    return {"u": g + ug, "g": g, "r": mag_r, "i": i, "z": i - iz}


def make_sky(config: dict, plans: list[PlannedExposure]) -> dict[str, np.ndarray]:
    """The truth catalogue: stars (incl. bright saturating ones) and galaxies.

    Sources are drawn uniformly over a box covering every pointing and kept
    when they fall within reach of at least one exposure.

    Returns
    -------
    dict of numpy.ndarray
        ``id, ra, dec, type ('star'/'galaxy'), mag_u..mag_z, scale_arcsec,
        axis_ratio, pa_deg, sersic_n``.
    """
    demo = demo_settings(config)
    mosaic = mosaic_from_config(config)
    rng = rng_for(int(demo["seed"]), "sky")
    s = mosaic.pixel_scale
    ras = np.array([p.ra for p in plans])
    decs = np.array([p.dec for p in plans])
    reach = (mosaic.corner_radius * s / 3600.0) * 1.15 + 0.01
    dec_lo, dec_hi = decs.min() - reach, decs.max() + reach
    cosd = math.cos(math.radians(np.mean(decs)))
    ra_lo, ra_hi = ras.min() - reach / cosd, ras.max() + reach / cosd
    # solid angle of the box in deg^2
    area = (ra_hi - ra_lo) * (math.sin(math.radians(dec_hi)) - math.sin(math.radians(dec_lo))) * 180.0 / math.pi
    ccd_area = mosaic.ccd_nx * mosaic.ccd_ny * (s / 3600.0) ** 2
    field_area = mosaic.width * mosaic.height * (s / 3600.0) ** 2

    def positions(n: int) -> tuple[np.ndarray, np.ndarray]:
        ra = rng.uniform(ra_lo, ra_hi, n)
        sd = rng.uniform(math.sin(math.radians(dec_lo)), math.sin(math.radians(dec_hi)), n)
        return ra, np.degrees(np.arcsin(sd))

    st, ga = demo["stars"], demo["galaxies"]
    n_star = rng.poisson(st["per_ccd"] * area / ccd_area)
    n_bright = rng.poisson(st["bright_per_field"] * area / field_area)
    n_gal = rng.poisson(ga["per_ccd"] * area / ccd_area)
    ra_s, dec_s = positions(n_star + n_bright)
    mr_s = np.concatenate(
        [
            sim.powerlaw_magnitudes(rng, n_star, st["mag_min"], st["mag_max"], st["slope"]),
            rng.uniform(12.0, 15.5, n_bright),
        ]
    )
    ra_g, dec_g = positions(n_gal)
    mr_g = sim.powerlaw_magnitudes(rng, n_gal, ga["mag_min"], ga["mag_max"], ga["slope"])
    cs = _colours(rng, mr_s, True, scatter_rng=rng_for(int(demo["seed"]), "star-colours"))
    cg = _colours(rng, mr_g, False)
    ng = n_gal
    sersic = np.where(rng.random(ng) < 0.75, 1.0, 2.0)
    scale = 0.35 * 10 ** (-0.15 * (mr_g - 22.0)) * np.exp(rng.normal(0, 0.3, ng))
    scale = np.clip(np.where(sersic > 1, scale / 3.0, scale), 0.12, 2.5)
    n_all = len(ra_s) + ng
    sky = {
        "ra": np.concatenate([ra_s, ra_g]),
        "dec": np.concatenate([dec_s, dec_g]),
        "type": np.array(["star"] * len(ra_s) + ["galaxy"] * ng),
        **{f"mag_{b}": np.concatenate([cs[b], cg[b]]) for b in _BANDS},
        "scale_arcsec": np.concatenate([np.zeros(len(ra_s)), scale]),
        "axis_ratio": np.concatenate([np.ones(len(ra_s)), rng.uniform(0.3, 1.0, ng)]),
        "pa_deg": np.concatenate([np.zeros(len(ra_s)), rng.uniform(0.0, 180.0, ng)]),
        "sersic_n": np.concatenate([np.zeros(len(ra_s)), sersic]),
    }
    # keep what some exposure can see
    keep = np.zeros(n_all, bool)
    for p in plans:
        xi, eta = sim.tan_project(sky["ra"], sky["dec"], p.ra, p.dec)
        keep |= np.hypot(xi, eta) < reach
    sky = {k: v[keep] for k, v in sky.items()}
    order = np.lexsort((sky["dec"], sky["ra"]))
    sky = {k: v[order] for k, v in sky.items()}
    sky["id"] = np.arange(1, len(sky["ra"]) + 1)
    return sky


# --------------------------------------------------------------------------
# Detector and calibration
# --------------------------------------------------------------------------


def ccd_properties(seed: int, nccd: int) -> list[dict[str, float]]:
    """Fixed per-CCD detector properties: gains, read noise, saturation."""
    rng = rng_for(seed, "ccd")
    out = []
    for _ in range(nccd):
        ga, gb = rng.uniform(1.5, 1.75, 2)
        rna, rnb = rng.integers(3, 7, 2)
        sat = int(rng.integers(64000, 65400))
        out.append(
            {
                "GAINA": round(float(ga), 4),
                "GAINB": round(float(gb), 4),
                "GAIN": round(float(ga + gb) / 2.0, 4),
                "RDNOISEA": int(rna),
                "RDNOISEB": int(rnb),
                "RDNOISE": int(round((rna + rnb) / 2.0)),
                "SATURATE": sat,
                "MAXLIN": sat - 100,
            }
        )
    return out


def bad_columns(seed: int, mosaic: sim.Mosaic, semester: str, n_per_ccd: int) -> list[list[int]]:
    """Bad columns (1-based) of each CCD in a semester: a fixed set plus one per later semester."""
    rng = rng_for(seed, "badcols")
    cols = [sorted(int(c) for c in rng.integers(5, mosaic.ccd_nx - 5, n_per_ccd)) for _ in range(mosaic.nccd)]
    if semester >= "2004A":
        r2 = rng_for(seed, "badcols", semester)
        k = int(r2.integers(0, mosaic.nccd))
        cols[k] = sorted(set(cols[k]) | {int(r2.integers(5, mosaic.ccd_nx - 5))})
    return cols


def flat_ccd(
    seed: int, mosaic: sim.Mosaic, crunid: str, band: str, k: int, vignetting: float, n_low: int
) -> tuple[np.ndarray, np.ndarray]:
    """CCD ``k`` of the Elixir flat of a camera run and band: float32 array and low pixels.

    Each CCD has its own seeded stream, so one CCD is made without the others.
    Small mosaics (under 4 Mpixel in all) are cached: the demo reuses its flats.
    """
    if mosaic.nccd * mosaic.ccd_nx * mosaic.ccd_ny <= 4_000_000:
        return _flat_ccd_cached(seed, mosaic, crunid, band, k, vignetting, n_low)
    return sim.flat_field(rng_for(seed, "flat", crunid, band, k), mosaic, k, vignetting, n_low)


@functools.lru_cache(maxsize=256)
def _flat_ccd_cached(
    seed: int, mosaic: sim.Mosaic, crunid: str, band: str, k: int, vignetting: float, n_low: int
) -> tuple[np.ndarray, np.ndarray]:
    return sim.flat_field(rng_for(seed, "flat", crunid, band, k), mosaic, k, vignetting, n_low)


def make_flat(
    seed: int, mosaic: sim.Mosaic, crunid: str, band: str, vignetting: float, n_low: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The whole Elixir flat of a camera run and band: per-CCD float32 arrays and low pixels.

    Holds every CCD: the writer uses :func:`flat_ccd` CCD by CCD.
    """
    pairs = [flat_ccd(seed, mosaic, crunid, band, k, vignetting, n_low) for k in range(mosaic.nccd)]
    return [f for f, _ in pairs], [low for _, low in pairs]


def _flat_name(crunid: str, band: str, nccd: int) -> str:
    return f"{crunid}.flat.{band}.{nccd}.01"


def _mask_name(semester: str, nccd: int) -> str:
    return f"{semester}.mask.0.{nccd}.01"


# --------------------------------------------------------------------------
# Headers
# --------------------------------------------------------------------------


def _sexa(value_deg: float, hours: bool) -> str:
    v = value_deg / 15.0 if hours else value_deg
    sign = "-" if v < 0 else ""
    v = abs(v)
    d = int(v)
    m = int((v - d) * 60)
    s = ((v - d) * 60 - m) * 60
    if hours:
        if round(s, 2) >= 60:
            s, m = 0.0, m + 1
        return f"{sign}{d}:{m:02d}:{s:05.2f}"
    if round(s, 1) >= 60:
        s, m = 0.0, m + 1
    return f"{sign}{d}:{m:02d}:{s:04.1f}"


def _card(key: str, value: Any, comment: str = "", fmt: str | None = None) -> fits.Card:
    if fmt is None:
        return fits.Card(key, value, comment)
    text = format(value, fmt)
    image = f"{key:<8s}= {text:>20s} / {comment}"
    return fits.Card.fromstring(image[:80].ljust(80))


def _primary_cards(p: PlannedExposure, mosaic: sim.Mosaic) -> list[fits.Card]:
    nccd = mosaic.nccd
    ff = _flat_name(p.crunid, p.band, nccd)
    mk = _mask_name(p.semester, nccd)
    fs = sim.FILTERS[p.filter]
    return [
        _card("OBJECT", p.obj),
        _card("OBSERVER", "QSO Team"),
        _card("PI_NAME", p.pi_name),
        _card("RUNID", p.runid),
        _card("FILENAME", f"{p.expnum}p.phu", "Current filename after processing"),
        _card("DATE", f"{p.date_obs}T{p.utc_obs.split('.')[0].zfill(8)}", "UTC Date of file creation"),
        _card("DETECTOR", "MegaCam"),
        _card("DETSIZE", f"[1:{mosaic.width},1:{mosaic.height}]", "Total data pixels in full mosaic"),
        _card("RASTER", "FULL"),
        _card("CCDSUM", "1 1", "Binning factors"),
        _card("PIXSIZE1", 13.5, "Pixel size for axis 1 (microns)"),
        _card("PIXSIZE2", 13.5, "Pixel size for axis 2 (microns)"),
        _card("PIXSCAL1", mosaic.pixel_scale, "Pixel scale for axis 1 (arcsec/pixel)", ".4f"),
        _card("PIXSCAL2", mosaic.pixel_scale, "Pixel scale for axis 2 (arcsec/pixel)", ".4f"),
        _card("TIMESYS", "UTC", "Time System for DATExxxx"),
        _card("OBSTYPE", p.obstype, "Observation/ Exposure type"),
        _card("EXPTYPE", p.obstype, "OBSTYPE is the new name for this"),
        _card("EXPNUM", p.expnum, "CFHT odometer number"),
        _card("OBSID", p.expnum, "CFHT odometer number"),
        _card("EXPTIME", p.exptime, "Guessed integration time (seconds)", ".3f"),
        _card("EXPREQ", round(p.exptime), "Requested integration time (seconds)", ".1f"),
        _card("DARKTIME", round(p.exptime), "Dark current time (seconds)", ".2f"),
        _card("ORIGIN", "CFHT", "Canada-France-Hawaii Telescope"),
        _card("NCCDS", nccd, "Number of devices"),
        _card("NAMPS", 2 * nccd, "Number of amplifiers"),
        _card("INSTRUME", "MegaPrime"),
        _card("FILTER", p.filter, "Name of filter in position"),
        _card("QRUNID", p.qrunid, "Q RunID"),
        _card("REL_DATE", p.rel_date, "UTC Release Date"),
        _card("TELESCOP", "CFHT 3.6m", "Hawaii Big Island, Mauna Kea"),
        _card("LATITUDE", 19.825252, "Latitude (degrees N)", ".6f"),
        _card("LONGITUD", -155.468876, "Longitude (degrees E)", ".6f"),
        _card("DATE-OBS", p.date_obs, "Date at start of observation (UTC)"),
        _card("UTIME", p.utc_obs, "Time at start of observation (UT)"),
        _card("UTC-OBS", p.utc_obs, "Time at start of observation (UTC)"),
        _card("MJDATE", p.mjd, "Modified Julian Date at start of observation", ".7f"),
        _card("MJD-OBS", p.mjd, "Modified Julian Date at start of obs.", ".7f"),
        _card("EQUINOX", 2000.0, "Equinox of coordinates", ".1f"),
        _card("RADECSYS", "FK5", "Coordinate system for equinox (FK4/FK5/GAPPT)"),
        _card("RA", _sexa(p.ra, True), "Object right ascension"),
        _card("DEC", _sexa(p.dec, False), "Object declination"),
        _card("RA_DEG", p.ra, "Object right ascension in degrees", ".6f"),
        _card("DEC_DEG", p.dec, "Object declination in degrees", ".6f"),
        _card("OBJNAME", p.obj, "Target name"),
        _card("AIRMASS", p.airmass, "Airmass at start of observation", ".3f"),
        _card("CRUNID", p.crunid, "Elixir camera run ID"),
        _card("IMRED_MK", mk, "Mask of bad pixels (0/1) input file"),
        _card("IMRED_FF", ff, "Flat-field frame input file"),
        _card("PHOT_C", fs.phot_c, "Elixir zero point - measured for camera run", ".4f"),
        _card("PHOT_K", fs.phot_k, "Elixir zero point - airmass term", ".4f"),
        _card("COMMENT", "  Formula for Photometry, based on keywords given in this header:"),
        _card("COMMENT", "  m = -2.5*log(DN) + 2.5*log(EXPTIME)"),
        _card("COMMENT", "  M = m + PHOT_C + PHOT_K*(AIRMASS - 1)"),
        _card("COMMENT", "  SPICA demo survey: simulated Elixir-like data."),
    ]


# --------------------------------------------------------------------------
# Rendering one exposure
# --------------------------------------------------------------------------


class RenderedCCD(NamedTuple):
    """One simulated CCD of an exposure (see :func:`render_ccds`)."""

    k: int
    image: np.ndarray
    wcs: dict[str, float]
    truth: dict[str, Any] | None
    defects: list[dict[str, Any]]


def _odd(n: float, lo: int, hi: int) -> int:
    v = int(np.clip(math.ceil(n), lo, hi))
    return v if v % 2 else v + 1


def _render_sources(
    image: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    flux: np.ndarray,
    fwhm: np.ndarray,
    beta: float,
    is_gal: np.ndarray,
    scale_pix: np.ndarray,
    q: np.ndarray,
    pa: np.ndarray,
    sersic: np.ndarray,
    psf: np.ndarray,
) -> None:
    """Add stars and galaxies at 1-based positions (x, y) to ``image``."""
    ix = np.rint(x).astype(int)
    iy = np.rint(y).astype(int)
    dx, dy = x - ix, y - iy
    ix0, iy0 = ix - 1, iy - 1
    star = ~is_gal
    fmax = float(fwhm.max()) if len(fwhm) else 4.0
    bright = star & (flux > 2.0e5)
    normal = star & ~bright
    idx_all, val_all = [], []
    groups = ((normal, _odd(6 * fmax, 19, 41), 2), (bright, _odd(20 * fmax, 61, 121), 1))
    for sel, size, sub in groups:
        idx = np.flatnonzero(sel)
        for chunk in np.array_split(idx, max(1, len(idx) // 200 + 1)):
            if len(chunk):
                st = sim.moffat_stamps(dx[chunk], dy[chunk], fwhm[chunk], beta, size, sub)
                i, v = sim.stamp_pixels(image.shape, ix0[chunk], iy0[chunk], st, flux[chunk])
                idx_all.append(i)
                val_all.append(v)
    gidx = np.flatnonzero(is_gal)
    if len(gidx):
        sizes = np.array([_odd(2 * (6 * scale_pix[i] + 1.5 * fmax), 21, 63) for i in gidx])
        sizes = np.where(sizes <= 31, 31, np.where(sizes <= 45, 45, 63))
        for size in np.unique(sizes):
            chunk = gidx[sizes == size]
            st = sim.galaxy_stamps(
                dx[chunk], dy[chunk], scale_pix[chunk], q[chunk], pa[chunk], sersic[chunk], psf, int(size)
            )
            i, v = sim.stamp_pixels(image.shape, ix0[chunk], iy0[chunk], st, flux[chunk])
            idx_all.append(i)
            val_all.append(v)
    if idx_all:
        image += np.bincount(
            np.concatenate(idx_all), weights=np.concatenate(val_all), minlength=image.size
        ).reshape(image.shape)


def render_ccds(p: PlannedExposure, sky: dict[str, np.ndarray], config: dict) -> Iterator[RenderedCCD]:
    """Simulate the detrended CCD images of one exposure, one CCD at a time.

    A generator: each CCD is rendered when the caller asks for the next one,
    so a caller that writes and drops each CCD holds one CCD's arrays at a
    time (a full MegaCam exposure is 36 CCDs of 2048 x 4612 pixels, 2.7 GB
    in float64). The random stream is consumed in CCD order, as before, so
    the output does not depend on how the CCDs are consumed.

    Yields
    ------
    RenderedCCD
        CCD index, detrended float64 DN (saturated pixels at 65535, bad
        columns 0), header WCS keywords, per-CCD truth (header WCS error,
        FWHM at the CCD centre) and defect positions (1-based pixels).
    """
    demo = demo_settings(config)
    seed = int(demo["seed"])
    mosaic = mosaic_from_config(config)
    rng = rng_for(seed, "exposure", p.expnum)
    fs = sim.FILTERS[p.filter]
    s = mosaic.pixel_scale
    r_edge = mosaic.corner_radius
    kdist = float(demo["distortion_edge_pix"]) / r_edge**3
    beta = float(demo["psf_beta"])
    props = ccd_properties(seed, mosaic.nccd)
    badcols = bad_columns(seed, mosaic, p.semester, int(demo["bad_columns_per_ccd"]))

    # header WCS errors
    ang = rng.uniform(0, 2 * math.pi)
    off = float(demo["wcs_offset_arcsec"]) * rng.uniform(0.7, 1.3)
    g_e, g_n = off * math.cos(ang), off * math.sin(ang)
    rot = float(demo["wcs_rotation_deg"]) * rng.uniform(-1, 1)
    jit = rng.normal(0.0, float(demo["wcs_ccd_jitter_arcsec"]) / math.sqrt(2), (mosaic.nccd, 2))

    # sources in the focal plane (true mapping)
    u, v = sim.sky_to_focal(sky["ra"], sky["dec"], p.ra, p.dec, s, kdist)
    margin = 60.0
    near = (np.abs(u) < mosaic.width / 2 + margin) & (np.abs(v) < mosaic.height / 2 + margin)
    u, v = u[near], v[near]
    mag = sky[f"mag_{p.band}"][near]
    is_gal = sky["type"][near] == "galaxy"
    flux = sim.mag_to_dn(mag, p.exptime, fs.phot_c, fs.phot_k, p.airmass, p.zp_offset)
    scale_pix = sky["scale_arcsec"][near] / s
    q, pa, sersic = sky["axis_ratio"][near], sky["pa_deg"][near], sky["sersic_n"][near]
    fwhm0 = p.seeing_arcsec / s
    var = float(demo["seeing_variation"])
    fwhm = sim.seeing_at(fwhm0, u, v, var, r_edge)
    if p.guiding_jump_arcsec > 0:
        ja = rng.uniform(0, 2 * math.pi)
        jd = p.guiding_jump_arcsec / s
        ju, jv = jd * math.cos(ja), jd * math.sin(ja)
        u = np.concatenate([u, u + ju])
        v = np.concatenate([v, v + jv])
        flux = np.concatenate([flux / 1.5, flux * 0.5 / 1.5])
        fwhm, is_gal = np.concatenate([fwhm, fwhm]), np.concatenate([is_gal, is_gal])
        scale_pix, q = np.concatenate([scale_pix, scale_pix]), np.concatenate([q, q])
        pa, sersic = np.concatenate([pa, pa]), np.concatenate([sersic, sersic])

    # satellite trail across the focal plane
    trail = None
    if p.satellite_trail:
        t_ang = rng.uniform(0.15, 0.6) * math.pi
        c0 = rng.uniform(-0.2, 0.2, 2) * [mosaic.width, mosaic.height]
        L = 2 * r_edge
        trail = (c0[0] - L * math.cos(t_ang), c0[1] - L * math.sin(t_ang), c0[0] + L * math.cos(t_ang), c0[1] + L * math.sin(t_ang))

    sky_mag_pix = fs.sky_mag - 2.5 * math.log10(s * s)
    sky_dn = sim.mag_to_dn(sky_mag_pix, p.exptime, fs.phot_c, 0.0, 1.0, 0.0) * rng.uniform(1.0, 1.4)

    for k in range(mosaic.nccd):
        defects: list[dict[str, Any]] = []
        pr = props[k]
        shape = (mosaic.ccd_ny, mosaic.ccd_nx)
        x, y = mosaic.focal_to_ccd(k, u, v)
        sel = (x > -margin) & (x < mosaic.ccd_nx + margin) & (y > -margin) & (y < mosaic.ccd_ny + margin)
        uc, vc = mosaic.ccd_to_focal(k, (mosaic.ccd_nx + 1) / 2, (mosaic.ccd_ny + 1) / 2)
        fwhm_c = float(sim.seeing_at(fwhm0, uc, vc, var, r_edge))
        psf = sim.moffat_stamps(np.zeros(1), np.zeros(1), np.array([fwhm_c]), beta, _odd(6 * fwhm_c, 15, 41))[0]
        expected = np.full(shape, sky_dn)
        _render_sources(
            expected, x[sel], y[sel], flux[sel], fwhm[sel], beta, is_gal[sel],
            scale_pix[sel], q[sel], pa[sel], sersic[sel], psf,
        )
        if trail is not None:
            x1, y1 = mosaic.focal_to_ccd(k, np.array(trail[0]), np.array(trail[1]))
            x2, y2 = mosaic.focal_to_ccd(k, np.array(trail[2]), np.array(trail[3]))
            seg = sim.clip_segment_to_box(float(x1), float(y1), float(x2), float(y2), 0.5, mosaic.ccd_nx + 0.5, 0.5, mosaic.ccd_ny + 0.5)
            if seg is not None:
                expected += sim.trail_image(shape, float(x1), float(y1), float(x2), float(y2), 1500.0 * p.exptime / 300.0, 1.8)
                defects.append({"expnum": p.expnum, "extname": f"ccd{k:02d}", "kind": "satellite_trail", "id": 0,
                                "x": round(seg[0], 2), "y": round(seg[1], 2), "x2": round(seg[2], 2), "y2": round(seg[3], 2),
                                "value": 1.8 * 2.3548})
        flat32, low = flat_ccd(
            seed, mosaic, p.crunid, p.band, k, float(demo["vignetting"]), int(demo["low_flat_pixels_per_ccd"])
        )
        flat = flat32.astype(float)
        del flat32
        raw = sim.add_noise(rng, expected * flat, pr["GAIN"], pr["RDNOISE"])
        cx, cy, cv, ch = sim.cosmic_rays(rng, shape, int(rng.poisson(demo["cosmic_rays_per_ccd"])))
        np.add.at(raw, (cy, cx), cv)
        satmask = sim.saturate_and_bleed(raw, float(pr["SATURATE"]))
        img = raw / flat
        img[satmask] = 65535.0
        for c in badcols[k]:
            img[:, c - 1] = 0.0
        del raw, expected, flat
        wcs_e = g_e + jit[k, 0]
        wcs_n = g_n + jit[k, 1]
        if k == p.wrong_wcs_ccd:
            wa = rng.uniform(0, 2 * math.pi)
            wcs_e += float(demo["wrong_wcs_offset_arcsec"]) * math.cos(wa)
            wcs_n += float(demo["wrong_wcs_offset_arcsec"]) * math.sin(wa)
        wcs_k = sim.header_wcs(mosaic, k, p.ra, p.dec, wcs_e, wcs_n, rot)
        truth_k = {
            "expnum": p.expnum, "extname": f"ccd{k:02d}",
            "wcs_offset_east_arcsec": round(wcs_e, 4), "wcs_offset_north_arcsec": round(wcs_n, 4),
            "wcs_rotation_deg": round(rot, 6), "wrong_wcs": k == p.wrong_wcs_ccd,
            "fwhm_px": round(fwhm_c, 4), "fwhm_arcsec": round(fwhm_c * s, 4),
            "sky_dn": round(sky_dn, 3), "n_sources": int(sel.sum()),
        }
        ext = f"ccd{k:02d}"
        for i, (xmin, xmax, ymin, ymax) in enumerate(sim.label_regions(satmask)):
            defects.append({"expnum": p.expnum, "extname": ext, "kind": "saturated", "id": i,
                            "x": (xmin + xmax) / 2, "y": (ymin + ymax) / 2,
                            "xmin": xmin, "xmax": xmax, "ymin": ymin, "ymax": ymax})
        for xx, yy, vv, hh in zip(cx, cy, cv, ch):
            defects.append({"expnum": p.expnum, "extname": ext, "kind": "cosmic_ray", "id": int(hh),
                            "x": int(xx) + 1, "y": int(yy) + 1, "value": round(float(vv), 1)})
        for c in badcols[k]:
            defects.append({"expnum": p.expnum, "extname": ext, "kind": "bad_column", "id": int(c),
                            "x": int(c), "y": 0, "xmin": int(c), "xmax": int(c), "ymin": 1, "ymax": mosaic.ccd_ny})
        for i, (lx, ly) in enumerate(low):
            defects.append({"expnum": p.expnum, "extname": ext, "kind": "low_flat", "id": i,
                            "x": int(lx), "y": int(ly)})
        yield RenderedCCD(k, img, wcs_k, truth_k, defects)
        del img


def render_exposure(
    p: PlannedExposure,
    sky: dict[str, np.ndarray],
    config: dict,
) -> tuple[list[np.ndarray], list[dict[str, float]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Simulate every CCD of one exposure and return them all (small mosaics only).

    Holds every CCD in float64: for a full-size mosaic use :func:`render_ccds`.

    Returns
    -------
    images : list of numpy.ndarray
        Detrended float64 DN per CCD (saturated pixels at 65535, bad columns 0).
    wcs : list of dict
        Header WCS keywords per CCD.
    ccd_truth : list of dict
        Per-CCD truth (header WCS error, FWHM at the CCD centre).
    defects : list of dict
        Defect positions (1-based pixels).
    """
    images, wcs, truth, defects = [], [], [], []
    for c in render_ccds(p, sky, config):
        images.append(c.image)
        wcs.append(c.wcs)
        truth.append(c.truth)
        defects.extend(c.defects)
    return images, wcs, truth, defects


def _render_flat_exposure(p: PlannedExposure, config: dict) -> Iterator[RenderedCCD]:
    """A dome-flat-like OBJECT-less frame (OBSTYPE FLAT): bright uniform level with noise, CCD by CCD."""
    demo = demo_settings(config)
    mosaic = mosaic_from_config(config)
    rng = rng_for(int(demo["seed"]), "exposure", p.expnum)
    props = ccd_properties(int(demo["seed"]), mosaic.nccd)
    for k in range(mosaic.nccd):
        level = np.full((mosaic.ccd_ny, mosaic.ccd_nx), 25000.0)
        img = sim.add_noise(rng, level, props[k]["GAIN"], props[k]["RDNOISE"])
        del level
        yield RenderedCCD(k, img, sim.header_wcs(mosaic, k, p.ra, p.dec, 0.0, 0.0, 0.0), None, [])
        del img


def exposure_primary_hdu(p: PlannedExposure, config: dict) -> fits.PrimaryHDU:
    """The empty primary HDU of an exposure MEF (observing keywords, pointing)."""
    demo = demo_settings(config)
    mosaic = mosaic_from_config(config)
    props = ccd_properties(int(demo["seed"]), mosaic.nccd)
    pcards = _primary_cards(p, mosaic)
    primary = fits.PrimaryHDU()
    primary.header["NEXTEND"] = (mosaic.nccd, "Number of extensions")
    for c in pcards:
        primary.header.append(c)
    # the real primary also carries the pointing as CRVAL/CTYPE
    primary.header.insert("AIRMASS", _card("CRVAL1", p.ra, "WCS Ref value (RA in decimal degrees)", ".5f"))
    primary.header.insert("AIRMASS", _card("CRVAL2", p.dec, "WCS Ref value (DEC in decimal degrees)", ".5f"))
    primary.header.insert("AIRMASS", _card("CTYPE1", "RA---TAN", "WCS Coordinate type"))
    primary.header.insert("AIRMASS", _card("CTYPE2", "DEC--TAN", "WCS Coordinate type"))
    return primary


def exposure_ccd_hdu(
    p: PlannedExposure, k: int, img: np.ndarray, wcs: dict[str, float], config: dict, *, float32: bool = False
) -> fits.ImageHDU:
    """The ``ccdNN`` extension of CCD ``k``: int16 + BZERO 32768 (Elixir), or float32."""
    demo = demo_settings(config)
    mosaic = mosaic_from_config(config)
    props = ccd_properties(int(demo["seed"]), mosaic.nccd)
    pcards = _primary_cards(p, mosaic)
    nccd = mosaic.nccd
    ext = f"ccd{k:02d}"
    data = img.astype(np.float32) if float32 else sim.to_uint16(img)
    hdu = fits.ImageHDU(data=data)
    h = hdu.header
    h["EXTNAME"] = (ext, "Extension name")
    h["EXTVER"] = (k, "Now matches the CCD number in the mosaic")
    for c in pcards:
        if c.keyword in ("IMRED_FF", "IMRED_MK", "FILENAME"):
            continue
        h.append(c)
    h["FILENAME"] = (f"{p.expnum}p{k:02d}", "Current filename after processing")
    pr = props[k]
    extra = [
        _card("AMPNAME", f"{k:02d}a + {k:02d}b", "List of amplifiers names for this image"),
        _card("CCDSIZE", f"[1:{mosaic.ccd_nx},1:{mosaic.ccd_ny}]", "Detector imaging area size"),
        _card("DETSEC", mosaic.detsec(k), "Mosaic area of the entire readout"),
        _card("DATASEC", f"[1:{mosaic.ccd_nx},1:{mosaic.ccd_ny}]", "Imaging area of the entire CCD"),
        _card("MAXLIN", pr["MAXLIN"], "Level at 1% linearity departure (ADU)"),
        _card("SATURATE", pr["SATURATE"], "Pixel saturation level (ADU)"),
        _card("GAIN", pr["GAIN"], "Converting gain (e-/ADU)", ".4f"),
        _card("GAINA", pr["GAINA"], "Converting gain of A amplifier (e-/ADU)", ".4f"),
        _card("GAINB", pr["GAINB"], "Converting gain of B amplifier (e-/ADU)", ".4f"),
        _card("RDNOISE", pr["RDNOISE"], "Read noise (electrons) = Average [A,B] amps"),
        _card("RDNOISEA", pr["RDNOISEA"], "Read noise (electrons) A amplifier"),
        _card("RDNOISEB", pr["RDNOISEB"], "Read noise (electrons) B amplifier"),
        _card("CTYPE1", "RA---TAN", "WCS Coordinate type"),
        _card("CTYPE2", "DEC--TAN", "WCS Coordinate type"),
        _card("CRVAL1", wcs["CRVAL1"], "WCS Ref value (RA in decimal degrees)", ".10f"),
        _card("CRVAL2", wcs["CRVAL2"], "WCS Ref value (DEC in decimal degrees)", ".10f"),
        _card("CRPIX1", wcs["CRPIX1"], "WCS Coordinate reference pixel", ".10f"),
        _card("CRPIX2", wcs["CRPIX2"], "WCS Coordinate reference pixel", ".10f"),
        _card("CD1_1", wcs["CD1_1"], "WCS Coordinate scale matrix", ".5E"),
        _card("CD1_2", wcs["CD1_2"], "WCS Coordinate scale matrix", ".5E"),
        _card("CD2_1", wcs["CD2_1"], "WCS Coordinate scale matrix", ".5E"),
        _card("CD2_2", wcs["CD2_2"], "WCS Coordinate scale matrix", ".5E"),
        _card("IMRED_MK", f"{_mask_name(p.semester, nccd)}.fits[{ext}]", "Mask of bad pixels (0/1) input file"),
        _card("IMRED_FF", f"{_flat_name(p.crunid, p.band, nccd)}.fits[{ext}]", "Flat-field frame input file"),
        _card("IMRED_NF", True, "Normalized flat-field"),
    ]
    for c in extra:
        h.append(c)
    return hdu


def exposure_hdulist(
    p: PlannedExposure,
    images: list[np.ndarray],
    wcs: list[dict[str, float]],
    config: dict,
    *,
    float32: bool = False,
) -> fits.HDUList:
    """Assemble the MEF in memory: empty primary + one ``ccdNN`` extension per CCD (small mosaics)."""
    hdus: list[Any] = [exposure_primary_hdu(p, config)]
    for k, img in enumerate(images):
        hdus.append(exposure_ccd_hdu(p, k, img, wcs[k], config, float32=float32))
    return fits.HDUList(hdus)


# --------------------------------------------------------------------------
# Reference catalogue (FITS-LDAC)
# --------------------------------------------------------------------------


def refcat_sigma(mag: np.ndarray, sigma_arcsec: float, knee_mag: float = 99.0) -> np.ndarray:
    """Position error per axis (arcsec) of a reference star of magnitude ``mag``.

    ``sigma_arcsec`` down to ``knee_mag``, then growing as 1 / (S/N) in the
    background-limited regime, x 10^(0.4 (mag - knee)): flat for a USNO-like
    plate catalogue (knee 99), like Gaia's faint end for a Gaia-like one (the
    real Gaia DR1 patch in ``shared/data``: ~0.1 mas at G = 16, 0.5 mas at 19,
    1.4 mas at 20 at Gaia's own epoch; several mas once carried back a decade).
    """
    mag = np.asarray(mag, float)
    return sigma_arcsec * 10.0 ** (0.4 * np.clip(mag - knee_mag, 0.0, None))


def refcat_hdulist(
    ra: np.ndarray,
    dec: np.ndarray,
    mag: np.ndarray,
    rng: np.random.Generator,
    sigma_arcsec: float,
    epoch: float,
    knee_mag: float = 99.0,
) -> tuple[fits.HDUList, dict[str, np.ndarray]]:
    """A FITS-LDAC reference catalogue that SCAMP reads with ``ASTREF_CATALOG FILE``.

    True positions are perturbed by Gaussian errors per axis of
    :func:`refcat_sigma` (``sigma_arcsec``, ``knee_mag``), which the catalogue
    also declares in ``ERRA_WORLD``/``ERRB_WORLD``.
    """
    n = len(ra)
    cosd = np.cos(np.radians(dec))
    sigma = refcat_sigma(mag, sigma_arcsec, knee_mag)
    dra = rng.normal(0.0, 1.0, n) * sigma / 3600.0 / cosd
    ddec = rng.normal(0.0, 1.0, n) * sigma / 3600.0
    magerr = np.clip(0.15 + 0.05 * (mag - 17.0) / 4.0 + rng.normal(0, 0.01, n), 0.1, 0.3)
    mag_obs = mag + rng.normal(0.0, 1.0, n) * magerr
    cols = {
        "X_WORLD": ra + dra,
        "Y_WORLD": dec + ddec,
        "ERRA_WORLD": sigma / 3600.0,
        "ERRB_WORLD": sigma / 3600.0,
        "ERRTHETA_WORLD": np.zeros(n, np.float32),
        "MAG": mag_obs.astype(np.float32),
        "MAGERR": magerr.astype(np.float32),
        "OBSDATE": np.full(n, epoch),
        "FLAGS": np.zeros(n, np.int16),
    }
    objects = fits.BinTableHDU.from_columns(
        [
            fits.Column("X_WORLD", "1D", unit="deg", array=cols["X_WORLD"]),
            fits.Column("Y_WORLD", "1D", unit="deg", array=cols["Y_WORLD"]),
            fits.Column("ERRA_WORLD", "1E", unit="deg", array=cols["ERRA_WORLD"]),
            fits.Column("ERRB_WORLD", "1E", unit="deg", array=cols["ERRB_WORLD"]),
            fits.Column("ERRTHETA_WORLD", "1E", unit="deg", array=cols["ERRTHETA_WORLD"]),
            fits.Column("MAG", "1E", unit="mag", array=cols["MAG"]),
            fits.Column("MAGERR", "1E", unit="mag", array=cols["MAGERR"]),
            fits.Column("OBSDATE", "1D", unit="yr", array=cols["OBSDATE"]),
            fits.Column("FLAGS", "1I", array=cols["FLAGS"]),
        ],
        name="LDAC_OBJECTS",
    )
    ra_c, dec_c = float(np.mean(ra)), float(np.mean(dec))
    size = float(max(np.ptp(ra) * np.cos(np.radians(dec_c)), np.ptp(dec))) if n else 1.0
    npix = 1000
    scale = max(size, 1e-3) / npix
    h = fits.Header()
    h["SIMPLE"] = True
    h["BITPIX"] = -32
    h["NAXIS"] = 2
    h["NAXIS1"] = npix
    h["NAXIS2"] = npix
    h["EXTEND"] = True
    h["OBJECT"] = "SPICA demo astrometric reference"
    h["EQUINOX"] = 2000.0
    h["RADESYS"] = "ICRS"
    h["CTYPE1"] = "RA---TAN"
    h["CTYPE2"] = "DEC--TAN"
    h["CRVAL1"] = ra_c
    h["CRVAL2"] = dec_c
    h["CRPIX1"] = npix / 2 + 0.5
    h["CRPIX2"] = npix / 2 + 0.5
    h["CD1_1"] = -scale
    h["CD1_2"] = 0.0
    h["CD2_1"] = 0.0
    h["CD2_2"] = scale
    text = "".join(c.image for c in h.cards) + "END".ljust(80)
    ncard = len(text) // 80
    imhead = fits.BinTableHDU.from_columns(
        [fits.Column("Field Header Card", f"{len(text)}A", dim=f"(80, {ncard})", array=np.array([[text[i * 80 : (i + 1) * 80] for i in range(ncard)]]))],
        name="LDAC_IMHEAD",
    )
    return fits.HDUList([fits.PrimaryHDU(), imhead, objects]), cols


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------


def _remove(path: Path) -> None:
    if path.exists() or path.is_symlink():
        os.chmod(path, stat.S_IWUSR | stat.S_IRUSR)
        path.unlink()


def _write_hdul(hdul: fits.HDUList, path: Path) -> None:
    _remove(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    hdul.writeto(path, output_verify="silentfix")


def _write_csv(rows: list[dict[str, Any]], columns: list[str], path: Path) -> None:
    _remove(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({c: r.get(c, "") for c in columns})
    path.write_text(buf.getvalue())


def _fmt(v: Any) -> Any:
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.10g}"
    return v


_EXPOSURE_COLUMNS = [
    "expnum", "filename", "fate", "component", "object", "runid", "qrunid", "crunid", "filter", "band",
    "obstype", "date_obs", "utc_obs", "mjd_obs", "exptime", "airmass", "ra_deg", "dec_deg",
    "seeing_arcsec", "seeing_px", "zp_offset", "photometric", "skyprobe", "rel_date",
    "target_offset_arcmin", "guiding_jump_arcsec", "wrong_wcs_ccd", "broken", "defects", "plan_key",
]
_CCD_COLUMNS = [
    "expnum", "extname", "wcs_offset_east_arcsec", "wcs_offset_north_arcsec", "wcs_rotation_deg",
    "wrong_wcs", "fwhm_px", "fwhm_arcsec", "sky_dn", "n_sources",
]
_DEFECT_COLUMNS = ["expnum", "extname", "kind", "id", "x", "y", "x2", "y2", "xmin", "xmax", "ymin", "ymax", "value"]
_SOURCE_COLUMNS = [
    "id", "type", "ra", "dec", "mag_u", "mag_g", "mag_r", "mag_i", "mag_z",
    "scale_arcsec", "axis_ratio", "pa_deg", "sersic_n",
]


def _exposure_row(p: PlannedExposure, pixel_scale: float) -> dict[str, Any]:
    return {
        "expnum": p.expnum, "filename": exposure_filename(p.expnum), "fate": p.fate,
        "component": p.component, "object": p.obj, "runid": p.runid, "qrunid": p.qrunid,
        "crunid": p.crunid, "filter": p.filter, "band": p.band, "obstype": p.obstype,
        "date_obs": p.date_obs, "utc_obs": p.utc_obs, "mjd_obs": round(p.mjd, 7), "exptime": p.exptime,
        "airmass": p.airmass, "ra_deg": round(p.ra, 7), "dec_deg": round(p.dec, 7),
        "seeing_arcsec": p.seeing_arcsec, "seeing_px": round(p.seeing_arcsec / pixel_scale, 4),
        "zp_offset": p.zp_offset, "photometric": p.photometric, "skyprobe": p.skyprobe,
        "rel_date": p.rel_date, "target_offset_arcmin": p.target_offset_arcmin,
        "guiding_jump_arcsec": p.guiding_jump_arcsec, "wrong_wcs_ccd": p.wrong_wcs_ccd,
        "broken": p.broken, "defects": ";".join(p.defects), "plan_key": p.notes,
    }


class MefWriter:
    """Write a multi-extension FITS file one HDU at a time (the primary first).

    Each extension is appended and flushed, then dropped: memory holds one
    CCD, whatever the number of extensions. The bytes are those
    ``HDUList.writeto`` writes for the same HDUs.
    """

    def __init__(self, path: Path, primary: fits.PrimaryHDU) -> None:
        _remove(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fits.HDUList([primary]).writeto(path, output_verify="silentfix")
        self.path = path

    def append(self, hdu: fits.ImageHDU) -> None:
        """Append one extension to the file."""
        with fits.open(self.path, mode="append") as hdul:
            hdul.append(hdu)
            hdul.flush(output_verify="silentfix")


def _build_exposure(args: tuple[PlannedExposure, dict, dict[str, np.ndarray], str]) -> dict[str, Any]:
    """Worker: render and write one exposure CCD by CCD; returns its truth rows."""
    p, config, sky, exp_dir = args
    demo = demo_settings(config)
    mosaic = mosaic_from_config(config)
    path = Path(exp_dir) / exposure_filename(p.expnum)
    ccds = _render_flat_exposure(p, config) if p.obstype != "OBJECT" else render_ccds(p, sky, config)
    float32 = p.broken == "all_nan_ccd"
    k_nan = mosaic.nccd // 2
    primary = exposure_primary_hdu(p, config)
    if p.broken == "missing_filter":
        primary.header.remove("FILTER", ignore_missing=True)
    writer = MefWriter(path, primary)
    ccd_truth: list[dict[str, Any]] = []
    defects: list[dict[str, Any]] = []
    for c in ccds:
        if c.truth is not None:
            ccd_truth.append(c.truth)
        defects.extend(c.defects)
        if p.broken == "nextend_lie" and c.k == mosaic.nccd - 1:
            continue  # the last extension is missing, NEXTEND says it is there
        img = np.full_like(c.image, np.nan) if float32 and c.k == k_nan else c.image
        hdu = exposure_ccd_hdu(p, c.k, img, c.wcs, config, float32=float32)
        if p.broken == "missing_filter":
            hdu.header.remove("FILTER", ignore_missing=True)
        writer.append(hdu)
        del c, img, hdu
    if float32:
        defects.append({"expnum": p.expnum, "extname": f"ccd{k_nan:02d}", "kind": "all_nan", "id": 0})
    if p.broken == "truncated":
        size = path.stat().st_size
        cut = int(size * float(demo["truncate_fraction"])) - 1234
        with open(path, "r+b") as fh:
            fh.truncate(cut)
    os.chmod(path, 0o444)
    return {"ccd": ccd_truth, "defects": defects}


def write_exposure(p: PlannedExposure, config: dict, sky: dict[str, np.ndarray], directory: Path) -> dict[str, Any]:
    """Render and write one exposure (broken on purpose if the plan says so), read-only.

    Returns
    -------
    dict
        ``{"ccd": [...], "defects": [...]}`` truth rows of the exposure.
    """
    return _build_exposure((p, {**config, "demo": demo_settings(config)}, sky, str(directory)))


def _finish(path: Path, kind: str, root: Path, files: list[dict[str, Any]], mode: int = 0o444) -> None:
    os.chmod(path, mode)
    try:
        rel = str(path.relative_to(root))
    except ValueError:
        rel = str(path)
    files.append({"path": rel, "kind": kind, "bytes": path.stat().st_size, "sha256": file_sha256(path)})


def simulate_survey(
    config: dict, outdir: Path | None = None, *, small: bool = False, force: bool = False
) -> Manifest:
    """Generate the seeded demo survey under the ``inputs:`` paths of ``config``.

    Parameters
    ----------
    config
        The whole SPICA configuration (``inputs``, ``survey``, optional ``demo``).
    outdir
        Root the relative ``inputs:`` paths are resolved against (default: cwd).
    small
        Tiny survey (6 exposures) for the end-to-end test.
    force
        Regenerate even when a manifest with the same configuration hash exists.

    Returns
    -------
    Manifest
        Every file written (path relative to ``outdir``, size, sha256) and each
        exposure's intended fate; also written to ``<truth_dir>/manifest.json``.
    """
    root = Path(outdir) if outdir is not None else Path.cwd()
    paths = output_paths(config, root)
    demo = demo_settings(config)
    config = {**config, "demo": demo}
    chash = config_hash(config, small)
    manifest_path = paths["truth"] / "manifest.json"
    if manifest_path.exists() and not force:
        old = Manifest.from_json(manifest_path.read_text())
        if old.config_hash == chash and all(
            (root / f["path"]).exists() and (root / f["path"]).stat().st_size == f["bytes"] for f in old.files
        ):
            return old
    # clean our own previous output
    if manifest_path.exists():
        try:
            for f in Manifest.from_json(manifest_path.read_text()).files:
                fp = (root / f["path"]).resolve()
                if any(fp.is_relative_to(paths[k].resolve()) or fp == paths[k].resolve() for k in paths):
                    _remove(fp)
        except (ValueError, KeyError, TypeError):
            pass
        _remove(manifest_path)
    for d in (paths["exposures"], paths["calibrations"]):
        if d.is_dir():
            for f in d.iterdir():
                if f.is_file() and (f.name.endswith("p.fits") or ".flat." in f.name or ".mask." in f.name):
                    _remove(f)

    mosaic = mosaic_from_config(config)
    seed = int(demo["seed"])
    plans = plan_survey(config, small=small)
    sky = make_sky(config, plans)
    files: list[dict[str, Any]] = []
    for k in ("exposures", "calibrations", "truth"):
        paths[k].mkdir(parents=True, exist_ok=True)

    # exposures (in parallel; each one is seeded by its odometer)
    jobs = [(p, config, sky, str(paths["exposures"])) for p in plans]
    nproc = max(1, int(demo["processes"]))
    if nproc > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=nproc) as pool:
            results = list(pool.map(_build_exposure, jobs))
    else:
        results = [_build_exposure(j) for j in jobs]
    for p in plans:
        _finish(paths["exposures"] / exposure_filename(p.expnum), "exposure", root, files)

    # Elixir flats and masks named by IMRED_FF / IMRED_MK
    nccd = mosaic.nccd
    for crunid, band in sorted({(p.crunid, p.band) for p in plans}):
        ph = fits.PrimaryHDU()
        ph.header["NEXTEND"] = (nccd, "Number of extensions")
        ph.header["OBJECT"] = ("Flat-field", "Frame type")
        ph.header["OBSTYPE"] = ("FLAT", "Frame definition")
        ph.header["DETECTOR"] = "MegaCam"
        ph.header["INSTRUME"] = "MegaPrime"
        ph.header["CRUNID"] = (crunid, "Elixir camera run ID")
        ph.header["FILTER"] = (next(f for f in sim.FILTERS if sim.band_of(f) == band), "Name of filter in position")
        ph.header["FILENAME"] = (_flat_name(crunid, band, nccd), "Master frame filename")
        path = paths["calibrations"] / f"{_flat_name(crunid, band, nccd)}.fits"
        writer = MefWriter(path, ph)
        for k in range(nccd):
            f, _ = flat_ccd(seed, mosaic, crunid, band, k, float(demo["vignetting"]), int(demo["low_flat_pixels_per_ccd"]))
            e = fits.ImageHDU(data=f)
            e.header["EXTNAME"] = (f"ccd{k:02d}", "CCD number in the mosaic")
            e.header["EXTVER"] = (k, "Matches the CCD number in the mosaic")
            e.header["DETSEC"] = (mosaic.detsec(k), "Mosaic area of the entire readout")
            writer.append(e)
            del f, e
        _finish(path, "flat", root, files)
    for semester in sorted({p.semester for p in plans}):
        cols = bad_columns(seed, mosaic, semester, int(demo["bad_columns_per_ccd"]))
        ph = fits.PrimaryHDU()
        ph.header["NEXTEND"] = (nccd, "Number of extensions")
        ph.header["ORIGIN"] = ("CFHT", "Canada-France-Hawaii Telescope")
        ph.header["OBJECT"] = ("Bad Pixels Map", "Frame type")
        ph.header["OBSTYPE"] = ("MASK", "Frame definition")
        ph.header["DETECTOR"] = ("MegaCam", "Camera name")
        ph.header["INSTRUME"] = ("MegaPrime", "Instrument")
        ph.header["FILENAME"] = (_mask_name(semester, nccd), "Master frame filename")
        path = paths["calibrations"] / f"{_mask_name(semester, nccd)}.fits"
        writer = MefWriter(path, ph)
        for k in range(nccd):
            m = np.ones((mosaic.ccd_ny, mosaic.ccd_nx), np.int16)
            for c in cols[k]:
                m[:, c - 1] = 0
            e = fits.ImageHDU(data=m)
            e.header["EXTNAME"] = (f"ccd{k:02d}", "CCD number in the mosaic")
            e.header["EXTVER"] = (k, "Matches the CCD number in the mosaic")
            for i, c in enumerate(cols[k]):
                e.header[f"MASK_{i:03d}"] = (f"[{c}:{c},1:{mosaic.ccd_ny}]", "Bad pixels area definition")
            writer.append(e)
            del m, e
        _finish(path, "mask", root, files)

    # observing metadata and human grades
    meta = [{"expnum": p.expnum, "skyprobe": f"{p.skyprobe:.3f}", "photometric": _fmt(p.photometric)} for p in plans]
    _write_csv(meta, ["expnum", "skyprobe", "photometric"], paths["metadata"])
    _finish(paths["metadata"], "metadata", root, files)
    _write_csv(human_grades(plans), ["expnum", "grade", "comment", "graded_by", "date"], paths["grades"])
    _finish(paths["grades"], "grades", root, files, mode=0o644)

    # reference catalogue: true star positions + errors, bright stars only
    rc = demo["refcat"]
    is_star = sky["type"] == "star"
    sel = is_star & (sky["mag_r"] < rc["mag_max"]) & (sky["mag_r"] > rc["mag_min"])
    hdul, _ = refcat_hdulist(
        sky["ra"][sel], sky["dec"][sel], sky["mag_r"][sel], rng_for(seed, "refcat"), float(rc["sigma_arcsec"]), float(rc["epoch"]),
        float(rc["sigma_knee_mag"]),
    )
    _write_hdul(hdul, paths["refcat"])
    _finish(paths["refcat"], "refcat", root, files)

    # truth
    t = paths["truth"]
    src_rows = [
        {c: _fmt(sky[c][i]) for c in _SOURCE_COLUMNS} for i in range(len(sky["ra"]))
    ]
    _write_csv(src_rows, _SOURCE_COLUMNS, t / "sources.csv")
    _finish(t / "sources.csv", "truth", root, files)
    exp_rows = [{k: _fmt(v) for k, v in _exposure_row(p, mosaic.pixel_scale).items()} for p in plans]
    _write_csv(exp_rows, _EXPOSURE_COLUMNS, t / "exposures.csv")
    _finish(t / "exposures.csv", "truth", root, files)
    ccd_rows = [{k: _fmt(v) for k, v in r.items()} for res in results for r in res["ccd"]]
    _write_csv(ccd_rows, _CCD_COLUMNS, t / "ccds.csv")
    _finish(t / "ccds.csv", "truth", root, files)
    def_rows = [{k: _fmt(v) for k, v in r.items()} for res in results for r in res["defects"]]
    _write_csv(def_rows, _DEFECT_COLUMNS, t / "defects.csv")
    _finish(t / "defects.csv", "truth", root, files)
    model = {
        "mosaic": asdict(mosaic),
        "distortion": {
            "model": "p = u (1 + k r^2), r^2 = u^2 + v^2, (u, v) focal-plane pixels from the mosaic centre",
            "k": float(demo["distortion_edge_pix"]) / mosaic.corner_radius**3,
            "edge_pix": float(demo["distortion_edge_pix"]),
        },
        "psf": {"profile": "moffat", "beta": float(demo["psf_beta"]), "seeing_variation": float(demo["seeing_variation"])},
        "filters": {k: asdict(v) for k, v in sim.FILTERS.items()},
        "ccd_properties": ccd_properties(seed, mosaic.nccd),
    }
    _remove(t / "model.json")
    (t / "model.json").write_text(json.dumps(model, indent=1, sort_keys=True))
    _finish(t / "model.json", "truth", root, files)

    manifest = Manifest(
        config_hash=chash,
        small=small,
        root=".",
        files=files,
        exposures=[
            {"expnum": p.expnum, "filename": exposure_filename(p.expnum), "fate": p.fate, "component": p.component}
            for p in plans
        ],
    )
    manifest_path.write_text(manifest.to_json())
    return manifest
