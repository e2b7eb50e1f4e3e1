"""The path grammar: every filename convention of the TERAPIX report, once.

Rules (``rules/common.smk``) and library code both build and parse product
names here, so a name is spelled in exactly one place.

Step 1 (QualityFITS-in) products of exposure ``546891p.fits`` live in one
folder per exposure, ``<results>/step1/546891p/546891p_weight.fits``, so that a
survey of thousands of exposures does not put hundreds of thousands of files
in one directory.

Release products (step 2) follow the seed's naming:
``CFHTLS_W_r_135934+533330_T0002.fits``, ``546891p_V0001.fits``,
``CFHTLS_W_gri_135934+533330_T0002_chi2.fits``. They live in one folder per
release and one per product (or chi-squared tile) inside it:
``<results>/releases/T0002/T0002_plan.csv`` (:data:`RELEASE_FILES`),
``<results>/releases/T0002/<stem>/<stem>_weight.fits`` (:data:`STACK_PRODUCTS`,
:data:`STACK_INTERMEDIATES`) and ``<results>/releases/T0002/<chi2>/<chi2>_chi2.fits``
(:data:`CHI2_FILES`).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path

# the seed's truncated RA/Dec text of stack names; re-exported here
from spica.sky import format_dec, format_ra

__all__ = [
    "WILDCARD_CONSTRAINTS",
    "STACK_STEM_RE",
    "IMAGE_STEM_RE",
    "EXPOSURE_SUFFIX",
    "STEP1_PRODUCTS",
    "STEP1_INTERMEDIATES",
    "QA_PLOTS",
    "STEP1_DECLARED",
    "qa_plot_paths",
    "exposure_name",
    "exposure_filename",
    "parse_exposure_filename",
    "parse_exposure_name",
    "parse_exposure_prefix",
    "SCAMP_HEAD_SUFFIX",
    "scamp_head_name",
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
    "RELEASE_FILES",
    "STACK_THUMBNAILS",
    "STACK_PRODUCTS",
    "IMAGE_PRODUCTS",
    "QUALITYFITS_OUT_PRODUCTS",
    "COMPLETENESS_PRODUCTS",
    "MASK_PRODUCTS",
    "QUALITYFITS_OUT_INTERMEDIATES",
    "STACK_INTERMEDIATES",
    "SCAMP_FOLDER",
    "SOLUTION_RE",
    "SOLUTIONS_FOLDER",
    "SOLUTION_FILES",
    "solution_id",
    "solution_path",
    "solution_pattern",
    "solution_scamp_folder",
    "solution_scamp_folder_pattern",
    "CHI2_FILES",
    "QUALITYFITS_OUT_DELIVERED",
    "release_path",
    "release_pattern",
    "product_name",
    "product_path",
    "product_pattern",
    "scamp_folder",
    "scamp_folder_pattern",
    "chi2_path",
    "chi2_pattern",
    "STAR_CLUSTERING_PRODUCTS",
    "COLOUR_COLOUR_FILES",
    "COLOUR_MAGNITUDE_FILES",
    "band_sets",
    "colour_stem",
    "colour_path",
    "colour_paths",
    "colour_tile",
    "TILE_COLOUR_SIZES",
    "colour_tile_pattern",
    "tile_colour_patterns",
    "tile_colour_bands",
    "RUN_RECORDS",
    "RUN_RECORD_SCOPES",
    "run_record_path",
    "log_pattern",
    "benchmark_pattern",
    "steps_pattern",
    "run_records_folder",
    "outside_results",
]

#: A release stack's product stem (``CFHTLS_W_r_135934+533330_T0002``) and an
#: image-by-image one (``546891p_V0001``).
STACK_STEM_RE = r"CFHTLS_(?:D|W|Pre-W|VW|PI)_[ugriz]+_\d{6}[+-]\d{6}_T\d{4}"
IMAGE_STEM_RE = r"\d{6,7}p_V\d{4}"
#: An astrometric solution (:func:`solution_id`): the stack stem without its
#: bands, or the image stem, then a short hash of the astrometric list
#: (``CFHTLS_D_141927+524056_T0002_1a2b3c4d``, ``546891p_V0001_1a2b3c4d``).
SOLUTION_RE = r"(?:CFHTLS_(?:D|W|Pre-W|VW|PI)_\d{6}[+-]\d{6}_T\d{4}|\d{6,7}p_V\d{4})_[0-9a-f]{8}"

#: Regular expressions for every wildcard used by the rules.
WILDCARD_CONSTRAINTS: dict[str, str] = {
    "expnum": r"\d{6,7}",
    # a release (T0002), or the automatic image mode's version (V0001: its products' folder)
    "release": r"T\d{4}|V\d{4}",
    "version": r"V\d{4}",
    "survey": r"D|W|Pre-W|VW|PI",
    "band": r"[ugriz]",
    "bands": r"[ugriz]+",
    "coords": r"\d{6}[+-]\d{6}",
    # a release product stem: CFHTLS_W_r_135934+533330_T0002 or 546891p_V0001
    "stem": f"{STACK_STEM_RE}|{IMAGE_STEM_RE}",
    # a chi-squared tile: CFHTLS_W_gri_135934+533330_T0002, or one image's: 546891p_r_V0001
    "chi2": f"{STACK_STEM_RE}|" + r"\d{6,7}p_[ugriz]_V\d{4}",
    # one SCAMP solution shared by the products with the same astrometric list
    "solution": SOLUTION_RE,
}

#: Delivered SCAMP heads (seed, product table): ``546891p_head.txt`` for every
#: calibrated exposure (``546891p_V0001_head.txt`` image by image) and
#: ``546891p_ahed.txt`` (``546891p_V0001_ahed.txt``) for photometric ones.
HEAD_SUFFIX = "_head.txt"
AHEAD_SUFFIX = "_ahed.txt"
#: SCAMP's own output head of a catalogue (``HEADER_SUFFIX``): ``751000p.head``
#: for ``751000p_ldac.fits``, turned into the delivered ``_head.txt``.
SCAMP_HEAD_SUFFIX = ".head"

#: Odometer suffix of an Elixir-processed exposure (``546891p``).
EXPOSURE_SUFFIX = "p"
_EXPOSURE_FILE_RE = re.compile(r"^(?P<expnum>\d{6,7})p\.fits(?P<fz>\.fz)?$")
_EXPOSURE_NAME_RE = re.compile(r"(?P<expnum>\d{6,7})p")

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

#: The delivered step 1 products a rule declares to Snakemake: all but the QA plots.
#: The 21 plots of an exposure are one product with its QA XML (``NNNNNNp.xml``):
#: ``reduce_exposure`` (its QA step) deletes them, writes them beside the XML, the XML last, so a
#: complete XML means complete plots (:func:`qa_plot_paths`). Declared one by one
#: they were half of the ~40 files of each of the ~21,000 step 1 jobs that
#: Snakemake lists at survey scale (issue 10, section 5).
STEP1_DECLARED: tuple[str, ...] = tuple(key for key in STEP1_PRODUCTS if key not in QA_PLOTS)

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


def parse_exposure_name(name: str) -> int:
    """Return the odometer of an exposure name, ``751000p`` -> 751000.

    Raises
    ------
    ValueError
        If ``name`` is not an odometer followed by ``p``.
    """
    match = _EXPOSURE_NAME_RE.fullmatch(name)
    if not match:
        raise ValueError(f"not an exposure name like '751000p': {name!r}")
    return int(match["expnum"])


def parse_exposure_prefix(text: str) -> int | None:
    """Return the odometer of the exposure name ``text`` starts with, or None.

    ``751000p_ldac.fits`` and ``751000p.head`` give 751000 (the text is taken
    as it is, not reduced to a file name).
    """
    match = _EXPOSURE_NAME_RE.match(text)
    return int(match["expnum"]) if match else None


def scamp_head_name(expnum: int | str) -> str:
    """Return the name of the SCAMP head of an exposure, ``751000p.head``."""
    return exposure_name(expnum) + SCAMP_HEAD_SUFFIX


def step1_name(expnum: int | str, key: str) -> str:
    """Return the file name of step 1 product ``key`` (e.g. ``546891p_weight.fits``)."""
    return exposure_name(expnum) + _ALL_STEP1[key]


def step1_path(results: str | Path, expnum: int | str, key: str) -> Path:
    """Return the path of step 1 product ``key`` under the results tree."""
    return Path(results) / "step1" / exposure_name(expnum) / step1_name(expnum, key)


def step1_pattern(results: str | Path, key: str) -> str:
    """Return the Snakemake pattern of step 1 product ``key`` (wildcard ``expnum``)."""
    return str(Path(results) / "step1" / "{expnum}p" / ("{expnum}p" + _ALL_STEP1[key]))


def qa_plot_paths(qa_xml: str | Path) -> dict[str, Path]:
    """Return the QA plots written beside an exposure's QA XML, key -> path
    (:data:`QA_PLOTS`; ``.../546891p/546891p.xml`` -> ``.../546891p/546891p_m.png``...)."""
    qa_xml = Path(qa_xml)
    stem = qa_xml.name.removesuffix(STEP1_PRODUCTS["qa_xml"])
    return {key: qa_xml.with_name(stem + suffix) for key, suffix in QA_PLOTS.items()}


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


# --------------------------------------------------------------------------
# Release (step 2) files
# --------------------------------------------------------------------------

#: Files of a release, key -> suffix after the release name
#: (``<results>/releases/T0002/T0002_plan.csv``).
RELEASE_FILES: dict[str, str] = {
    "plan": "_plan.csv",  # the planned stacks (checkpoint plan_release)
    "selection": "_selection.csv",  # every exposure's verdict
    "lists": "_lists.json",  # stack and astrometric lists, SCAMP solutions
    "pending": "_pending.txt",  # the seed's "Pending processes" view
    "scamp_fields": "_scamp_fields.csv",  # SCAMP statistics read back into the registry
    "product_quality": "_product_quality.csv",  # the products' QualityFITS-out figures, as registered
}

#: PNG thumbnails of a stack, key -> suffix (the step 1 thumbnails' names).
STACK_THUMBNAILS: dict[str, str] = {key: QA_PLOTS[key] for key in ("m", "m_med", "wmm", "wmm_med", "bkg_m")}

#: Products delivered for every planned stack or image-by-image product, key ->
#: suffix after its stem (``<stem>`` = ``CFHTLS_D_r_141927+524056_T0002`` or
#: ``546891p_V0001``; seed, product table).
STACK_PRODUCTS: dict[str, str] = {
    "stack_list": "_stack.list",  # exposures co-added (SWarp input)
    "astrometric_list": "_astrom.list",  # exposures calibrated together (SCAMP input)
    "scamp_xml": "_scamp.xml",
    "scamp_accept": "_scamp_accept.xml",  # the accept summary
    "heads": "_heads",  # folder: NNNNNNp_head.txt (and _ahed.txt) per exposure
    "image": ".fits",
    "weight": "_weight.fits",
    "ldac": "_ldac.fits",  # dual-image catalogue
    "dust": "_dust.fits",
    "cmd": "_cmd.txt",  # provenance: the commands that rebuild the product
    "xml": ".xml",  # provenance: processing XML
    "summary": "_spica.xml",  # the SPICA summary
    **STACK_THUMBNAILS,
}

#: Also delivered image by image: the image's own SCAMP head, and its ``.ahead``
#: when photometric (``546891p_V0001_head.txt``, ``546891p_V0001_ahed.txt``).
IMAGE_PRODUCTS: dict[str, str] = {"image_head": HEAD_SUFFIX, "image_ahead": AHEAD_SUFFIX}

#: Working files of a planned product: kept for provenance, not delivered.
STACK_INTERMEDIATES: dict[str, str] = {
    "scamp_cmd": "_scamp.cmd",  # the SCAMP run of the product's solution
    "scamp_delivery_cmd": "_scamp_delivery.cmd",  # its heads copied into the product's scamp/
    "accepted": "_accepted.list",  # exposures the accept summary lets into the stack
    "swarp_xml": "_swarp.xml",
    "swarp_cmd": "_swarp.cmd",
    "sex_xml": "_sex.xml",
    "sex_cmd": "_sex.cmd",
}

#: Folder of a product's SCAMP outputs (heads, check plots): ``<stem>/scamp``.
SCAMP_FOLDER = "scamp"

#: Folder of a release's astrometric solutions: ``<results>/releases/T0002/_scamp``.
#: One SCAMP run per distinct astrometric list (:func:`solution_id`) lives in
#: ``_scamp/<solution>/``: :data:`SOLUTION_FILES` and a ``scamp/`` folder (heads,
#: check plots ``<solution>_<plot>_<n>.png``), delivered to every product that
#: shares it under the product's own names (:data:`STACK_PRODUCTS`).
SOLUTIONS_FOLDER = "_scamp"

#: Files of an astrometric solution, key -> suffix after its id.
SOLUTION_FILES: dict[str, str] = {
    "scamp_xml": "_scamp.xml",
    "scamp_cmd": "_scamp.cmd",
}

#: Files of a chi-squared tile, key -> suffix after the tile name
#: (``CFHTLS_D_ri_141927+524056_T0002_chi2.fits``, ``546891p_r_V0001_chi2.fits``).
CHI2_FILES: dict[str, str] = {
    "image": "_chi2.fits",
    "weight": "_chi2_weight.fits",
    "xml": "_chi2.xml",
    "cmd": "_chi2.cmd",
    "png": "_chi2.png",
    "ps": "_chi2.ps",  # the same figure as the PNG, PostScript (the seed's plots come as both)
}

#: QualityFITS-out products of every planned product (seed 3.2.2: "the same as
#: QualityFITS-in", from the product and its own weight map), key -> suffix after
#: its stem; the plot keys are those of :data:`QA_PLOTS`.
QUALITYFITS_OUT_PRODUCTS: dict[str, str] = {
    "diag": "_diag.fits",  # summary table (the step 1 layout) and the QualityFITS-out figures
    "bkg": "_bkg.fits",  # background map (SExtractor CHECKIMAGE BACKGROUND)
    "protopsf": "_protopsf.fits",  # the PSFEx model of the product
    **{key: QA_PLOTS[key] for key in (
        "psf_m", "ell", "fwhm_histo", "fwhm_histo_ps", "rhmag", "rhmag_ps", "rhmag_star",
        "rhmag_star_ps", "rhmag_gal", "rhmag_gal_ps", "star_histo", "star_histo_ps",
        "gal_histo", "gal_histo_ps")},
    "ell_ps": "_ell.ps",
}

#: The completeness plot of a planned product (simulated stars added to a copy).
COMPLETENESS_PRODUCTS: dict[str, str] = {"comptness": "_comptness.png", "comptness_ps": "_comptness.ps"}

#: QualityFITS-out working files of a planned product: not delivered.
QUALITYFITS_OUT_INTERMEDIATES: dict[str, str] = {
    "qfo_ldac": "_qfo_ldac.fits",  # SExtractor catalogue of the product (PSFEx's input)
    "qfo_sex_xml": "_qfo_sex.xml",
    "qfo_psfex_xml": "_qfo_psfex.xml",
    "comptness_table": "_comptness.fits",  # injected stars, recovered fraction, 50/80 % magnitudes
}

#: The automatic masks of a planned product: DS9 regions in FK5 (halos, spikes, bleed
#: trails, low-weight borders; :mod:`spica.qualityfits_out.masks`), the seed's ``_reg.txt``.
MASK_PRODUCTS: dict[str, str] = {"reg": "_reg.txt"}

#: The angular two-point correlation function of a product's stars, w(theta) (TreeCorr).
STAR_CLUSTERING_PRODUCTS: dict[str, str] = {"wtheta": "_wtheta.png", "wtheta_ps": "_wtheta.ps"}

#: The QualityFITS-out files a delivery of a product carries (``transfer.release_products``
#: key ``qualityfits_out``): the seed's table, the completeness, w(theta) and the masks.
QUALITYFITS_OUT_DELIVERED: tuple[str, ...] = (*QUALITYFITS_OUT_PRODUCTS, *COMPLETENESS_PRODUCTS,
                                              *STAR_CLUSTERING_PRODUCTS, *MASK_PRODUCTS)

_ALL_PRODUCT = {**STACK_PRODUCTS, **IMAGE_PRODUCTS, **STACK_INTERMEDIATES, **QUALITYFITS_OUT_PRODUCTS,
                **COMPLETENESS_PRODUCTS, **QUALITYFITS_OUT_INTERMEDIATES, **STAR_CLUSTERING_PRODUCTS,
                **MASK_PRODUCTS}


def _releases(results: str | Path, release: str) -> Path:
    return Path(results) / "releases" / release


def _release_file(results: str | Path, release: str, *parts: str) -> Path:
    """``<results>/releases/<release>/<parts...>`` as one Path (one parse: a release
    dry-run at survey scale builds ~100,000 of these, and each ``/`` is a parse)."""
    return Path(os.path.join(os.fspath(results), "releases", release, *parts))


def release_path(results: str | Path, release: str, key: str) -> Path:
    """Return the path of release file ``key`` (:data:`RELEASE_FILES`),
    e.g. ``<results>/releases/T0002/T0002_plan.csv``."""
    return _release_file(results, release, f"{release}{RELEASE_FILES[key]}")


def release_pattern(results: str | Path, key: str) -> str:
    """Return the Snakemake pattern of release file ``key`` (wildcard ``release``)."""
    return str(release_path(results, "{release}", key))


def product_path(results: str | Path, release: str, stem: str, key: str) -> Path:
    """Return the path of file ``key`` of a planned product (:data:`STACK_PRODUCTS`,
    :data:`IMAGE_PRODUCTS`, :data:`STACK_INTERMEDIATES`), e.g.
    ``<results>/releases/T0002/<stem>/<stem>_weight.fits``."""
    return _release_file(results, release, stem, product_name(stem, key))


def product_name(stem: str, key: str) -> str:
    """Return the file name of file ``key`` of a planned product (:func:`product_path`),
    e.g. ``<stem>_weight.fits``."""
    return f"{stem}{_ALL_PRODUCT[key]}"


def product_pattern(results: str | Path, key: str) -> str:
    """Return the Snakemake pattern of a planned product's file ``key`` (wildcards
    ``release``, ``stem``)."""
    return str(product_path(results, "{release}", "{stem}", key))


def scamp_folder(results: str | Path, release: str, stem: str) -> Path:
    """Return the folder of a planned product's SCAMP outputs, ``<results>/releases/T0002/<stem>/scamp``."""
    return _release_file(results, release, stem, SCAMP_FOLDER)


