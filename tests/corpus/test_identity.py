"""One key per exposure (issue 11, section 1).

The issue's scenario: a truncated copy of exposure 760101 saved as
``760190p.fits`` (its header still says ``EXPNUM = 760101``) was quarantined,
and it also broke the good ``760101p.fits``: in the registry that exposure's
row lost its header metadata and its CCD count. Here the same files go through
the functions the step 1 rules call (``check_exposure_and_calibrations``,
``write_inventory``, ``build_registry``), in both orders, with a complete copy
and an edited copy under other names beside them: each bad file is
quarantined under its own name's odometer with its own reason, and the good
exposure's row is exactly what it is without them.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits

from spica import paths
from spica.registry import build_registry, schema
from spica.step1.integrity import REASONS
from spica.step1.inventory import check_exposure_and_calibrations, write_inventory
from tests.step1.test_integrity import LIMITS, make_exposure

GOOD = 760101
N_CCD = 4


def _calibrations(folder: Path) -> Path:
    """Tiny stand-ins for the flat and mask the synthetic exposures name (one HDU per CCD)."""
    folder.mkdir(exist_ok=True)
    for name in ("04Am05.flat.i.36.01.fits", "2004B.mask.0.36.01.fits"):
        hdus = [fits.ImageHDU(np.ones((2, 2), np.float32), name=f"ccd{i:02d}") for i in range(N_CCD)]
        fits.HDUList([fits.PrimaryHDU(), *hdus]).writeto(folder / name, overwrite=True)
    return folder


def _good(incoming: Path) -> Path:
    incoming.mkdir(exist_ok=True)
    return make_exposure(incoming, expnum=GOOD, n_ccd=N_CCD)


def _truncated_copy(incoming: Path, expnum: int) -> Path:
    """The issue's file: 760101's bytes cut inside its data, saved under another odometer."""
    data = (incoming / paths.exposure_filename(GOOD)).read_bytes()
    target = incoming / paths.exposure_filename(expnum)
    target.write_bytes(data[: len(data) - 2880 - 1000])
    return target


def _full_copy(incoming: Path, expnum: int) -> Path:
    """A complete copy of 760101 under another name (identical bytes)."""
    target = incoming / paths.exposure_filename(expnum)
    target.write_bytes((incoming / paths.exposure_filename(GOOD)).read_bytes())
    return target


def _edited_copy(incoming: Path, expnum: int) -> Path:
    """A re-delivery of 760101 (other bytes: an edited OBJECT) under another name."""
    target = incoming / paths.exposure_filename(expnum)
    with fits.open(incoming / paths.exposure_filename(GOOD)) as hdul:
        hdul[0].header["OBJECT"] = "D3-redelivered"
        hdul.writeto(target)
    return target


def _step1(work: Path, incoming: Path, calibrations: Path, order: int = 1) -> dict:
    """The check, inventory and registry rules' functions on every file of ``incoming``."""
    checks = []
    for path in sorted(incoming.iterdir())[::order]:
        expnum = paths.parse_exposure_filename(path)
        verdict = check_exposure_and_calibrations(path, calibrations, fitsverify=None, limits=LIMITS)
        check = work / paths.step1_path("results", expnum, "check")
        check.parent.mkdir(parents=True, exist_ok=True)
        check.write_text(json.dumps(verdict, default=str))
        checks.append(check)
    inventory, quarantine = work / "inventory.csv", work / "quarantine.csv"
    write_inventory(checks, [], inventory, quarantine)
    url = f"sqlite:///{work / 'registry.sqlite'}"
    counts = build_registry(url=url, inventory_csv=inventory, checks=checks, qa_xml=[], diag=[],
                            metadata_csv=None, grades_csv=None, export_csv=work / "exposures.csv")
    with sqlite3.connect(work / "registry.sqlite") as db:
        exposures = pd.read_sql("SELECT * FROM exposures", db).set_index("expnum")
        quarantined = pd.read_sql("SELECT * FROM quarantine", db).set_index("file")
    return {"counts": counts, "exposures": exposures, "quarantine": quarantined,
            "inventory": pd.read_csv(inventory).set_index("path")}


def _same(row: pd.Series) -> pd.Series:
    """A registry row without its file path, missing values as None (NULL in SQLite)."""
    row = row.drop("file").astype(object)
    return row.where(row.notna(), None)


