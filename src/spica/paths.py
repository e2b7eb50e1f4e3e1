"""The path grammar: every filename convention of the TERAPIX report, once.

Rules (``rules/common.smk``) and library code both build and parse product
names here, so a name is spelled in exactly one place.

Step 1 (QualityFITS-in) products of exposure ``546891p.fits`` live in one
folder per exposure, ``<results>/step1/546891p/546891p_weight.fits``, so that a
survey of thousands of exposures does not put hundreds of thousands of files
in one directory.

Release products (step 2) follow the seed's naming:
``CFHTLS_W_r_135934+533330_T0002.fits``, ``546891p_V0001.fits``,
``CFHTLS_W_gri_135934+533330_T0002_chi2.fits``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "WILDCARD_CONSTRAINTS",
    "STACK_STEM_RE",
    "IMAGE_STEM_RE",
    "EXPOSURE_SUFFIX",
    "STEP1_PRODUCTS",
    "STEP1_INTERMEDIATES",
    "QA_PLOTS",
    "exposure_name",
    "exposure_filename",
    "parse_exposure_filename",
    "step1_name",
    "step1_path",
    "step1_pattern",
    "parse_step1_name",
    "format_ra",
    "format_dec",
    "StackName",
    "stack_name",
    "parse_stack_name",
    "release_product",
    "release_stem",
    "tile_stem",
    "chi2_stem",
    "image_by_image_name",
    "parse_image_stem",
    "HEAD_SUFFIX",
    "AHEAD_SUFFIX",
]

#: A release stack's product stem (``CFHTLS_W_r_135934+533330_T0002``) and an
#: image-by-image one (``546891p_V0001``).
STACK_STEM_RE = r"CFHTLS_(?:D|W|Pre-W|VW|PI)_[ugriz]+_\d{6}[+-]\d{6}_T\d{4}"
IMAGE_STEM_RE = r"\d{6,7}p_V\d{4}"

#: Regular expressions for every wildcard used by the rules.
WILDCARD_CONSTRAINTS: dict[str, str] = {
    "expnum": r"\d{6,7}",
    "release": r"T\d{4}",
    "version": r"V\d{4}",
    "survey": r"D|W|Pre-W|VW|PI",
    "band": r"[ugriz]",
    "bands": r"[ugriz]+",
    "coords": r"\d{6}[+-]\d{6}",
    # a release product stem: CFHTLS_W_r_135934+533330_T0002 or 546891p_V0001
    "stem": f"{STACK_STEM_RE}|{IMAGE_STEM_RE}",
    # a chi-squared tile: CFHTLS_W_gri_135934+533330_T0002, or one image's: 546891p_r_V0001
    "chi2": f"{STACK_STEM_RE}|" + r"\d{6,7}p_[ugriz]_V\d{4}",
}

#: Delivered SCAMP heads (seed, product table): ``546891p_head.txt`` for every
#: calibrated exposure (``546891p_V0001_head.txt`` image by image) and
#: ``546891p_ahed.txt`` (``546891p_V0001_ahed.txt``) for photometric ones.
HEAD_SUFFIX = "_head.txt"
AHEAD_SUFFIX = "_ahed.txt"

#: Odometer suffix of an Elixir-processed exposure (``546891p``).
EXPOSURE_SUFFIX = "p"
_EXPOSURE_FILE_RE = re.compile(r"^(?P<expnum>\d{6,7})p\.fits(?P<fz>\.fz)?$")

#: QualityFITS-in plots named in the seed's product table, key -> suffix.
#: Histograms and radius-magnitude diagrams come as PNG and PS.
QA_PLOTS: dict[str, str] = {
    "bkg_histo": "_bkg_histo.png",
    "bkg_histo_ps": "_bkg_histo.ps",
    "fwhm_histo": "_fwhm_histo.png",
    "fwhm_histo_ps": "_fwhm_histo.ps",
    "star_histo": "_star_histo.png",
    "star_histo_ps": "_star_histo.ps",
    "gal_histo": "_gal_histo.png",
    "gal_histo_ps": "_gal_histo.ps",
    "rhmag": "_rhmag.png",
    "rhmag_ps": "_rhmag.ps",
    "rhmag_gal": "_rhmag_gal.png",
    "rhmag_gal_ps": "_rhmag_gal.ps",
    "rhmag_star": "_rhmag_star.png",
    "rhmag_star_ps": "_rhmag_star.ps",
    "ell": "_ell.png",
    "psf_m": "_psf_m.png",
    "m": "_m.png",
    "m_med": "_m_med.png",
    "wmm": "_wmm.png",
    "wmm_med": "_wmm_med.png",
    "bkg_m": "_bkg_m.png",
}

#: Step 1 products delivered for each exposure (seed, section 3.1), key -> suffix.
STEP1_PRODUCTS: dict[str, str] = {
    "weight": "_weight.fits",
    "flag": "_flag.fits",
    "ldac": "_ldac.fits",
    "diag": "_diag.fits",
    "qa_xml": ".xml",
    **QA_PLOTS,
}

#: Step 1 working files: kept for provenance or later steps, not delivered.
STEP1_INTERMEDIATES: dict[str, str] = {
    "check": "_check.json",  # integrity verdict
    "defects": "_defects.fits",  # cosmic-ray / trail flag MEF fed to WeightWatcher
    "ww_xml": "_ww.xml",  # WeightWatcher XML
    "sex_xml": "_sex.xml",  # SExtractor XML (per-extension background, counts)
    "ahead": "_ldac.ahead",  # per-extension primary keywords for SCAMP, beside the LDAC
    "psf": "_ldac.psf",  # PSFEx model (one per CCD, MEF), named by PSFEx itself
    "minibkg": "_minibkg.fits",  # SExtractor mini background map (QA thumbnail)
    "psfex_xml": "_psfex.xml",  # PSFEx XML (per-CCD FWHM, elongation)
}

_ALL_STEP1 = {**STEP1_PRODUCTS, **STEP1_INTERMEDIATES}
# longest suffix first so "_rhmag_gal.png" is not parsed as "_gal.png"-like prefixes
_STEP1_BY_SUFFIX = sorted(_ALL_STEP1.items(), key=lambda kv: -len(kv[1]))


def exposure_name(expnum: int | str) -> str:
    """Return the exposure stem, ``546891p``."""
    return f"{int(expnum)}{EXPOSURE_SUFFIX}"


def exposure_filename(expnum: int | str, *, compressed: bool = False) -> str:
    """Return the Elixir file name, ``546891p.fits`` (or ``.fits.fz``)."""
    return exposure_name(expnum) + (".fits.fz" if compressed else ".fits")


def parse_exposure_filename(name: str | Path) -> int | None:
    """Return the odometer of an Elixir file name, or None if it is not one."""
    match = _EXPOSURE_FILE_RE.match(Path(name).name)
    return int(match["expnum"]) if match else None


def step1_name(expnum: int | str, key: str) -> str:
    """Return the file name of step 1 product ``key`` (e.g. ``546891p_weight.fits``)."""
    return exposure_name(expnum) + _ALL_STEP1[key]


def step1_path(results: str | Path, expnum: int | str, key: str) -> Path:
    """Return the path of step 1 product ``key`` under the results tree."""
    return Path(results) / "step1" / exposure_name(expnum) / step1_name(expnum, key)


def step1_pattern(results: str | Path, key: str) -> str:
    """Return the Snakemake pattern of step 1 product ``key`` (wildcard ``expnum``)."""
    return str(Path(results) / "step1" / "{expnum}p" / ("{expnum}p" + _ALL_STEP1[key]))


def parse_step1_name(name: str | Path) -> tuple[int, str]:
    """Split a step 1 file name into odometer and product key.

    Raises
    ------
    ValueError
        If the name follows no step 1 convention.
    """
    base = Path(name).name
    match = re.match(r"^(\d{6,7})p(.*)$", base)
    if match:
        rest = match[2]
        for key, suffix in _STEP1_BY_SUFFIX:
            if rest == suffix:
                return int(match[1]), key
    raise ValueError(f"not a step 1 product name: {base!r}")


# --------------------------------------------------------------------------
# Release (step 2) names
# --------------------------------------------------------------------------

_STACK_RE = re.compile(
    r"^CFHTLS_(?P<survey>D|W|Pre-W|VW|PI)_(?P<bands>[ugriz]+)_"
    r"(?P<ra>\d{6})(?P<dec>[+-]\d{6})$"
)


def format_ra(ra_deg: float) -> str:
    """Format RA as ``HHMMSS``, truncated (not rounded) as in the seed's names."""
    ra_deg = ra_deg % 360.0
    seconds = math.floor(ra_deg / 15.0 * 3600.0 + 1e-7)
    seconds %= 24 * 3600
    return f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"


