"""QualityFITS-out of one release product: the assessment (:func:`assess_product`) and
the completeness (:func:`assess_completeness`), parts of rule ``assess_product_quality``
(:mod:`spica.qualityfits_out.product`).

Each function imports what it uses itself (they were separate jobs, fresh Python
processes whose imports cost about as much CPU as their tools, issue 12).
"""


from __future__ import annotations

import math
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from spica.qualityfits_out.figures import figures_hdu

__all__ = ["snapshot_count", "product_figures", "assess_product", "assess_completeness"]

def snapshot_count(naxis1: int, naxis2: int, pixel_scale: float, step_arcmin: float) -> int:
    """PSF snapshots per axis for one every ``step_arcmin`` over the product (at least 1):
    the larger side in arcmin over the step, rounded."""
    side = max(naxis1, naxis2) * pixel_scale / 60.0
    return max(1, int(round(side / step_arcmin)))


def _half_max_fwhm(image: np.ndarray) -> float:
    """FWHM (pixels) of a PSF image from the area above half its peak (a circle's)."""
    image = np.asarray(image, float)
    peak = np.nanmax(image) if image.size else 0.0
    if not peak > 0:
        return math.nan
    return float(2.0 * math.sqrt(np.count_nonzero(image >= 0.5 * peak) / math.pi))


def product_figures(row: Mapping[str, Any], field: Mapping[str, Any], sources, psfex_row: Mapping[str, Any]
                    ) -> dict[str, float]:
    """The QualityFITS-out figures (:data:`spica.qualityfits_out.figures.FIGURES`) from the measurement of a product.

    Parameters
    ----------
    row, field : mapping
        :func:`spica.qualityfits_out.measure.measure_product`'s product row and field figures.
    sources : pandas.DataFrame
        Its classified sources (``cls``, ``mag``).
    psfex_row : mapping
        The PSFEx XML's ``PSF_Extensions`` row of the product.
    """
    from spica.qualityfits_out.measure import count_peak

    scale = float(row["pixel_scale"])

    def psf(key: str, fallback: float = math.nan) -> float:
        value = psfex_row.get(key)
        return float(value) if value is not None and np.isfinite(float(value)) else fallback

    galaxies = sources[sources["cls"] == "galaxy"]["mag"] if len(sources) else []
    area = float(field["area_deg2"])
    return {
        "seeing_arcsec": float(row["fwhm_stars"]) * scale,
        "psf_fwhm_arcsec": psf("FWHM_PixelFree_WCS_Mean", float(row["fwhm_psfex"]) * scale),
        "psf_fwhm_min_arcsec": psf("FWHM_PixelFree_WCS_Min"),
        "psf_fwhm_max_arcsec": psf("FWHM_PixelFree_WCS_Max"),
        "psf_ellipticity_mean": psf("Ellipticity_PixelFree_Mean"),
        "psf_ellipticity_max": psf("Ellipticity_PixelFree_Max"),
        "elongation": float(field["elongation"]),
        "ellipticity": float(field["ellipticity"]),
        "background_adu": float(field["background"]),
        "background_rms_adu": float(field["background_rms"]),
        "background_mag": float(field["background_mag"]),
        "area_deg2": area,
        "n_stars": int(field["n_stars"]),
        "n_galaxies": int(field["n_galaxies"]),
        "star_density_deg2": int(field["n_stars"]) / area if area > 0 else math.nan,
        "galaxy_density_deg2": int(field["n_galaxies"]) / area if area > 0 else math.nan,
        "galaxy_peak_mag": count_peak(np.asarray(galaxies, float)),
        "masked_fraction": float(field["frac_weight_zero"]),
        "psfex_accepted": int(row["psfex_accepted"]),
    }


