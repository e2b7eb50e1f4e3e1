"""The interface reads a PostgreSQL registry (a throwaway cluster on a Unix socket).

The session's throwaway server (``postgres_cluster`` in tests/conftest.py:
Debian's ``initdb`` and ``pg_ctl``, a Unix socket only, user ``postgres``)
gets a database ``registry``; the test builds a registry in it
with the registry's schema (:func:`spica.registry.schema`, rows through
:func:`spica.registry.conform`), points the interface at it and compares
what the pages and the CSV export show with the rows written. The server is
stopped and removed at the end of the session. Skipped when the binaries are missing.
"""

from __future__ import annotations

import dataclasses
import io

import pandas as pd
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

@pytest.fixture(scope="module")
def postgres_url(postgres_cluster):
    """``postgresql://`` URL of a fresh database ``registry`` on the session's server (tests/conftest.py)."""
    return postgres_cluster("registry")


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