def scamp_folder_pattern(results: str | Path) -> str:
    """Return the Snakemake pattern of :func:`scamp_folder` (wildcards ``release``, ``stem``)."""
    return str(scamp_folder(results, "{release}", "{stem}"))


def solution_id(stem: str, expnums: Iterable[int]) -> str:
    """Name of the SCAMP solution of an astrometric list, first used by product ``stem``.

    The stem without its bands (``CFHTLS_D_r_141927+524056_T0002`` ->
    ``CFHTLS_D_141927+524056_T0002``; an image stem as it is), then the first
    8 hex digits of the SHA-1 of the sorted odometers: every filter of a tile
    shares it when their lists agree, and a change of the list renames it.
    """
    match = re.fullmatch(r"(CFHTLS_(?:D|W|Pre-W|VW|PI))_[ugriz]+_(\d{6}[+-]\d{6}_T\d{4})", stem)
    if match:
        label = f"{match[1]}_{match[2]}"
    elif re.fullmatch(IMAGE_STEM_RE, stem):
        label = stem
    else:
        raise ValueError(f"not a product stem: {stem!r}")
    text = ",".join(str(e) for e in sorted(int(e) for e in expnums))
    return f"{label}_{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def solution_path(results: str | Path, release: str, solution: str, key: str) -> Path:
    """Return the path of file ``key`` (:data:`SOLUTION_FILES`) of an astrometric solution,
    e.g. ``<results>/releases/T0002/_scamp/<solution>/<solution>_scamp.xml``."""
    return _release_file(results, release, SOLUTIONS_FOLDER, solution, f"{solution}{SOLUTION_FILES[key]}")


