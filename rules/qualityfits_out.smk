# Step 2, QualityFITS-out (seed 3.2.2, 6.1, 6.2): the quality assessment of every
# release product (stacks and image-by-image images), from the product and its own
# weight map. Two jobs per product: SExtractor -> PSFEx -> figures, plots and
# _diag.fits (assess_product_quality); simulated stars -> completeness
# (measure_completeness). The SPICA summary (summarise_product) reads both.
from spica.qualityfits_out.options import psfex_options as _qfo_psfex_options
from spica.qualityfits_out.options import sextractor_options as _qfo_sextractor_options

_QFO = config["qualityfits_out"]


rule assess_product_quality:
    """SExtractor (background map) and PSFEx (_protopsf.fits) on the product with its
    weight map; QualityFITS-in's measurement, plots and _diag.fits."""
    input:
        image=product_file("image"),
        weight=product_file("weight"),
        sex_config=str(ASTROMATIC / "qualityfits_out.sex"),
        param_config=str(ASTROMATIC / "qualityfits_out.param"),
        psfex_config=str(ASTROMATIC / "qualityfits_out.psfex"),
        conv_config=astromatic_file("conv"),
        nnw_config=astromatic_file("nnw"),
    output:
        **product_files(paths.QUALITYFITS_OUT_PRODUCTS),
        **product_files(("qfo_ldac", "qfo_sex_xml", "qfo_psfex_xml")),
    params:
        binaries={"sextractor": tool("sextractor"), "psfex": tool("psfex")},
        sextractor_options=_qfo_sextractor_options(_QFO),
        psfex_options=_qfo_psfex_options(_QFO),
        psf_map_step_arcmin=_QFO["psf_map_step_arcmin"],
        min_snr=_QFO["min_snr"],
        software=software("assess_product_quality", tools=["sextractor", "psfex"]),
    log:
        run_log("product", "assess_product_quality"),
    benchmark:
        run_benchmark("product", "assess_product_quality")
    conda:
        "../envs/astromatic.yaml"
    script:
        "../scripts/assess_product_quality.py"


rule measure_completeness:
    """Stars drawn with the product's PSFEx model added to a copy of its central
    sub-area on a grid of magnitudes; SExtractor with the release catalogue's settings."""
    input:
        image=product_file("image"),
        weight=product_file("weight"),
        psf=product_file("protopsf"),
        config=astromatic_file("release_sex"),
        param=astromatic_file("release_param"),
        conv=astromatic_file("conv"),
        nnw=astromatic_file("nnw"),
    output:
        **product_files(paths.COMPLETENESS_PRODUCTS),
        comptness_table=product_file("comptness_table"),
    params:
        bin=tool("sextractor"),
        options=get_catalogue_options,
        settings=_QFO["completeness"],
        pixel_scale=config["survey"]["pixel_scale"],
        software=software("measure_completeness", tools=["sextractor"]),
    log:
        run_log("product", "measure_completeness"),
    benchmark:
        run_benchmark("product", "measure_completeness")
    conda:
        "../envs/astromatic.yaml"
    script:
        "../scripts/measure_completeness.py"
