"""SCAMP layer: .ahead text, argument vector, heads, XML, and a real offline run.

The ``tools`` test builds its own data: the small demo survey, SExtractor
with the repository's step 1 configuration (trivial weight and flag maps
instead of WeightWatcher's), then SCAMP offline with
``config/astromatic/scamp.scamp``, and compares the result with the truth.
"""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from spica.astromatic import sextractor
from spica.astromatic.scamp import (
    CHECKPLOTS,
    checkplot_files,
    checkplot_names,
    head_statistics,
    head_wcs,
    parse_heads,
    parse_scamp_xml,
    read_heads,
    scamp_arguments,
)
from spica.calibration.accept import read_accept_summary, write_accept_summary
from spica.calibration.ahead import (
    PRIMARY_KEYWORDS,
    ahead_cards,
    exposure_zeropoints,
    write_ahead,
)
from tests.conftest import REPO, require_binary, small_survey

CONFIG = REPO / "config" / "astromatic" / "scamp.scamp"
ASTROMATIC = REPO / "config" / "astromatic"


# ------------------------------------------------------------------ helpers
def _primary() -> fits.Header:
    h = fits.Header()
    h["FILTER"] = ("r.MP9601", "Name of filter in position")
    h["QRUNID"] = ("04AQ02  ", "Q RunID")
    h["EXPTIME"] = (300.097, "Guessed integration time (seconds)")
    h["MJD-OBS"] = (53085.3211889, "Modified Julian Date at start of obs.")
    h["AIRMASS"] = (1.151, "Airmass at start of observation")
    h["PHOT_C"] = (26.0, "primary value, overridden by the extension")
    h["PHOT_K"] = (-0.1, "Elixir zero point - airmass term")
    return h


def _extension(i: int) -> fits.Header:
    h = fits.Header()
    h["EXTNAME"] = f"ccd{i:02d}"
    h["PHOT_C"] = (26.22 + 0.01 * i, "Elixir zero point")
    h["CRVAL1"] = 214.85
    return h


def _pv_header() -> fits.Header:
    h = fits.Header()
    for key, value in {
        "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 214.85, "CRVAL2": 52.68,
        "CRPIX1": 200.0, "CRPIX2": 400.0, "CD1_1": -5.1667e-5, "CD1_2": 0.0,
        "CD2_1": 0.0, "CD2_2": 5.1667e-5, "PV1_0": 0.0, "PV1_1": 1.0, "PV1_2": 0.0,
        "PV1_4": 0.0, "PV1_7": 50.0, "PV2_0": 0.0, "PV2_1": 1.0, "PV2_2": 0.0,
    }.items():
        h[key] = value
    return h


# --------------------------------------------------------------- .ahead text
def test_ahead_one_block_per_extension_round_trips():
    exts = [_extension(i) for i in range(3)]
    text = ahead_cards(_primary(), exts, photometric=True)
    blocks = text.split("END" + " " * 77 + "\n")
    assert blocks[-1] == "" and len(blocks) == 4
    assert all(len(line) == 80 for line in text.splitlines())
    for i, block in enumerate(blocks[:-1]):
        h = fits.Header.fromstring(block, sep="\n")
        assert set(PRIMARY_KEYWORDS) | {"PHOTFLAG", "PHOT_C", "PHOT_K"} <= set(h.keys())
        assert h["FILTER"] == "r.MP9601"
        assert h["QRUNID"] == "04AQ02"
        assert h["EXPTIME"] == pytest.approx(300.097)
        assert h["MJD-OBS"] == pytest.approx(53085.3211889)
        assert h["PHOTFLAG"] is True
        assert h["PHOT_C"] == pytest.approx(26.22 + 0.01 * i)  # the extension wins
        assert h["PHOT_K"] == pytest.approx(-0.1)  # primary fallback
    # the same text through the .head reader
    parsed = parse_heads(text)
    assert len(parsed) == 3 and parsed[2]["PHOT_C"] == pytest.approx(26.24)


@pytest.mark.parametrize("photometric, card", [(True, "T"), (False, "F")])
def test_ahead_photflag_from_metadata(photometric, card):
    text = ahead_cards(_primary(), [_extension(0)], photometric=photometric)
    line = next(l for l in text.splitlines() if l.startswith("PHOTFLAG"))
    assert line[29] == card  # FITS logical in column 30
    assert fits.Header.fromstring(text.split("END")[0], sep="\n")["PHOTFLAG"] is photometric