def solution_pattern(results: str | Path, key: str) -> str:
    """Return the Snakemake pattern of :func:`solution_path` (wildcards ``release``, ``solution``)."""
    return str(solution_path(results, "{release}", "{solution}", key))


def solution_scamp_folder(results: str | Path, release: str, solution: str) -> Path:
    """Return the folder of a solution's heads and check plots,
    ``<results>/releases/T0002/_scamp/<solution>/scamp``."""
    return _release_file(results, release, SOLUTIONS_FOLDER, solution, SCAMP_FOLDER)


def solution_scamp_folder_pattern(results: str | Path) -> str:
    """Return the Snakemake pattern of :func:`solution_scamp_folder` (wildcards ``release``, ``solution``)."""
    return str(solution_scamp_folder(results, "{release}", "{solution}"))


def chi2_path(results: str | Path, release: str, chi2: str, key: str) -> Path:
    """Return the path of file ``key`` (:data:`CHI2_FILES`) of chi-squared tile ``chi2``,
    e.g. ``<results>/releases/T0002/<chi2>/<chi2>_chi2.fits``."""
    return _release_file(results, release, chi2, f"{chi2}{CHI2_FILES[key]}")


def chi2_pattern(results: str | Path, key: str) -> str:
    """Return the Snakemake pattern of a chi-squared tile's file ``key`` (wildcards
    ``release``, ``chi2``)."""
    return str(chi2_path(results, "{release}", "{chi2}", key))


