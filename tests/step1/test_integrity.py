"""Tests of spica.step1.integrity: one valid synthetic exposure, one bad file per reason.

The synthetic MegaPrime-like MEF is built here from a minimal card set, so
these tests never need ``../shared``; one extra test rebuilds a file from the
real Elixir header cards when they are available.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from astropy.io import fits

from spica.headers import calibration_reference, read_header_dump
from spica.step1.integrity import REASONS, CheckResult, check_exposure, find_duplicates

from tests.conftest import SHARED_DATA  # noqa: E402

#: The integrity limits of config/config.yaml (``step1.integrity``): check_exposure has no defaults.
LIMITS = {"instrument": "MegaPrime", "detector": "MegaCam", "obstype": "OBJECT", "max_nonfinite_fraction": 0.05}
HEADERS = SHARED_DATA / "megacam" / "headers"
FITSVERIFY = shutil.which("fitsverify")

EXPNUM = 751034
RA, DEC = 214.86, 52.68
SHAPE = (60, 40)  # (NAXIS2, NAXIS1): tiny stand-in for 4644 x 2112
CD = 0.187 / 3600.0

def primary_cards(n_ccd: int, expnum: int = EXPNUM) -> dict[str, Any]:
    """Minimal primary card set of the input contract (values padded like Elixir)."""
    return {
        "INSTRUME": "MegaPrime",
        "DETECTOR": "MegaCam ",
        "NEXTEND": n_ccd,
        "EXPNUM": expnum,
        "OBSTYPE": "OBJECT  ",
        "OBJECT": "D3",
        "RUNID": "04AL05  ",
        "QRUNID": "04AQ01  ",
        "CRUNID": "04Am05  ",
        "PI_NAME": "Wide_Synoptic CFHTLS",
        "FILTER": "i.MP9701",
        "EXPTIME": 620.183,
        "AIRMASS": 1.222,
        "DATE-OBS": "2004-06-24",
        "UTC-OBS": "07:30:42.0",
        "MJD-OBS": 53180.31,
        "RA_DEG": RA,
        "DEC_DEG": DEC,
        "REL_DATE": "2006-05-01T00:00:00",
    }


def extension_cards(index: int, shape: tuple[int, int], expnum: int = EXPNUM) -> dict[str, Any]:
    """Minimal CCD card set: calibration, photometry and a TAN WCS near the pointing."""
    ny, nx = shape
    ext = f"ccd{index:02d}"
    return {
        "EXTNAME": ext,
        "CCDSIZE": f"[1:{nx - 8},1:{ny - 4}]",
        "DETSEC": f"[{index * nx + 1}:{(index + 1) * nx},1:{ny}]",
        "GAIN": 1.6,
        "GAINA": 1.55,
        "GAINB": 1.65,
        "RDNOISE": 4.0,
        "SATURATE": 65535.0,
        "MAXLIN": 65000.0,
        "PHOT_C": 26.2,
        "PHOT_K": -0.04,
        "IMRED_FF": f"04Am05.flat.i.36.01.fits[{ext}]",
        "IMRED_MK": f"2004B.mask.0.36.01.fits[{ext}]",
        "EXPNUM": expnum,
        "CTYPE1": "RA---TAN",
        "CTYPE2": "DEC--TAN",
        "CRVAL1": RA,
        "CRVAL2": DEC,
        # a 10-column mosaic centred on the pointing, MegaCam-like CCD pitch
        "CRPIX1": nx / 2 - (index % 10 - 4.5) * 2150.0,
        "CRPIX2": ny / 2 - (index // 10 - 1.5) * 4700.0,
        "CD1_1": -CD,
        "CD1_2": 0.0,
        "CD2_1": 0.0,
        "CD2_2": CD,
    }


def _apply(header: fits.Header, updates: dict[str, Any] | None) -> fits.Header:
    for key, value in (updates or {}).items():
        if value is None:
            header.remove(key, ignore_missing=True, remove_all=True)
        else:
            header[key] = value
    return header


def write_mef(
    path: Path,
    primary: fits.Header,
    extensions: list[fits.Header],
    *,
    shapes: dict[int, tuple[int, ...]] | None = None,
    nan_fraction: dict[int, float] | None = None,
    float_data: bool = False,
    compressed: bool = False,
    output_verify: str = "exception",
) -> Path:
    """Write a MEF: BITPIX 16 with Elixir-like BSCALE/BZERO, float32, or RICE tiles.

    The extension headers lose their BSCALE/BZERO/BLANK cards (in place).
    """
    rng = np.random.default_rng(42)
    hdus: list[fits.hdu.base.ExtensionHDU] = []
    for index, header in enumerate(extensions):
        for key in ("BSCALE", "BZERO", "BLANK"):
            header.remove(key, ignore_missing=True, remove_all=True)
        shape = (shapes or {}).get(index, SHAPE)
        sky = rng.normal(1000.0, 30.0, size=shape).astype(np.float32)
        fraction = (nan_fraction or {}).get(index, 0.0)
        if fraction:
            sky.ravel()[: int(round(fraction * sky.size))] = np.nan
        if compressed:
            hdus.append(fits.CompImageHDU(sky.astype(np.int16), header=header,
                                          compression_type="RICE_1"))
        elif float_data or fraction:
            hdus.append(fits.ImageHDU(sky, header=header))
        else:
            hdu = fits.ImageHDU(sky, header=header)
            hdu.scale("int16", bscale=1.03, bzero=33651.13)
            hdus.append(hdu)
    hdulist = fits.HDUList([fits.PrimaryHDU(header=primary), *hdus])
    hdulist.writeto(path, output_verify=output_verify)
    return path


def make_exposure(
    directory: Path,
    *,
    n_ccd: int = 4,
    expnum: int = EXPNUM,
    name: str | None = None,
    primary: dict[str, Any] | None = None,
    ext: dict[int, dict[str, Any]] | None = None,
    **kwargs: Any,
) -> Path:
    """Write a valid synthetic exposure, then apply card updates (None deletes)."""
    compressed = kwargs.get("compressed", False)
    name = name or f"{expnum}p.fits" + (".fz" if compressed else "")
    prim = _apply(fits.Header(list(primary_cards(n_ccd, expnum).items())), primary)
    exts = [
        _apply(fits.Header(list(extension_cards(i, SHAPE, expnum).items())), (ext or {}).get(i))
        for i in range(n_ccd)
    ]
    return write_mef(directory / name, prim, exts, **kwargs)


def fingerprint(path: Path) -> tuple[int, str]:
    return path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()


def check(path: Path, reason: str | None = None, **kwargs: Any) -> CheckResult:
    """Run the check on a read-only file and assert it is untouched (and the reason)."""
    path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)  # 0444
    before = fingerprint(path)
    result = check_exposure(path, **{**LIMITS, **kwargs})
    assert fingerprint(path) == before, "the check modified the file"
    assert result.reason == reason, result.message
    assert result.ok is (reason is None)
    json.dumps(result.to_dict())  # always serialisable
    if reason is not None:
        assert result.details["failures"][0]["reason"] == reason
    return result


# --------------------------------------------------------------------------
# Valid files
# --------------------------------------------------------------------------


def test_valid_exposure(tmp_path: Path) -> None:
    path = make_exposure(tmp_path, n_ccd=5)
    result = check(path)
    assert result.expnum == EXPNUM and result.n_ccd == 5
    assert result.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert result.info is not None and result.info.band == "i" and result.info.runid == "04AL05"
    assert result.details["failures"] == []
    assert result.details["extnames"] == [f"ccd{i:02d}" for i in range(5)]
    assert result.details["ccd_shape"] == list(SHAPE)
    assert result.details["declared_size"] == result.details["file_size"]
    assert result.details["compressed"] is False


def test_valid_float_and_compressed(tmp_path: Path) -> None:
    check(make_exposure(tmp_path, float_data=True))
    result = check(make_exposure(tmp_path, expnum=751035, compressed=True))
    assert result.details["compressed"] is True
    assert Path(result.path).name == "751035p.fits.fz"


def test_forty_ccds(tmp_path: Path) -> None:
    result = check(make_exposure(tmp_path, n_ccd=40))
    assert result.n_ccd == 40 and result.details["extnames"][-1] == "ccd39"


def test_json_round_trip(tmp_path: Path) -> None:
    result = check(make_exposure(tmp_path, primary={"OBSTYPE": "BIAS"}), "not_science")
    data = json.loads(json.dumps(result.to_dict()))
    assert set(data) == {"expnum", "path", "ok", "reason", "message", "details", "info",
                         "n_ccd", "sha256"}  # fmt: skip
    assert CheckResult.from_dict(data) == result


@pytest.mark.skipif(FITSVERIFY is None, reason="fitsverify not installed")
def test_valid_with_fitsverify(tmp_path: Path) -> None:
    result = check(make_exposure(tmp_path), fitsverify=FITSVERIFY)
    assert result.details["fitsverify"]["errors"] == 0


@pytest.mark.parametrize("stem", ["979412p", "1257365p"])
def test_real_elixir_cards(tmp_path: Path, stem: str) -> None:
    """A file carrying real Elixir header cards (pixels shrunk) passes.

    Written as plain BITPIX 16 + BSCALE/BZERO (astropy takes seconds to write
    tile-compressed HDUs with 450-card headers; compression is covered by the
    synthetic files). The 979412p dump lost EXTNAME: restored from IMRED_FF.
    """
    dump = HEADERS / f"{stem}.fits.header"
    if not dump.exists():
        pytest.skip(f"real headers not available ({dump})")
    primary, *exts = read_header_dump(dump)
    for header in exts:
        header["CCDSIZE"] = f"[1:{SHAPE[1] - 8},1:{SHAPE[0] - 4}]"
        if "EXTNAME" not in header:
            header["EXTNAME"] = calibration_reference(header["IMRED_FF"])[1]
        for key in ("XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "PCOUNT", "GCOUNT"):
            header.remove(key, ignore_missing=True)
    for key in ("SIMPLE", "BITPIX", "NAXIS", "EXTEND"):
        primary.remove(key, ignore_missing=True)
    # skip astropy's (slow) write-time verification of 36 x 450 real cards;
    # the check under test reads them back anyway
    path = write_mef(tmp_path / f"{stem}.fits", primary, exts, output_verify="ignore")
    result = check(path)
    assert result.n_ccd == 36 and result.info is not None
    assert result.info.expnum == int(stem[:-1])


# --------------------------------------------------------------------------
# One bad file per reason
# --------------------------------------------------------------------------


def test_unreadable_not_fits(tmp_path: Path) -> None:
    path = tmp_path / "751034p.fits"
    path.write_text("SIMPLE = this is not a FITS file\n")
    result = check(path, "unreadable")
    assert result.info is None and result.sha256 is not None


def test_unreadable_missing_file(tmp_path: Path) -> None:
    result = check_exposure(tmp_path / "751034p.fits", **LIMITS)
    assert result.reason == "unreadable" and result.sha256 is None and result.expnum == EXPNUM


@pytest.mark.parametrize("cut", [2880 + 100, 2880 * 3 + 100, -2880, -1])
def test_unreadable_truncated(tmp_path: Path, cut: int) -> None:
    """Cut inside a header, inside a CCD's data, a block short and one byte short."""
    good = make_exposure(tmp_path)
    data = good.read_bytes()
    path = tmp_path / "sub" / good.name
    path.parent.mkdir()
    path.write_bytes(data[:cut])
    result = check(path, "unreadable")
    assert "truncated" in result.message or "after the last" in result.message


