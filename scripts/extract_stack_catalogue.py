"""Rule extract_stack_catalogue: a release product's dual-image catalogue (SExtractor)
and its provenance (command file, processing XML)."""

import sys
from pathlib import Path

log = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)
sys.stderr = log

from spica.astromatic.options import config_paths  # noqa: E402
from spica.coaddition.catalogue import catalogue_product  # noqa: E402
from spica.paths import product_path  # noqa: E402
from spica.provenance import CommandDelivery  # noqa: E402

inputs, output = snakemake.input, snakemake.output
release, stem = snakemake.wildcards.release, snakemake.wildcards.stem
results, transfer = snakemake.config["results"], snakemake.config["transfer"]


def product(key):
    return str(Path.cwd() / product_path(results, release, stem, key))


# the compressed path (seed 3.4): inputs may come as .fits.fz; the products go out compressed
listed = snakemake.params.files  # what the provenance lists (not DAG inputs here: see the rule)
delivery = CommandDelivery(inputs=[str(Path.cwd() / p) for p in [*listed["exposures"], *listed["weights"]]],
                           images=[product("image"), product("weight")], files=[product("ldac")],
                           outgoing=transfer["outgoing"], folder=f"{release}/{stem}",
                           quantize_level=transfer["quantize_level"])
configs = config_paths(snakemake.params.configs, snakemake.scriptdir)
run = catalogue_product(
    snakemake.params.bin,
    configs["release_sex"],
    detection=inputs.chi2,
    detection_weight=inputs.chi2_weight,
    image=inputs.image,
    weight=inputs.weight,
    param=configs["release_param"],
    conv=configs["conv"],
    nnw=configs["nnw"],
    options=snakemake.params.options,
    outputs=dict(output.items()),
    provenance=dict(
        product=stem,
        release=release,
        steps=[("astrometric and photometric calibration (SCAMP)", inputs.scamp_cmd),
               ("the product's SCAMP heads, from its astrometric solution", inputs.scamp_delivery_cmd),
               ("co-addition (SWarp)", inputs.swarp_cmd),
               ("chi-squared image (SWarp)", inputs.chi2_cmd),
               ("dual-image catalogue (SExtractor)", output.sex_cmd)],
        inputs={"exposure": listed["exposures"], "weight": listed["weights"],
                "catalogue": listed["catalogs"], "ahead": listed["aheads"],
                "tile_stack": listed["tile_stacks"], "reference": [inputs.refcat]},
        configs=list(config_paths(listed["configs"], snakemake.scriptdir).values()),
        software={k: str(v) for k, v in snakemake.params.software.items() if k != "code"},
        options=snakemake.params.provenance_options,
        root=Path.cwd(),  # the workflow's folder: paths in the script are relative to it
        delivery=delivery,
    ),
    log=log,
)
print(" ".join(run.command), file=log)
