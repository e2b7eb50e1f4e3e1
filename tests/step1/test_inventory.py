"""Discovery of incoming files, calibration look-up, inventory and quarantine."""

import csv
import json

import pytest
from astropy.io import fits

from spica.step1.inventory import (
    CalibrationError,
    discover_exposures,
    locate_calibrations,
    write_inventory,
)


def test_discovery_names_every_file(tmp_path):
    for name in ["751034p.fits", "751035p.fits.fz", "751035p.fits", "notes.txt",
                 "751036o.fits", ".hidden"]:
        (tmp_path / name).write_bytes(b"")
    found = discover_exposures(tmp_path)
    assert sorted(found.files) == [751034, 751035]
    assert found.files[751035].name == "751035p.fits"  # .fits preferred to .fz
    reasons = {path.split("/")[-1]: reason for path, reason, _ in found.rejected}
    assert reasons == {"751035p.fits.fz": "duplicate_expnum", "notes.txt": "unrecognised_name",
                       "751036o.fits": "unrecognised_name"}
    assert discover_exposures(tmp_path / "absent").files == {}


def _headers(flat="04Am05.flat.i.8.01.fits", mask="2004A.mask.0.8.01.fits", n=3):
    return [fits.Header({"EXTNAME": f"ccd{i:02d}", "IMRED_FF": f"{flat}[ccd{i:02d}]",
                         "IMRED_MK": f"{mask}[ccd{i:02d}]"}) for i in range(n)]


def test_locate_calibrations(tmp_path):
    (tmp_path / "04Am05.flat.i.8.01.fits").write_bytes(b"")
    (tmp_path / "2004A.mask.0.8.01.fits").write_bytes(b"")
    found = locate_calibrations(_headers(), tmp_path)
    assert found == {"flat": str(tmp_path / "04Am05.flat.i.8.01.fits"),
                     "mask": str(tmp_path / "2004A.mask.0.8.01.fits")}
    with pytest.raises(CalibrationError) as missing:
        locate_calibrations(_headers(flat="04Bm01.flat.i.8.01.fits"), tmp_path)
    assert missing.value.reason == "missing_calibration"
    mixed = _headers() + _headers(flat="other.flat.fits", n=1)
    with pytest.raises(CalibrationError) as inconsistent:
        locate_calibrations(mixed, tmp_path)
    assert inconsistent.value.reason == "inconsistent_calibration"


def _verdict(tmp_path, expnum, path, ok=True, reason=None, sha="a"):
    data = {"expnum": expnum, "path": path, "ok": ok, "reason": reason,
            "message": f"{reason}: bad" if reason else "", "details": {}, "info": None,
            "n_ccd": 8, "sha256": sha, "calibrations": None}
    out = tmp_path / f"{expnum}_{path[-7:]}.json"
    out.write_text(json.dumps(data))
    return out


def test_inventory_and_quarantine(tmp_path):
    checks = [
        _verdict(tmp_path, 751034, "in/751034p.fits", sha="1"),
        _verdict(tmp_path, 751035, "in/751035p.fits", ok=False, reason="nextend_mismatch", sha="2"),
        _verdict(tmp_path, 751036, "in/751036p.fits", sha="1"),  # byte-identical to 751034
    ]
    accepted, quarantined = write_inventory(
        checks, [("in/junk.fits", "unrecognised_name", "file name is not NNNNNNp.fits[.fz]")],
        tmp_path / "inventory.csv", tmp_path / "q" / "quarantine.csv")
    assert (accepted, quarantined) == (1, 3)
    with open(tmp_path / "q" / "quarantine.csv") as handle:
        rows = {row["path"]: row["reason"] for row in csv.DictReader(handle)}
    assert rows == {"in/751035p.fits": "nextend_mismatch", "in/751036p.fits": "duplicate_expnum",
                    "in/junk.fits": "unrecognised_name"}