def format_dec(dec_deg: float) -> str:
    """Format Dec as ``+DDMMSS``, truncated towards zero as in the seed's names."""
    sign = "-" if dec_deg < 0 else "+"
    arcsec = math.floor(abs(dec_deg) * 3600.0 + 1e-7)
    return f"{sign}{arcsec // 3600:02d}{arcsec // 60 % 60:02d}{arcsec % 60:02d}"


@dataclass(frozen=True)
class StackName:
    """The parts of a stack name such as ``CFHTLS_W_r_135934+533330``."""

    survey: str
    bands: str
    ra: str
    dec: str

    def __str__(self) -> str:
        return f"CFHTLS_{self.survey}_{self.bands}_{self.ra}{self.dec}"


def stack_name(survey: str, bands: str, ra_deg: float, dec_deg: float) -> str:
    """Return the seed's stack name, e.g. ``CFHTLS_D_g_022559-042939``.

    Parameters
    ----------
    survey
        Survey component: ``D``, ``W``, ``Pre-W``, ``VW`` or ``PI``.
    bands
        One band letter (``r``) or several for a chi-squared image (``gri``).
    ra_deg, dec_deg
        Stack centre in decimal degrees (J2000).
    """
    name = StackName(survey, bands, format_ra(ra_deg), format_dec(dec_deg))
    if not _STACK_RE.match(str(name)):
        raise ValueError(f"invalid stack name parts: {name!r}")
    return str(name)


