# Step 2, QualityFITS-out (seed 3.2.2, 6.1, 6.2): the quality assessment of every
# release product (stacks and image-by-image images), from the product and its own
# weight map. Two jobs per product: SExtractor -> PSFEx -> figures, plots and
# _diag.fits (assess_product_quality); simulated stars -> completeness
# (measure_completeness); and the automatic masks _reg.txt (mask_product). The SPICA
# summary (summarise_product) reads all three.
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
        **report_plots(product_files(paths.QUALITYFITS_OUT_PRODUCTS), "QualityFITS-out"),
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
        **report_plots(product_files(paths.COMPLETENESS_PRODUCTS), "QualityFITS-out"),
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


rule mask_product:
    """Automatic masks (the seed's _reg.txt, DS9 in FK5): halos and spikes of the reference
    catalogue's bright stars, boxes on the saturated areas (bleed trails) measured in the
    product, polygons on its low-weight borders; the masked fraction in a comment line."""
    input:
        image=product_file("image"),
        weight=product_file("weight"),
        refcat=config["inputs"]["refcat"],
    output:
        reg=product_file("reg"),
    params:
        settings=_QFO["masks"],
        software=software("mask_product"),
    log:
        run_log("product", "mask_product"),
    benchmark:
        run_benchmark("product", "mask_product")
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/mask_product.py"


# Colours and clustering of the stars (seed, product table and footnote 8;
# spica.qualityfits_out.colours): stars selected in each filter as QualityFITS-out
# selects them (half-light radius - magnitude), matched across the filters of a tile.
rule plot_colour_colour:
    """Colour-colour diagram of three filters of a release tile
    (``CFHTLS_D_gri_..._T0002_diagcc.png``, one per set of three of its filters) with
    the reference stellar locus and the stars' median distance to it."""
    input:
        unpack(get_colour_catalogues),
    output:
        **report_plots(colour_files(paths.COLOUR_COLOUR_FILES), "QualityFITS-out", "CFHTLS_{survey}_{tilebands}_{coords}_{release}"),
    params:
        settings=_QFO["colours"],
        title=get_colour_stem,
        software=software("plot_colour_colour"),
    log:
        run_log("colours", "plot_colour_colour_{bands}"),
    benchmark:
        run_benchmark("colours", "plot_colour_colour_{bands}")
    wildcard_constraints:
        tilebands=paths.WILDCARD_CONSTRAINTS["bands"],
        bands=r"[ugriz]{3}",
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/plot_colour_colour.py"


rule plot_colour_magnitude:
    """Colour-magnitude diagram of two filters of a release tile
    (``CFHTLS_D_ri_..._T0002_diagcm.png``, one per pair of its filters)."""
    input:
        unpack(get_colour_catalogues),
    output:
        **report_plots(colour_files(paths.COLOUR_MAGNITUDE_FILES), "QualityFITS-out", "CFHTLS_{survey}_{tilebands}_{coords}_{release}"),
    params:
        settings=_QFO["colours"],
        title=get_colour_stem,
        software=software("plot_colour_magnitude"),
    log:
        run_log("colours", "plot_colour_magnitude_{bands}"),
    benchmark:
        run_benchmark("colours", "plot_colour_magnitude_{bands}")
    wildcard_constraints:
        tilebands=paths.WILDCARD_CONSTRAINTS["bands"],
        bands=r"[ugriz]{2}",
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/plot_colour_magnitude.py"


rule measure_star_clustering:
    """Angular two-point correlation function w(theta) of a product's stars (TreeCorr),
    against random positions over its non-zero weight (``<stem>_wtheta.png``)."""
    input:
        catalogue=product_file("qfo_ldac"),
        weight=product_file("weight"),
    output:
        **report_plots(product_files(paths.STAR_CLUSTERING_PRODUCTS), "QualityFITS-out"),
    params:
        settings=_QFO["colours"],
        software=software("measure_star_clustering"),
    log:
        run_log("product", "measure_star_clustering"),
    benchmark:
        run_benchmark("product", "measure_star_clustering")
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/measure_star_clustering.py"