def test_ahead_photflag_from_metadata_csv(tmp_path):
    meta = pd.DataFrame({"expnum": [751000, 751008], "skyprobe": [0.007, 0.115],
                         "photometric": [True, False]})
    meta.to_csv(tmp_path / "metadata.csv", index=False)
    flags = pd.read_csv(tmp_path / "metadata.csv").set_index("expnum")["photometric"]
    for expnum, expected in ((751000, True), (751008, False)):
        text = ahead_cards(_primary(), [_extension(0)], photometric=bool(flags[expnum]))
        assert parse_heads(text)[0]["PHOTFLAG"] is expected


def test_ahead_missing_keyword_raises():
    primary = _primary()
    del primary["QRUNID"]
    with pytest.raises(ValueError, match="QRUNID"):
        ahead_cards(primary, [_extension(0)], photometric=True)
    with pytest.raises(ValueError):
        ahead_cards(_primary(), [], photometric=True)


def test_write_ahead_from_mef(tmp_path):
    hdus = [fits.PrimaryHDU(header=_primary())]
    hdus += [fits.ImageHDU(np.zeros((4, 3), np.float32), header=_extension(i)) for i in range(2)]
    fits.HDUList(hdus).writeto(tmp_path / "x.fits")
    out = write_ahead(tmp_path / "x.fits", tmp_path / "x_ldac.ahead", photometric=False)
    heads = read_heads(out)
    assert len(heads) == 2 and heads[1]["PHOTFLAG"] is False and heads[1]["FILTER"] == "r.MP9601"


# ---------------------------------------------------------------- arguments
def test_scamp_arguments():
    args = scamp_arguments(
        catalogs=["a_ldac.fits", Path("b_ldac.fits")], config=CONFIG, refcat=Path("ref.ldac"),
        xml_out="run.xml", checkplot_names=checkplot_names("out/D3_r"),
        overrides={"SOLVE_PHOTOM": False, "SN_THRESHOLDS": (5, 50)},
    )
    assert args[:4] == ["a_ldac.fits", "b_ldac.fits", "-c", str(CONFIG)]
    opts = dict(zip(args[4::2], args[5::2]))
    assert opts["-ASTREFCAT_NAME"] == "ref.ldac"
    assert opts["-XML_NAME"] == "run.xml"
    assert opts["-HEADER_SUFFIX"] == ".head" and opts["-AHEADER_SUFFIX"] == ".ahead"
    assert opts["-SOLVE_PHOTOM"] == "N" and opts["-SN_THRESHOLDS"] == "5,50"
    names = opts["-CHECKPLOT_NAME"].split(",")
    assert names[0] == "out/D3_r_fgroups" and len(names) == 9
    with pytest.raises(ValueError):
        scamp_arguments(catalogs=["a"], refcat="r", xml_out="x", checkplot_names=[],
                        overrides={"XML_NAME": "y"})
    with pytest.raises(ValueError):
        scamp_arguments(catalogs=[], refcat="r", xml_out="x", checkplot_names=[])
    named = scamp_arguments(catalogs=["a", "b"], refcat="r", xml_out="x", checkplot_names=[],
                            header_names=["h/a.head", "h/b.head"])
    assert "-HEADER_NAME" in named and "-HEADER_SUFFIX" not in named


def test_config_checkplots_match_module():
    """The config's CHECKPLOT_TYPE order is the order of :data:`CHECKPLOTS`."""
    settings = {}
    for line in CONFIG.read_text().splitlines():
        parts = line.split("#")[0].split()
        if parts:
            settings[parts[0]] = parts[1] if len(parts) > 1 else ""
    assert settings["CHECKPLOT_TYPE"].split(",") == list(CHECKPLOTS)
    assert settings["CHECKPLOT_NAME"].split(",") == list(CHECKPLOTS.values())
    for key, value in {
        "ASTREF_CATALOG": "FILE", "MOSAIC_TYPE": "FIX_FOCALPLANE", "ASTRINSTRU_KEY": "FILTER,QRUNID",
        "PHOTINSTRU_KEY": "FILTER", "DISTORT_DEGREES": "3", "CROSSID_RADIUS": "2.0",
        "MAGZERO_OUT": "30.0", "PHOTOMFLAG_KEY": "PHOTFLAG", "MAGZERO_KEY": "PHOT_C",
        "EXTINCT_KEY": "PHOT_K", "CHECKPLOT_DEV": "PNG,PSC", "CHECKPLOT_ANTIALIAS": "N",
        "WRITE_XML": "Y", "NTHREADS": "1", "HEADER_SUFFIX": ".head",
    }.items():
        assert settings[key] == value, key


