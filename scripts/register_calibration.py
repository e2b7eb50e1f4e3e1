"""Rule register_calibration: SCAMP statistics of a release into the registry."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.registry import load_calibration  # noqa: E402

xml = {key: value for key, value in snakemake.input.items() if key != "plan"}
counts = load_calibration(url=snakemake.params.url, release=snakemake.wildcards.release,
                          scamp_xml=xml, export_csv=snakemake.output.export)
print(counts, file=sys.stderr)