#: Colour-colour diagram of three filters of a tile (seed, footnote 8: one for each of the
#: C(n,3) sets of the tile's n filters, named with them: ``CFHTLS_W_gri_..._T0002_diagcc.png``).
COLOUR_COLOUR_FILES: dict[str, str] = {"diagcc": "_diagcc.png", "diagcc_ps": "_diagcc.ps"}
#: Colour-magnitude diagram of two filters of a tile (not named by the seed; named as the
#: colour-colour one, with the pair: ``CFHTLS_W_gr_..._T0002_diagcm.png``).
COLOUR_MAGNITUDE_FILES: dict[str, str] = {"diagcm": "_diagcm.png", "diagcm_ps": "_diagcm.ps"}
_COLOUR_FILES = {**COLOUR_COLOUR_FILES, **COLOUR_MAGNITUDE_FILES}
_TILE_RE = re.compile(r"(CFHTLS_(?:D|W|Pre-W|VW|PI))_([ugriz]+)_(\d{6}[+-]\d{6})_(T\d{4})")


def band_sets(bands: str, size: int) -> list[str]:
    """Every set of ``size`` of the filters ``bands``, each in ``ugriz`` order
    (``band_sets("griz", 3)`` -> ``["gri", "grz", "giz", "riz"]``; none if fewer filters)."""
    ordered = "".join(b for b in BAND_ORDER if b in bands)
    return ["".join(c) for c in combinations(ordered, size)]


