"""QualityFITS-out of one release product, and its thumbnails and dust map: one job
(rule ``assess_product_quality``).

Everything here reads only the product's image and weight (and the reference
catalogue, the dust map): SExtractor and PSFEx with their figures and
``_diag.fits`` (:func:`spica.qualityfits_out.assess.assess_product`), the
completeness (:func:`~spica.qualityfits_out.assess.assess_completeness`), the
w(theta) of its stars (:func:`spica.qualityfits_out.colours.make_star_clustering`),
the automatic masks (:func:`spica.qualityfits_out.masks.mask_product`), the
thumbnails (:func:`spica.products.thumbnails.write_thumbnails`) and the E(B-V)
map (:func:`spica.coaddition.dust.write_dust_map`). They were six Snakemake jobs
per product, which at survey scale cost more DAG time than they saved in
reruns (issue 10, section 5).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from spica import paths
from spica.step1.timing import Usage

__all__ = ["assess_release_product"]


def assess_release_product(
    *,
    stem: str,
    image: str | Path,
    weight: str | Path,
    refcat: str | Path,
    binaries: Mapping[str, str],
    configs: Mapping[str, str | Path],
    qualityfits_out: Mapping[str, Any],
    catalogue_options: Mapping[str, Any],
    pixel_scale: float,
    dust_source: str | Path,
    outputs: Mapping[str, str | Path],
    log: Any = None,
) -> dict[str, Any]:
    """Assess a release product and draw its thumbnails and dust map.

    Parameters
    ----------
    stem : str
        The product's file stem (titles).
    image, weight : str or Path
        The product and its weight map.
    refcat : str or Path
        The offline reference catalogue (bright stars of the masks).
    binaries : mapping
        ``sextractor`` and ``psfex`` executables.
    configs : mapping
        QualityFITS-out's ``sex``, ``param``, ``psfex``; the release catalogue's
        ``release_sex`` and ``release_param`` (completeness); ``conv``, ``nnw``.
    qualityfits_out : mapping
        The ``qualityfits_out`` configuration block, with the SExtractor and PSFEx
        options made from it under ``sextractor_options`` and ``psfex_options``.
    catalogue_options : mapping
        The release catalogue's options (completeness is measured as it detects).
    pixel_scale : float
        The survey's pixel scale (arcsec).
    dust_source : str or Path
        The offline dust map (``catalogues.dust_map``).
    outputs : mapping
        The rule's outputs by name: the keys of :data:`spica.paths.QUALITYFITS_OUT_PRODUCTS`,
        :data:`~spica.paths.COMPLETENESS_PRODUCTS`, :data:`~spica.paths.STAR_CLUSTERING_PRODUCTS`
        and :data:`~spica.paths.STACK_THUMBNAILS`, with ``qfo_ldac``, ``qfo_sex_xml``,
        ``qfo_psfex_xml``, ``comptness_table``, ``reg`` and ``dust``.
    log : file, optional
        Where the tools' output goes.

    Returns
    -------
    dict
        ``figures`` (QualityFITS-out's), ``completeness``, ``clustering``, ``masks``,
        and ``cpu_seconds`` per part (this process and its tools).
    """
    from spica.coaddition.dust import write_dust_map
    from spica.products.thumbnails import write_thumbnails
    from spica.qualityfits_out.assess import assess_completeness, assess_product
    from spica.qualityfits_out.colours import make_star_clustering
    from spica.qualityfits_out.masks import mask_product

    cpu, result = {}, {}
    start = Usage.now()

    def lap(name: str) -> None:  # CPU of this process and of the tools it ran, since the last lap
        nonlocal start
        now = Usage.now()
        spent = now.since(start)
        cpu[name], start = round(spent["cpu_self_s"] + spent["cpu_children_s"], 2), now

    result["figures"] = assess_product(
        image=image, weight=weight, binaries=binaries,
        configs={key: configs[key] for key in ("sex", "param", "psfex", "conv", "nnw")},
        sextractor_options=qualityfits_out["sextractor_options"],
        psfex_options=qualityfits_out["psfex_options"],
        psf_map_step_arcmin=qualityfits_out["psf_map_step_arcmin"],
        min_snr=qualityfits_out["min_snr"], outputs=outputs, log=log,
    )
    lap("assess")
    result["completeness"] = assess_completeness(
        image=image, weight=weight, psf=outputs["protopsf"], binary=binaries["sextractor"],
        configs={"sex": configs["release_sex"], "param": configs["release_param"],
                 "conv": configs["conv"], "nnw": configs["nnw"]},
        options=catalogue_options, settings=qualityfits_out["completeness"], pixel_scale=pixel_scale,
        outputs=outputs, log=log,
    )
    lap("completeness")
    result["clustering"] = make_star_clustering(
        outputs["qfo_ldac"], weight, [outputs[key] for key in paths.STAR_CLUSTERING_PRODUCTS],
        settings=qualityfits_out["colours"], title=stem,
    )
    lap("clustering")
    result["masks"] = mask_product(image=image, weight=weight, refcat=refcat,
                                   settings=qualityfits_out["masks"], out=outputs["reg"])
    lap("masks")
    write_thumbnails(image, weight, {key: outputs[key] for key in paths.STACK_THUMBNAILS}, title=stem)
    lap("thumbnails")
    write_dust_map(image, outputs["dust"], source=dust_source)
    lap("dust")
    result["cpu_seconds"] = cpu
    return result