# -------------------------------------------------------------------- heads
def test_read_heads_strips_non_ascii(tmp_path):
    h = _pv_header()
    block = "\n".join(card.image for card in h.cards)
    comment = "COMMENT   (c) 2010-2018 Sorbonne Universit\u00e9/Universit\u00e9 de Bordeaux/CNRS"
    text = f"HISTORY   Astrometric solution by SCAMP\n{comment}\n{block}\nEND\n" * 2
    path = tmp_path / "x.head"
    path.write_bytes(text.encode("utf-8"))
    heads = read_heads(path)
    assert len(heads) == 2
    assert heads[1]["PV1_7"] == 50.0
    wcs = head_wcs(heads[0])  # WCSLIB applies TPV as TAN + a polynomial distortion
    # the PV term moves a corner pixel against the pure TAN solution
    plain_header = h.copy()
    for key in [k for k in h.keys() if k.startswith("PV")]:
        del plain_header[key]
    tan = WCS(plain_header, naxis=2)
    tpv = wcs.all_pix2world([[0.0, 0.0]], 1)[0]
    plain = tan.all_pix2world([[0.0, 0.0]], 1)[0]
    assert abs(tpv[0] - plain[0]) * 3600 * math.cos(math.radians(52.68)) > 0.1


def test_exposure_zeropoints():
    ahead = parse_heads(ahead_cards(_primary(), [_extension(0)], photometric=True))
    zp_elixir = 26.22 + 2.5 * math.log10(300.097) - 0.1 * 0.151
    head = fits.Header({"MAGZEROP": 30.0, "FLXSCALE": 10 ** (-0.4 * (zp_elixir + 0.05 - 30))})
    table = exposure_zeropoints([head], ahead)
    assert table["zp_elixir"][0] == pytest.approx(zp_elixir)
    assert table["dzp"][0] == pytest.approx(0.05)


# ---------------------------------------------------------------------- XML
_XML = """<?xml version="1.0" encoding="UTF-8"?>
<VOTABLE version="1.1" xmlns="http://www.ivoa.net/xml/VOTable/v1.1">
<RESOURCE ID="SCAMP" name="a_ldac.fits">
 <RESOURCE ID="MetaData" name="MetaData">
  <PARAM name="Version" datatype="char" arraysize="*" value="2.10.0"/>
  <TABLE ID="Fields" name="Fields">
   <FIELD name="Catalog_Name" datatype="char" arraysize="*"/>
   <FIELD name="NDetect" datatype="int"/>
   <FIELD name="Group" datatype="int"/>
   <FIELD name="Astr_Instrum" datatype="char" arraysize="*"/>
   <FIELD name="Phot_Instrum" datatype="char" arraysize="*"/>
   <FIELD name="Photom_Flag" datatype="boolean"/>
   <FIELD name="ZeroPoint_Corr" datatype="float"/>
   <FIELD name="Chi2_Internal" datatype="float"/>
   <FIELD name="AstromSigma_Reference" datatype="float" arraysize="2"/>
   <FIELD name="Chi2_Reference" datatype="float"/>
   <DATA><TABLEDATA>
    <TR><TD>a_ldac.fits</TD><TD>662</TD><TD>1</TD><TD>A1</TD><TD>P1</TD><TD>T</TD>
        <TD>-0.001</TD><TD>0.83</TD><TD>0.3 0.4</TD><TD>0.45</TD></TR>
    <TR><TD>b_ldac.fits</TD><TD>675</TD><TD>1</TD><TD>A1</TD><TD>P1</TD><TD>F</TD>
        <TD>0.125</TD><TD>0.71</TD><TD>0.25 0.24</TD><TD>0.48</TD></TR>
   </TABLEDATA></DATA>
  </TABLE>
  <TABLE ID="FGroups" name="FGroups">
   <FIELD name="Name" datatype="char" arraysize="*"/>
   <FIELD name="NFields" datatype="int"/>
   <FIELD name="AstromSigma_Internal" datatype="float" arraysize="2"/>
   <FIELD name="AstromChi2_Internal" datatype="float"/>
   <FIELD name="AstromNDets_Internal" datatype="int"/>
   <FIELD name="AstromSigma_Reference" datatype="float" arraysize="2"/>
   <FIELD name="AstromNDets_Reference" datatype="int"/>
   <FIELD name="PhotSigma_Internal" datatype="float" arraysize="2"/>
   <DATA><TABLEDATA>
    <TR><TD>G1</TD><TD>2</TD><TD>0.03 0.04</TD><TD>0.82</TD><TD>2231</TD>
        <TD>0.228 0.251</TD><TD>220</TD><TD>0.069 0.065</TD></TR>
   </TABLEDATA></DATA>
  </TABLE>
  <TABLE ID="Astrometric_Instruments" name="Astrometric_Instruments">
   <FIELD name="Name" datatype="char" arraysize="*"/>
   <DATA><TABLEDATA><TR><TD>A1</TD></TR></TABLEDATA></DATA>
  </TABLE>
  <TABLE ID="Warnings" name="Warnings">
   <FIELD name="Date" datatype="char" arraysize="*"/>
   <FIELD name="Msg" datatype="char" arraysize="*"/>
   <DATA><TABLEDATA><TR><TD>2026-01-01</TD><TD>Not enough matched detections</TD></TR></TABLEDATA></DATA>
  </TABLE>
 </RESOURCE>
</RESOURCE>
</VOTABLE>
"""