def colour_stem(tile: str, bands: str) -> str:
    """Stem of the colour diagrams of filters ``bands`` of release tile ``tile``
    (``CFHTLS_D_ugriz_141927+524056_T0002``, ``gri`` -> ``CFHTLS_D_gri_141927+524056_T0002``).

    Raises
    ------
    ValueError
        If ``tile`` is not a release tile or ``bands`` are not some of its filters.
    """
    match = _TILE_RE.fullmatch(tile)
    if not match or not bands or not set(bands) <= set(match[2]) or bands not in band_sets(bands, len(bands)):
        raise ValueError(f"{bands!r} are not filters of release tile {tile!r} (distinct, in ugriz order)")
    return f"{match[1]}_{bands}_{match[3]}_{match[4]}"


def colour_tile(survey: str, bands: str, coords: str, release: str) -> str:
    """The name of a release tile from its parts (the wildcards of :func:`tile_colour_patterns`):
    ``D``, ``ugriz``, ``141927+524056``, ``T0002`` -> ``CFHTLS_D_ugriz_141927+524056_T0002``."""
    return f"CFHTLS_{survey}_{bands}_{coords}_{release}"


def colour_path(results: str | Path, release: str, tile: str, bands: str, key: str) -> Path:
    """Return the path of colour diagram ``key`` (:data:`COLOUR_COLOUR_FILES`,
    :data:`COLOUR_MAGNITUDE_FILES`) of filters ``bands`` of tile ``tile``, in the tile's
    folder: ``<results>/releases/T0002/<tile>/CFHTLS_D_gri_..._T0002_diagcc.png``."""
    return _release_file(results, release, tile, f"{colour_stem(tile, bands)}{_COLOUR_FILES[key]}")


