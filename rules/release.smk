# Step 2 planning (seed 3.2.1): grades, release selection and stack planning.
# The plan is a checkpoint over the registry (step 1 results, grades, observing
# metadata) and the release definitions (config/releases.yaml); each planned
# stack then gets its lists through a rule whose params are the lists
# themselves, so a change of grade or criteria reruns exactly the stacks whose
# lists change. Input functions: rules/common.smk; the plan: spica.release.planning.


checkpoint plan_release:
    """Select the exposures of a release and plan its stacks (seed 3.2.1)."""
    input:
        # the registry closes step 1 (every verdict, .ahead file and QA summary is its input);
        # when its seal holds, a release run takes it as it is (rules/common.smk)
        registry=get_registry_export,
    output:
        plan=release_file("plan"),
        selection=release_file("selection"),
        lists=release_file("lists"),
    params:
        release=get_release_config,
        survey=config["survey"],
        planning=config["planning"],
        repairable_grades=config["calibration"]["repairable_grades"],
        software=software("plan_release"),
    wildcard_constraints:
        release=r"T\d{4}",
    log:
        run_log("release", "plan_release"),
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/plan_release.py"


checkpoint plan_images:
    """The automatic image mode (seed 6.2): one image-by-image product per exposure
    that passed step 1, whatever its RunID, in the folder of its version (V0001);
    every other rule of a release product is shared with the releases."""
    input:
        registry=get_registry_export,
    output:
        plan=release_file("plan"),
        selection=release_file("selection"),
        lists=release_file("lists"),
    params:
        image_mode=config["image_mode"],
        survey=config["survey"],
        planning=config["planning"],
        software=software("plan_images"),
    wildcard_constraints:
        release=r"V\d{4}",
    log:
        run_log("release", "plan_images"),
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/plan_images.py"


rule report_pending:
    """The seed's "Pending processes" view of a release, drawn from the disk when the
    plan is made or changes; the run's handlers redraw it at its end (Snakefile)."""
    input:
        plan=release_file("plan"),
        lists=release_file("lists"),
    output:
        report=release_file("pending"),
    params:
        # the products made and the stale solution folders are read from the disk when
        # the job runs, not params: as params (taken when the DAG is built) the view the
        # stacks' run left listed them all, and the next dry-run listed this job again
        results=get_results,
        longest=config["planning"]["longest_stacks"],
        software=software("report_pending"),
    log:
        run_log("release", "report_pending"),
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/report_pending.py"
