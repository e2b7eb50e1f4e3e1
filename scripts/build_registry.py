"""Rule build_registry: (re)build the survey database from the step 1 products."""

import sys

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.registry import build_registry, empty_survey_message  # noqa: E402

counts = build_registry(
    url=snakemake.params.url,
    inventory_csv=snakemake.input.inventory,
    checks=snakemake.input.checks,
    qa_xml=snakemake.input.qa_xml,
    diag=snakemake.input.diag,
    metadata_csv=next(iter(snakemake.input.metadata), None),  # [] when absent: no metadata yet
    grades_csv=next(iter(snakemake.input.grades), None),  # [] when absent: no human grade yet
    export_csv=snakemake.output.export,
)
print(counts, file=sys.stderr)
if counts["quarantine"] and not snakemake.input.qa_xml:  # every incoming file was rejected
    print(f"WARNING: {empty_survey_message(counts['quarantine'], snakemake.input.quarantine)}",
          file=sys.stderr)
