"""Provisional grade (A/B/C/D) of a release product from its QualityFITS-out figures.

The seed (3.2.1): "The TERAPIX release control team checks each released image
produced in both modes and grades it. Images with grade A or B are validated
and can be delivered to CADC. Otherwise, the control team writes a very short
problem report [...] and the SPICA process is ran again, once the problem is
fixed." QualityFITS-out *proposes* a grade, as QualityFITS-in does for the
exposures (:mod:`spica.step1.qa.grade`); it is marked provisional wherever it
appears, and the team's grade (``inputs.product_grades``) is what counts.

Each rule that fires adds a reason ``"<GRADE>: <rule>: <message>"``; the grade
is the worst one fired (A < B < C < D). Rules (``L`` = ``limits``, config
``qualityfits_out.grading``: every key required, no defaults here):

D — astrometry
    * ``astrometry``: SCAMP's reference chi2 (worst field group) >
      ``max_astrometric_chi2`` (the solution does not match the reference).

C — not acceptable
    * ``fwhm``: no PSF FWHM measured, or PSF FWHM / the seeing its stacked
      inputs predict (the worst input's QualityFITS-in seeing) >
      ``max_fwhm_ratio_c``: an input misregistered by about a FWHM blurs
      every star (the FWHM is well above what the inputs' seeing predicts);
    * ``elongation``: median stellar elongation > ``max_elongation_c``;
    * ``multiple_images``: fraction of bright sources with a twin at one
      common offset > ``max_multiple_image_fraction`` (an input misregistered
      by several FWHM doubles every star; QualityFITS-in's measurement);
    * ``star_count``: fewer than ``min_stars`` stars.

B — acceptable with minor problems
    * ``fwhm``: ratio above ``max_fwhm_ratio_b``;
    * ``elongation``: above ``max_elongation_b``;
    * ``completeness``: 50 % completeness magnitude brighter than
      ``min_completeness_50_mag`` (or not measured);
    * ``masked``: zero-weight pixel fraction > ``max_masked_fraction``.

A — none of the above.

Figures that are missing (NaN, absent: no SCAMP statistics, no predicted
seeing) fire no rule except where said.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

from spica.step1.qa.grade import GRADES

__all__ = ["GRADING_FIGURES", "GRADE_COLUMNS", "provisional_product_grade", "predicted_seeing",
           "astrometric_chi2", "read_multiple_image_fraction", "team_grade", "grade_columns",
           "grading_figures"]

#: Figures :func:`provisional_product_grade` reads (keys of ``figures``).
GRADING_FIGURES: tuple[str, ...] = (
    "psf_fwhm_arcsec", "predicted_seeing_arcsec", "elongation", "multiple_image_fraction",
    "n_stars", "completeness_50_mag", "masked_fraction", "astrometric_chi2",
)


def _value(figures: Mapping[str, object], key: str) -> float:
    """``figures[key]`` as a float; NaN when absent or not a finite number."""
    try:
        value = float(figures.get(key))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return value if math.isfinite(value) else math.nan


def provisional_product_grade(
    figures: Mapping[str, object], limits: Mapping[str, float]
) -> tuple[str, str]:
    """Grade a release product from its QualityFITS-out figures.

    Parameters
    ----------
    figures : mapping
        :data:`GRADING_FIGURES`: the QualityFITS-out figures
        (:func:`spica.qualityfits_out.figures.read_figures`: ``psf_fwhm_arcsec``,
        ``elongation``, ``n_stars``, ``masked_fraction``), the product's
        ``multiple_image_fraction`` (:func:`read_multiple_image_fraction`),
        ``completeness_50_mag``, ``predicted_seeing_arcsec``
        (:func:`predicted_seeing`) and ``astrometric_chi2``
        (:func:`astrometric_chi2`); a missing one is NaN.
    limits : mapping
        Every key of config ``qualityfits_out.grading``.

    Returns
    -------
    grade : str
        ``"A"``, ``"B"``, ``"C"`` or ``"D"``.
    reason : str
        The rules fired, worst first, joined by ``"; "``; for A,
        ``"A: every figure within its limits"``.

    Raises
    ------
    KeyError
        A limit is missing.
    """
    lim = {key: float(limits[key]) for key in (
        "max_fwhm_ratio_b", "max_fwhm_ratio_c", "max_elongation_b", "max_elongation_c",
        "max_multiple_image_fraction", "min_stars", "min_completeness_50_mag",
        "max_masked_fraction", "max_astrometric_chi2")}
    fired: list[tuple[str, str]] = []

    def fire(grade: str, rule: str, message: str) -> None:
        fired.append((grade, f"{grade}: {rule}: {message}"))

    chi2 = _value(figures, "astrometric_chi2")
    if chi2 > lim["max_astrometric_chi2"]:
        fire("D", "astrometry", f"SCAMP reference chi2 {chi2:.1f} > {lim['max_astrometric_chi2']:g}")

    fwhm, seeing = _value(figures, "psf_fwhm_arcsec"), _value(figures, "predicted_seeing_arcsec")
    if math.isnan(fwhm):
        fire("C", "fwhm", "no PSF FWHM could be measured")
    elif seeing > 0:
        ratio = fwhm / seeing
        text = (f"PSF FWHM {fwhm:.2f} arcsec is {ratio:.2f} x the {seeing:.2f} arcsec its "
                f"inputs' seeing predicts")
        if ratio > lim["max_fwhm_ratio_c"]:
            fire("C", "fwhm", f"{text} (> {lim['max_fwhm_ratio_c']:g}: misregistered input?)")
        elif ratio > lim["max_fwhm_ratio_b"]:
            fire("B", "fwhm", f"{text} (> {lim['max_fwhm_ratio_b']:g})")

    elongation = _value(figures, "elongation")
    if elongation > lim["max_elongation_c"]:
        fire("C", "elongation", f"stellar elongation {elongation:.2f} > {lim['max_elongation_c']:g}")
    elif elongation > lim["max_elongation_b"]:
        fire("B", "elongation", f"stellar elongation {elongation:.2f} > {lim['max_elongation_b']:g}")

    multiple = _value(figures, "multiple_image_fraction")
    if multiple > lim["max_multiple_image_fraction"]:
        fire("C", "multiple_images", f"{100 * multiple:.0f}% of bright sources have a twin at one "
             f"offset (> {100 * lim['max_multiple_image_fraction']:.0f}%: doubled stars, "
             "misregistered input)")

    stars = _value(figures, "n_stars")
    if not stars >= lim["min_stars"]:  # NaN: no stars counted
        fire("C", "star_count", f"{0 if math.isnan(stars) else stars:.0f} stars < {lim['min_stars']:g}")

    m50 = _value(figures, "completeness_50_mag")
    if math.isnan(m50):
        fire("B", "completeness", "no 50 % completeness magnitude measured")
    elif m50 < lim["min_completeness_50_mag"]:
        fire("B", "completeness", f"50 % completeness at {m50:.2f} mag, brighter than "
             f"{lim['min_completeness_50_mag']:g}")

    masked = _value(figures, "masked_fraction")
    if masked > lim["max_masked_fraction"]:
        fire("B", "masked", f"{100 * masked:.0f}% of the pixels have zero weight "
             f"(> {100 * lim['max_masked_fraction']:.0f}%)")

    if not fired:
        return "A", "A: every figure within its limits"
    fired.sort(key=lambda item: -GRADES.index(item[0]))
    return fired[0][0], "; ".join(reason for _, reason in fired)


def predicted_seeing(seeing_arcsec: Sequence[float]) -> float:
    """The seeing a product's inputs predict: the worst (largest) finite QualityFITS-in
    seeing of the exposures it stacks; NaN when none is known."""
    values = [float(v) for v in seeing_arcsec if v is not None and math.isfinite(float(v))]
    return max(values) if values else math.nan


def astrometric_chi2(groups_chi2: Sequence[float]) -> float:
    """SCAMP's reference chi2 of the worst field group (``astrom_chi2_reference`` of
    :func:`spica.astromatic.scamp.parse_scamp_xml`'s groups); NaN when none."""
    values = [float(v) for v in groups_chi2 if v is not None and math.isfinite(float(v))]
    return max(values) if values else math.nan


