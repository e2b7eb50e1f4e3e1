# SPICA: the TERAPIX CFHTLS survey pipeline as a Snakemake workflow.
# This file is the table of contents: configuration, stages, targets.
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, "config/schemas/config.schema.yaml")


include: "rules/common.smk"
include: "rules/step1.smk"
include: "rules/registry.smk"


rule qualityfits_in:
    """Step 1 for every exposure: weight/flag maps, catalogue, PSF, QA, registry."""
    default_target: True
    input:
        get_step1_products,
        inventory=INVENTORY,
        quarantine=QUARANTINE,
        registry=REGISTRY_EXPORT,