def assess_product(
    *,
    image: str | Path,
    weight: str | Path,
    binaries: Mapping[str, str],
    configs: Mapping[str, str | Path],
    sextractor_options: Mapping[str, Any],
    psfex_options: Mapping[str, Any],
    psf_map_step_arcmin: float,
    min_snr: float,
    outputs: Mapping[str, str | Path],
    log: Any = None,
) -> dict[str, float]:
    """Run QualityFITS-out on one release product and write its files.

    Parameters
    ----------
    image, weight : path
        The product (``<stem>.fits``) and its weight map (read only).
    binaries : mapping
        ``sextractor`` and ``psfex`` executables.
    configs : mapping
        ``sex``, ``param``, ``conv``, ``nnw`` (SExtractor) and ``psfex`` configuration files.
    sextractor_options, psfex_options : mapping
        Options on top of the configuration files (thresholds, BACK_SIZE,
        SAMPLE_MINSN...); ``SEEING_FWHM`` defaults to the product's ``SEEING``.
    psf_map_step_arcmin : float
        Step of the PSF map (config ``qualityfits_out.psf_map_step_arcmin``).
    min_snr : float
        S/N above which sources are classified.
    outputs : mapping
        Key -> path: every key of :data:`spica.paths.QUALITYFITS_OUT_PRODUCTS` and
        ``qfo_ldac``, ``qfo_sex_xml``, ``qfo_psfex_xml``
        (:data:`spica.paths.QUALITYFITS_OUT_INTERMEDIATES`).
    log : file, optional
        Receives the tools' output.

    Returns
    -------
    dict
        The figures (:data:`spica.qualityfits_out.figures.FIGURES`).

    Raises
    ------
    ValueError
        If the product, its weight or the catalogue cannot be read as one image.
    """
    from spica.astromatic import psfex, sextractor
    from spica.astromatic.psfex import read_psf_extensions
    from spica.qualityfits_out import plots as qfo_plots
    from spica.qualityfits_out.measure import load_product, measure_product, reference_counts, snapshot_grid
    from spica.step1.qa import plots as qa_plots
    from spica.step1.qa.measure import celestial_wcs
    from spica.step1.qa.measure import pixel_scale as measured_pixel_scale
    from spica.step1.qa.report import write_diag

    out = {key: Path(value) for key, value in outputs.items()}
    header = fits.getheader(image)
    if int(header.get("NAXIS", 0)) != 2:
        raise ValueError(f"{image}: not a single 2-D image (NAXIS = {header.get('NAXIS')})")
    pixel_scale = measured_pixel_scale(header, celestial_wcs(header))
    seeing = float(header.get("SEEING", 0.8) or 0.8)
    sextractor.run(
        binaries["sextractor"], images=image, weights=weight, config=configs["sex"], param=configs["param"],
        conv=configs["conv"], nnw=configs["nnw"], catalog=out["qfo_ldac"], xml_out=out["qfo_sex_xml"],
        checkimage=out["bkg"], options={"SEEING_FWHM": seeing, **sextractor_options}, log=log,
    )
    nsnap = snapshot_count(int(header["NAXIS1"]), int(header["NAXIS2"]), pixel_scale, psf_map_step_arcmin)
    folder = out["qfo_ldac"].parent
    psfex.run(
        binaries["psfex"], catalog=out["qfo_ldac"], config=configs["psfex"], psf_dir=folder,
        xml_out=out["qfo_psfex_xml"],
        options={**psfex_options, "PSFVAR_NSNAP": nsnap, "CHECKIMAGE_TYPE": "SNAPSHOTS",
                 "CHECKIMAGE_NAME": folder / "snap.fits"},
        log=log,
    )
    stem = out["qfo_ldac"].name.removesuffix(".fits")
    model, snapshots_path = folder / f"{stem}.psf", folder / f"snap_{stem}.fits"
    if not model.is_file():
        raise ValueError(f"PSFEx wrote no model {model.name} for {Path(image).name}")
    shutil.move(model, out["protopsf"])
    snapshots = fits.getdata(snapshots_path) if snapshots_path.is_file() else None
    snapshots_path.unlink(missing_ok=True)

    inputs = load_product(image=image, weight=weight, ldac=out["qfo_ldac"], sex_xml=out["qfo_sex_xml"],
                          psf=out["protopsf"], psfex_xml=out["qfo_psfex_xml"])
    row, sources, field = measure_product(inputs, min_snr=min_snr)
    psfex_row = next(iter(read_psf_extensions(out["qfo_psfex_xml"]).values()), {})
    figures = product_figures(row, field, sources, psfex_row)

    name = inputs.name
    band = str(header.get("FILTER", "?")).strip()[:1]
    tag = f"{name} {header.get('FILTER', '')}"
    stars = sources[sources["cls"] == "star"] if len(sources) else sources
    galaxies = sources[sources["cls"] == "galaxy"] if len(sources) else sources

    def pair(key: str) -> list[Path | None]:
        return [out.get(key), out.get(key + "_ps")]

    if snapshots is not None:
        grid = snapshot_grid(np.asarray(snapshots, float), nsnap)
        fwhm = np.array([[_half_max_fwhm(psf) * pixel_scale for psf in line] for line in grid])
        qfo_plots.psf_map_plot(grid, fwhm, psf_map_step_arcmin, out["psf_m"], title=f"{tag}: PSF map")
    else:
        qfo_plots.psf_map_plot([[np.zeros((1, 1))]], np.full((1, 1), math.nan), psf_map_step_arcmin,
                               out["psf_m"], title=f"{tag}: no PSF snapshots")
    star_fwhm = stars["FWHM_IMAGE"].to_numpy(float) * pixel_scale if len(stars) else np.zeros(0)
    qfo_plots.fwhm_histogram_plot(star_fwhm, figures["psf_fwhm_arcsec"], pair("fwhm_histo"),
                                  title=f"{tag}: FWHM of the stars")
    qa_plots.counts_plot(stars["mag"] if len(stars) else [], figures["area_deg2"], pair("star_histo"),
                         title=f"{tag}: star counts ({figures['n_stars']})", color="tab:red", label="stars")
    try:
        reference = reference_counts(band)
    except KeyError:
        reference = None
    qfo_plots.galaxy_counts_plot(galaxies["mag"] if len(galaxies) else [], figures["area_deg2"],
                                 pair("gal_histo"), title=f"{tag}: galaxy counts ({figures['n_galaxies']})",
                                 peak=figures["galaxy_peak_mag"], reference=reference)
    rh_star = float(row["rh_star"])
    for key, classes, what in [
        ("rhmag", ("faint", "artifact", "saturated", "galaxy", "star"), "all sources"),
        ("rhmag_gal", ("galaxy",), "galaxies"),
        ("rhmag_star", ("star",), "stars"),
    ]:
        qa_plots.rhmag_plot(sources, pair(key), classes=classes, title=f"{tag}: {what}", rh_star=rh_star)
    geometries, labels = [inputs.ccds[0].geometry], [name]
    for key in ("ell", "ell_ps"):
        qa_plots.ellipticity_plot(stars, geometries, labels, out[key], title=f"{tag}: stellar ellipticity")
    write_diag(out["diag"], [row], field, "", [], header)
    with fits.open(out["diag"], mode="append") as hdul:
        hdul.append(figures_hdu(figures))
    return figures


