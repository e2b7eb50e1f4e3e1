# Step 2, astrometric and photometric calibration (seed, section 4): SCAMP,
# offline, once per distinct astrometric list (a solution, shared by the
# stacks of one tile in several filters), delivered to each planned product
# under its own names by the product's stack job (rules/coaddition.smk).


rule solve_astrometry:
    """SCAMP over one astrometric list shared by planned products: heads (WCS + FLXSCALE), XML, check plots."""
    input:
        # the catalogues and .ahead files are params (get_solution_catalogs): the plan
        # waits for them, and get_solution_state reruns SCAMP when one is remade
        plan=ancient_plan(),
        refcat=config["inputs"]["refcat"],
    output:
        xml=solution_file("scamp_xml"),
        cmd=solution_file("scamp_cmd"),
        products=directory(SOLUTION_PRODUCTS),
    params:
        catalogs=get_solution_catalogs,
        step1_state=get_solution_state,
        configs=astromatic_configs("scamp"),
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


rule deliver_image_ahead:
    """Image by image, photometric image: ``546891p_V0001_ahed.txt`` (seed, product table)."""
    input:
        plan=ancient_plan(),
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
