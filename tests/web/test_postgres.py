"""The interface reads a PostgreSQL registry (a throwaway cluster on a Unix socket).

Debian's ``initdb`` and ``pg_ctl`` (package ``postgresql``) make a cluster in
a temporary folder, listening on a socket there only (no TCP), run as user
``postgres`` when the tests run as root; the test builds a registry in it
with the registry's schema (:func:`spica.registry.schema`, rows through
:func:`spica.registry.conform`), points the interface at it and compares
what the pages and the CSV export show with the rows written. The cluster is
stopped and removed at the end. Skipped when the binaries are missing.
"""

from __future__ import annotations

import dataclasses
import glob
import io
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

BINARIES = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))


@pytest.fixture(scope="module")
def postgres_url():
    """``postgresql://`` URL (psycopg 3, through spica.registry.open_database) of a database ``registry`` in a throwaway cluster."""
    if not BINARIES:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    pytest.importorskip("psycopg")
    bindir = Path(BINARIES[-1]).parent
    root = Path(tempfile.mkdtemp(prefix="spica-pg-"))
    prefix: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(root, "postgres")
        prefix = ["runuser", "-u", "postgres", "--"]
    data = root / "data"

    def run(*argv: str) -> None:
        subprocess.run([*prefix, *argv], check=True, capture_output=True, timeout=120)

    started = False
    try:
        run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "spica", "--no-sync")
        run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o",
            f"-k {root} -c listen_addresses='' -p 5439 -c fsync=off", "start")
        started = True
        run(str(bindir / "createdb"), "-h", str(root), "-p", "5439", "-U", "spica", "registry")
        yield f"postgresql://spica@/registry?host={root}&port=5439"  # as a user writes it
    finally:
        if started:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def test_the_interface_reads_a_postgresql_registry(postgres_url, survey, client_for, tmp_path):
    from django.conf import settings
    from django.test import override_settings
    from spica.registry import open_database
    from spica.web.synthetic import build_survey

    built = build_survey(tmp_path / "results", n_exposures=25, n_products=6, files=False, url=postgres_url)
    engine = open_database(postgres_url)
    written = pd.read_sql_table("exposures", engine)
    engine.dispose()
    assert engine.dialect.name == "postgresql" and len(written) == 25
    config = dataclasses.replace(settings.SPICA, registry_url=postgres_url, results=built.results)
    with override_settings(SPICA=config):
        staff, pi1 = client_for("staff1"), client_for("pi1")
        page = staff.get("/images/?runid=04AL01").content.decode()
        expected = written[written["runid"] == "04AL01"]
        assert f"({len(expected)} total)" in page
        exported = pd.read_csv(io.StringIO(b"".join(staff.get("/images/?export=csv").streaming_content).decode()))
        assert sorted(exported["expnum"]) == sorted(written["expnum"])
        merged = exported.merge(written, on="expnum", suffixes=("", "_pg"))
        assert merged["exptime"].to_numpy() == pytest.approx(merged["exptime_pg"].to_numpy())
        own = pd.read_csv(io.StringIO(b"".join(pi1.get("/images/?export=csv").streaming_content).decode()),
                          dtype={"runid": str})
        assert set(own["runid"]) == {"04BF01"}
        assert sorted(own["expnum"]) == sorted(written[written["runid"] == "04BF01"]["expnum"])
        status = staff.get("/").content.decode()
        assert '<th>Images available</th><td class="num">25</td>' in status
