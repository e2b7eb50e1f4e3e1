"""End to end, release T0002: the pending view and dry-run, SCAMP, the stacks, a
regraded exposure, catalogues, chi-squared and dust maps, the product summary,
provenance, the image-by-image products and SCAMP's statistics in the registry."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from scipy import ndimage

from spica import paths
from spica.astromatic.options import read_param_file
from spica.astromatic.scamp import head_wcs, parse_scamp_xml, read_heads
from spica.provenance import file_sha256
from spica.release.planning import read_exposure_list
from tests.conftest import REPO
from tests.e2e.conftest import D3, VW, stack_lists, step1_product

pytestmark = [pytest.mark.e2e, pytest.mark.tools]


def test_dry_run_lists_exactly_the_pending_stacks(release):
    # the small survey: D3 in r and i, and the Very Wide exposure image by image;
    # 751029 (a CCD with a wrong WCS, grade D) and the broken files are out
    assert release["pending_planned"] == {*D3.values(), VW}
    # once the D3 r stack is made
    assert release["pending_after_d3_r"] == {D3["i"], VW}  # only the rest
    stack, astrometric = release["lists_after_d3_r"]
    assert stack == [751000, 751008]
    # the astrometric list takes every good exposure around, any filter
    assert astrometric == [751000, 751008, 751016, 751021]
    # the view, refreshed by the onsuccess handler of the run that made D3 r (its rule
    # report_pending did not run): D3 i and the Very Wide image
    pending = release["pending_view_after_d3_r"]
    assert pending.startswith("Pending processes (2)\n")
    assert "CFHTLS_D_i_141927+524056" in pending and "14 h 19 m 27" in pending
    assert "CFHTLS_D_r_141927+524056" not in pending and VW in pending


def test_pending_view_is_current_after_the_release_run(release):
    """The first run of ``release_T0002`` makes every planned product; its rule
    report_pending ran before them (the regrade changed the plan), and the run's
    onsuccess handler rewrote the view from the disk. A dry-run then lists nothing:
    the view's rule has no param taken from the disk when the DAG is built."""
    assert release["dry_run_after_release"] == {}
    pending = release["pending_view_after_release"]
    assert pending.splitlines()[0] == "Pending processes (0)"
    # no product listed (the regrade left D3's old SCAMP solution, listed as stale after it)
    listed = pending.split("Stale SCAMP solutions")[0]
    assert "CFHTLS_D_" not in listed and VW not in listed
    assert "Stale SCAMP solutions (1)" in pending


def test_scamp_solution_matches_truth(release):
    """SCAMP, offline, over the astrometric list: the heads put stars where the truth is."""
    sources = pd.read_csv(release["truth"] / "sources.csv")
    # match to every source, keep detections whose nearest one is a bright unsaturated star
    # (a galaxy beside a star is never taken for it)
    truth = SkyCoord(sources["ra"].values, sources["dec"].values, unit="deg")
    bright = ((sources["type"] == "star") & (sources["mag_r"] < 20.5) & (sources["mag_r"] > 17.5)).to_numpy()
    # D3 r calibrated over the astrometric list before the regrade of 751029
    products = release["before_regrade"] / "results" / "releases" / "T0002" / D3["r"] / "scamp"
    for expnum in (751000, 751008):
        heads = read_heads(products / f"{expnum}p.head")
        with fits.open(step1_product(release, expnum, "ldac")) as ldac, \
                fits.open(release["workdir"] / release["config"]["inputs"]["exposures"]
                          / paths.exposure_filename(expnum)) as exposure:
            after, before = [], []
            for index, head in enumerate(heads):
                objects = Table(ldac[2 * index + 2].data)
                objects = objects[(objects["FLAGS"] == 0) & (objects["SNR_WIN"] > 50)]
                for wcs, out in ((head_wcs(head), after), (WCS(exposure[index + 1].header), before)):
                    ra, dec = wcs.all_pix2world(objects["XWIN_IMAGE"], objects["YWIN_IMAGE"], 1)
                    sky = SkyCoord(ra, dec, unit="deg")
                    index, sep, _ = sky.match_to_catalog_sky(truth)
                    out.extend(sep.arcsec[(sep.arcsec < 3.0) & bright[index]])
        after, before = np.array(after), np.array(before)
        assert len(after) > 50
        # a Gaia-grade reference: the solution is good to a few mas (centroid noise
        # included); the odd star blended with an unresolved neighbour is off by more
        good = after < 0.3
        assert good.mean() > 0.95, (expnum, np.sort(after)[-5:])
        assert np.sqrt(np.mean(after[good] ** 2)) < 0.02, (expnum, np.sqrt(np.mean(after[good] ** 2)))
        assert np.sqrt(np.mean(before**2)) > 0.5  # the Elixir-like header WCS is ~1" off
    xml = parse_scamp_xml(release["before_regrade"] / "results" / "releases" / "T0002" / D3["r"]
                          / f"{D3['r']}_scamp.xml")
    assert set(xml["fields"]["catalog"]) == {f"{e}p_ldac.fits" for e in (751000, 751008, 751016, 751021)}
    # a Gaia-grade reference: tens of mas at most, not the 0.3-0.5" of header WCS jitter
    groups = xml["groups"]
    assert groups["astrom_sigma_reference_hisn"].iloc[0] < 0.05
    for plot in ("fgroups", "astr_referror2d", "phot_zpcorr"):
        png = products / f"{D3['r']}_{plot}_1.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.with_suffix(".ps").read_bytes().startswith(b"%!PS-Adobe")


