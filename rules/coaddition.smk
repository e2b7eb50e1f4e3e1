# Step 2, co-addition (seed 3.2.2): SWarp stacks of each planned stack list,
# resampled with the SCAMP heads onto the stack's 1 deg^2 quantum.


rule coadd_stack:
    """A product's calibration files from its SCAMP solution (the stack and astrometric
    lists, ``_scamp.xml`` and ``scamp/`` with the heads and check plots under the
    product's name, the accept summary, the delivered heads ``NNNNNNp_head.txt`` and
    ``NNNNNNp_ahed.txt``; seed, product table), then SWarp over the exposures the
    accept summary keeps: Lanczos3, TAN, J2000, weighted co-addition at zero point 30.
    One job: SWarp reads the lists, heads and accept summary, so it reran after any
    of them (issue 10, section 5)."""
    input:
        unpack(get_product_solution),
        plan=ancient_plan(),
        exposures=get_stack_exposures,
        aheads=get_stack_aheads,
        weights=get_stack_weights,
        registry=get_registry_ancient,
    output:
        **COADD_OUTPUTS,
    params:
        configs=astromatic_configs("stack_swarp"),
        bin=tool("swarp"),
        grid=get_stack_grid,
        overrides=config["coaddition"]["swarp_overrides"],
        lists=get_stack_lists,
        solution=get_solution_id,
        accept=get_accept_settings,
        software=software("coadd_stack", tools=["swarp", "scamp"]),
    wildcard_constraints:
        stem=paths.STACK_STEM_RE,
    threads: 2
    log:
        run_log("product", "coadd_stack"),
    benchmark:
        run_benchmark("product", "coadd_stack")
    conda:
        "../envs/astromatic.yaml"
    script:
        "../scripts/coadd_stack.py"


use rule coadd_stack as coadd_image with:
    output:
        **COADD_OUTPUTS,
        # image by image: the image's own head under the product's name (_V0001_head.txt)
        image_head=product_file("image_head"),
    wildcard_constraints:
        stem=paths.IMAGE_STEM_RE,


rule make_chi2:
    """The tile's chi-squared image from all its filters' stacks (even a single one)."""
    input:
        unpack(get_tile_stacks),
        plan=ancient_plan(),
    output:
        image=chi2_file("image"),
        weight=chi2_file("weight"),
        xml=chi2_file("xml"),
        cmd=chi2_file("cmd"),
    params:
        configs=astromatic_configs("chi2_swarp"),
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
    """SExtractor dual-image mode (detection on the chi2 image, measurement on the
    stack), then the product's provenance: its command file (``_cmd.txt``) and
    processing XML (inputs, checksums, software versions, configuration files,
    non-default options). One job: the provenance lists the catalogue's command, and
    a job of its own per product cost more DAG time than it saved (issue 10, section
    5). The files the provenance lists (the astrometric list's catalogues and heads,
    the stacked exposures and weights, the tile's other stacks, the configuration
    files) are a param: their changes reach it through the command files and the
    image, which are inputs."""
    input:
        unpack(get_stack_chi2),
        unpack(get_provenance_inputs),
        plan=ancient_plan(),
        image=product_file("image"),
        weight=product_file("weight"),
        refcat=config["inputs"]["refcat"],
    output:
        ldac=product_file("ldac"),
        sex_xml=product_file("sex_xml"),
        sex_cmd=product_file("sex_cmd"),
        cmd=product_file("cmd"),
        xml=product_file("xml"),
    params:
        configs=astromatic_configs("release_sex", "release_param", "conv", "nnw"),
        bin=tool("sextractor"),
        options=get_catalogue_options,
        provenance_options=get_provenance_options,
        files=get_provenance_files,
        software=software("extract_stack_catalogue",
                          tools=["scamp", "swarp", "sextractor", "psfex", "weightwatcher"]),
    log:
        run_log("product", "extract_stack_catalogue"),
    benchmark:
        run_benchmark("product", "extract_stack_catalogue")
    conda:
        "../envs/astromatic.yaml"
    script:
        "../scripts/extract_stack_catalogue.py"


rule summarise_product:
    """The SPICA summary (seed 4.4, 6.2): the stack, its stacked and astrometric files, SCAMP statistics,
    the QualityFITS-out figures."""
    input:
        plan=ancient_plan(),
        image=product_file("image"),
        registry=get_registry_ancient,
        qualityfits_out=product_file("diag"),  # rules/qualityfits_out.smk
    output:
        summary=product_file("summary"),
    params:
        # the lists, accept summary and SCAMP XML (the stack job's, like the image), the
        # completeness table and the automatic masks (QualityFITS-out's, like the table)
        files=get_summary_files,
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


# the figure apart from the image: a plotting change must not rerun SWarp and, through the
# chi-squared image, every catalogue of the tile
rule make_chi2_thumbnail:
    """The figure of a tile's chi-squared image: PNG and PostScript (``_chi2.ps``)."""
    input:
        plan=ancient_plan(),
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