def assess_completeness(
    *,
    image: str | Path,
    weight: str | Path,
    psf: str | Path,
    binary: str,
    configs: Mapping[str, str | Path],
    options: Mapping[str, Any],
    settings: Mapping[str, Any],
    pixel_scale: float,
    outputs: Mapping[str, str | Path],
    log: Any = None,
) -> dict[str, float]:
    """Measure a product's completeness (:func:`spica.qualityfits_out.completeness.measure_completeness`,
    the release catalogue's ``configs``: ``sex``, ``param``, ``conv``, ``nnw``) and draw
    ``_comptness.png``/``.ps``; ``outputs`` keys ``comptness``, ``comptness_ps``,
    ``comptness_table``. Returns ``m50``, ``m80`` and the star counts."""
    from spica.qualityfits_out import plots as qfo_plots
    from spica.qualityfits_out.completeness import measure_completeness, read_completeness

    result = measure_completeness(
        image=image, weight=weight, psf=psf, binary=binary, config=configs["sex"], param=configs["param"],
        conv=configs["conv"], nnw=configs["nnw"], options=options, settings=settings,
        pixel_scale=pixel_scale, out=outputs["comptness_table"], log=log,
    )
    curve = read_completeness(outputs["comptness_table"])["curve"]
    header = fits.getheader(image)
    qfo_plots.completeness_plot(
        np.asarray(curve["magnitude"]), np.asarray(curve["fraction"]), result["m50"], result["m80"],
        [outputs["comptness"], outputs["comptness_ps"]],
        title=f"{Path(image).name.removesuffix('.fits')} {header.get('FILTER', '')}: completeness "
              f"({result['n_injected']} simulated stars)",
    )
    return result
