"""The demo observing plan: which exposures, where, when, in which filter, with which fate.

The plan is a list of :class:`PlannedExposure`, built deterministically from
the configuration (``survey:`` for the fields, ``demo:`` for the seed). It
exercises every branch of the TERAPIX report: Deep D3 in five filters and
several epochs, Wide pointings inside and outside the target radius, Pre-W,
Very Wide, PI data, exposures the selection must reject and broken files.
"""

from __future__ import annotations

import datetime as dt
import math
import zlib
from dataclasses import dataclass, field, replace

import numpy as np

from spica.demo.simulate import offset_radec

__all__ = [
    "PlannedExposure",
    "FATES",
    "BROKEN_KINDS",
    "rng_for",
    "semester_of",
    "run_ids",
    "mjd_of",
    "PLANS",
    "plan_survey",
    "human_grades",
]

#: Intended fates of a demo exposure (``broken:<kind>`` for unreadable/invalid files).
FATES = (
    "good",
    "bad_seeing",
    "high_airmass",
    "short_exposure",
    "guiding_jump",
    "wrong_wcs_ccd",
    "not_object",
)

#: The kinds of broken files the demo writes.
BROKEN_KINDS = ("truncated", "nextend_lie", "missing_filter", "all_nan_ccd")

_PI_NAMES = {
    "D": "Deep_Synoptic CFHTLS",
    "W": "Wide_Synoptic CFHTLS",
    "VW": "Very_Wide CFHTLS",
}


@dataclass(frozen=True)
class PlannedExposure:
    """One exposure of the demo survey and everything needed to simulate it."""

    expnum: int
    obj: str
    runid: str
    pi_name: str
    filter: str
    date_obs: str  # YYYY-MM-DD
    utc_obs: str  # H:MM:SS.ss
    exptime: float
    airmass: float
    ra: float  # nominal pointing = RA_DEG (deg)
    dec: float
    seeing_arcsec: float  # true FWHM at the optical axis
    zp_offset: float  # true ZP - header PHOT_C (mag, > 0 light lost)
    photometric: bool
    skyprobe: float  # SkyProbe attenuation (mag)
    fate: str
    component: str  # D, W, Pre-W, VW, PI or '' for calibration frames
    rel_date: str
    obstype: str = "OBJECT"
    satellite_trail: bool = False
    guiding_jump_arcsec: float = 0.0
    wrong_wcs_ccd: int = -1
    broken: str = ""  # one of BROKEN_KINDS or ''
    target_offset_arcmin: float = 0.0
    notes: str = ""
    defects: tuple[str, ...] = field(default_factory=tuple)

    @property
    def band(self) -> str:
        """Band letter of the filter."""
        return self.filter.split(".")[0]

    @property
    def semester(self) -> str:
        """CFHT semester of the observation, e.g. ``2004A``."""
        return semester_of(self.date_obs)

    @property
    def qrunid(self) -> str:
        """Queue run id, e.g. ``04AQ03``."""
        return run_ids(self.date_obs)[0]

    @property
    def crunid(self) -> str:
        """Elixir camera run id, e.g. ``04Am03``."""
        return run_ids(self.date_obs)[1]

    @property
    def mjd(self) -> float:
        """Modified Julian date at the start of the exposure."""
        return mjd_of(self.date_obs, self.utc_obs)


def rng_for(seed: int, *keys: int | str) -> np.random.Generator:
    """A generator seeded by ``seed`` and a tuple of keys (strings hashed with CRC32).

    Python's ``hash`` is salted per process, so strings go through CRC32 to
    keep every run byte-identical.
    """
    ints = [int(seed)] + [k if isinstance(k, int) else zlib.crc32(k.encode()) for k in keys]
    return np.random.default_rng(np.random.SeedSequence(ints))


def semester_of(date_obs: str) -> str:
    """CFHT semester: A = February-July, B = August-January."""
    d = dt.date.fromisoformat(date_obs)
    if 2 <= d.month <= 7:
        return f"{d.year}A"
    return f"{d.year if d.month >= 8 else d.year - 1}B"


def run_ids(date_obs: str) -> tuple[str, str]:
    """(QRUNID, CRUNID) of a date: one queue/camera run per month of the semester."""
    d = dt.date.fromisoformat(date_obs)
    sem = semester_of(date_obs)
    start_month = 2 if sem.endswith("A") else 8
    n = (d.month - start_month) % 12 + 1
    yy = sem[2:4]
    letter = sem[-1]
    return f"{yy}{letter}Q{n:02d}", f"{yy}{letter}m{n:02d}"


