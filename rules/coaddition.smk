# Step 2, co-addition (seed 3.2.2): SWarp stacks of each planned stack list,
# resampled with the SCAMP heads onto the stack's 1 deg^2 quantum.


rule coadd_stack:
    """SWarp: Lanczos3, TAN, J2000, weighted co-addition at zero point 30."""
    input:
        plan=ancient(release_file("_plan.csv")),  # re-evaluate inputs after a replan
        stack=stem_file("_stack.list"),
        exposures=get_stack_exposures,
        weights=get_stack_weights,
        scamp=str(RELEASES / "{release}" / "{stem}" / "scamp"),
        registry=ancient(REGISTRY_EXPORT),
        config=ASTROMATIC / "stack.swarp",
    output:
        image=stem_file(".fits"),
        weight=stem_file("_weight.fits"),
        xml=stem_file("_swarp.xml"),
    params:
        bin=tool("swarp"),
        grid=get_stack_grid,
        overrides=config["coaddition"]["swarp_overrides"],
        software=software("spica.coaddition", tools=["swarp", "scamp"]),
    threads: 2
    log:
        "logs/releases/{release}/{stem}/coadd_stack.log",
    benchmark:
        "benchmarks/releases/{release}/{stem}/coadd_stack.tsv"
    conda:
        "../envs/astromatic.yaml"
    script:
        "../scripts/coadd_stack.py"