def test_parse_scamp_xml(tmp_path):
    path = tmp_path / "scamp.xml"
    path.write_text(_XML)
    out = parse_scamp_xml(path)
    fields = out["fields"].set_index("catalog")
    assert list(fields.index) == ["a_ldac.fits", "b_ldac.fits"]
    assert fields.loc["b_ldac.fits", "zeropoint_corr"] == pytest.approx(0.125)
    assert fields.loc["a_ldac.fits", "photometric"] == True  # noqa: E712
    assert fields.loc["a_ldac.fits", "ndetect"] == 662
    assert fields.loc["a_ldac.fits", "astrom_sigma_reference"] == pytest.approx(0.5)
    assert fields.loc["a_ldac.fits", "astr_instrument"] == "A1"
    group = out["groups"].iloc[0]
    assert group["nfields"] == 2
    assert group["astrom_sigma_internal"] == pytest.approx(0.05)
    assert group["astrom_ndets_internal"] == 2231
    assert group["phot_sigma_internal"] == pytest.approx(0.069)
    summary = out["summary"]
    assert summary["version"] == "2.10.0" and summary["ngroups"] == 1
    assert summary["n_astr_instruments"] == 1
    assert summary["warnings"] == ["Not enough matched detections"]
    assert summary["astrom_sigma_internal"] == pytest.approx(0.05)


# ------------------------------------------------------- real SCAMP, offline
# r photometric, r non-photometric (ZP +0.12 mag), two i photometric: each
# astrometric context (FILTER + QRUNID) holds two exposures. With a single
# i exposure its per-CCD 3rd-order distortion rests on ~30 reference stars
# of 0.25" per CCD and the RMS against the truth reaches 0.11-0.15".
EXPOSURES = (751000, 751008, 751016, 751021)


def _trivial_maps(exposure: Path, weight: Path, flag: Path) -> None:
    """Weight 1 and flag 0 MEFs shaped like the exposure (WeightWatcher's stand-in)."""
    with fits.open(exposure) as hdul:
        shapes = [(h.name, h.data.shape) for h in hdul[1:]]
    fits.HDUList([fits.PrimaryHDU()] + [
        fits.ImageHDU(np.ones(s, np.float32), name=n) for n, s in shapes]).writeto(weight)
    fits.HDUList([fits.PrimaryHDU()] + [
        fits.ImageHDU(np.zeros(s, np.int16), name=n) for n, s in shapes]).writeto(flag)