def test_stack_products(release):
    """SWarp stack of D3 r: seed header keywords, ZP 30, WCS on the plan's grid, weights."""
    stem = D3["r"]
    # as built alone, before the regrade of 751029
    folder = release["before_regrade"] / "results" / "releases" / "T0002" / stem
    truth = release["exposures"].set_index("expnum").loc[[751000, 751008]]
    with fits.open(folder / f"{stem}.fits") as image, fits.open(folder / f"{stem}_weight.fits") as weight:
        header = image[0].header
        assert header["RELEASE"] == "T0002" and header["MAGZERO"] == 30.0
        assert header["PHOTCAL"] is True  # 751000 (photometric) anchors the zero point
        assert header["NCOMBINE"] == 2 and header["FILTER"] == "r.MP9601"
        assert [header["IMCMB001"], header["IMCMB002"]] == ["751000p", "751008p"]
        assert header["EXPTIME"] == pytest.approx(truth["exptime"].sum(), rel=1e-6)
        assert header["REL_DATE"] == max(truth["rel_date"])  # latest input (seed 3.3)
        d3 = release["config"]["survey"]["deep_fields"][0]
        assert (header["CRVAL1"], header["CRVAL2"]) == pytest.approx((d3["ra"], d3["dec"]), abs=1e-6)
        side = round(release["config"]["survey"]["tile_size_deg"] * 3600 / 0.186)
        assert abs(header["NAXIS1"] - side) <= 1 and header["CTYPE1"] == "RA---TAN"
        centre = weight[0].data[side // 2 - 50: side // 2 + 50, side // 2 - 50: side // 2 + 50]
        assert np.all(centre > 0)
        assert np.all(weight[0].data[image[0].data == 0] == 0)


def test_regraded_exposure_reenters_the_plan(release):
    stack_r, astrometric_r = release["lists_after_regrade"]["r"]
    stack_i, astrometric_i = release["lists_after_regrade"]["i"]
    assert stack_r == [751000, 751008, 751029]  # re-injected, no manual clean-up
    assert stack_i == [751016, 751021]
    assert 751029 in astrometric_r and 751029 in astrometric_i
    assert release["pending_after_release"] == set()
    # the accept summary: every stack-list exposure judged, rejections explained,
    # and the stack made of the accepted ones
    import xml.etree.ElementTree as ET

    folder = release["workdir"] / "results" / "releases" / "T0002" / D3["r"]
    verdicts = {e.get("name"): (e.get("accepted"), [r.text for r in e.iter("REASON")])
                for e in ET.parse(folder / f"{D3['r']}_scamp_accept.xml").getroot().iter("EXPOSURE")}
    assert set(verdicts) == {"751000p", "751008p", "751029p"}
    assert all(bool(reasons) == (flag == "F") for flag, reasons in verdicts.values())
    accepted = read_exposure_list(folder / f"{D3['r']}_accepted.list")
    assert accepted == [int(n[:-1]) for n, (flag, _) in sorted(verdicts.items()) if flag == "T"]
    assert fits.getheader(folder / f"{D3['r']}.fits")["NCOMBINE"] == len(accepted)
    for key in ("m", "m_med", "wmm", "wmm_med", "bkg_m"):
        assert (folder / f"{D3['r']}_{key}.png").read_bytes()[:4] == b"\x89PNG"


def test_release_catalogues_chi2_and_dust(release):
    """After the full release run: chi2 of the D3 tile (r+i), 56-column dual-mode
    catalogues at ZP 30 with positions on the truth, dust maps on the stack grid."""
    folder = release["workdir"] / "results" / "releases" / "T0002"
    tile = "CFHTLS_D_ri_141927+524056_T0002"
    with fits.open(folder / tile / f"{tile}_chi2.fits") as chi2:
        chi2_data, chi2_header = chi2[0].data, chi2[0].header
    # every product carries the release date of its latest input (seed 3.3)
    dates = [fits.getheader(folder / D3[band] / f"{D3[band]}.fits")["REL_DATE"] for band in ("r", "i")]
    assert (chi2_header["RELEASE"], chi2_header["REL_DATE"]) == ("T0002", max(dates))
    sources = pd.read_csv(release["truth"] / "sources.csv")
    stars = sources[(sources["type"] == "star") & (sources["mag_r"] > 17.5) & (sources["mag_r"] < 20.5)]
    truth = SkyCoord(stars["ra"].values, stars["dec"].values, unit="deg")
    names = [re.sub(r"\(\d+\)", "", n)
             for n in read_param_file(REPO / "config" / "astromatic" / "release.param")]
    assert len(names) == 56
    for band in ("r", "i"):
        stem = D3[band]
        with fits.open(folder / stem / f"{stem}.fits") as image, \
                fits.open(folder / stem / f"{stem}_weight.fits") as weight:
            shape, wcs = image[0].data.shape, WCS(image[0].header)
            # fully covered: no CCD gap or field edge within 6 px
            covered = ndimage.minimum_filter(weight[0].data, size=13) > 0
        assert chi2_data.shape == shape
        with fits.open(folder / stem / f"{stem}_dust.fits") as dust:
            assert dust[0].data.shape == shape
            assert 0.005 < np.nanmedian(dust[0].data) < 0.02  # D3, high Galactic latitude
        with fits.open(folder / stem / f"{stem}_ldac.fits") as ldac:
            catalogue = Table(ldac["LDAC_OBJECTS"].data)
            stamped = ldac[0].header
        stack_date = fits.getheader(folder / stem / f"{stem}.fits")["REL_DATE"]
        assert (stamped["RELEASE"], stamped["REL_DATE"], stamped["MAGZERO"]) == ("T0002", stack_date, 30.0)
        assert fits.getheader(folder / stem / f"{stem}_weight.fits")["REL_DATE"] == stack_date
        assert catalogue.colnames == names  # the seed's 56 parameters, in its order
        x, y = wcs.world_to_pixel(truth)
        inside = (x > 20) & (y > 20) & (x < shape[1] - 20) & (y < shape[0] - 20)
        inside[inside] = covered[np.round(y[inside]).astype(int), np.round(x[inside]).astype(int)]
        # detected on chi2: sources are well above the chi2 sky
        assert np.median(chi2_data[np.round(y[inside]).astype(int), np.round(x[inside]).astype(int)]) > 5
        clean = catalogue[catalogue["FLAGS"] < 4]  # blended allowed; no saturation, no truncation
        found = SkyCoord(clean["ALPHA_J2000"], clean["DELTA_J2000"], unit="deg")
        index, sep, _ = truth[inside].match_to_catalog_sky(found)
        matched = sep.arcsec < 0.5
        assert matched.mean() > 0.8, (band, matched.mean())
        assert np.sqrt(np.mean(sep.arcsec[matched] ** 2)) < 0.15
        # zero point 30: MAG_APER in 4" (~2.5 FWHM) misses only the far wings
        dmag = clean["MAG_APER"][index[matched], 1] - stars[f"mag_{band}"].values[inside][matched]
        assert abs(np.median(dmag)) < 0.1, (band, np.median(dmag))


def test_spica_summary_of_a_stack(release):
    """``_spica.xml``: the stacked files with their observing data, the stack, the
    astrometric list with SCAMP's solution, and SCAMP's statistics (seed 4.4, 6.2)."""
    from spica.products.summary import SUMMARY_TABLES, read_product_summary

    stem = D3["r"]
    folder = release["workdir"] / "results" / "releases" / "T0002" / stem
    tables = read_product_summary(folder / f"{stem}_spica.xml")
    assert list(tables) == list(SUMMARY_TABLES)
    header = fits.getheader(folder / f"{stem}.fits")
    stack = tables["Stack"][0]
    assert stack["name"] == stem.removesuffix("_T0002") and stack["release_version"] == "0002"
    assert (stack["ra"], stack["dec"]) == ("14:19:27.00", "+52:40:56.0")
    assert stack["exptime_total"] == pytest.approx(header["EXPTIME"])
    assert stack["ncombine"] == header["NCOMBINE"] and stack["zeropoint"] == 30.0
    assert stack["rel_date"] == header["REL_DATE"] and bool(stack["photcal"]) is True
    truth = release["exposures"].set_index("expnum")
    files = tables["Stacked_Files"]
    expnums = [int(name[:-6]) for name in files["file"]]
    assert expnums == [751000, 751008, 751029]  # the stack list, regraded 751029 included
    accepted = read_exposure_list(folder / f"{stem}_accepted.list")
    assert [e in accepted for e in expnums] == [bool(v) for v in files["stacked"]]
    assert list(files["photom_flag"]) == ["P" if truth.loc[e, "photometric"] else "A" for e in expnums]
    assert np.allclose(files["seeing_arcsec"], truth.loc[expnums, "seeing_arcsec"], rtol=0.1)
    assert np.allclose(files["exptime"], truth.loc[expnums, "exptime"])
    assert list(files["runid"]) == list(truth.loc[expnums, "runid"])
    astrometric = tables["Astrometric_Files"]
    _, astrometric_list = stack_lists(release["workdir"], stem)
    assert [int(name[:-6]) for name in astrometric["file"]] == astrometric_list
    # SCAMP's zero-point corrections: the injected losses (zp_offset > 0: light lost)
    corrections = np.asarray(astrometric["zeropoint_corr"]) + truth.loc[astrometric_list, "zp_offset"].to_numpy()
    assert np.abs(corrections - corrections.mean()).max() < 0.02
    assert dict(zip(tables["Filters"]["filter"], tables["Filters"]["nfiles"])) == {"r.MP9601": 3, "i.MP9701": 2}
    astrometry = tables["Astrometry"][0]
    assert astrometry["nfields"] == len(astrometric_list)
    assert astrometry["astrom_sigma_reference_hisn"] < 0.05  # arcsec, a Gaia-grade reference


def test_provenance_of_a_stack(release, tmp_path):
    """``_cmd.txt`` and ``.xml`` alone rebuild the stack: run the script in a folder
    holding only the inputs the XML lists (checksums verified), compare the products."""
    import xml.etree.ElementTree as ET

    stem = D3["r"]
    workdir = release["workdir"]
    folder = workdir / "results" / "releases" / "T0002" / stem
    script = (folder / f"{stem}_cmd.txt").read_text()
    tools = re.findall(r"^(scamp|SWarp|swarp|source-extractor|sex) ", script, flags=re.MULTILINE)
    assert tools == ["scamp", "SWarp", "SWarp", "source-extractor"]
    assert str(workdir) not in script and str(REPO) not in script  # relative to where it runs
    root = ET.parse(folder / f"{stem}.xml").getroot()
    files = [(f.get("kind"), f.get("name"), f.get("sha256")) for f in root.iter("FILE") if f.get("kind")]
    exposures = {Path(name).name for kind, name, _ in files if kind == "exposure"}
    assert exposures == {"751000p.fits", "751008p.fits", "751029p.fits"}
    versions = {p.get("name"): p.get("version") for p in root.iter("PACKAGE")}
    assert versions["scamp"].startswith("2.") and versions["swarp"].startswith("2.")
    options = {(step.get("name"), o.get("name")): o.get("value")
               for step in root.find("COMMAND") for o in step}
    assert float(options[("swarp", "PIXEL_SCALE")]) == release["config"]["survey"]["pixel_scale"]
    assert options[("sextractor", "BACK_SIZE")] == str(release["config"]["catalogues"]["back_size"])
    rebuild = tmp_path / "rebuild"
    for kind, name, sha256 in files:
        assert file_sha256(workdir / name) == sha256, name
        (rebuild / name).parent.mkdir(parents=True, exist_ok=True)
        (rebuild / name).symlink_to(workdir / name)
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(["sh", str(folder / f"{stem}_cmd.txt")], check=False, cwd=rebuild, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = rebuild / "results" / "releases" / "T0002" / stem
    for name in (f"{stem}.fits", f"{stem}_weight.fits"):
        original, rebuilt = fits.getdata(folder / name), fits.getdata(again / name)
        assert np.allclose(rebuilt, original, rtol=1e-4, atol=1e-3), name
    header = fits.getheader(again / f"{stem}.fits")
    assert header["REL_DATE"] == fits.getheader(folder / f"{stem}.fits")["REL_DATE"]
    original = Table(fits.getdata(folder / f"{stem}_ldac.fits", "LDAC_OBJECTS"))
    rebuilt = Table(fits.getdata(again / f"{stem}_ldac.fits", "LDAC_OBJECTS"))
    assert abs(len(rebuilt) - len(original)) <= 0.01 * len(original)
    assert np.median(np.abs(np.sort(rebuilt["MAG_AUTO"])[:100] - np.sort(original["MAG_AUTO"])[:100])) < 1e-3


def test_image_by_image_products(release):
    """The Very Wide exposure: its own warped image, weight, head (release date = the
    input's), chi-squared image of its one filter, catalogue and dust map."""
    folder = release["workdir"] / "results" / "releases" / "T0002" / VW
    truth = release["exposures"].set_index("expnum").loc[751042]
    header = fits.getheader(folder / f"{VW}.fits")
    assert header["REL_DATE"] == truth["rel_date"] and header["NCOMBINE"] == 1
    assert header["IMCMB001"] == "751042p" and header["MAGZERO"] == 30.0
    assert header["PHOTCAL"] is True  # a photometric night: its own anchor
    assert fits.getdata(folder / f"{VW}_weight.fits").max() > 0
    heads = read_heads(folder / f"{VW}_head.txt")
    assert len(heads) == 8 and all("PV1_10" in h and "FLXSCALE" in h for h in heads)
    assert (folder / f"{VW}_head.txt").read_text() == (folder / f"{VW}_heads" / "751042p_head.txt").read_text()
    ahead = read_heads(folder / f"{VW}_heads" / "751042p_ahed.txt")  # a photometric night
    assert ahead[0]["PHOTFLAG"] is True
    # delivered under the product's name too (seed: 546891p_V0001_ahed.txt)
    assert (folder / f"{VW}_ahed.txt").read_text() == (folder / f"{VW}_heads" / "751042p_ahed.txt").read_text()
    chi2 = folder.parent / "751042p_r_V0001" / "751042p_r_V0001_chi2.fits"
    assert fits.getdata(chi2).shape == fits.getdata(folder / f"{VW}.fits").shape
    catalogue = Table(fits.getdata(folder / f"{VW}_ldac.fits", "LDAC_OBJECTS"))
    assert len(catalogue.colnames) == 56 and len(catalogue) > 100
    assert 0.005 < np.nanmedian(fits.getdata(folder / f"{VW}_dust.fits")) < 0.02


def test_scamp_statistics_in_the_registry(release):
    """Zero-point corrections read back from the SCAMP XML recover the simulated
    losses of the non-photometric exposures (zp_offset > 0 is light lost)."""
    with sqlite3.connect(release["workdir"] / "results" / "registry.sqlite") as connection:
        fields = pd.read_sql("select * from scamp_fields where stack = ?", connection,
                             params=[D3["r"]])
        groups = pd.read_sql("select * from scamp_groups", connection)
    truth = release["exposures"].set_index("expnum")["zp_offset"]
    fields = fields.set_index("expnum")
    residual = fields["zeropoint_corr"] + truth.loc[fields.index]
    assert np.abs(residual - residual.mean()).max() < 0.02
    assert len(groups) == 3 and (groups["astrom_ndets_reference"] > 50).all()  # D3 r, D3 i, VW
