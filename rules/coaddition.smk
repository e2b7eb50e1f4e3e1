# Step 2, co-addition (seed 3.2.2): SWarp stacks of each planned stack list,
# resampled with the SCAMP heads onto the stack's 1 deg^2 quantum.


rule coadd_stack:
    """SWarp: Lanczos3, TAN, J2000, weighted co-addition at zero point 30."""
    input:
        plan=ancient_plan(),
        accepted=product_file("accepted"),
        accept=product_file("scamp_accept"),
        exposures=get_stack_exposures,
        weights=get_stack_weights,
        scamp=SCAMP_PRODUCTS,
        registry=get_registry_ancient,
        config=astromatic_file("stack_swarp"),
    output:
        image=product_file("image"),
        weight=product_file("weight"),
        xml=product_file("swarp_xml"),
        cmd=product_file("swarp_cmd"),
    params:
        bin=tool("swarp"),
        grid=get_stack_grid,
        overrides=config["coaddition"]["swarp_overrides"],
        software=software("coadd_stack", tools=["swarp", "scamp"]),
    threads: 2
    log:
        run_log("product", "coadd_stack"),
    benchmark:
        run_benchmark("product", "coadd_stack")
    conda:
        "../envs/astromatic.yaml"
    script:
        "../scripts/coadd_stack.py"


rule make_chi2:
    """The tile's chi-squared image from all its filters' stacks (even a single one)."""
    input:
        unpack(get_tile_stacks),
        plan=ancient_plan(),
        config=astromatic_file("chi2_swarp"),
    output:
        image=chi2_file("image"),
        weight=chi2_file("weight"),
        xml=chi2_file("xml"),
        cmd=chi2_file("cmd"),
    params:
        bin=tool("swarp"),
        grid=get_tile_grid,
        overrides=config["coaddition"]["swarp_overrides"],
        software=software("make_chi2", tools=["swarp"]),
    log:
        run_log("tile", "make_chi2"),
    benchmark:
        run_benchmark("tile", "make_chi2")
    conda:
        "../envs/astromatic.yaml"
    script:
        "../scripts/make_chi2.py"


rule extract_stack_catalogue:
    """SExtractor dual-image mode: detection on the chi2 image, measurement on the stack."""
    input:
        unpack(get_stack_chi2),
        plan=ancient_plan(),
        image=product_file("image"),
        weight=product_file("weight"),
        config=astromatic_file("release_sex"),
        param=astromatic_file("release_param"),
        conv=astromatic_file("conv"),
        nnw=astromatic_file("nnw"),
    output:
        ldac=product_file("ldac"),
        xml=product_file("sex_xml"),
        cmd=product_file("sex_cmd"),
    params:
        bin=tool("sextractor"),
        options=get_catalogue_options,
        software=software("extract_stack_catalogue", tools=["sextractor"]),
    log:
        run_log("product", "extract_stack_catalogue"),
    benchmark:
        run_benchmark("product", "extract_stack_catalogue")
    conda:
        "../envs/astromatic.yaml"
    script:
        "../scripts/extract_stack_catalogue.py"


rule make_dust_map:
    """E(B-V) from the offline SFD map, resampled onto the stack grid."""
    input:
        image=product_file("image"),
    output:
        dust=product_file("dust"),
    params:
        source=config["catalogues"]["dust_map"],
        software=software("make_dust_map"),
    log:
        run_log("product", "make_dust_map"),
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/make_dust_map.py"


rule write_provenance:
    """The stack's command file (``_cmd.txt``) and processing XML (inputs, checksums,
    software versions, configuration files, non-default options). The astrometric
    list's catalogues and heads are a param: their changes reach it through scamp_cmd."""
    input:
        unpack(get_provenance_inputs),
        plan=ancient_plan(),
        refcat=config["inputs"]["refcat"],
    output:
        cmd=product_file("cmd"),
        xml=product_file("xml"),
    params:
        software=software("write_provenance", tools=["scamp", "swarp", "sextractor", "psfex", "weightwatcher"]),
        options=get_provenance_options,
        astrometric=get_provenance_files,
    log:
        run_log("product", "write_provenance"),
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/write_provenance.py"


rule summarise_product:
    """The SPICA summary (seed 4.4, 6.2): the stack, its stacked and astrometric files, SCAMP statistics,
    the QualityFITS-out figures."""
    input:
        plan=ancient_plan(),
        image=product_file("image"),
        stack=product_file("stack_list"),
        astrometric=product_file("astrometric_list"),
        accept=product_file("scamp_accept"),
        scamp_xml=product_file("scamp_xml"),
        registry=get_registry_ancient,
        qualityfits_out=product_file("diag"),  # rules/qualityfits_out.smk
        completeness=product_file("comptness_table"),
        regions=product_file("reg"),  # the automatic masks: their masked fraction
    output:
        summary=product_file("summary"),
    params:
        name=get_stack_name,
        # the provisional grade's limits, and the team's grade of this product only
        # (inputs.product_grades): a regrade reruns this product's summary, nothing else
        grading=config["qualityfits_out"]["grading"],
        product_grade=get_product_grade,
        software=software("summarise_product"),
    log:
        run_log("product", "summarise_product"),
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/summarise_product.py"


rule make_stack_thumbnails:
    """PNG thumbnails of a stack: image, weight map, background (seed 3.2.2)."""
    input:
        image=product_file("image"),
        weight=product_file("weight"),
    output:
        **report_plots(product_files(paths.STACK_THUMBNAILS), "Stacks"),
    params:
        software=software("make_thumbnails"),
    log:
        run_log("product", "make_stack_thumbnails"),
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/make_thumbnails.py"


rule make_chi2_thumbnail:
    """The figure of a tile's chi-squared image: PNG and PostScript (``_chi2.ps``)."""
    input:
        image=chi2_file("image"),
        weight=chi2_file("weight"),
    output:
        m=report_plot(chi2_file("png"), "chi2", "Stacks", "{chi2}"),
        ps=chi2_file("ps"),
    params:
        software=software("make_chi2_thumbnail"),
    log:
        run_log("tile", "make_chi2_thumbnail"),
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/make_chi2_thumbnail.py"