def test_unreadable_trailing_bytes(tmp_path: Path) -> None:
    path = make_exposure(tmp_path)
    with open(path, "ab") as stream:
        stream.write(b"X" * 100)
    result = check(path, "unreadable")
    assert "100 bytes after the last" in result.message


@pytest.mark.skipif(FITSVERIFY is None, reason="fitsverify not installed")
def test_fitsverify_failed(tmp_path: Path) -> None:
    """A card astropy tolerates but fitsverify rejects (bad numeric value)."""
    path = _inject_bad_card(make_exposure(tmp_path))
    assert check_exposure(path, **LIMITS).ok  # astropy alone is happy
    result = check(path, "fitsverify_failed", fitsverify=FITSVERIFY)
    assert "error" in result.message
    assert result.details["fitsverify"]["errors"] >= 1


def test_fitsverify_missing_binary(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        check_exposure(make_exposure(tmp_path), fitsverify="/nonexistent/fitsverify", **LIMITS)


def test_nextend_mismatch(tmp_path: Path) -> None:
    result = check(make_exposure(tmp_path, primary={"NEXTEND": 36}), "nextend_mismatch")
    assert "36" in result.message and "4 extension" in result.message


def test_missing_keyword_primary(tmp_path: Path) -> None:
    result = check(make_exposure(tmp_path, primary={"FILTER": None}), "missing_keyword")
    failure = result.details["failures"][0]
    assert failure["keyword"] == "FILTER" and failure["hdu"] == 0
    assert result.info is None


def test_missing_keyword_extension(tmp_path: Path) -> None:
    result = check(make_exposure(tmp_path, ext={2: {"PHOT_C": None}}), "missing_keyword")
    failure = result.details["failures"][0]
    assert (failure["keyword"], failure["extname"], failure["hdu"]) == ("PHOT_C", "ccd02", 3)
    assert result.info is not None  # the primary is fine


def test_missing_gain_pair_is_enough(tmp_path: Path) -> None:
    check(make_exposure(tmp_path, ext={1: {"GAIN": None}}))
    check(make_exposure(tmp_path, expnum=751035, ext={1: {"GAIN": None, "GAINB": None}}),
          "missing_keyword")  # fmt: skip


@pytest.mark.parametrize(
    ("primary", "ext", "keyword"),
    [
        ({"FILTER": "i"}, None, "FILTER"),
        ({"FILTER": "I.MP9701"}, None, "FILTER"),
        ({"EXPTIME": "620"}, None, "EXPTIME"),
        ({"DATE-OBS": "2004/06/24"}, None, "DATE-OBS"),
        ({"DATE-OBS": "2004-02-30"}, None, "DATE-OBS"),
        ({"RUNID": "CFHTLS"}, None, "RUNID"),
        ({"RA_DEG": 400.0}, None, "RA_DEG"),
        (None, {1: {"EXTNAME": "chip1"}}, "EXTNAME"),
        (None, {1: {"EXTNAME": "ccd00"}}, "EXTNAME"),  # repeated
        (None, {2: {"IMRED_FF": "04Am05.flat.i.36.01.fits[ccd07]"}}, "IMRED_FF"),
        (None, {2: {"EXPNUM": 751099}}, "EXPNUM"),
        (None, {0: {"GAIN": "1.6"}}, "GAIN"),
    ],
)
def test_bad_keyword(tmp_path: Path, primary: dict | None, ext: dict | None, keyword: str) -> None:
    result = check(make_exposure(tmp_path, primary=primary, ext=ext), "bad_keyword")
    failures = result.details["failures"]
    assert keyword in [f["keyword"] for f in failures]
    assert {f["reason"] for f in failures} == {"bad_keyword"}


@pytest.mark.parametrize("key", ["INSTRUME", "DETECTOR"])
def test_not_instrument(tmp_path: Path, key: str) -> None:
    result = check(make_exposure(tmp_path, primary={key: "WIRCam"}), "not_instrument")
    assert "WIRCam" in result.message


def test_instrument_is_configurable(tmp_path: Path) -> None:
    path = make_exposure(tmp_path, primary={"INSTRUME": "WIRCam", "DETECTOR": "WIRCam"})
    check(path, instrument="WIRCam", detector="WIRCam")


def test_not_science(tmp_path: Path) -> None:
    result = check(make_exposure(tmp_path, primary={"OBSTYPE": "FLAT"}), "not_science")
    assert "FLAT" in result.message


def test_bad_shape_differs_from_other_ccds(tmp_path: Path) -> None:
    path = make_exposure(tmp_path, shapes={2: (60, 38)}, ext={2: {"CCDSIZE": "[1:30,1:50]"}})
    result = check(path, "bad_shape")
    assert result.details["failures"][0]["extname"] == "ccd02"


def test_bad_shape_ccdsize(tmp_path: Path) -> None:
    result = check(make_exposure(tmp_path, ext={1: {"CCDSIZE": "[1:2048,1:4612]"}}), "bad_shape")
    assert "CCDSIZE" in result.message


def test_bad_shape_not_2d(tmp_path: Path) -> None:
    check(make_exposure(tmp_path, shapes={3: (2, 60, 40)}), "bad_shape")


@pytest.mark.parametrize(
    "update",
    [
        {"CD1_1": 0.0, "CD2_2": 0.0},  # singular
        {"CD1_1": 1.0, "CD2_2": 1.0},  # one degree per pixel
        {"CRVAL2": 95.0},
        {"CRVAL1": -10.0},
        {"CTYPE1": "RA---SIN", "CTYPE2": "DEC--SIN"},
        {"CTYPE1": "LINEAR", "CTYPE2": "LINEAR"},
        {"CRVAL1": RA + 20.0},  # far from the pointing
    ],
)
def test_bad_wcs(tmp_path: Path, update: dict[str, Any]) -> None:
    result = check(make_exposure(tmp_path, ext={1: update}), "bad_wcs")
    assert result.details["failures"][0]["extname"] == "ccd01"


def test_nonfinite_pixels(tmp_path: Path) -> None:
    path = make_exposure(tmp_path, nan_fraction={0: 0.01, 3: 0.10})
    result = check(path, "nonfinite_pixels")
    assert "ccd03" in result.message
    assert result.details["nonfinite_fraction"]["ccd00"] == pytest.approx(0.01, abs=1e-3)
    check(path, max_nonfinite_fraction=0.2)


def test_failures_are_ordered_and_all_collected(tmp_path: Path) -> None:
    path = make_exposure(tmp_path, primary={"OBSTYPE": "BIAS", "NEXTEND": 5},
                         nan_fraction={1: 0.5}, ext={2: {"CRVAL2": 95.0}})  # fmt: skip
    result = check(path, "nextend_mismatch")
    reasons = [f["reason"] for f in result.details["failures"]]
    assert reasons == ["nextend_mismatch", "not_science", "bad_wcs", "nonfinite_pixels"]
    assert "more failure" in result.message


def test_duplicate_expnum(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = make_exposure(tmp_path / "a")
    second = make_exposure(tmp_path / "b", primary={"OBJECT": "D3-again"})
    other = make_exposure(tmp_path, expnum=751040)
    results = [check(second), check(other), check(first)]
    marked = find_duplicates(results)
    assert [r.reason for r in marked] == ["duplicate_expnum", None, None]
    assert marked[0].details["duplicate_of"] == str(first)
    assert marked[1] is results[1] and marked[2] is results[2]
    assert results[0].ok  # input not modified


def test_duplicate_prefers_a_valid_file_and_identical_bytes(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    broken = make_exposure(tmp_path / "a", primary={"OBSTYPE": "BIAS"})
    good = make_exposure(tmp_path / "b")
    marked = find_duplicates([check(broken, "not_science"), check(good)])
    assert marked[1].ok and marked[0].reason == "not_science"
    assert [f["reason"] for f in marked[0].details["failures"]] == ["not_science",
                                                                      "duplicate_expnum"]
    # identical bytes under an unreadable name: no EXPNUM to compare, sha256 matches
    fake = [CheckResult(None, "x/1.fits", False, "unreadable", "", {}, None, 0, "abc"),
            CheckResult(None, "x/0.fits", False, "unreadable", "", {}, None, 0, "abc")]
    marked = find_duplicates(fake)
    assert marked[1] is fake[1]
    assert marked[0].details["duplicate_of"] == "x/0.fits"
    assert [f["reason"] for f in marked[0].details["failures"]] == ["duplicate_expnum"]


def _inject_bad_card(path: Path) -> Path:
    """Replace the primary END card by a card fitsverify rejects and astropy tolerates."""
    data = bytearray(path.read_bytes())
    end = data.index(b"END" + b" " * 77)
    assert end + 160 <= 2880, "need two free card slots in the primary header"
    data[end : end + 160] = b"FOO     = 1.0.0 / malformed".ljust(80) + b"END".ljust(80)
    path.write_bytes(bytes(data))
    return path


def _truncated(tmp_path: Path) -> Path:
    good = make_exposure(tmp_path, name="good.fits")
    path = tmp_path / f"{EXPNUM}p.fits"
    path.write_bytes(good.read_bytes()[:-2880])
    return path


def _blank_ccd(tmp_path: Path) -> Path:
    """A valid exposure whose second CCD reads all zero (issue 11)."""
    good = make_exposure(tmp_path, name="good.fits", float_data=True)
    with fits.open(good) as hdul:
        hdul[2].data = np.zeros_like(hdul[2].data)
        hdul.writeto(tmp_path / f"{EXPNUM}p.fits")
    return tmp_path / f"{EXPNUM}p.fits"


#: One minimal bad file per reason code: builder(tmp_path) -> (path, check kwargs).
REASON_CASES: dict[str, Any] = {
    "unreadable": lambda d: (_truncated(d), {}),
    "fitsverify_failed": lambda d: (_inject_bad_card(make_exposure(d)),
                                    {"fitsverify": FITSVERIFY}),
    "nextend_mismatch": lambda d: (make_exposure(d, primary={"NEXTEND": 3}), {}),
    "missing_keyword": lambda d: (make_exposure(d, primary={"REL_DATE": None}), {}),
    "bad_keyword": lambda d: (make_exposure(d, primary={"FILTER": "r.MP96"}), {}),
    "not_instrument": lambda d: (make_exposure(d, primary={"DETECTOR": "MegaCam2"}), {}),
    "not_science": lambda d: (make_exposure(d, primary={"OBSTYPE": "BIAS"}), {}),
    "bad_shape": lambda d: (make_exposure(d, shapes={1: (64, 40)}), {}),
    "bad_wcs": lambda d: (make_exposure(d, ext={0: {"CD2_1": -CD, "CD2_2": 0.0,
                                                    "CD1_1": 0.0, "CD1_2": 0.0}}), {}),
    "nonfinite_pixels": lambda d: (make_exposure(d, nan_fraction={1: 0.06}), {}),
    "blank_ccd": lambda d: (_blank_ccd(d), {}),
    # the whole file says 751035 (primary and CCDs), its name 751034 (issue 11)
    "expnum_mismatch": lambda d: (make_exposure(d, expnum=751035, name=f"{EXPNUM}p.fits"), {}),
    "duplicate_expnum": None,  # needs two files: covered in test_reason_case below
}  # fmt: skip


def test_every_reason_has_a_case() -> None:
    assert list(REASON_CASES) == list(REASONS)


@pytest.mark.parametrize("reason", list(REASONS))
def test_reason_case(tmp_path: Path, reason: str) -> None:
    """Each code is produced by its bad file, alone (a single failure)."""
    if reason == "fitsverify_failed" and FITSVERIFY is None:
        pytest.skip("fitsverify not installed")
    if reason == "duplicate_expnum":
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        results = [check(make_exposure(tmp_path / d)) for d in "ba"]
        result = find_duplicates(results)[0]
    else:
        path, kwargs = REASON_CASES[reason](tmp_path)
        result = check(path, reason, **kwargs)
    assert result.reason == reason
    assert [f["reason"] for f in result.details["failures"]] == [reason], result.details
    assert REASONS[reason]


def test_reasons_documented() -> None:
    assert list(REASONS)[0] == "unreadable" and list(REASONS)[-1] == "duplicate_expnum"
    assert all(isinstance(text, str) and len(text) > 20 for text in REASONS.values())


def test_raw_integer_pixels_match_astropy(tmp_path):
    """The integrity check reads plain integer CCDs straight from the file
    (spica.step1._pixels): the same pixels as astropy's once scaled; anything
    else (float, BLANK, a malformed BZERO) is left to astropy."""
    from spica.step1._pixels import raw_integer_image

    rng = np.random.default_rng(5)
    values = rng.integers(0, 65535, (30, 20)).astype(np.uint16)
    hdus = [fits.PrimaryHDU(), fits.ImageHDU(values, name="ccd00"),
            fits.ImageHDU(values.astype(np.float32), name="ccd01")]
    blank = fits.ImageHDU(values.astype(np.int16), name="ccd02")
    blank.header["BLANK"] = -32768
    hdus.append(blank)
    path = tmp_path / "raw.fits"
    fits.HDUList(hdus).writeto(path)
    with fits.open(path) as hdul:
        raw = raw_integer_image(hdul[1], path)
        assert raw.dtype == np.dtype(">i2") and raw.shape == (30, 20) and isinstance(raw, np.memmap)
        assert np.array_equal(raw.astype(np.float64) * hdul[1].header["BSCALE"] + hdul[1].header["BZERO"], values)
        assert raw_integer_image(hdul[2], path) is None and raw_integer_image(hdul[3], path) is None
    with fits.open(path) as hdul:
        hdul[1].header["BZERO"] = "many"
        assert raw_integer_image(hdul[1], path) is None