def mjd_of(date_obs: str, utc_obs: str) -> float:
    """MJD of a date (YYYY-MM-DD) and UTC time (H:MM:SS.ss)."""
    d = dt.date.fromisoformat(date_obs)
    h, m, s = utc_obs.split(":")
    frac = (int(h) + int(m) / 60.0 + float(s) / 3600.0) / 24.0
    return (d - dt.date(1858, 11, 17)).days + frac


def _rel_date(date_obs: str, years: int, month_shift: int) -> str:
    d = dt.date.fromisoformat(date_obs)
    m = d.month - 1 + month_shift
    y = d.year + years + m // 12
    return f"{y:04d}-{m % 12 + 1:02d}-01T00:00:00"


# (key, component, target, filter, date, special)
# special: dict of overrides applied after the random draws
_DEFAULT_ROWS: list[tuple[str, str, str, str, str, dict]] = [
    # Deep D3, good, five filters, several epochs
    ("d3r1", "D", "D3", "r.MP9601", "2003-06-03", {}),
    ("d3i1", "D", "D3", "i.MP9701", "2003-06-04", {}),
    ("d3g1", "D", "D3", "g.MP9401", "2004-03-20", {}),
    ("d3r2", "D", "D3", "r.MP9601", "2004-03-21", {"zp_offset": 0.15}),
    ("d3i2", "D", "D3", "i.MP9701", "2004-04-18", {"satellite_trail": True}),
    ("d3z1", "D", "D3", "z.MP9801", "2004-05-15", {}),
    ("d3u1", "D", "D3", "u.MP9301", "2004-05-16", {}),
    ("d3i3", "D", "D3", "i.MP9701", "2004-06-12", {"zp_offset": 0.08}),
    ("d3r3", "D", "D3", "r.MP9601", "2004-06-13", {}),
    ("d3g2", "D", "D3", "g.MP9401", "2004-06-14", {}),
    # Deep D3, to be rejected by the selection or graded down
    ("d3seeing", "D", "D3", "i.MP9701", "2004-04-19", {"fate": "bad_seeing", "seeing_arcsec": 1.45}),
    ("d3airmass", "D", "D3", "r.MP9601", "2003-06-05", {"fate": "high_airmass", "airmass": 1.72}),
    ("d3short", "D", "D3", "g.MP9401", "2004-03-22", {"fate": "short_exposure", "exptime": 45.0}),
    ("d3jump", "D", "D3", "r.MP9601", "2004-05-17", {"fate": "guiding_jump"}),
    ("d3wcs", "D", "D3", "i.MP9701", "2004-06-15", {"fate": "wrong_wcs_ccd"}),
    # Wide W3: dithered, inside and outside the target radius
    ("w1a", "W", "W3+2-1", "r.MP9601", "2004-03-23", {}),
    ("w1b", "W", "W3+2-1", "r.MP9601", "2004-03-23", {}),
    ("w2a", "W", "W3+0+2", "i.MP9701", "2004-06-16", {}),
    ("w2out", "W", "W3+0+2", "i.MP9701", "2004-06-16", {"outside": True}),
    ("w3a", "W", "W3+1-3", "g.MP9401", "2004-09-10", {}),
    ("w4a", "W", "W3-3-1", "r.MP9601", "2004-10-12", {"zp_offset": 0.22}),
    # Pre-W, Very Wide and a PI program
    ("prew", "Pre-W", "W3+1-3", "r.MP9601", "2003-06-06", {}),
    ("vw", "VW", "W3+0+2", "r.MP9601", "2004-11-08", {}),
    ("pi", "PI", "D3", "r.MP9601", "2004-05-18", {}),
    # broken files and a calibration frame
    ("brk_trunc", "D", "D3", "r.MP9601", "2004-06-17", {"broken": "truncated"}),
    ("brk_nextend", "D", "D3", "i.MP9701", "2004-09-11", {"broken": "nextend_lie"}),
    ("brk_filter", "D", "D3", "g.MP9401", "2004-10-13", {"broken": "missing_filter"}),
    ("brk_nan", "D", "D3", "z.MP9801", "2004-11-05", {"broken": "all_nan_ccd"}),
    ("flat", "", "D3", "r.MP9601", "2004-11-06", {"obstype": "FLAT"}),
]

_SMALL_ROWS: list[tuple[str, str, str, str, str, dict]] = [
    ("d3r1", "D", "D3", "r.MP9601", "2004-03-21", {}),
    ("d3r2", "D", "D3", "r.MP9601", "2004-03-22", {"zp_offset": 0.12}),
    ("d3i1", "D", "D3", "i.MP9701", "2004-04-18", {"satellite_trail": True}),
    ("d3i2", "D", "D3", "i.MP9701", "2004-04-19", {}),
    ("d3wcs", "D", "D3", "r.MP9601", "2004-04-20", {"fate": "wrong_wcs_ccd"}),
    ("brk_trunc", "D", "D3", "i.MP9701", "2004-04-21", {"broken": "truncated"}),
    # a Very Wide exposure away from D3 (beyond its astrometric radius): image by image
    ("vw", "VW", "W3-3-1", "r.MP9601", "2004-04-22", {}),
]