def colour_paths(results: str | Path, release: str, tile: str) -> list[Path]:
    """Every colour diagram of a tile: the colour-colour files of each set of three of its
    filters and the colour-magnitude files of each pair (none for an image-by-image tile)."""
    match = _TILE_RE.fullmatch(tile)
    if not match:
        return []
    return [colour_path(results, release, tile, bands, key)
            for size, files in ((3, COLOUR_COLOUR_FILES), (2, COLOUR_MAGNITUDE_FILES))
            for bands in band_sets(match[2], size) for key in files]


#: Numbers of filters of a release tile with colour diagrams: one rule each
#: (``plot_tile_colours_<n>``), whose wildcards ``b1``... ``b<n>`` are the tile's filters.
TILE_COLOUR_SIZES: tuple[int, ...] = (2, 3, 4, 5)


def _band_wildcards(positions: Iterable[int]) -> str:
    return "".join(f"{{b{i}}}" for i in positions)


def colour_tile_pattern(n: int) -> str:
    """The name pattern of a release tile of ``n`` filters in the colour rules: wildcards
    ``survey``, ``b1``... ``b<n>``, ``coords``, ``release``."""
    return colour_tile("{survey}", _band_wildcards(range(1, n + 1)), "{coords}", "{release}")


def tile_colour_patterns(results: str | Path, n: int) -> dict[str, str]:
    """Snakemake patterns of every colour diagram of a release tile of ``n`` filters, in
    the order of :func:`colour_paths`, keyed ``<file key>_<positions>``: ``diagcc_123``,
    ``diagcc_ps_123`` (filters 1, 2, 3 of the tile), ..., ``diagcm_45``, ``diagcm_ps_45``.

    Wildcards ``release``, ``survey``, ``coords`` and ``b1``... ``b<n>`` (one filter each,
    the tile's in ``ugriz`` order): one job makes a tile's diagrams, and a pattern has to
    name each diagram's filters, which are some of the tile's.
    """
    if n not in TILE_COLOUR_SIZES:
        raise ValueError(f"a release tile of {n} filter(s) has no colour diagrams rule")
    tile = colour_tile_pattern(n)
    patterns = {}
    for size, files in ((3, COLOUR_COLOUR_FILES), (2, COLOUR_MAGNITUDE_FILES)):
        for positions in combinations(range(1, n + 1), size):
            stem = colour_tile("{survey}", _band_wildcards(positions), "{coords}", "{release}")
            for key, suffix in files.items():
                patterns[f"{key}_{''.join(map(str, positions))}"] = \
                    str(_releases(results, "{release}") / tile / f"{stem}{suffix}")
    return patterns


