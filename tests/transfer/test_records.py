"""Where the transfer records live (the registry database) and a rerun step 1 staged again."""

from __future__ import annotations

import os
import sqlite3
import stat

import pandas as pd
import pytest

from spica.provenance import file_sha256
from spica.registry import open_database
from spica.transfer import arrivals, deliveries, sent_files
from spica.transfer.delivery import push, verify
from spica.transfer.incoming import poll
from spica.transfer.staging import DELIVERY_JSON, read_manifest, stage
from spica.transfer.state import LEGACY_FILE, STATE_FILE, connect, state_path
from tests.transfer.conftest import STEM, make_step1, noisy_image, require, write_mef

pytestmark = pytest.mark.usefixtures("tools")


@pytest.fixture
def tools():
    require("fpack", "funpack", "rsync")


def _registry_table(url: str, table: str) -> pd.DataFrame:
    engine = open_database(url)
    try:
        with engine.connect() as connection:
            return pd.read_sql_table(table, connection)
    finally:
        engine.dispose()


def _rerun_step1(results, expnum: int, seed: int) -> None:
    """Step 1 run again for one exposure: its products rewritten, with other values."""
    import shutil

    from spica import paths

    shutil.rmtree(paths.step1_path(results, expnum, "weight").parent)
    make_step1(results, expnum, seed)