def read_multiple_image_fraction(diag: str | Path) -> float:
    """The product's multiple-image fraction: its one row of the ``CCD_DIAG`` table of
    ``_diag.fits`` (QualityFITS-in's measurement of the product); NaN if absent."""
    from astropy.io import fits

    with fits.open(diag, memmap=False) as hdul:
        if "CCD_DIAG" not in hdul or "multiple_image_fraction" not in hdul["CCD_DIAG"].columns.names:
            return math.nan
        data = hdul["CCD_DIAG"].data
        return float(data["multiple_image_fraction"][0]) if len(data) else math.nan


#: Columns the grades add to the ``QualityFITS_out`` table of ``_spica.xml``, with their
#: descriptions: the provisional grade (QualityFITS-out's proposal), then the team's.
GRADE_COLUMNS: dict[str, str] = {
    "provisional_grade": "PROVISIONAL grade proposed by QualityFITS-out from the figures "
                         "(config qualityfits_out.grading); the release control team's grade decides",
    "provisional_reason": "the rules that set the provisional grade, worst first",
    "provisional": "T: the row's only grade is QualityFITS-out's provisional one (no team grade yet)",
    "grade": "the release control team's grade (inputs.product_grades), empty if not graded",
    "graded_by": "who gave the team's grade",
    "grade_date": "when the team's grade was given",
    "comment": "the team's comment",
    "problem_report": "grade C or D: the team's problem report (its comment); the product is not delivered",
}


