# Step 2, astrometric and photometric calibration (seed, section 4): SCAMP,
# offline, once per distinct astrometric list (a solution, shared by the
# stacks of one tile in several filters), delivered to each planned product
# under its own names.


rule solve_astrometry:
    """SCAMP over one astrometric list shared by planned products: heads (WCS + FLXSCALE), XML, check plots."""
    input:
        # the catalogues and .ahead files are params (get_solution_catalogs): the plan
        # waits for them, and get_solution_state reruns SCAMP when one is remade
        plan=ancient_plan(),
        refcat=config["inputs"]["refcat"],
        config=astromatic_file("scamp"),
    output:
        xml=solution_file("scamp_xml"),
        cmd=solution_file("scamp_cmd"),
        products=directory(SOLUTION_PRODUCTS),
    params:
        catalogs=get_solution_catalogs,
        step1_state=get_solution_state,
        bin=tool("scamp"),
        overrides=config["calibration"]["scamp_overrides"],
        software=software("solve_astrometry", tools=["scamp"]),
    resources:
        mem_mb=4000,  # SCAMP pattern matching: ~1.2 GB for 8 exposures
    log:
        run_log("solution", "solve_astrometry"),
    benchmark:
        run_benchmark("solution", "solve_astrometry")
    conda:
        "../envs/astromatic.yaml"
    script:
        "../scripts/solve_astrometry.py"


rule deliver_calibration:
    """A product's SCAMP files from its solution: ``_scamp.xml``, ``scamp/`` (heads, check
    plots under the product's name), the run for its provenance."""
    input:
        unpack(get_product_solution),
        plan=ancient_plan(),
        stack=product_file("stack_list"),
    output:
        xml=product_file("scamp_xml"),
        cmd=product_file("scamp_cmd"),
        delivery=product_file("scamp_delivery_cmd"),
        # the check plots (PNG) in the report (rules/common.smk: SCAMP_REPORT)
        products=report(directory(SCAMP_PRODUCTS), **SCAMP_REPORT),
    params:
        solution=get_solution_id,
        software=software("deliver_calibration"),
    log:
        run_log("product", "deliver_calibration"),
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/deliver_calibration.py"


rule accept_calibration:
    """The accept summary: exposures whose SCAMP solution is sound enough to stack."""
    input:
        plan=ancient_plan(),
        stack=product_file("stack_list"),
        scamp=SCAMP_PRODUCTS,
        scamp_xml=product_file("scamp_xml"),
        exposures=get_stack_exposures,
    output:
        xml=product_file("scamp_accept"),
        accepted=product_file("accepted"),
    params:
        pixel_scale=config["survey"]["pixel_scale"],
        tolerance=config["calibration"]["max_pixel_scale_error"],
        max_reference_sigma=config["calibration"]["max_reference_sigma_arcsec"],
        conditional=get_conditional_exposures,
        max_focal_plane_offset=config["calibration"]["max_focal_plane_offset_arcsec"],
        software=software("accept_calibration"),
    log:
        run_log("product", "accept_calibration"),
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/accept_calibration.py"


rule deliver_heads:
    """The heads a stack delivers: ``NNNNNNp_head.txt`` per exposure of its stack list,
    ``NNNNNNp_ahed.txt`` for photometric ones (seed, product table)."""
    input:
        plan=ancient_plan(),
        stack=product_file("stack_list"),
        scamp=SCAMP_PRODUCTS,
        aheads=get_stack_aheads,
    output:
        heads=directory(product_file("heads")),
    params:
        software=software("deliver_heads"),
    wildcard_constraints:
        stem=paths.STACK_STEM_RE,
    log:
        run_log("product", "deliver_heads"),
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/deliver_heads.py"


use rule deliver_heads as deliver_image_heads with:
    output:
        heads=directory(product_file("heads")),
        image_head=product_file("image_head"),
    wildcard_constraints:
        stem=paths.IMAGE_STEM_RE,
    log:
        run_log("product", "deliver_image_heads"),


rule deliver_image_ahead:
    """Image by image, photometric image: ``546891p_V0001_ahed.txt`` (seed, product table)."""
    input:
        heads=product_file("heads"),
    output:
        ahead=product_file("image_ahead"),
    params:
        software=software("deliver_image_ahead"),
    wildcard_constraints:
        stem=paths.IMAGE_STEM_RE,
    log:
        run_log("product", "deliver_image_ahead"),
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/deliver_image_ahead.py"


rule register_calibration:
    """Read the SCAMP solutions of a release back into the registry (seed, section 4.4)."""
    input:
        unpack(get_release_scamp_xml),
        plan=ancient_plan(),
    output:
        export=release_file("scamp_fields"),
    params:
        url=config["registry"]["url"],
        software=software("register_calibration"),
    log:
        run_log("release", "register_calibration"),
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/register_calibration.py"