# full-size MegaCam exposures (config/demo-fullsize.yaml, demo.plan: fullsize): two good
# D3 r exposures of one tile, one with a satellite trail; enough for step 1, SCAMP and one stack
_FULLSIZE_ROWS: list[tuple[str, str, str, str, str, dict]] = [
    ("d3r1", "D", "D3", "r.MP9601", "2004-03-21", {}),
    ("d3r2", "D", "D3", "r.MP9601", "2004-03-22", {"satellite_trail": True}),
]

#: Observing plans by ``demo.plan`` (``small=True`` always takes the small one).
PLANS = {"default": _DEFAULT_ROWS, "small": _SMALL_ROWS, "fullsize": _FULLSIZE_ROWS}

_EXPTIME = {
    "D": {"u": 600.0, "g": 300.0, "r": 300.0, "i": 360.0, "z": 360.0},
    "W": {"u": 600.0, "g": 500.0, "r": 500.0, "i": 620.0, "z": 540.0},
    "Pre-W": {"r": 500.0},
    "VW": {"g": 180.0, "r": 180.0, "i": 180.0},
    "PI": {"r": 468.0},
    "": {"r": 5.0},
}

_RUN_CODE = {"D": "L01", "W": "L02", "Pre-W": "L02", "VW": "L03"}


def _runid(component: str, date_obs: str, runid_programs: dict[str, str]) -> str:
    sem = semester_of(date_obs)
    prefix = sem[2:4] + sem[-1]
    if component in ("PI", ""):
        return f"{prefix}C14" if component == "PI" else f"{prefix}Q99"
    wanted = "W" if component == "Pre-W" else component
    codes = [c for c, comp in runid_programs.items() if comp == wanted]
    code = codes[0] if codes else _RUN_CODE[component]
    return prefix + code