def parse_stack_name(name: str) -> StackName:
    """Parse ``CFHTLS_W_r_135934+533330`` into its parts."""
    match = _STACK_RE.match(name)
    if not match:
        raise ValueError(f"not a stack name: {name!r}")
    return StackName(match["survey"], match["bands"], match["ra"], match["dec"])


def release_product(stack: str, release: str, suffix: str = ".fits") -> str:
    """Return a release product name, e.g. ``CFHTLS_W_r_135934+533330_T0002_weight.fits``."""
    if not re.fullmatch(WILDCARD_CONSTRAINTS["release"], release):
        raise ValueError(f"invalid release name: {release!r}")
    return f"{stack}_{release}{suffix}"


def release_stem(stack: str, release: str) -> str:
    """Stem of a planned product's files: ``<stack>_T0002``, or the image-by-image
    name itself (``546891p_V0001``), which carries its own version."""
    if re.fullmatch(IMAGE_STEM_RE, stack):
        return stack
    return release_product(stack, release, suffix="")


BAND_ORDER = "ugriz"


def tile_stem(stem: str) -> str | None:
    """The chi-squared tile of a stack stem: ``CFHTLS_D_r_..._T0002`` -> bands replaced by ``{bands}``.

    Returns None for image-by-image stems (``546891p_V0001``).
    """
    match = re.fullmatch(r"(CFHTLS_(?:D|W|Pre-W|VW|PI))_([ugriz]+)_(\d{6}[+-]\d{6}_T\d{4})", stem)
    return f"{match[1]}_{{bands}}_{match[3]}" if match else None


def chi2_stem(stems: list[str], band: str | None = None) -> str:
    """Name of the chi-squared image of stacks of one tile: all their bands, in ``ugriz`` order
    (``CFHTLS_W_gri_143007+533430_T0002``).

    An image-by-image product (``546891p_V0001``) is its own tile; its name does
    not carry the filter, so ``band`` must be given: ``546891p_r_V0001`` (the
    seed's ``546891p_gri_V0001_chi2.fits`` with one filter).
    """
    match = re.fullmatch(r"(\d{6,7}p)_(V\d{4})", stems[0]) if len(stems) == 1 else None
    if match:
        if band is None or not re.fullmatch(WILDCARD_CONSTRAINTS["band"], band):
            raise ValueError(f"the chi-squared name of {stems[0]} needs its band, got {band!r}")
        return f"{match[1]}_{band}_{match[2]}"
    tiles = {tile_stem(stem) for stem in stems}
    if len(tiles) != 1 or None in tiles:
        raise ValueError(f"not the stacks of one tile: {stems}")
    bands = {parse_stack_name(stem.rsplit("_", 1)[0]).bands for stem in stems}
    return tiles.pop().format(bands="".join(b for b in BAND_ORDER if b in bands))


def image_by_image_name(expnum: int | str, version: str, suffix: str = ".fits") -> str:
    """Return an image-by-image product name, e.g. ``546891p_V0001.fits``."""
    if not re.fullmatch(WILDCARD_CONSTRAINTS["version"], version):
        raise ValueError(f"invalid image-by-image version: {version!r}")
    return f"{exposure_name(expnum)}_{version}{suffix}"


def parse_image_stem(stem: str) -> tuple[int, str]:
    """Split an image-by-image product stem ``546891p_V0001`` into (546891, ``V0001``)."""
    match = re.fullmatch(r"(\d{6,7})p_(V\d{4})", stem)
    if not match:
        raise ValueError(f"not an image-by-image product stem: {stem!r}")
    return int(match[1]), match[2]