@pytest.fixture(scope="module")
def scamp_run(tmp_path_factory):
    scamp = require_binary("scamp")
    sex = require_binary("source-extractor", "sex")
    root = tmp_path_factory.mktemp("scamp")
    config = small_survey(root)
    raw = root / config["inputs"]["exposures"]
    meta = pd.read_csv(root / config["inputs"]["metadata"]).set_index("expnum")
    # as rules/step1.smk reduce_exposure (its SExtractor step)
    options = {**sextractor.step1_options(config["step1"]["sextractor"], pixel_scale=config["survey"]["pixel_scale"]),
               "VERBOSE_TYPE": "QUIET"}
    work = root / "work"
    work.mkdir()
    catalogs = []
    for expnum in EXPOSURES:
        exposure = raw / f"{expnum}p.fits"
        weight, flag = work / f"{expnum}p_weight.fits", work / f"{expnum}p_flag.fits"
        _trivial_maps(exposure, weight, flag)
        ldac = work / f"{expnum}p_ldac.fits"
        cmd = [sex, *sextractor.arguments(
            images=exposure, config=ASTROMATIC / "step1.sex", param=ASTROMATIC / "step1.param",
            conv=ASTROMATIC / "gauss_3.0_5x5.conv", nnw=ASTROMATIC / "default.nnw",
            weights=weight, flags=flag, catalog=ldac, xml_out=work / f"{expnum}p_sex.xml",
            checkimage=work / f"{expnum}p_minibkg.fits", options=options,
        )]
        subprocess.run(cmd, check=True, cwd=work, capture_output=True)
        write_ahead(exposure, ldac.with_suffix(".ahead"), photometric=bool(meta.loc[expnum, "photometric"]))
        catalogs.append(ldac)
    prefix = work / "D3"
    args = scamp_arguments(
        catalogs=catalogs, config=CONFIG, refcat=root / config["inputs"]["refcat"],
        xml_out=work / "scamp.xml", checkplot_names=checkplot_names(prefix),
    )
    result = subprocess.run([scamp, *args], cwd=work, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    truth = root / "demo" / "raw" / "truth"
    return {
        "work": work, "raw": raw, "prefix": prefix, "catalogs": catalogs,
        "sources": pd.read_csv(truth / "sources.csv"),
        "exposures": pd.read_csv(truth / "exposures.csv").set_index("expnum"),
        "xml": parse_scamp_xml(work / "scamp.xml"),
    }


def _star_offsets(run, expnum, wcs_of, radius: float) -> np.ndarray:
    """Offsets (arcsec) of detections whose nearest truth source is a bright star.

    Each detection goes through ``wcs_of(ccd)`` and is matched to the whole
    truth catalogue (stars and galaxies), so that a galaxy next to a star is
    never taken for it; only matches within ``radius`` to stars brighter
    than 20.5 in the exposure's band are kept.
    """
    import astropy.units as u
    from astropy.coordinates import SkyCoord

    band = run["exposures"].loc[expnum, "band"]
    src = run["sources"]
    truth = SkyCoord(src["ra"].to_numpy() * u.deg, src["dec"].to_numpy() * u.deg)
    bright = ((src["type"] == "star") & (src[f"mag_{band}"] < 20.5)).to_numpy()
    offsets = []
    with fits.open(run["work"] / f"{expnum}p_ldac.fits") as cat:
        tables = [hdu.data for hdu in cat if hdu.name == "LDAC_OBJECTS"]
    for ccd, obj in enumerate(tables):
        obj = obj[(obj["FLAGS"] & 0xFF) == 0]
        ra, dec = wcs_of(ccd).all_pix2world(obj["XWIN_IMAGE"], obj["YWIN_IMAGE"], 1)
        idx, sep, _ = SkyCoord(ra * u.deg, dec * u.deg).match_to_catalog_sky(truth)
        keep = bright[idx] & (sep.arcsec < radius)
        offsets.append(sep.arcsec[keep])
    return np.concatenate(offsets)


@pytest.mark.tools
def test_scamp_offline_astrometry(scamp_run):
    run = scamp_run
    for expnum in EXPOSURES:
        heads = read_heads(run["work"] / f"{expnum}p_ldac.head")
        assert len(heads) == 8
        with fits.open(run["raw"] / f"{expnum}p.fits") as hdul:
            raw_wcs = [WCS(h.header) for h in hdul[1:]]
        after = _star_offsets(run, expnum, lambda ccd: head_wcs(heads[ccd]), radius=1.0)
        before = _star_offsets(run, expnum, lambda ccd: raw_wcs[ccd], radius=3.0)
        rms_after = float(np.sqrt(np.mean(after**2)))
        rms_before = float(np.sqrt(np.mean(before**2)))
        print(f"{expnum}: {len(after)} stars, RMS {1000 * rms_after:.0f} mas "
              f"(header WCS {1000 * rms_before:.0f} mas)")  # SCAMP's time: bench/unit_timings.py
        assert len(after) >= 30
        assert rms_before > 0.5
        assert rms_after < 0.15


@pytest.mark.tools
def test_scamp_offline_photometry(scamp_run):
    run = scamp_run
    fields = run["xml"]["fields"].set_index("catalog")
    rows = []
    for expnum in EXPOSURES:
        name = f"{expnum}p_ldac.fits"
        zps = exposure_zeropoints(read_heads(run["work"] / f"{expnum}p_ldac.head"),
                                  read_heads(run["work"] / f"{expnum}p_ldac.ahead"))
        # one zero point per exposure, shared by its CCDs (ZP = 30 convention)
        assert (zps["magzerop"] == 30.0).all()
        assert np.ptp(zps["dzp"]) < 1e-4
        # the XML's ZeroPoint_Corr is the same number
        assert fields.loc[name, "zeropoint_corr"] == pytest.approx(zps["dzp"].mean(), abs=1e-4)
        rows.append((expnum, run["exposures"].loc[expnum, "band"], zps["dzp"].mean(),
                     run["exposures"].loc[expnum, "zp_offset"]))
    table = pd.DataFrame(rows, columns=["expnum", "band", "dzp", "zp_offset"])
    # zp_offset > 0 is light lost (true ZP = PHOT_C - zp_offset): SCAMP lowers the ZP
    residual = table["dzp"] + table["zp_offset"]
    # photometric exposures anchor the scale: the residual is centred on 0
    rms = float(np.sqrt(np.mean((residual - residual.mean()) ** 2)))
    print(table.assign(residual=residual).to_string(), f"\nZP RMS {1000 * rms:.1f} mmag")
    assert rms < 0.02
    assert abs(residual.mean()) < 0.02
    # the non-photometric r exposure (0.12 mag lost) is recovered relative to the anchor
    r = table.set_index("expnum")
    assert (r.loc[751008, "dzp"] - r.loc[751000, "dzp"]) == pytest.approx(
        -(r.loc[751008, "zp_offset"] - r.loc[751000, "zp_offset"]), abs=0.02)


@pytest.mark.tools
def test_scamp_offline_checkplots_and_xml(scamp_run):
    run = scamp_run
    summary = run["xml"]["summary"]
    assert summary["nfields"] == len(EXPOSURES)
    assert summary["ngroups"] == 1
    assert summary["n_astr_instruments"] == 2  # r/04AQ02, i/04AQ03
    assert summary["n_phot_instruments"] == 2  # r, i
    # the nine seed plots: <prefix>_<name>_<n>.png
    for name in CHECKPLOTS.values():
        found = sorted(run["work"].glob(f"D3_{name}_*.png"))
        assert found, name
        assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in found)
        # and as PostScript (CHECKPLOT_DEV PNG,PSC)
        postscript = sorted(run["work"].glob(f"D3_{name}_*.ps"))
        assert [p.stem for p in postscript] == [p.stem for p in found]
        assert all(p.read_bytes().startswith(b"%!PS-Adobe") for p in postscript)
    expected = checkplot_files(run["prefix"], groups=summary["ngroups"],
                               astr_instruments=summary["n_astr_instruments"])
    assert len(expected) == 2 * 10  # distortion: one per astrometric instrument
    assert all(p.exists() for p in expected), [p for p in expected if not p.exists()]
    groups = run["xml"]["groups"]
    assert groups["astrom_sigma_internal_hisn"].iloc[0] < 0.05
    assert groups["astrom_ndets_reference"].iloc[0] > 50
    fields = run["xml"]["fields"]
    assert list(fields["catalog"]) == [f"{e}p_ldac.fits" for e in EXPOSURES]
    assert list(fields["photometric"]) == [True, False, True, True]
    assert (fields["ndetect"] > 300).all()
    assert np.isfinite(fields["chi2_internal"]).all() and np.isfinite(fields["chi2_reference"]).all()
    assert (fields["astrom_sigma_reference"] < 0.6).all()  # the 0.25" reference per axis
    stats = head_statistics(read_heads(run["work"] / f"{EXPOSURES[0]}p_ldac.head"))
    assert len(stats) == 8 and (stats["astirms"] < 0.05).all()
    assert (stats["photlink"] == True).all()  # noqa: E712


