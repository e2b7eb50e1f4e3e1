"""Tests of spica.headers: header dumps (both layouts) and the typed records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from astropy.io import fits

from spica.headers import (
    CcdInfo,
    ExposureInfo,
    HeaderError,
    calibration_reference,
    ccd_info,
    exposure_info,
    image_hdus,
    image_header,
    parse_header_dump,
    parse_section,
    read_header_dump,
    section_or_none,
    section_slices,
)

SHARED_DATA = Path(__file__).parents[1] / ".." / "shared" / "data"
HEADERS = SHARED_DATA / "megacam" / "headers"


def _dump(name: str) -> Path:
    path = HEADERS / name
    if not path.exists():
        pytest.skip(f"real MegaPrime header dumps not available: {path} is missing")
    return path


@pytest.fixture(scope="module")
def h979412() -> list[fits.Header]:
    return read_header_dump(_dump("979412p.fits.header"))


@pytest.fixture(scope="module")
def h1257365() -> list[fits.Header]:
    return read_header_dump(_dump("1257365p.fits.header"))


# --------------------------------------------------------------------------
# Real dumps
# --------------------------------------------------------------------------


def test_979412p_layout_with_separators(h979412: list[fits.Header]) -> None:
    # "# HDU N in ..." separators; the last HDU has no END card
    assert len(h979412) == 37
    assert h979412[0]["NEXTEND"] == 36 == len(h979412) - 1
    assert all(h["XTENSION"] == "IMAGE" for h in h979412[1:])
    assert h979412[36]["NAXIS1"] == 2112


def test_979412p_exposure_info(h979412: list[fits.Header]) -> None:
    info = exposure_info(h979412[0])
    assert info.expnum == 979412
    assert info.filter == "r.MP9601" and info.band == "r"
    assert info.runid == "08AC14"  # '08AC14  ' in the header
    assert (info.qrunid, info.crunid) == ("08AQ05", "08Am03")
    assert info.obstype == "OBJECT" and info.object == "UrsaMajII_4"
    assert info.pi_name == "Marla Geha"
    assert info.exptime == pytest.approx(468.332)
    assert info.airmass == pytest.approx(1.388)
    assert (info.date_obs, info.utc_obs) == ("2008-03-30", "6:15:39.35")
    assert info.mjd_obs == pytest.approx(54555.2608722)
    assert (info.ra_deg, info.dec_deg) == pytest.approx((132.43, 63.575))
    assert info.rel_date == "2009-08-31T00:00:00"
    assert (info.nextend, info.instrume, info.detector) == (36, "MegaPrime", "MegaCam")


def test_979412p_ccd13(h979412: list[fits.Header]) -> None:
    header = h979412[14]  # HDU 14 is ccd13; this dump lost the EXTNAME cards
    with pytest.raises(HeaderError) as err:
        ccd_info(header)
    assert [(p.kind, p.keyword) for p in err.value.problems] == [("missing", "EXTNAME")]
    ccd = ccd_info(header, extname="ccd13")
    assert ccd.extname == "ccd13"
    assert ccd.imred_ff == "08Am03.flat.r.36.02.fits" and ccd.imred_ff_ext == "ccd13"
    assert ccd.imred_mk == "2003A.mask.0.36.01.fits" and ccd.imred_mk_ext == "ccd13"
    assert ccd.gain == pytest.approx(1.6452)
    assert ccd.rdnoise == 3.0
    assert ccd.saturate == ccd.maxlin == 67221.0
    assert (ccd.phot_c, ccd.phot_k) == pytest.approx((26.045, -0.1))
    assert (ccd.naxis1, ccd.naxis2) == (2112, 4644)


def test_979412p_every_ccd(h979412: list[fits.Header]) -> None:
    ccds = [ccd_info(h, extname=f"ccd{i:02d}") for i, h in enumerate(h979412[1:])]
    assert all(c.imred_ff_ext == c.extname for c in ccds)
    assert {c.imred_ff for c in ccds} == {"08Am03.flat.r.36.02.fits"}


def test_1257365p_layout_end_only_compressed(h1257365: list[fits.Header]) -> None:
    # no separators: HDUs delimited by END; BINTABLE (ZIMAGE) headers turned into images
    assert len(h1257365) == 37
    ext = h1257365[1]
    assert ext["XTENSION"] == "IMAGE" and ext["BITPIX"] == 16
    assert (ext["NAXIS"], ext["NAXIS1"], ext["NAXIS2"]) == (2, 2112, 4644)
    assert "ZIMAGE" not in ext and "TFORM1" not in ext and "ZNAXIS1" not in ext
    assert [h["EXTNAME"].strip() for h in h1257365[1:]] == [f"ccd{i:02d}" for i in range(36)]
    info = exposure_info(h1257365[0])
    assert (info.expnum, info.filter, info.band, info.runid) == (1257365, "i.MP9702", "i",
                                                                 "10BD90")  # fmt: skip
    ccd = ccd_info(h1257365[1])
    assert ccd.extname == "ccd00" and ccd.gain == pytest.approx(1.585)
    assert ccd.imred_ff == "10Bm03.flat.i2.36.01.fits" and ccd.imred_ff_ext == "ccd00"
    assert all(ccd_info(h).extname == f"ccd{i:02d}" for i, h in enumerate(h1257365[1:]))


def test_1257365p_raw_bintable(tmp_path: Path) -> None:
    raw = read_header_dump(_dump("1257365p.fits.header"), image_headers=False)
    assert raw[1]["XTENSION"] == "BINTABLE" and raw[1]["ZIMAGE"] is True
    assert ccd_info(raw[1]).naxis1 == 2112  # ccd_info reads compressed headers too


# --------------------------------------------------------------------------
# Synthetic dumps
# --------------------------------------------------------------------------


def _card(text: str) -> str:
    return text.ljust(80)


PRIMARY = [_card("SIMPLE  =                    T"), _card("NAXIS   =                    0"),
           _card("NEXTEND =                    1")]  # fmt: skip
EXT = [_card("XTENSION= 'IMAGE   '"), _card("NAXIS   =                    2"),
       _card("EXTNAME = 'ccd00   '")]  # fmt: skip
END = _card("END")


def test_parse_separator_layout() -> None:
    text = "\n".join(["# HDU 0 in x.fits:", *PRIMARY, END, "", "# HDU 1 in x.fits:", *EXT])
    headers = parse_header_dump(text)
    assert [len(h) for h in headers] == [3, 3]
    assert headers[1]["EXTNAME"] == "ccd00"


def test_parse_end_layout_and_blank_lines() -> None:
    text = "\n".join([*PRIMARY, END, "", *EXT, END, ""]) + "\n"
    headers = parse_header_dump(text)
    assert len(headers) == 2 and headers[0]["NEXTEND"] == 1


def test_parse_short_lines_and_raw_blocks() -> None:
    # trailing blanks stripped by an editor, and raw header bytes without newlines
    stripped = "\n".join(line.rstrip() for line in [*PRIMARY, END])
    assert parse_header_dump(stripped)[0]["NAXIS"] == 0
    raw = "".join([*PRIMARY, END, *EXT, END])
    assert [h.get("EXTNAME") for h in parse_header_dump(raw)] == [None, "ccd00"]


def test_parse_rejects_non_cards() -> None:
    with pytest.raises(ValueError, match="80-character"):
        parse_header_dump("X" * 81)
    with pytest.raises(ValueError, match="no FITS card"):
        parse_header_dump("\n\n")


def test_image_header_roundtrip_of_astropy_compression(tmp_path: Path) -> None:
    import numpy as np

    hdu = fits.CompImageHDU(np.zeros((5, 7), dtype=np.int16), name="ccd03")
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(tmp_path / "x.fits.fz")
    with fits.open(tmp_path / "x.fits.fz", disable_image_compression=True) as hdul:
        raw = hdul[1].header.copy()
    assert raw["XTENSION"] == "BINTABLE"
    image = image_header(raw)
    assert (image["XTENSION"], image["BITPIX"], image["NAXIS1"], image["NAXIS2"]) == (
        "IMAGE", 16, 7, 5)  # fmt: skip
    assert image["EXTNAME"].lower() == "ccd03" and "ZCMPTYPE" not in image
    assert image_header(image) == image  # plain image headers pass through


# --------------------------------------------------------------------------
# Strict keyword parsing
# --------------------------------------------------------------------------


def _header(cards: dict[str, object], updates: dict[str, object]) -> fits.Header:
    """A header of ``cards`` changed by ``updates`` (a None value leaves the keyword out)."""
    header = fits.Header()
    for key, value in {**cards, **updates}.items():
        if value is not None:
            header[key] = value
    return header


def _primary(**updates: object) -> fits.Header:
    cards = {
        "INSTRUME": "MegaPrime", "DETECTOR": "MegaCam ", "NEXTEND": 36, "EXPNUM": 751034,
        "OBSTYPE": "OBJECT  ", "OBJECT": "W3+2-1", "RUNID": "04AL05  ", "QRUNID": "04AQ01",
        "CRUNID": "04Am05", "PI_NAME": "Wide_Synoptic CFHTLS", "FILTER": "i.MP9701",
        "EXPTIME": 620.183, "AIRMASS": 1.222, "DATE-OBS": "2004-06-24", "UTC-OBS": "07:30:42.0",
        "MJD-OBS": 53180.31, "RA_DEG": 217.526, "DEC_DEG": 53.580,
        "REL_DATE": "2006-05-01T00:00:00",
    }  # fmt: skip
    return _header(cards, updates)


def test_exposure_info_contract_example() -> None:
    info = exposure_info(_primary())
    assert (info.runid, info.detector, info.band, info.nextend) == ("04AL05", "MegaCam", "i", 36)
    data = json.loads(json.dumps(info.to_dict()))
    assert ExposureInfo.from_dict(data) == info


def test_exposure_info_collects_every_problem() -> None:
    header = _primary(FILTER="i", EXPTIME="620", RUNID=None, EXPNUM=751034.0,
                      **{"DATE-OBS": "24/06/2004", "UTC-OBS": "25:00:00"})  # fmt: skip
    with pytest.raises(HeaderError) as err:
        exposure_info(header)
    problems = {(p.kind, p.keyword) for p in err.value.problems}
    assert problems == {("bad", "FILTER"), ("bad", "EXPTIME"), ("missing", "RUNID"),
                        ("bad", "EXPNUM"), ("bad", "DATE-OBS"), ("bad", "UTC-OBS")}  # fmt: skip
    assert "FILTER = 'i'" in str(err.value)


@pytest.mark.parametrize(
    ("key", "value"),
    [("EXPTIME", 0.0), ("EXPTIME", -1.0), ("AIRMASS", 0.5), ("DEC_DEG", 91.0),
     ("REL_DATE", "2006-13-01T00:00:00"), ("OBJECT", "   "), ("CRUNID", "04Am5"),
     ("NEXTEND", True), ("DATE-OBS", "2004-06-24T07:30:42")],
)  # fmt: skip
def test_exposure_info_bad_values(key: str, value: object) -> None:
    with pytest.raises(HeaderError) as err:
        exposure_info(_primary(**{key: value}))
    assert [(p.kind, p.keyword) for p in err.value.problems] == [("bad", key)]


def _ccd(**updates: object) -> fits.Header:
    cards = {
        "XTENSION": "IMAGE", "BITPIX": 16, "NAXIS": 2, "NAXIS1": 2112, "NAXIS2": 4644,
        "EXTNAME": "ccd14", "CCDSIZE": "[1:2048,1:4612]", "DETSEC": "[4160:2113,19351:14740]",
        "GAINA": 1.5, "GAINB": 1.7, "RDNOISE": 5, "SATURATE": 65535, "MAXLIN": 65000,
        "PHOT_C": 26.2, "PHOT_K": -0.04, "IMRED_FF": "04Am05.flat.i.36.01.fits[ccd14]",
        "IMRED_MK": "2004B.mask.0.36.01.fits[ccd14]", "CTYPE1": "RA---TAN",
        "CTYPE2": "DEC--TAN", "CRVAL1": 217.5, "CRVAL2": 53.6, "CRPIX1": 100.0,
        "CRPIX2": 200.0, "CD1_1": -5.2e-5, "CD1_2": 0.0, "CD2_1": 0.0, "CD2_2": 5.2e-5,
    }  # fmt: skip
    return _header(cards, updates)


def test_ccd_info_gain_pair_and_json() -> None:
    ccd = ccd_info(_ccd())
    assert ccd.gain == pytest.approx(1.6)  # mean of GAINA and GAINB when GAIN is absent
    assert ccd.imred_mk == "2004B.mask.0.36.01.fits" and ccd.imred_mk_ext == "ccd14"
    assert CcdInfo.from_dict(json.loads(json.dumps(ccd.to_dict()))) == ccd
    assert ccd_info(_ccd(GAIN=1.55)).gain == 1.55


def test_ccd_info_problems() -> None:
    header = _ccd(GAINB=None, EXTNAME="chip14", PHOT_K="x", CD2_2=None, NAXIS=3,
                  IMRED_FF="04Am05.flat.i.36.01.fits[ccd15]")  # fmt: skip
    with pytest.raises(HeaderError) as err:
        ccd_info(header)
    problems = {(p.kind, p.keyword) for p in err.value.problems}
    assert problems == {("missing", "GAINB"), ("bad", "EXTNAME"), ("bad", "PHOT_K"),
                        ("missing", "CD2_2"), ("bad", "NAXIS")}  # fmt: skip
    # with a valid EXTNAME the mismatching flat is reported
    with pytest.raises(HeaderError, match="names another CCD"):
        ccd_info(_ccd(IMRED_FF="04Am05.flat.i.36.01.fits[ccd15]"))


# --------------------------------------------------------------------------
# Small parsers
# --------------------------------------------------------------------------


def test_calibration_reference() -> None:
    assert calibration_reference("04Am05.flat.i.36.01.fits[ccd14]") == (
        "04Am05.flat.i.36.01.fits", "ccd14")  # fmt: skip
    assert calibration_reference(" 2004B.mask.0.36.01.fits[ccd14] ") == (
        "2004B.mask.0.36.01.fits", "ccd14")  # fmt: skip
    assert calibration_reference("08Am03.flat.r.36.02") == ("08Am03.flat.r.36.02", None)
    for bad in ("", "a.fits[ccd1", "a.fits[]", "a b.fits[ccd01]", "[ccd01]"):
        with pytest.raises(ValueError):
            calibration_reference(bad)


def test_parse_section() -> None:
    assert parse_section("[1:2048,1:4612]") == (1, 2048, 1, 4612)
    assert parse_section("[4160:2113,19351:14740]") == (4160, 2113, 19351, 14740)
    for bad in ("[1:2048]", "1:2048,1:4612", "[0:10,1:5]"):
        with pytest.raises(ValueError):
            parse_section(bad)


def test_section_or_none() -> None:
    assert section_or_none("[4160:2113,19351:14740]") == (4160, 2113, 19351, 14740)
    for missing in (None, "", "[1:2048]", "[0:10,1:5]"):
        assert section_or_none(missing) is None


def test_section_slices() -> None:
    assert section_slices("[33:2080,1:4612]", (4644, 2112)) == (slice(0, 4612), slice(32, 2080))
    assert section_slices("[2080:33,4612:1]", (4644, 2112)) == (slice(0, 4612), slice(32, 2080))
    assert section_slices("[5:40,3:50]", (10, 20)) == (slice(2, 10), slice(4, 20))  # clipped
    assert section_slices(None, (10, 20)) == (slice(0, 10), slice(0, 20))
    assert section_slices("[0:0,0:0]", (10, 20)) == (slice(0, 10), slice(0, 20))
    assert section_slices("[21:30,1:5]", (10, 20)) == (slice(0, 10), slice(0, 20))  # starts outside


def test_image_hdus(tmp_path: Path) -> None:
    import numpy as np

    image = np.zeros((4, 5), dtype=np.float32)
    hdul = fits.HDUList([
        fits.PrimaryHDU(),
        fits.ImageHDU(image, name="ccd00"),
        fits.BinTableHDU.from_columns([fits.Column(name="a", format="E", array=np.zeros(3))], name="tab"),
        fits.CompImageHDU(image, name="ccd01"),
        fits.ImageHDU(np.zeros(3, dtype=np.float32), name="line"),
    ])
    path = tmp_path / "mef.fits"
    hdul.writeto(path)
    with fits.open(path) as opened:
        assert [h.name for h in image_hdus(opened)] == ["CCD00", "CCD01"]
        assert [h.name for h in image_hdus(opened[2:])] == ["CCD01"]
    assert [h.name for h in image_hdus([fits.PrimaryHDU(image)])] == ["PRIMARY"]