def plan_survey(config: dict, *, small: bool = False) -> list[PlannedExposure]:
    """Build the demo observing plan.

    Parameters
    ----------
    config
        The whole configuration (``survey:`` and ``demo:`` sections; the
        ``demo:`` section with defaults already applied).
    small
        Tiny survey for the end-to-end test (else ``demo.plan``: ``default``,
        ``small`` or ``fullsize``, default ``default``).

    Returns
    -------
    list of PlannedExposure
        Sorted by date, odometers increasing from ``demo.odometer_start``.
    """
    survey = config["survey"]
    demo = config["demo"]
    seed = int(demo["seed"])
    deep = {d["name"]: (d["ra"], d["dec"]) for d in survey["deep_fields"]}
    wide = {w["name"]: (w["ra"], w["dec"]) for w in survey["wide_targets"]}
    deep_name = "D3" if "D3" in deep else next(iter(deep))
    radius_arcmin = float(survey["wide_match_radius_arcmin"])
    prew_prefix = survey.get("pre_survey_object_prefix", "PW")
    runid_programs = survey.get("runid_programs", {"L01": "D", "L02": "W", "L03": "VW"})
    wide_names = list(wide)
    dither = float(demo["dither_arcsec"])

    rows = _SMALL_ROWS if small else PLANS[str(demo.get("plan", "default"))]
    plans: list[PlannedExposure] = []
    for i, (key, comp, target, filt, date_obs, special) in enumerate(rows):
        rng = rng_for(seed, "plan", key)
        if target in deep or target == "D3":
            ra0, dec0 = deep.get(target, deep[deep_name])
        else:
            ra0, dec0 = wide.get(target, wide[wide_names[i % len(wide_names)]])
        east, north = rng.uniform(-dither, dither, 2)
        obj = deep_name if target in ("D3", deep_name) else target
        if comp == "W":
            # keep Wide dithers well inside the match radius
            east, north = np.clip([east, north], -0.3 * radius_arcmin * 60, 0.3 * radius_arcmin * 60)
        if special.get("outside"):
            ang = rng.uniform(0, 2 * math.pi)
            r = 1.6 * radius_arcmin * 60.0
            east, north = r * math.cos(ang), r * math.sin(ang)
        if comp == "Pre-W":
            east, north = east + 0.5 * radius_arcmin * 60, north - 0.4 * radius_arcmin * 60
            obj = f"{prew_prefix}{target[1:] if target.startswith('W') else target}"
        elif comp == "VW":
            east, north = east - 0.6 * radius_arcmin * 60, north + 0.8 * radius_arcmin * 60
            obj = f"VW{target[1:]}"
        elif comp == "PI":
            east, north = east + 60.0, north - 45.0
            obj = "UMaII_demo"
        elif comp == "":
            obj = "Flat"
        ra, dec = offset_radec(ra0, dec0, float(east), float(north))
        band = filt.split(".")[0]
        exptime = _EXPTIME.get(comp, _EXPTIME["D"]).get(band, 300.0)
        exptime = round(exptime + rng.uniform(0.0, 0.5), 3)
        seeing = round(float(rng.uniform(0.62, 1.0)), 3)
        airmass = round(float(rng.uniform(1.05, 1.32)), 3)
        fate = special.get("fate", "good")
        zp_offset = float(special.get("zp_offset", rng.normal(0.0, 0.003)))
        photometric = "zp_offset" not in special
        skyprobe = max(0.0, zp_offset + float(rng.normal(0.0, 0.01))) if not photometric else abs(
            float(rng.normal(0.0, 0.008))
        )
        hh = int(rng.integers(6, 14))
        utc = f"{hh}:{int(rng.integers(0, 60)):02d}:{rng.uniform(0, 60):05.2f}"
        target_offset = 0.0
        if comp in ("W", "Pre-W", "VW") and target in wide:
            target_offset = math.hypot(east, north) / 60.0
        broken = special.get("broken", "")
        obstype = special.get("obstype", "OBJECT")
        if broken:
            fate = f"broken:{broken}"
        elif obstype != "OBJECT":
            fate = "not_object"
        defects = []
        if special.get("satellite_trail"):
            defects.append("satellite_trail")
        if fate == "guiding_jump":
            defects.append("guiding_jump")
        if fate == "wrong_wcs_ccd":
            defects.append("wrong_wcs_ccd")
        pi_name = "Marla Geha" if comp == "PI" else _PI_NAMES.get(
            "W" if comp == "Pre-W" else comp, "QSO Team"
        )
        years = 1 if comp == "PI" else 2
        plan = PlannedExposure(
            expnum=0,
            obj=obj,
            runid=_runid(comp, date_obs, runid_programs),
            pi_name=pi_name,
            filter=filt,
            date_obs=date_obs,
            utc_obs=utc,
            exptime=float(special.get("exptime", exptime)),
            airmass=float(special.get("airmass", airmass)),
            ra=ra,
            dec=dec,
            seeing_arcsec=float(special.get("seeing_arcsec", seeing)),
            zp_offset=round(zp_offset, 4),
            photometric=photometric,
            skyprobe=round(skyprobe, 3),
            fate=fate,
            component=comp,
            rel_date=_rel_date(date_obs, years, int(rng.integers(0, 6))),
            obstype=obstype,
            satellite_trail=bool(special.get("satellite_trail", False)),
            guiding_jump_arcsec=float(demo["guiding_jump_arcsec"]) if fate == "guiding_jump" else 0.0,
            wrong_wcs_ccd=(int(rng.integers(0, 10_000)) if fate == "wrong_wcs_ccd" else -1),
            broken=broken,
            target_offset_arcmin=round(target_offset, 4),
            notes=key,
            defects=tuple(defects),
        )
        plans.append(plan)
    plans.sort(key=lambda p: (p.mjd, p.notes))
    start = int(demo["odometer_start"])
    out = []
    for n, p in enumerate(plans):
        nccd = int(demo["mosaic"]["nx"]) * int(demo["mosaic"]["ny"])
        wrong = p.wrong_wcs_ccd % nccd if p.wrong_wcs_ccd >= 0 else -1
        out.append(replace(p, expnum=start + 7 * n + n % 3, wrong_wcs_ccd=wrong))
    return out


def human_grades(plans: list[PlannedExposure]) -> list[dict[str, str]]:
    """The partial table of human grades: about a third of the exposures.

    Good exposures whose name ends in 1 are graded A; the bad-seeing one C;
    the high-airmass one B. The guiding-jump and wrong-WCS exposures are left
    ungraded so that the pipeline must propose their grade.
    """
    rows = []
    graders = ("YM", "MR", "EB")
    for i, p in enumerate(plans):
        grade, comment = "", ""
        if p.fate == "good" and p.notes.endswith("1"):
            grade, comment = "A", "nice"
        elif p.fate == "bad_seeing":
            grade, comment = "C", f"seeing {p.seeing_arcsec:.2f} arcsec"
        elif p.fate == "high_airmass":
            grade, comment = "B", f"airmass {p.airmass:.2f}"
        if grade:
            d = dt.date.fromisoformat(p.date_obs) + dt.timedelta(days=30 + 3 * i)
            rows.append(
                {
                    "expnum": str(p.expnum),
                    "grade": grade,
                    "comment": comment,
                    "graded_by": graders[i % len(graders)],
                    "date": d.isoformat(),
                }
            )
    return rows