def _tree(folder) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): file_sha256(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def test_records_are_in_the_registry_and_survive_its_rebuild(survey):
    from spica.registry import build_registry
    from spica.step1.inventory import INVENTORY_COLUMNS

    settings = survey["settings"]
    settings.incoming.mkdir()
    write_mef(settings.incoming / "751008p.fits", [noisy_image(8)], EXPNUM=751008)
    assert poll(settings, now=0.0, step1=lambda s: True).taken == []
    assert poll(settings, now=1.0, step1=lambda s: True).taken == ["751008p.fits"]
    stage(settings)
    assert push(settings).failed == {}
    url = settings.registry_url
    assert url == f"sqlite:///{settings.results / 'registry.sqlite'}"
    assert not (settings.results / LEGACY_FILE).exists()  # no file of their own any more
    table = _registry_table(url, "arrivals")
    assert table[["file", "expnum", "how", "step1"]].values.tolist() == [["751008p.fits", 751008, "settled", "done"]]
    assert table.loc[0, "sha256"] == file_sha256(settings.incoming / "751008p.fits")
    files = _registry_table(url, "files")
    assert len(files) == 21 and files["sent_at"].notna().all()  # the "Sent to CADC" column
    assert _registry_table(url, "deliveries")["status"].tolist() == ["sent"] * 3
    # the registry rebuild (rule build_registry) rewrites its own tables only
    inventory = settings.root / "inventory.csv"
    pd.DataFrame([], columns=INVENTORY_COLUMNS).to_csv(inventory, index=False)
    counts = build_registry(url=url, inventory_csv=inventory, checks=[], qa_xml=[], diag=[], metadata_csv=None,
                            grades_csv=None, export_csv=settings.root / "exposures.csv")
    assert counts == {"exposures": 0, "ccds": 0, "quarantine": 0}
    assert _registry_table(url, "exposures").empty
    assert len(_registry_table(url, "files")) == 21 and len(_registry_table(url, "arrivals")) == 1
    assert sent_files(settings.results)["sent"].sum() == 21  # the interface's reading, by the results tree
    assert arrivals(settings.results)["arrived"].str.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ").all()


def test_a_registry_elsewhere_is_found_from_the_results_tree(survey, tmp_path):
    settings = survey["settings"]
    url = f"sqlite:///{tmp_path / 'server' / 'survey.sqlite'}"
    (tmp_path / "server").mkdir()
    elsewhere = settings.__class__(**{**settings.__dict__, "registry_url": url})
    from tests.transfer.conftest import write_registry

    write_registry(url, [{"expnum": 751000, "file": "751000p.fits", "status": "ok", "runid": "04AL01",
                          "rel_date": "2006-08-01T00:00:00"}])
    assert stage(elsewhere).staged == ["step1/751000p", f"T0002/{STEM}"]
    locator = settings.results / STATE_FILE
    assert locator.read_text().strip() == url and stat.S_IMODE(locator.stat().st_mode) == 0o600
    assert deliveries(settings.results)["delivery"].tolist() == [f"T0002/{STEM}", "step1/751000p"]
    assert len(_registry_table(url, "files")) == 16
    # the results tree's own registry.sqlite holds no transfer table
    engine = open_database(settings.registry_url)
    from sqlalchemy import inspect

    assert "files" not in inspect(engine).get_table_names()
    engine.dispose()


def test_an_old_transfer_sqlite_is_imported_once(survey):
    settings = survey["settings"]
    # what an earlier SPICA sent: the step 1 products of 751000 as they are now
    stage(settings.__class__(**{**settings.__dict__, "outgoing": settings.root / "then"}))
    manifest = read_manifest(settings.root / "then" / "step1" / "751000p")
    engine = open_database(settings.registry_url)  # start from its file alone
    with engine.begin() as connection:
        for table in ("files", "deliveries", "arrivals", "incoming_seen"):
            connection.exec_driver_sql(f"DROP TABLE {table}")
    engine.dispose()
    (settings.results / STATE_FILE).unlink()
    legacy = settings.results / LEGACY_FILE
    with sqlite3.connect(legacy) as old:  # the schema of the earlier SPICA
        old.executescript("""
            CREATE TABLE seen (file TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, since REAL);
            CREATE TABLE arrivals (file TEXT PRIMARY KEY, expnum INTEGER, size INTEGER, sha256 TEXT,
                arrived TEXT, how TEXT, step1 TEXT, step1_at TEXT);
            CREATE TABLE deliveries (delivery TEXT PRIMARY KEY, area TEXT, kind TEXT, product TEXT,
                release TEXT, release_date TEXT, runid TEXT, status TEXT, staged_at TEXT, sent_at TEXT,
                superseded_by TEXT);
            CREATE TABLE files (delivery TEXT, file TEXT, size INTEGER, sha256 TEXT, product TEXT,
                release TEXT, release_date TEXT, staged_at TEXT, sent_at TEXT, purged_at TEXT,
                PRIMARY KEY (delivery, file));
            INSERT INTO seen VALUES ('751009p.fits', 10, 5, 1.5);
            INSERT INTO arrivals VALUES ('751000p.fits', 751000, 100, 'ab', '2004-06-24T10:00:00Z',
                'settled', 'done', '2004-06-24T11:00:00Z');
            INSERT INTO deliveries VALUES ('step1/751000p', 'main', 'step1', '751000p', 'step1',
                '2006-08-01T00:00:00', '04AL01', 'sent', '2004-06-25T00:00:00Z', '2004-06-25T01:00:00Z', NULL);
        """)
        old.executemany("INSERT INTO files VALUES ('step1/751000p', ?, ?, ?, '751000p', 'step1', "
                        "'2006-08-01T00:00:00', '2004-06-25T00:00:00Z', '2004-06-25T01:00:00Z', "
                        "'2004-06-25T01:00:00Z')",
                        [(r.file, r.size, r.sha256) for r in manifest.itertuples()])
    # before any transfer command: read as it is
    assert sent_files(settings.results)["sent"].sum() == 5 and len(arrivals(settings.results)) == 1
    assert state_path(settings.results) == legacy  # what SkyWatcher looks for
    with connect(settings):
        pass
    assert not legacy.exists() and legacy.with_name("transfer.sqlite.imported").is_file()
    assert state_path(settings.results) == settings.results / STATE_FILE
    assert arrivals(settings.results)["arrived"].tolist() == ["2004-06-24T10:00:00Z"]
    assert _registry_table(settings.registry_url, "incoming_seen")["file"].tolist() == ["751009p.fits"]
    with connect(settings):  # once: no second import, no duplicate
        pass
    assert len(_registry_table(settings.registry_url, "files")) == 5
    # the imported step 1 delivery is not staged again (its products unchanged)...
    assert stage(settings).staged == ["step1/760001p", f"T0002/{STEM}"]
    recorded = _registry_table(settings.registry_url, "files").set_index("file")
    assert recorded.loc["751000p_ldac.fits", "source"] == "step1/751000p/751000p_ldac.fits"
    assert recorded.loc["751000p_ldac.fits", "source_sha256"] == recorded.loc["751000p_ldac.fits", "sha256"]


def test_a_rerun_step1_goes_out_again_as_a_new_delivery(survey):
    settings = survey["settings"]
    stage(settings)
    assert push(settings).failed == {}
    first = settings.destination / "step1" / "751000p"
    before = _tree(first)
    # the same products touched (same bytes): nothing new
    weight = settings.results / "step1" / "751000p" / "751000p_weight.fits"
    os.utime(weight, ns=(weight.stat().st_atime_ns, weight.stat().st_mtime_ns + 10**9))
    assert stage(settings).staged == []
    # step 1 runs again for 751000 (e.g. after a software fix): other products
    _rerun_step1(settings.results, 751000, 99)
    result = stage(settings)
    assert result.staged == ["step1/751000p_v2"] and result.superseded == {"step1/751000p": "step1/751000p_v2"}
    staged = settings.outgoing / "step1" / "751000p_v2"
    manifest = read_manifest(staged)
    assert sorted(manifest["file"]) == sorted(set(before) - {"manifest.csv", DELIVERY_JSON})
    assert set(manifest["product"]) == {"751000p"}
    new_sums = manifest.set_index("file")["sha256"]
    assert new_sums["751000p_ldac.fits"] == file_sha256(settings.results / "step1" / "751000p" / "751000p_ldac.fits")
    assert new_sums["751000p_ldac.fits"] != before["751000p_ldac.fits"]
    table = deliveries(settings.results).set_index("delivery")
    assert table.loc["step1/751000p", "superseded_by"] == "step1/751000p_v2"
    assert table.loc["step1/751000p_v2", "status"] == "staged"
    assert pd.isna(table.loc["step1/751000p_v2", "superseded_by"])
    assert stage(settings).staged == []  # staged once
    # sent like any other; the earlier delivery kept as it was, never overwritten
    assert push(settings).failed == {}
    assert _tree(first) == before
    second = settings.destination / "step1" / "751000p_v2"
    assert all(file_sha256(second / r.file) == r.sha256 for r in read_manifest(second).itertuples())
    import json

    assert json.loads((second / DELIVERY_JSON).read_text())["supersedes"] == ["step1/751000p"]
    files = sent_files(settings.results)
    assert files[files["delivery"] == "step1/751000p_v2"]["sent"].all()
    assert set(files[files["delivery"] == "step1/751000p"]["superseded_by"]) == {"step1/751000p_v2"}
    # the earlier delivery damaged there: found, but not rebuilt from the rerun products
    with open(first / "751000p_ldac.fits", "r+b") as handle:
        handle.write(b"XXXX")
    checked = verify(settings)
    assert list(checked.failed) == ["step1/751000p"]
    assert "superseded by step1/751000p_v2" in checked.failed["step1/751000p"]
    assert deliveries(settings.results).set_index("delivery").loc["step1/751000p", "status"] == "superseded"
    assert stage(settings).staged == [] and push(settings).sent == []
    # _v2 damaged there (to be sent again), then step 1 runs a third time: _v3 replaces it
    with open(second / "751000p_ldac.fits", "r+b") as handle:
        handle.write(b"XXXX")
    assert list(verify(settings).failed) == ["step1/751000p", "step1/751000p_v2"]  # the first still damaged
    _rerun_step1(settings.results, 751000, 100)
    result = stage(settings)
    assert result.staged == ["step1/751000p_v3"] and result.superseded == {"step1/751000p_v2": "step1/751000p_v3"}
    table = deliveries(settings.results).set_index("delivery")
    assert table.loc["step1/751000p_v2", "status"] == "superseded"  # not rebuilt from other products
    assert push(settings).sent == ["step1/751000p_v3"]


def test_records_on_postgresql(survey, postgres_cluster):
    """The same records in a PostgreSQL registry (a scratch server, tests/conftest.py)."""
    from tests.transfer.conftest import write_registry

    settings = survey["settings"]
    url = postgres_cluster("transfer_records")
    server = settings.__class__(**{**settings.__dict__, "registry_url": url})
    write_registry(url, [{"expnum": 751000, "file": "751000p.fits", "status": "ok", "runid": "04AL01",
                          "rel_date": "2006-08-01T00:00:00"}])
    settings.incoming.mkdir()
    write_mef(settings.incoming / "751000p.fits", [noisy_image(1)], EXPNUM=751000)
    (settings.incoming / "751000p.fits.sha256").write_text(file_sha256(settings.incoming / "751000p.fits") + "\n")
    assert poll(server, step1=lambda s: True).taken == ["751000p.fits"]
    assert stage(server).staged == ["step1/751000p", f"T0002/{STEM}"]
    assert push(server).failed == {}
    _rerun_step1(settings.results, 751000, 42)
    assert stage(server).staged == ["step1/751000p_v2"] and push(server).failed == {}
    files = sent_files(settings.results)  # found through the locator
    assert len(files) == 5 + 11 + 5 and files["sent"].all()
    assert arrivals(settings.results)["how"].tolist() == ["checksum"]
    table = _registry_table(url, "deliveries").set_index("delivery")
    assert table.loc["step1/751000p", "superseded_by"] == "step1/751000p_v2"
    assert _registry_table(url, "exposures")["expnum"].tolist() == [751000]  # the registry's own, beside