@pytest.mark.tools
def test_accept_summary_verdicts_and_photometric_anchors(scamp_run, tmp_path):
    """Every exposure of the stack list judged; the zero points anchored (the r and i
    runs each hold a photometric exposure); the summary names the instrument."""
    import shutil
    import xml.etree.ElementTree as ET

    heads = tmp_path / "scamp"
    heads.mkdir()
    for expnum in EXPOSURES:
        shutil.copy(scamp_run["work"] / f"{expnum}p_ldac.head", heads / f"{expnum}p.head")
    accepted = write_accept_summary(
        stem="CFHTLS_D_r_141927+524056_T0002", stack_list=[751000, 751008],
        heads_dir=heads, exposures={e: scamp_run["raw"] / f"{e}p.fits" for e in EXPOSURES},
        pixel_scale=0.186, tolerance=0.05, xml_out=tmp_path / "accept.xml",
        accepted_out=tmp_path / "accepted.list", scamp_xml=scamp_run["work"] / "scamp.xml",
    )
    assert accepted == [751000, 751008]
    assert (tmp_path / "accepted.list").read_text() == "751000p\n751008p\n"
    root = ET.parse(tmp_path / "accept.xml").getroot()
    verdicts = {e.get("name"): (e.get("accepted"), e.find("PHOTOMETRY").attrib) for e in root.iter("EXPOSURE")}
    assert set(verdicts) == {"751000p", "751008p"}
    assert all(flag == "T" and photometry["anchored"] == "T" for flag, photometry in verdicts.values())
    # both r exposures are in the same photometric instrument
    assert len({photometry["instrument"] for _, photometry in verdicts.values()}) == 1
    table = read_accept_summary(tmp_path / "accept.xml")
    assert table["expnum"].tolist() == [751000, 751008]
    assert table["accepted"].all() and table["anchored"].all()