@pytest.fixture
def alone(tmp_path) -> pd.Series:
    """The registry row of 760101 when it is the only file."""
    incoming = tmp_path / "alone"
    _good(incoming)
    run = _step1(tmp_path / "alone-work", incoming, _calibrations(tmp_path / "elixir"))
    row = run["exposures"].loc[GOOD]
    assert row["status"] == "ok" and row["n_ccd"] == N_CCD and row["object"] == "D3"
    assert row["filter"] == "i.MP9701" and row["runid"] == "04AL05" and row["ra_deg"] == pytest.approx(214.86)
    return row


@pytest.mark.parametrize("order", [1, -1], ids=["sorted", "reversed"])
def test_a_truncated_copy_under_another_name_leaves_the_good_row_alone(tmp_path, alone, order):
    """The issue's scenario, as it was reported (failed before the fix: 760101's row had
    no OBJECT/RUNID/FILTER/position and n_ccd 2)."""
    incoming = tmp_path / "incoming"
    _good(incoming)
    bad = _truncated_copy(incoming, 760190)
    run = _step1(tmp_path / "work", incoming, _calibrations(tmp_path / "elixir"), order)
    row = run["exposures"].loc[GOOD]
    pd.testing.assert_series_equal(_same(row), _same(alone))
    bad_row = run["exposures"].loc[760190]
    assert bad_row["status"] == "quarantined" and bad_row["reason"] == "unreadable"
    assert run["quarantine"].loc[str(bad), "expnum"] == 760190  # its own name's odometer
    assert run["inventory"].loc[str(bad), "expnum"] == 760190
    assert run["counts"] == {"exposures": 2, "ccds": 0, "quarantine": 1}


def test_copies_under_other_names_each_get_their_own_reason(tmp_path, alone):
    """A truncated, a complete and an edited copy of 760101 under three other names, and a
    file whose header EXPNUM names an exposure that is not there: each quarantined
    with its own reason, the good exposure's row unchanged."""
    incoming = tmp_path / "incoming"
    _good(incoming)
    files = {760190: _truncated_copy(incoming, 760190), 760191: _full_copy(incoming, 760191),
             760192: _edited_copy(incoming, 760192)}
    stray = make_exposure(incoming, expnum=760777, name=paths.exposure_filename(760193))
    files[760193] = stray
    run = _step1(tmp_path / "work", incoming, _calibrations(tmp_path / "elixir"))
    pd.testing.assert_series_equal(_same(run["exposures"].loc[GOOD]), _same(alone))
    reasons = {expnum: run["exposures"].loc[expnum, "reason"] for expnum in files}
    assert reasons == {760190: "unreadable", 760191: "expnum_mismatch", 760192: "expnum_mismatch",
                       760193: "expnum_mismatch"}
    messages = run["quarantine"]["message"]
    assert "EXPNUM = 760101 but the file name says 760191" in messages[str(files[760191])]
    # the copies of 760101 are also named duplicates of it (a failure after the first)
    for expnum in (760190, 760191, 760192):
        inventory = run["inventory"].loc[str(files[expnum])]
        assert inventory["expnum"] == expnum and inventory["status"] == "quarantined"
    assert "more failure" in messages[str(files[760191])]
    assert set(run["exposures"].index) == {GOOD, *files}


def test_expnum_mismatch_is_a_reason_of_its_own():
    assert "expnum_mismatch" in REASONS and "file name" in REASONS["expnum_mismatch"]


def test_the_registry_holds_one_row_per_exposure():
    tables = schema().tables
    constraints = {tuple(c.name for c in constraint.columns)
                   for constraint in tables["exposures"].constraints if hasattr(constraint, "columns")
                   and constraint.__class__.__name__ == "UniqueConstraint"}
    assert ("expnum",) in constraints


def test_a_check_that_names_another_exposure_fails_loudly(tmp_path):
    """A verdict file whose odometer is not its inventory row's is refused, not merged
    into another exposure's row (the join the bug went through)."""
    incoming = tmp_path / "incoming"
    _good(incoming)
    work = tmp_path / "work"
    _step1(work, incoming, _calibrations(tmp_path / "elixir"))
    check = work / paths.step1_path("results", GOOD, "check")
    verdict = json.loads(check.read_text())
    verdict["expnum"] = 760190
    check.write_text(json.dumps(verdict))
    from spica.registry import TableError

    with pytest.raises(TableError, match="760190"):
        build_registry(url=f"sqlite:///{work / 'again.sqlite'}", inventory_csv=work / "inventory.csv",
                       checks=[check], qa_xml=[], diag=[], metadata_csv=None, grades_csv=None,
                       export_csv=work / "again.csv")
