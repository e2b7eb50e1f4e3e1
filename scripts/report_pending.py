"""Rule report_pending: the seed's "Pending processes" view of a release."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.release.planning import pending_report, read_plan  # noqa: E402

plan = read_plan(Path(snakemake.input.plan).parent, done=set(snakemake.params.done))
report = pending_report(plan, longest=snakemake.params.longest, stale=snakemake.params.stale)
Path(snakemake.output.report).write_text(report)
print(report, file=sys.stderr)