@pytest.mark.tools
def test_accept_summary_rejects_missing_heads_and_failed_matches(scamp_run, tmp_path):
    """No head, or residuals against the reference above the limit: rejected with the
    reason, and the rest of the stack list goes on."""
    import shutil

    heads = tmp_path / "scamp"
    heads.mkdir()
    shutil.copy(scamp_run["work"] / "751000p_ldac.head", heads / "751000p.head")  # none for 751008
    common = dict(stem="x", stack_list=[751000, 751008], heads_dir=heads,
                  exposures={e: scamp_run["raw"] / f"{e}p.fits" for e in EXPOSURES}, pixel_scale=0.186,
                  tolerance=0.05, accepted_out=tmp_path / "accepted.list",
                  scamp_xml=scamp_run["work"] / "scamp.xml")
    # the 0.25" reference of this run: ~0.3-0.5" RMS, well inside 1"
    assert write_accept_summary(xml_out=tmp_path / "a.xml", max_reference_sigma=1.0, **common) == [751000]
    reasons = read_accept_summary(tmp_path / "a.xml").set_index("expnum")["reasons"]
    assert reasons[751000] == [] and reasons[751008] == ["SCAMP wrote no head: not calibrated"]
    # a limit below what the reference allows: the match is deemed failed
    assert write_accept_summary(xml_out=tmp_path / "b.xml", max_reference_sigma=0.01, **common) == []
    reasons = read_accept_summary(tmp_path / "b.xml").set_index("expnum")["reasons"]
    assert "the astrometric match failed" in reasons[751000][0]
    assert len(reasons[751008]) == 2


def _head_text(photometric: bool | None = None) -> str:
    """Two CCD blocks: a SCAMP head (with its non-ASCII COMMENT), or an .ahead with PHOTFLAG."""
    cards = [fits.Card("CRVAL1", 214.86), fits.Card("FLXSCALE", 1.02)]
    if photometric is not None:
        cards.append(fits.Card("PHOTFLAG", photometric))
    comment = ["COMMENT   (c) SCAMP \u00e9"] if photometric is None else []
    lines = [str(card) for card in cards] + comment + ["END".ljust(80)]
    return "\n".join(lines * 2) + "\n"  # two CCDs


