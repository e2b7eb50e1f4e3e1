# The registry (seed 3.2.1): exposure metadata, QA figures, grades, quarantine.


rule build_registry:
    """Load headers, observing metadata, QA summaries, grades and quarantine into the database."""
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
        software=software("build_registry"),
    log:
        run_log("registry", "build_registry"),
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/build_registry.py"
