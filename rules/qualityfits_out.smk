# Step 2, QualityFITS-out (seed 3.2.2, 6.1, 6.2): the quality assessment of every
# release product (stacks and image-by-image images), from the product and its own
# weight map, in one job per product with the stack's thumbnails and dust map
# (spica.qualityfits_out.product): SExtractor -> PSFEx -> figures, plots and
# _diag.fits; simulated stars -> completeness; w(theta) of its stars; the automatic
# masks _reg.txt. The SPICA summary (summarise_product) reads them.
from spica.qualityfits_out.options import psfex_options as _qfo_psfex_options
from spica.qualityfits_out.options import sextractor_options as _qfo_sextractor_options

_QFO = config["qualityfits_out"]


rule assess_product_quality:
    """QualityFITS-out of a product with its weight map (SExtractor background map and
    PSFEx _protopsf.fits, QualityFITS-in's measurement, plots and _diag.fits; the
    completeness of simulated stars; w(theta) of its stars, TreeCorr; the automatic
    masks: halos and spikes of the reference catalogue's bright stars, boxes on bleed
    trails, polygons on low-weight borders, DS9 in FK5), and the stack's thumbnails
    (image, weight map, background; seed 3.2.2) and E(B-V) map (offline SFD map):
    everything made from the product alone, one job (issue 10, section 5)."""
    input:
        plan=ancient_plan(),
        image=product_file("image"),
        weight=product_file("weight"),
        refcat=config["inputs"]["refcat"],
    output:
        **report_plots(product_files(paths.QUALITYFITS_OUT_PRODUCTS), "QualityFITS-out"),
        **product_files(("qfo_ldac", "qfo_sex_xml", "qfo_psfex_xml")),
        **report_plots(product_files(paths.COMPLETENESS_PRODUCTS), "QualityFITS-out"),
        comptness_table=product_file("comptness_table"),
        **report_plots(product_files(paths.STAR_CLUSTERING_PRODUCTS), "QualityFITS-out"),
        reg=product_file("reg"),
        **report_plots(product_files(paths.STACK_THUMBNAILS), "Stacks"),
        dust=product_file("dust"),
    params:
        configs=astromatic_configs("qfo_sex", "qfo_param", "qfo_psfex", "release_sex", "release_param",
                                   "conv", "nnw"),
        binaries={"sextractor": tool("sextractor"), "psfex": tool("psfex")},
        # what the assessment reads of the qualityfits_out block (not the grading limits:
        # those reach summarise_product only)
        qualityfits_out={"sextractor_options": _qfo_sextractor_options(_QFO),
                         "psfex_options": _qfo_psfex_options(_QFO),
                         **{key: _QFO[key] for key in ("psf_map_step_arcmin", "min_snr", "completeness",
                                                       "colours", "masks")}},
        catalogue_options=get_catalogue_options,
        pixel_scale=config["survey"]["pixel_scale"],
        dust_source=config["catalogues"]["dust_map"],
        software=software("assess_product_quality", tools=["sextractor", "psfex"]),
    log:
        run_log("product", "assess_product_quality"),
    benchmark:
        run_benchmark("product", "assess_product_quality")
    conda:
        "../envs/astromatic.yaml"
    script:
        "../scripts/assess_product_quality.py"


# Colours of the stars (seed, product table and footnote 8; spica.qualityfits_out.colours):
# stars selected in each filter as QualityFITS-out selects them (half-light radius -
# magnitude), matched across the filters of a tile. One job per tile, one rule per
# number of filters (a pattern names each diagram's filters, some of the tile's: the
# wildcards b1... bn are the tile's filters): a diagram a job cost a release at survey
# scale 2,960 jobs, a sixth of its dry-run (issue 10, section 5).
rule plot_tile_colours_2:
    """Every colour diagram of a release tile of two filters: the colour-magnitude
    diagram of the pair (``CFHTLS_D_ri_..._T0002_diagcm.png``, ``.ps``); with more
    filters (the rules below), the colour-colour diagram of each three
    (``CFHTLS_D_gri_..._T0002_diagcc.png``) with the reference stellar locus and the
    stars' median distance to it, and the colour-magnitude diagram of each two."""
    input:
        unpack(get_tile_colour_catalogues),
        plan=ancient_plan(),
    output:
        **tile_colour_outputs(2),
    params:
        settings=_QFO["colours"],
        tile=get_colour_tile,
        software=software("plot_tile_colours"),
    log:
        run_log("colours2", "plot_tile_colours"),
    benchmark:
        run_benchmark("colours2", "plot_tile_colours")
    wildcard_constraints:
        **tile_band_constraints(2),
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/plot_tile_colours.py"


use rule plot_tile_colours_2 as plot_tile_colours_3 with:
    output:
        **tile_colour_outputs(3),
    log:
        run_log("colours3", "plot_tile_colours"),
    benchmark:
        run_benchmark("colours3", "plot_tile_colours")
    wildcard_constraints:
        **tile_band_constraints(3),


use rule plot_tile_colours_2 as plot_tile_colours_4 with:
    output:
        **tile_colour_outputs(4),
    log:
        run_log("colours4", "plot_tile_colours"),
    benchmark:
        run_benchmark("colours4", "plot_tile_colours")
    wildcard_constraints:
        **tile_band_constraints(4),


use rule plot_tile_colours_2 as plot_tile_colours_5 with:
    output:
        **tile_colour_outputs(5),
    log:
        run_log("colours5", "plot_tile_colours"),
    benchmark:
        run_benchmark("colours5", "plot_tile_colours")
    wildcard_constraints:
        **tile_band_constraints(5),
