"""QualityFITS-in: per-exposure quality assessment of step 1 (seed, section 3.1).

Public entry point: :func:`assess_exposure`, called by the Snakemake script of
the step 1 QA rule. It reads the step 1 tool outputs once
(:func:`spica.step1.qa.measure.load_inputs`), measures the per-CCD and whole-field
figures (:func:`spica.step1.qa.measure.measure_exposure`), grades the exposure
(:func:`spica.step1.qa.grade.provisional_grade`) and writes the plots
(:mod:`spica.step1.qa.plots`), the ``_diag.fits`` table and the ``NNNNNNp.xml``
summary (:mod:`spica.step1.qa.report`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

from spica.step1.qa import plots
from spica.step1.qa.grade import provisional_grade
from spica.step1.qa.measure import load_inputs, measure_exposure
from spica.step1.qa.report import read_summary, write_diag, write_qa_xml

__all__ = ["assess_exposure", "read_summary", "provisional_grade"]


def assess_exposure(
    *,
    exposure: str | Path,
    weight: str | Path,
    flag: str | Path,
    ldac: str | Path,
    sex_xml: str | Path | None,
    minibkg: str | Path | None,
    psf: str | Path | None,
    psfex_xml: str | Path | None,
    outputs: Mapping[str, str | Path],
    limits: Mapping[str, float],
    science: Callable[[int], np.ndarray | None] | None = None,
) -> dict[str, object]:
    """Run QualityFITS-in on one exposure and write every product.

    Parameters
    ----------
    exposure, weight, flag : path
        Elixir MEF, weight and flag maps (one extension per CCD).
    ldac : path
        SExtractor FITS-LDAC catalogue.
    sex_xml, minibkg : path or None
        SExtractor XML and MINIBACKGROUND check image.
    psf, psfex_xml : path or None
        PSFEx model (``_ldac.psf``) and XML; a missing CCD model is tolerated.
    outputs : mapping
        Key -> path, keys of :data:`spica.paths.QA_PLOTS` plus ``"diag"`` and
        ``"qa_xml"``. Keys absent from the mapping are not written.
    limits : mapping
        ``step1.grading`` thresholds, every key (see :mod:`spica.step1.qa.grade`).
    science : callable, optional
        The exposure's CCD pixels already in memory
        (:class:`spica.step1.reduce.KeptPixels`): see
        :func:`spica.step1.qa.measure.load_inputs`.

    Returns
    -------
    dict
        Whole-field summary: the field figures (``fwhm_arcsec``, ``fwhm_px``,
        ``elongation``, ``n_stars``, ``n_galaxies``, ``background``,
        ``background_mag``, ...) plus ``grade``, ``grade_reasons`` and ``ccds``
        (the per-CCD figures).
    """
    lim = dict(limits)
    inputs = load_inputs(
        exposure=exposure, weight=weight, flag=flag, ldac=ldac, sex_xml=sex_xml,
        minibkg=minibkg, psf=psf, psfex_xml=psfex_xml, science=science,
    )  # fmt: skip
    ccds, sources, field = measure_exposure(inputs, astrometry_tolerance=float(lim["max_ccd_offset_arcsec"]))
    grade, reasons = provisional_grade({"field": field, "ccds": ccds}, lim)

    out = {k: Path(v) for k, v in outputs.items()}

    def pair(key: str) -> list[Path | None]:
        return [out.get(key), out.get(key + "_ps")]

    name = inputs.name
    filt = field.get("filter", "")
    geoms = [c.geometry for c in inputs.ccds]
    labels = [c.extname for c in inputs.ccds]
    col = {k: np.array([r[k] for r in ccds], float) for k in ("background", "fwhm_arcsec", "rh_star")}
    stars = sources[sources["cls"] == "star"] if len(sources) else sources
    galaxies = sources[sources["cls"] == "galaxy"] if len(sources) else sources
    tag = f"{name} {filt} grade {grade}"

    if any(pair("bkg_histo")):
        plots.histogram_plot(
            col["background"], pair("bkg_histo"), xlabel="background (ADU)",
            title=f"{tag}: background, median {field['background']:.1f} ADU "
            f"= {field['background_mag']:.2f} mag/arcsec²",
        )  # fmt: skip
    if any(pair("fwhm_histo")):
        scale = np.array([r["pixel_scale"] for r in ccds], float)
        star_fwhm = (
            stars["FWHM_IMAGE"].to_numpy(float) * scale[stars["ccd"].to_numpy(int)]
            if len(stars) and "FWHM_IMAGE" in stars else None
        )  # fmt: skip
        plots.histogram_plot(
            col["fwhm_arcsec"], pair("fwhm_histo"), xlabel="FWHM (arcsec)",
            title=f"{tag}: FWHM per CCD, median {field['fwhm_arcsec']:.2f}\"",
            limit=float(lim["max_fwhm_arcsec"]), extra=star_fwhm, extra_label="stars FWHM_IMAGE",
        )  # fmt: skip
    if any(pair("star_histo")):
        plots.counts_plot(
            stars["mag"] if len(stars) else [], float(field["area_deg2"]), pair("star_histo"),
            title=f"{tag}: star counts ({field['n_stars']})", color="tab:red", label="stars",
        )  # fmt: skip
    if any(pair("gal_histo")):
        plots.counts_plot(
            galaxies["mag"] if len(galaxies) else [], float(field["area_deg2"]), pair("gal_histo"),
            title=f"{tag}: galaxy counts ({field['n_galaxies']})", color="tab:blue", label="galaxies",
        )  # fmt: skip
    rh_med = float(np.nanmedian(col["rh_star"])) if np.any(np.isfinite(col["rh_star"])) else math.nan
    for key, classes, what in [
        ("rhmag", ("faint", "artifact", "saturated", "galaxy", "star"), "all sources"),
        ("rhmag_gal", ("galaxy",), "galaxies"),
        ("rhmag_star", ("star",), "stars"),
    ]:
        if any(pair(key)):
            plots.rhmag_plot(sources, pair(key), classes=classes, title=f"{tag}: {what}", rh_star=rh_med)
    if "ell" in out:
        plots.ellipticity_plot(stars, geoms, labels, out["ell"], title=f"{tag}: stellar ellipticity")
    if "psf_m" in out:
        plots.psf_mosaic_plot(
            [c.psf_image for c in inputs.ccds], geoms, labels, list(col["fwhm_arcsec"]), out["psf_m"],
            title=f"{tag}: PSFEx model at each CCD centre",
        )  # fmt: skip
    if geoms and any(k in out for k in ("m", "m_med")):
        canvas, boxes = plots.mosaic([c.thumb for c in inputs.ccds], geoms, inputs.binning)
        if "m" in out:
            plots.mosaic_thumbnail(canvas, boxes, labels, out["m"], max_pixels=1200, title=f"{tag}: image")
        if "m_med" in out:
            plots.mosaic_thumbnail(canvas, boxes, labels, out["m_med"], max_pixels=400, title=name)
    if geoms and any(k in out for k in ("wmm", "wmm_med")):
        canvas, boxes = plots.mosaic([c.weight_thumb for c in inputs.ccds], geoms, inputs.binning)
        if "wmm" in out:
            plots.mosaic_thumbnail(canvas, boxes, labels, out["wmm"], max_pixels=1200, title=f"{tag}: weight map",
                                   stretch="linear")  # fmt: skip
        if "wmm_med" in out:
            plots.mosaic_thumbnail(canvas, boxes, labels, out["wmm_med"], max_pixels=400, title=name, stretch="linear")
    if geoms and "bkg_m" in out:
        canvas, boxes = plots.mosaic([c.minibkg for c in inputs.ccds], geoms, inputs.binning)
        plots.mosaic_thumbnail(canvas, boxes, labels, out["bkg_m"], max_pixels=600,
                               title=f"{tag}: mini-background", stretch="linear", cmap="viridis")  # fmt: skip
    if "diag" in out:
        write_diag(out["diag"], ccds, field, grade, reasons, inputs.primary)
    if "qa_xml" in out:
        from spica import __version__

        write_qa_xml(out["qa_xml"], ccds, field, grade, reasons, software=f"SPICA {__version__}")
    return {**field, "grade": grade, "grade_reasons": reasons, "ccds": ccds}
