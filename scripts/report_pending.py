"""Rule report_pending: the seed's "Pending processes" view of a release."""

import sys
from pathlib import Path

sys.stderr = open(snakemake.log[0], "w")  # noqa: F821 (snakemake is injected)

from spica.release.planning import pending_view  # noqa: E402

report = pending_view(snakemake.params.results, snakemake.wildcards.release, longest=snakemake.params.longest)
Path(snakemake.output.report).write_text(report)
print(report, file=sys.stderr)
