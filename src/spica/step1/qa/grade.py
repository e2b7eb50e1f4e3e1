"""Provisional TERAPIX grade (A/B/C/D) of one exposure from its QualityFITS-in figures.

The seed (section 3.2.1) grades every exposure by eye; this module gives the
*provisional* grade that the astronomer confirms. The rules are explicit and
each one that fires adds a reason ``"<GRADE>: <rule>: <message>"``; the grade
is the worst one fired (A < B < C < D).

Rules (``L`` = ``limits``, config ``step1.grading``: every key required, no defaults here)

D — astrometry
    * a CCD whose header WCS is more than ``max_ccd_offset_arcsec`` away from
      where the DETSEC layout and the plate solution of the other CCDs put it
      (``astrometric_offset``, see :func:`spica.step1.qa.measure.astrometric_offsets`).

C — unusable
    * ``fwhm``: field FWHM > ``max_fwhm_arcsec * fwhm_c_factor``;
    * ``elongation``: median stellar elongation of the whole field
      > ``max_elongation`` (elongated PSF: guiding problem or blended multiple images);
    * ``multiple_images``: median over CCDs of the fraction of bright sources
      having a twin at one common offset > ``max_multiple_image_fraction``
      (multiply-imaged stars, guiding jump);
    * ``star_count``: median number of stars per CCD < ``min_star_count_per_ccd``;
    * ``masked``: masked pixel fraction of the field > ``max_masked_fraction_c``.

B — acceptable with minor problems
    * ``fwhm``: ``max_fwhm_arcsec`` < field FWHM <= ``max_fwhm_arcsec * fwhm_c_factor``;
    * ``fwhm_scatter``: relative scatter of the per-CCD FWHM > ``max_ccd_fwhm_scatter``;
    * ``ccd_elongation``: some (not most) CCDs above ``max_elongation``;
    * ``ccd_star_count``: some CCDs with fewer than ``min_star_count_per_ccd`` stars;
    * ``masked``: masked fraction > ``max_bad_fraction``;
    * ``psfex``: PSFEx failed on some CCDs;
    * ``background``: a CCD background more than ``max_background_deviation``
      robust sigmas (and 5 %) from the median of the CCDs (wrong sky estimate).

A — none of the above.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["GRADES", "provisional_grade"]

#: Grades from best to worst.
GRADES = ("A", "B", "C", "D")

def _finite(x: object) -> bool:
    try:
        return math.isfinite(float(x))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def provisional_grade(
    figures: Mapping[str, object], limits: Mapping[str, float]
) -> tuple[str, list[str]]:
    """Grade an exposure from its QualityFITS-in figures.

    Parameters
    ----------
    figures : mapping
        ``{"field": {...}, "ccds": [{...}, ...]}`` as produced by
        :func:`spica.step1.qa.measure.measure_exposure` (field keys used:
        ``fwhm_arcsec``, ``elongation``, ``multiple_image_fraction``,
        ``frac_masked``, ``fwhm_scatter``; CCD keys: ``extname``,
        ``fwhm_arcsec``, ``elongation``, ``n_stars``, ``psfex_ok``,
        ``background``, ``astrometric_offset``).
    limits : mapping
        Thresholds, every key of config ``step1.grading`` (the schema requires them all).

    Returns
    -------
    grade : str
        ``"A"``, ``"B"``, ``"C"`` or ``"D"``.
    reasons : list of str
        One ``"<grade>: <rule>: <message>"`` per rule fired, worst first.
    """
    lim = dict(limits)
    field: Mapping[str, object] = figures.get("field", {})  # type: ignore[assignment]
    ccds: Sequence[Mapping[str, object]] = figures.get("ccds", [])  # type: ignore[assignment]
    reasons: list[tuple[str, str]] = []

    def fire(grade: str, rule: str, message: str) -> None:
        reasons.append((grade, f"{grade}: {rule}: {message}"))

    # D: astrometry
    for c in ccds:
        off = c.get("astrometric_offset")
        if _finite(off) and float(off) > lim["max_ccd_offset_arcsec"]:  # type: ignore[arg-type]
            fire(
                "D",
                "astrometry",
                f"CCD {c.get('extname')} WCS is {float(off):.1f} arcsec away from the focal-plane "  # type: ignore[arg-type]
                f"position given by DETSEC and the other CCDs (limit {lim['max_ccd_offset_arcsec']:g})",
            )

    # FWHM
    fwhm = field.get("fwhm_arcsec")
    if not _finite(fwhm):
        fire("C", "fwhm", "no FWHM could be measured (no PSF model and no stars)")
    elif float(fwhm) > lim["max_fwhm_arcsec"] * lim["fwhm_c_factor"]:  # type: ignore[arg-type]
        fire("C", "fwhm", f"FWHM {float(fwhm):.2f} arcsec far above the limit {lim['max_fwhm_arcsec']:g}")  # type: ignore[arg-type]
    elif float(fwhm) > lim["max_fwhm_arcsec"]:  # type: ignore[arg-type]
        fire("B", "fwhm", f"FWHM {float(fwhm):.2f} arcsec above the limit {lim['max_fwhm_arcsec']:g}")  # type: ignore[arg-type]
    scatter = field.get("fwhm_scatter")
    if _finite(scatter) and float(scatter) > lim["max_ccd_fwhm_scatter"]:  # type: ignore[arg-type]
        fire("B", "fwhm_scatter", f"per-CCD FWHM scatter {float(scatter):.2f} > {lim['max_ccd_fwhm_scatter']:g}")  # type: ignore[arg-type]

    # elongation / multiple images
    elong = field.get("elongation")
    if _finite(elong) and float(elong) > lim["max_elongation"]:  # type: ignore[arg-type]
        fire(
            "C",
            "elongation",
            f"stellar elongation {float(elong):.2f} > {lim['max_elongation']:g} over the whole field "  # type: ignore[arg-type]
            "(elongated PSF: guiding problem or multiply-imaged stars)",
        )
    else:
        bad = [str(c.get("extname")) for c in ccds if _finite(c.get("elongation")) and float(c["elongation"]) > lim["max_elongation"]]  # type: ignore[arg-type]
        if bad:
            fire("B", "ccd_elongation", f"elongation > {lim['max_elongation']:g} on CCD {', '.join(bad)}")
    mult = field.get("multiple_image_fraction")
    if _finite(mult) and float(mult) > lim["max_multiple_image_fraction"]:  # type: ignore[arg-type]
        fire(
            "C",
            "multiple_images",
            f"{100 * float(mult):.0f}% of bright sources have a twin at a common offset "  # type: ignore[arg-type]
            "(multiply-imaged stars: guiding jump)",
        )

    # star counts
    counts = np.array([float(c.get("n_stars", 0)) for c in ccds], float)  # type: ignore[arg-type]
    if counts.size and np.median(counts) < lim["min_star_count_per_ccd"]:
        fire("C", "star_count", f"too few stars: median {np.median(counts):.0f} per CCD < {lim['min_star_count_per_ccd']:g}")
    elif counts.size:
        few = [str(c.get("extname")) for c in ccds if float(c.get("n_stars", 0)) < lim["min_star_count_per_ccd"]]  # type: ignore[arg-type]
        if few:
            fire("B", "ccd_star_count", f"fewer than {lim['min_star_count_per_ccd']:g} stars on CCD {', '.join(few)}")

    # masked pixels
    masked = field.get("frac_masked")
    if _finite(masked) and float(masked) > lim["max_masked_fraction_c"]:  # type: ignore[arg-type]
        fire("C", "masked", f"{100 * float(masked):.0f}% of the pixels are masked")  # type: ignore[arg-type]
    elif _finite(masked) and float(masked) > lim["max_bad_fraction"]:  # type: ignore[arg-type]
        fire("B", "masked", f"{100 * float(masked):.0f}% of the pixels are masked (> {100 * lim['max_bad_fraction']:.0f}%)")  # type: ignore[arg-type]

    # PSFEx failures
    failed = [str(c.get("extname")) for c in ccds if not c.get("psfex_ok", True)]
    if failed and len(failed) < len(ccds):
        fire("B", "psfex", f"no PSF model for CCD {', '.join(failed)}")
    elif failed:
        fire("B", "psfex", "no PSF model for any CCD (FWHM from stars)")

    # background outliers
    bkg = np.array([float(c.get("background", math.nan)) for c in ccds], float)  # type: ignore[arg-type]
    ok = np.isfinite(bkg)
    if ok.sum() >= 3:
        med = float(np.median(bkg[ok]))
        sig = 1.4826 * float(np.median(np.abs(bkg[ok] - med)))
        dev = [
            str(c.get("extname"))
            for c, b in zip(ccds, bkg)
            if np.isfinite(b) and abs(b - med) > max(lim["max_background_deviation"] * sig, 0.05 * abs(med))
        ]
        if dev:
            fire("B", "background", f"background of CCD {', '.join(dev)} deviates from the field median {med:.1f}")

    if not reasons:
        return "A", []
    reasons.sort(key=lambda gr: -GRADES.index(gr[0]))
    return reasons[0][0], [r for _, r in reasons]
