# SPICA: the TERAPIX CFHTLS survey pipeline as a Snakemake workflow.
# This file is the table of contents: configuration, stages, targets.
from snakemake.utils import min_version, validate

from spica.workflow import defer_full_collections, resume_full_collections

min_version("9.0")

# Python's full garbage collections wait until the DAG is built (onstart: below): at
# survey scale they walked it again and again as it grew (spica.workflow)
_COLLECTOR = defer_full_collections()


# paths relative to this file, so `--directory` elsewhere still finds them;
# `--configfile my.yaml` is merged on top (real data: config/cfhtls.yaml)
configfile: f"{workflow.basedir}/config/config.yaml"
configfile: f"{workflow.basedir}/config/releases.yaml"


validate(config, "config/schemas/config.schema.yaml")
validate(
    {key: config[key] for key in ("releases", "planning")}, "config/schemas/releases.schema.yaml"
)


# the front page of `snakemake --report report.zip release_T0002`; the plots' captions are
# report/<kind>.rst (rules/common.smk: report_plot)
report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/step1.smk"
include: "rules/registry.smk"
include: "rules/release.smk"
include: "rules/calibration.smk"
include: "rules/coaddition.smk"
include: "rules/qualityfits_out.smk"


rule qualityfits_in:
    """Step 1 for every exposure: weight/flag maps, catalogue, PSF, QA, registry."""
    default_target: True
    input:
        # the registry reads every accepted exposure's QA summary and diagnostics, which
        # are made from its other step 1 products: asking for those again only made
        # Snakemake list ~26 more files per exposure (issue 10, section 5)
        inventory=INVENTORY,
        quarantine=QUARANTINE,
        registry=REGISTRY_EXPORT,


for _release in config["releases"]:

    rule:
        name:
            f"plan_{_release}"
        input:
            release_files(_release, "plan", "pending"),

    rule:
        name:
            f"release_{_release}"
        input:
            release_targets(_release),

    # the release and the step 1 QA plots of its exposures, for --report (rules/common.smk)
    rule:
        name:
            f"report_{_release}"
        input:
            report_targets(_release),


# the automatic image mode (seed 6.2): every exposure that passed step 1, image by image
rule:
    name:
        f"images_{config['image_mode']['version']}"
    input:
        release_targets(config["image_mode"]["version"]),


# once the DAG of a real run is built (never in a dry-run), before its first job
onstart:
    resume_full_collections(_COLLECTOR)


# at the end of a real run (never a dry-run), successful or not: the releases' "Pending
# processes" views say what is pending on disk then (rules/common.smk)
onsuccess:
    refresh_pending_views()


onerror:
    refresh_pending_views()
