"""Rule summarise_product: the SPICA summary of a release product (``_spica.xml``)."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.products.summary import summarise_product  # noqa: E402

written = summarise_product(
    name=snakemake.params.name,
    release=snakemake.wildcards.release,
    image=snakemake.input.image,
    registry_csv=snakemake.input.registry,
    stack_list=snakemake.input.stack,
    astrometric_list=snakemake.input.astrometric,
    accept_xml=snakemake.input.accept,
    scamp_xml=snakemake.input.scamp_xml,
    out=snakemake.output.summary,
    qualityfits_out_diag=snakemake.input.qualityfits_out,
    completeness=snakemake.input.completeness,
    grading=snakemake.params.grading,
    product_grade=snakemake.params.product_grade,
    regions=snakemake.input.regions,
)
print(written, file=sys.stderr)
