"""Rule build_registry: (re)build the survey database from the step 1 products, then seal it."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.registry import build_registry, empty_survey_message  # noqa: E402
from spica.seal import sealed_files, write_seal  # noqa: E402

inputs, params = snakemake.input, snakemake.params
Path(params.seal).unlink(missing_ok=True)  # a registry being rebuilt is not sealed
counts = build_registry(
    url=params.url,
    inventory_csv=inputs.inventory,
    checks=inputs.checks,
    qa_xml=inputs.qa_xml,
    diag=inputs.diag,
    metadata_csv=next(iter(inputs.metadata), None),  # [] when absent: no metadata yet
    grades_csv=next(iter(inputs.grades), None),  # [] when absent: no human grade yet
    export_csv=snakemake.output.export,
)
print(counts, file=sys.stderr)
if counts["quarantine"] and not inputs.qa_xml:  # every incoming file was rejected
    print(f"WARNING: {empty_survey_message(counts['quarantine'], inputs.quarantine)}",
          file=sys.stderr)
# the seal, last (spica.seal): what step 1 was made with, the state of every file it covers
files = sealed_files(params.results, incoming={int(k): v for k, v in params.incoming.items()},
                     inventory=inputs.inventory, quarantine=inputs.quarantine,
                     optional=[params.metadata, params.grades])
seal = write_seal(params.seal, static=params.step1, files=files, contents=[snakemake.output.export])
print(f"sealed: {seal}", file=sys.stderr)