def tile_colour_bands(key: str, bands: str) -> str:
    """The filters of the diagram ``key`` of :func:`tile_colour_patterns` in a tile of
    filters ``bands``: ``diagcc_ps_124``, ``ugriz`` -> ``ugr``."""
    return "".join(bands[int(i) - 1] for i in key.rsplit("_", 1)[1])


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


# --------------------------------------------------------------------------
# Run records: what a run writes besides its products (rule logs, Snakemake
# benchmarks, step timings). They live in the run's own results tree, so two
# surveys run from one checkout with different ``results:`` never share one
# (Snakemake's own ``.snakemake/`` folder stays in the working directory).

#: Folders of the run records under the results tree, kind -> folder name:
#: ``<results>/logs/...`` (one ``.log`` per job) and ``<results>/benchmarks/...``
#: (Snakemake's ``.tsv`` per job, per-step timings ``.steps.json``).
RUN_RECORDS: dict[str, str] = {"log": "logs", "benchmark": "benchmarks"}

#: Where a job's records go inside those folders, scope -> sub-folder pattern
#: (Snakemake wildcards of the rule's outputs).
RUN_RECORD_SCOPES: dict[str, str] = {
    "exposure": "step1/{expnum}p",
    "step1": "step1",
    "calibrations": "calibrations",
    "registry": "registry",
    "release": "releases/{release}",
    "product": "releases/{release}/{stem}",
    "tile": "releases/{release}/{chi2}",
    # a release tile of n filters named by its parts (the colour diagrams of its filters)
    **{f"colours{n}": f"releases/{{release}}/{colour_tile_pattern(n)}" for n in TILE_COLOUR_SIZES},
    "solution": f"releases/{{release}}/{SOLUTIONS_FOLDER}/{{solution}}",
}

