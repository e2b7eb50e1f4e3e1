# The registry (seed 3.2.1): exposure metadata, QA figures, grades, quarantine.


rule build_registry:
    """Load headers, observing metadata, QA summaries, grades and quarantine into the
    database; seal it (spica.seal) for the release runs."""
    input:
        unpack(get_step1_for_registry),
        inventory=INVENTORY,
        quarantine=QUARANTINE,
        checks=get_check_files,
        metadata=optional_input(config["inputs"]["metadata"]),
        grades=optional_input(config["inputs"]["grades"]),
    output:
        export=REGISTRY_EXPORT,
    params:
        url=config["registry"]["url"],
        # the seal (spica.seal) the registry is written with, last: what step 1 is made
        # with, and the files whose state it records
        seal=STEP1_SEAL,
        step1=get_step1_static,
        results=get_results,
        incoming={expnum: str(path) for expnum, path in INCOMING.files.items()},
        metadata=config["inputs"]["metadata"],
        grades=config["inputs"]["grades"],
        software=software("build_registry"),
    log:
        run_log("registry", "build_registry"),
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/build_registry.py"


rule register_product_quality:
    """The QualityFITS-out figures of a release's products, as their ``_spica.xml`` give
    them, into the registry table ``product_quality`` (the release's rows replaced)."""
    input:
        unpack(get_release_summaries),
        plan=ancient_plan(),
    output:
        export=release_file("product_quality"),
    params:
        url=config["registry"]["url"],
        software=software("register_product_quality"),
    log:
        run_log("release", "register_product_quality"),
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/register_product_quality.py"
