"""Rule summarise_product: the SPICA summary of a release product (``_spica.xml``)."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.products.summary import summarise_product  # noqa: E402

files = snakemake.params.files  # written by the jobs that wrote the image and the table
written = summarise_product(
    name=snakemake.params.name,
    release=snakemake.wildcards.release,
    image=snakemake.input.image,
    registry_csv=snakemake.input.registry,
    stack_list=files["stack"],
    astrometric_list=files["astrometric"],
    accept_xml=files["accept"],
    scamp_xml=files["scamp_xml"],
    out=snakemake.output.summary,
    qualityfits_out_diag=snakemake.input.qualityfits_out,
    completeness=files["completeness"],
    grading=snakemake.params.grading,
    product_grade=snakemake.params.product_grade,
    regions=files["regions"],
)
print(written, file=sys.stderr)