def test_deliver_heads_and_the_image_ahead(tmp_path):
    from spica.calibration.heads import deliver_heads, deliver_image_ahead

    scamp = tmp_path / "scamp"
    scamp.mkdir()
    aheads = {}
    for expnum, photometric in ((751000, True), (751008, False)):
        (scamp / f"{expnum}p.head").write_bytes(_head_text().encode("utf-8"))
        aheads[expnum] = tmp_path / f"{expnum}p_ldac.ahead"
        aheads[expnum].write_text(_head_text(photometric))
    out = tmp_path / "heads"
    written = deliver_heads(stack_list=[751008, 751000], heads_dir=scamp, aheads=aheads, out_dir=out)
    assert sorted(p.name for p in written) == ["751000p_ahed.txt", "751000p_head.txt", "751008p_head.txt"]
    delivered = (out / "751000p_head.txt").read_text(encoding="ascii")  # SCAMP's one non-ASCII char dropped
    assert [h["FLXSCALE"] for h in read_heads(out / "751000p_head.txt")] == [1.02, 1.02]
    assert "\u00e9" not in delivered
    # an image-by-image product has one exposure
    with pytest.raises(ValueError):
        deliver_heads(stack_list=[751000, 751008], heads_dir=scamp, aheads=aheads, out_dir=out,
                      image_head_out=tmp_path / "x_V0001_head.txt")
    # an exposure SCAMP left without a head is not delivered (the accept summary says why)...
    assert deliver_heads(stack_list=[751016, 751000], heads_dir=scamp, aheads=aheads,
                         out_dir=tmp_path / "partial")[0].name == "751000p_head.txt"
    # ...but an image-by-image product cannot exist without its head
    with pytest.raises(FileNotFoundError):
        deliver_heads(stack_list=[751016], heads_dir=scamp, aheads=aheads, out_dir=out,
                      image_head_out=tmp_path / "751016p_V0001_head.txt")
    image = tmp_path / "image_heads"
    deliver_heads(stack_list=[751000], heads_dir=scamp, aheads=aheads, out_dir=image,
                  image_head_out=tmp_path / "751000p_V0001_head.txt")
    ahead = deliver_image_ahead(heads_dir=image, out=tmp_path / "751000p_V0001_ahed.txt")
    assert read_heads(ahead)[0]["PHOTFLAG"] is True
    # a non-photometric image has no .ahead to deliver: a named error, not an empty file
    night = tmp_path / "night_heads"
    deliver_heads(stack_list=[751008], heads_dir=scamp, aheads=aheads, out_dir=night)
    with pytest.raises(FileNotFoundError, match="not photometric"):
        deliver_image_ahead(heads_dir=night, out=tmp_path / "751008p_V0001_ahed.txt")


def test_the_check_writes_the_ahead_and_quarantines_an_unwritable_one(tmp_path):
    """check_exposure writes the .ahead (issue 10: one job fewer per exposure): with the
    photometric flag for a passed exposure, empty for a quarantined one, and a named
    ``unreadable`` verdict, never a crash, when the headers cannot make one."""
    from spica.step1.inventory import write_exposure_ahead

    hdus = [fits.PrimaryHDU(header=_primary())]
    hdus += [fits.ImageHDU(np.zeros((4, 3), np.float32), header=_extension(i)) for i in range(2)]
    fits.HDUList(hdus).writeto(tmp_path / "good.fits")
    ok = {"ok": True, "reason": None, "message": ""}
    verdict = write_exposure_ahead(ok, tmp_path / "good.fits", tmp_path / "s1" / "good_ldac.ahead",
                                   photometric=True)
    assert verdict is ok
    heads = read_heads(tmp_path / "s1" / "good_ldac.ahead")
    assert len(heads) == 2 and heads[0]["PHOTFLAG"] is True and heads[1]["PHOT_C"] == pytest.approx(26.23)
    # quarantined by its check: an empty .ahead, the verdict untouched
    bad = {"ok": False, "reason": "missing_keyword", "message": "no FILTER"}
    assert write_exposure_ahead(bad, tmp_path / "good.fits", tmp_path / "bad_ldac.ahead",
                                photometric=True) is bad
    assert (tmp_path / "bad_ldac.ahead").read_text() == ""
    # passed, but no QRUNID anywhere: quarantined as unreadable, with why
    primary = _primary()
    del primary["QRUNID"]
    fits.HDUList([fits.PrimaryHDU(header=primary), *hdus[1:]]).writeto(tmp_path / "noqrun.fits")
    verdict = write_exposure_ahead(dict(ok), tmp_path / "noqrun.fits", tmp_path / "n_ldac.ahead",
                                   photometric=False)
    assert verdict["ok"] is False and verdict["reason"] == "unreadable" and "QRUNID" in verdict["message"]
    assert verdict["details"]["failures"][0]["reason"] == "unreadable"
    assert (tmp_path / "n_ldac.ahead").read_text() == ""
