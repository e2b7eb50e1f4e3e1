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
        image=product_file("image"),
        weight=product_file("weight"),
        refcat=config["inputs"]["refcat"],
        sex=str(ASTROMATIC / "qualityfits_out.sex"),
        param=str(ASTROMATIC / "qualityfits_out.param"),
        psfex=str(ASTROMATIC / "qualityfits_out.psfex"),
        release_sex=astromatic_file("release_sex"),
        release_param=astromatic_file("release_param"),
        conv=astromatic_file("conv"),
        nnw=astromatic_file("nnw"),
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