def team_grade(grades: pd.DataFrame, release: str, stem: str) -> dict[str, str]:
    """The release control team's grade of product ``stem`` of ``release``.

    Parameters
    ----------
    grades : pandas.DataFrame
        :func:`spica.registry.read_product_grades` of ``inputs.product_grades``
        (product, grade, comment, graded_by, date, provisional).
    release, stem : str
        The product (``T0002``, ``CFHTLS_D_r_141927+524056_T0002``). A row whose
        ``product`` is ``<release>/<stem>`` wins over one that is ``<stem>`` (an
        image-by-image stem such as ``751042p_V0001`` names the Very Wide image
        of a release and the automatic image mode's, folder ``V0001``).

    Returns
    -------
    dict
        ``grade``, ``comment``, ``graded_by``, ``date`` (str); empty when the
        team has not graded it (rows without ``graded_by`` are provisional and
        do not count).
    """
    if grades is None or not len(grades):
        return {}
    graded = grades[grades["graded_by"].astype(str).str.strip() != ""]
    for key in (f"{release}/{stem}", stem):
        rows = graded[graded["product"].astype(str).str.strip() == key]
        if len(rows):
            row = rows.iloc[-1]
            return {name: str(row[name]).strip() for name in ("grade", "comment", "graded_by", "date")}
    return {}


def grade_columns(
    figures: Mapping[str, object] | None,
    limits: Mapping[str, float] | None,
    team: Mapping[str, str] | None,
) -> dict[str, list]:
    """The :data:`GRADE_COLUMNS` of a product's ``QualityFITS_out`` row.

    Parameters
    ----------
    figures : mapping or None
        :data:`GRADING_FIGURES` (None: no QualityFITS-out, no row).
    limits : mapping or None
        Config ``qualityfits_out.grading`` (None: no provisional grade, empty columns).
    team : mapping or None
        :func:`team_grade`.

    Returns
    -------
    dict of str to list
        Column -> one value (none without ``figures``).
    """
    if figures is None:
        return {name: [] for name in GRADE_COLUMNS}
    grade, reason = provisional_product_grade(figures, limits) if limits else ("", "")
    team = dict(team or {})
    team_letter = team.get("grade", "").upper()
    return {
        "provisional_grade": [grade],
        "provisional_reason": [reason],
        "provisional": [not team_letter],
        "grade": [team_letter],
        "graded_by": [team.get("graded_by", "")],
        "grade_date": [team.get("date", "")],
        "comment": [team.get("comment", "")],
        "problem_report": [team.get("comment", "") if team_letter in ("C", "D") else ""],
    }


def grading_figures(
    quality: Mapping[str, object] | None,
    completeness: Mapping[str, float] | None,
    input_seeing: Sequence[float],
    groups_chi2: Sequence[float],
) -> dict[str, object] | None:
    """The :data:`GRADING_FIGURES` of a product from what its summary reads.

    Parameters
    ----------
    quality : mapping or None
        :func:`spica.qualityfits_out.figures.read_figures` (plus
        ``multiple_image_fraction``, :func:`read_multiple_image_fraction`);
        None: no QualityFITS-out, no grade.
    completeness : mapping or None
        :func:`spica.qualityfits_out.completeness.read_completeness` (``m50``).
    input_seeing : sequence of float
        QualityFITS-in seeing of the exposures stacked (:func:`predicted_seeing`).
    groups_chi2 : sequence of float
        SCAMP's ``astrom_chi2_reference`` per field group (:func:`astrometric_chi2`).
    """
    if quality is None:
        return None
    return {**quality,
            "completeness_50_mag": math.nan if completeness is None else completeness["m50"],
            "predicted_seeing_arcsec": predicted_seeing(input_seeing),
            "astrometric_chi2": astrometric_chi2(groups_chi2)}