_RUN_RECORD_SUFFIX = {"log": ".log", "benchmark": ".tsv", "steps": ".steps.json"}


def run_record_path(results: str | Path, kind: str, scope: str, name: str, **wildcards: object) -> Path:
    """Return the path of a run record of a job, e.g.
    ``<results>/logs/step1/760101p/reduce_exposure.log``.

    Parameters
    ----------
    results
        The run's results tree (``config["results"]``).
    kind
        ``log``, ``benchmark`` (Snakemake's TSV) or ``steps`` (per-step timings
        JSON, beside the benchmark).
    scope
        A key of :data:`RUN_RECORD_SCOPES` (``exposure``, ``product``...).
    name
        The record's name, usually the rule's (may hold a wildcard, ``{calib}``).
    **wildcards
        Values of the scope's wildcards; without them the path is a pattern.
    """
    folder = RUN_RECORDS["log" if kind == "log" else "benchmark"]
    relative = f"{RUN_RECORD_SCOPES[scope]}/{name}{_RUN_RECORD_SUFFIX[kind]}"
    if wildcards:
        relative = relative.format(**wildcards)
    return Path(results) / folder / relative


def log_pattern(results: str | Path, scope: str, name: str) -> str:
    """Snakemake ``log:`` pattern of a job (:func:`run_record_path`, kind ``log``)."""
    return str(run_record_path(results, "log", scope, name))


def benchmark_pattern(results: str | Path, scope: str, name: str) -> str:
    """Snakemake ``benchmark:`` pattern of a job (:func:`run_record_path`, kind ``benchmark``)."""
    return str(run_record_path(results, "benchmark", scope, name))


def steps_pattern(results: str | Path, scope: str, name: str) -> str:
    """Pattern of a job's per-step timings JSON, beside its benchmark."""
    return str(run_record_path(results, "steps", scope, name))


def run_records_folder(results: str | Path, kind: str) -> Path:
    """Return the folder of one kind of run record (:data:`RUN_RECORDS`: ``log`` or
    ``benchmark``), e.g. ``<results>/benchmarks``."""
    return Path(results) / RUN_RECORDS[kind]


def outside_results(results: str | Path, path: str | Path) -> bool:
    """Whether ``path`` (a file a run writes) lies outside the results tree ``results``
    (both taken relative to the same working directory; ``..`` is resolved)."""
    tree, target = Path(results).resolve(), Path(path).resolve()
    return tree != target and tree not in target.parents
