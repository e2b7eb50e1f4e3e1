"""End to end: the real workflow, with the real tools, on a tiny survey.

The small demo survey (:func:`spica.demo.simulate_survey`, ``small=True``) is
written into a scratch directory, extra broken files are derived from one of
its good exposures, and ``snakemake qualityfits_in`` runs there. The products
are then compared with the simulator's truth.
"""

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
import yaml
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS
from scipy import ndimage

from spica import paths
from spica.astromatic.scamp import head_wcs, parse_scamp_xml, read_heads
from spica.astromatic.options import read_param_file
from spica.step1.defects import FLAG_BITS
from spica.demo import simulate_survey
from spica.release.planning import read_exposure_list
from spica.provenance import file_sha256

from tests.conftest import REPO, require_binary

pytestmark = [pytest.mark.e2e, pytest.mark.tools]

CONFIG = REPO / "config" / "config.yaml"

# Broken files made from a good exposure: odometer -> (how, expected reason)
BROKEN = {
    751901: ("nextend", "nextend_mismatch"),
    751902: ("no_filter", "missing_keyword"),
    751903: ("nan_ccd", "nonfinite_pixels"),
    751904: ("not_fits", "unreadable"),
}


def _derive_broken(source: Path, directory: Path) -> None:
    for expnum, (how, _) in BROKEN.items():
        target = directory / paths.exposure_filename(expnum)
        if how == "not_fits":
            target.write_bytes(b"SIMPLE  = this is not a FITS file" + bytes(3000))
            continue
        with fits.open(source) as hdul:
            hdul = fits.HDUList([hdu.copy() for hdu in hdul])
        for hdu in hdul:
            if "EXPNUM" in hdu.header:
                hdu.header["EXPNUM"] = expnum
        if how == "nextend":
            del hdul[-1]  # NEXTEND still says the full count
        elif how == "no_filter":
            for hdu in hdul:
                hdu.header.remove("FILTER", ignore_missing=True)
        elif how == "nan_ccd":
            data = hdul[2].data.astype(np.float32)
            data[:] = np.nan
            hdul[2] = fits.ImageHDU(data, hdul[2].header)
            for key in ("BSCALE", "BZERO"):
                hdul[2].header.remove(key, ignore_missing=True)
        hdul.writeto(target)


def _snakemake(workdir: Path, *args: str, overrides: Path | None = None) -> subprocess.CompletedProcess:
    configfiles = [str(CONFIG)] + ([str(overrides)] if overrides else [])
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"),
               "--directory", str(workdir), "--cores", "2", *args,
               "--configfile", *configfiles]  # --configfile swallows what follows: keep it last
    return subprocess.run(command, capture_output=True, text=True, cwd=workdir)


def _job_counts(dry_run_output: str) -> dict[str, int]:
    block = dry_run_output.split("Job stats:", 1)[1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", block, flags=re.M)
            if m[1] != "total"}


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    for tool in (("source-extractor", "sex"), ("psfex",), ("weightwatcher", "ww")):
        require_binary(*tool)
    config = yaml.safe_load(CONFIG.read_text())
    reuse = os.environ.get("SPICA_E2E_WORKDIR")  # developers: keep and reuse a finished run
    if reuse and (Path(reuse) / "snakemake-run.log").is_file():
        workdir = Path(reuse)
        truth_dir = workdir / config["demo"]["truth_dir"]
        incoming = workdir / config["inputs"]["exposures"]
        files = {p.name: p.stat().st_mtime_ns for p in incoming.iterdir()}
        return {"workdir": workdir, "config": config, "truth": truth_dir,
                "exposures": pd.read_csv(truth_dir / "exposures.csv"), "manifest": None,
                "before": files, "after": files}
    workdir = Path(reuse) if reuse else tmp_path_factory.mktemp("spica-e2e")
    manifest = simulate_survey(config, workdir, small=True)
    truth_dir = workdir / config["demo"]["truth_dir"]
    exposures = pd.read_csv(truth_dir / "exposures.csv")
    good = exposures[exposures["fate"] == "good"]["expnum"].tolist()
    incoming = workdir / config["inputs"]["exposures"]
    incoming.chmod(0o755)
    _derive_broken(incoming / paths.exposure_filename(good[0]), incoming)
    (incoming / "README.txt").write_text("not an exposure")
    before = {p.name: p.stat().st_mtime_ns for p in incoming.iterdir()}
    run = _snakemake(workdir, "qualityfits_in")
    log = workdir / "snakemake-run.log"
    log.write_text(run.stdout + run.stderr)
    assert run.returncode == 0, f"snakemake failed, see {log}:\n{run.stderr[-3000:]}"
    after = {p.name: p.stat().st_mtime_ns for p in incoming.iterdir()}
    return {"workdir": workdir, "config": config, "truth": truth_dir, "exposures": exposures,
            "manifest": manifest, "before": before, "after": after}


def _step1(survey, expnum, key):
    return survey["workdir"] / paths.step1_path(survey["config"]["results"], expnum, key)


def _accepted(survey):
    exposures = survey["exposures"]
    return exposures[~exposures["fate"].str.startswith("broken")]


def test_broken_files_quarantined_with_their_reason(survey):
    quarantine = pd.read_csv(survey["workdir"] / "results" / "quarantine" / "quarantine.csv")
    reasons = {Path(p).name: r for p, r in zip(quarantine["path"], quarantine["reason"])}
    expected = {paths.exposure_filename(e): reason for e, (_, reason) in BROKEN.items()}
    expected["README.txt"] = "unrecognised_name"
    for row in survey["exposures"].itertuples():
        if row.fate.startswith("broken"):
            expected[row.filename] = "unreadable"  # the small survey's truncated file
    assert reasons == expected
    # quarantined files are listed, never modified or deleted
    assert survey["after"] == survey["before"]
    # and the others completed
    for expnum in _accepted(survey)["expnum"]:
        for key in paths.STEP1_PRODUCTS:
            assert _step1(survey, expnum, key).stat().st_size > 0, (expnum, key)


def test_fwhm_matches_simulated_seeing(survey):
    for row in _accepted(survey).itertuples():
        field = Table.read(_step1(survey, row.expnum, "diag"), hdu="FIELD_DIAG")
        measured = float(field["fwhm_arcsec"][0])
        assert measured == pytest.approx(row.seeing_arcsec, rel=0.10), row.expnum


def test_star_positions_and_counts_match_truth(survey):
    sources = pd.read_csv(survey["truth"] / "sources.csv")
    stars = sources[sources["type"] == "star"]
    truth_sky = SkyCoord(stars["ra"].values, stars["dec"].values, unit="deg")
    for row in _accepted(survey)[lambda t: t["fate"] == "good"].itertuples():
        mag = stars[f"mag_{row.band}"].values
        n_truth = 0
        with fits.open(_step1(survey, row.expnum, "ldac")) as ldac, \
                fits.open(_step1(survey, row.expnum, "flag")) as flags, \
                fits.open(survey["workdir"] / survey["config"]["inputs"]["exposures"]
                          / row.filename) as exposure:
            for index, hdu in enumerate(exposure[1:]):
                # pixels masked within 4 px of a star (bleed trails, bad columns, CR)
                masked = ndimage.maximum_filter(flags[index + 1].data, size=9) > 0
                wcs = WCS(hdu.header)
                ny, nx = hdu.data.shape
                objects = Table(ldac[2 * index + 2].data)
                x, y = wcs.world_to_pixel(truth_sky)
                on_ccd = (x > -0.5) & (x < nx - 0.5) & (y > -0.5) & (y < ny - 0.5)
                n_truth += np.count_nonzero(on_ccd & (mag < 23.0))
                xi = np.clip(np.round(x).astype(int), 0, nx - 1)
                yi = np.clip(np.round(y).astype(int), 0, ny - 1)
                # unsaturated, S/N > 50, on unmasked pixels
                bright = on_ccd & (mag < 21.0) & (mag > 17.5) & ~masked[yi, xi]
                detected = SkyCoord(objects["ALPHA_J2000"], objects["DELTA_J2000"], unit="deg")
                idx, sep, _ = truth_sky[bright].match_to_catalog_sky(detected)
                # header WCS off by ~1" + CCD jitter + undescribed distortion: < 3"
                found = sep.arcsec < 3.0
                assert found.mean() >= 0.9, (row.expnum, hdu.name, found.mean())
                # after removing the CCD's median offset, what is left is the
                # optical distortion across one CCD (<~0.4") and centroid noise
                clean = found & (objects["FLAGS"][idx] == 0)
                dra = (detected.ra[idx] - truth_sky[bright].ra).wrap_at("180d").arcsec[clean]
                ddec = (detected.dec[idx] - truth_sky[bright].dec).arcsec[clean]
                radius = np.hypot(dra - np.median(dra), ddec - np.median(ddec))
                assert np.percentile(radius, 68) < 0.5, (row.expnum, hdu.name)
        # QualityFITS-in star counts: stars to ~23 mag are classified as such
        qa = Table.read(_step1(survey, row.expnum, "diag"), hdu="CCD_DIAG")
        n_qa = int(qa["n_stars"].sum() + qa["n_saturated"].sum())
        assert n_qa == pytest.approx(n_truth, rel=0.25), (row.expnum, n_qa, n_truth)


def test_weight_and_flags_on_defects(survey):
    defects = pd.read_csv(survey["truth"] / "defects.csv")
    for row in _accepted(survey).itertuples():
        with fits.open(_step1(survey, row.expnum, "weight")) as weight, \
                fits.open(_step1(survey, row.expnum, "flag")) as flag:
            assert flag[1].header["BITPIX"] == 8 and weight[1].header["BITPIX"] == -32
            for w_hdu, f_hdu in zip(weight[1:], flag[1:]):
                w, f = w_hdu.data, f_hdu.data
                assert np.all(w[f > 0] == 0)  # weight 0 wherever a flag is set
                assert np.mean(w[f == 0] > 0) > 0.999
                mine = defects[(defects["expnum"] == row.expnum)
                               & (defects["extname"] == f_hdu.header["EXTNAME"])]
                hits = mine[mine["kind"] == "cosmic_ray"]
                if len(hits):
                    cr_flag = f[hits["y"].values.astype(int) - 1, hits["x"].values.astype(int) - 1] & FLAG_BITS["cosmic_ray"]
                    assert np.mean(cr_flag > 0) > 0.8, (row.expnum, f_hdu.header["EXTNAME"])
                for bad in mine[mine["kind"] == "bad_column"].itertuples():
                    column = f[int(bad.ymin) - 1:int(bad.ymax), int(bad.x) - 1]
                    assert np.all(column & FLAG_BITS["bad_pixel"])
                    assert np.all(w[int(bad.ymin) - 1:int(bad.ymax), int(bad.x) - 1] == 0)
                for trail in mine[mine["kind"] == "satellite_trail"].itertuples():
                    t = np.linspace(0, 1, 400)
                    tx = np.clip(np.round(trail.x + t * (trail.x2 - trail.x)).astype(int) - 1, 0, f.shape[1] - 1)
                    ty = np.clip(np.round(trail.y + t * (trail.y2 - trail.y)).astype(int) - 1, 0, f.shape[0] - 1)
                    on_trail = f[ty, tx] & FLAG_BITS["trail"]
                    assert np.mean(on_trail > 0) > 0.8, (row.expnum, f_hdu.header["EXTNAME"])
                for box in mine[mine["kind"] == "saturated"].itertuples():
                    cut = f[int(box.ymin) - 1:int(box.ymax), int(box.xmin) - 1:int(box.xmax)]
                    assert np.any(cut & FLAG_BITS["saturated"]), (row.expnum, box)


def test_registry_holds_exposures_grades_and_quarantine(survey):
    database = survey["workdir"] / "results" / "registry.sqlite"
    with sqlite3.connect(database) as connection:
        exposures = pd.read_sql("select * from exposures", connection)
        quarantine = pd.read_sql("select * from quarantine", connection)
        ccds = pd.read_sql("select * from ccds", connection)
    accepted = _accepted(survey)
    assert len(exposures) == len(survey["before"])
    assert len(quarantine) == len(survey["before"]) - len(accepted)
    assert len(ccds) == 8 * len(accepted)
    by_expnum = exposures.dropna(subset=["expnum"]).set_index("expnum")
    for row in accepted.itertuples():
        entry = by_expnum.loc[row.expnum]
        assert entry["filter"] == row.filter and entry["status"] == "ok"
        assert entry["grade"] in "ABCD"
        if row.fate == "wrong_wcs_ccd":
            assert entry["provisional_grade"] == "D"
            assert "astrometry" in entry["provisional_reason"]


def test_rerun_after_a_change_touches_only_what_it_affects(survey):
    nothing = _snakemake(survey["workdir"], "-n", "qualityfits_in")
    assert "Nothing to be done" in nothing.stdout + nothing.stderr
    # a PSFEx setting changes: PSF models, the QA that reads them and the
    # registry rerun; integrity, masks, weights and catalogues do not
    override = survey["workdir"] / "psfex-change.yaml"
    override.write_text("step1:\n  psfex:\n    min_snr: 25.0\n")  # deep-merged over config.yaml
    changed = _snakemake(survey["workdir"], "-n", "qualityfits_in", overrides=override)
    counts = _job_counts(changed.stdout + changed.stderr)
    n = len(_accepted(survey))
    assert counts == {"model_psf": n, "assess_quality": n, "build_registry": 1,
                      "qualityfits_in": 1}, counts
    # a SExtractor setting changes: catalogues and everything after them rerun,
    # not the integrity check, the defect masks or the weight maps
    override.write_text("step1:\n  sextractor:\n    detect_thresh: 2.0\n")
    changed = _snakemake(survey["workdir"], "-n", "qualityfits_in", overrides=override)
    counts = _job_counts(changed.stdout + changed.stderr)
    assert counts == {"extract_sources": n, "model_psf": n, "assess_quality": n,
                      "build_registry": 1, "qualityfits_in": 1}, counts


# ---------------------------------------------------------------- planning
# (these tests change the survey's grades: keep them last)

D3 = {"r": "CFHTLS_D_r_141927+524056_T0002", "i": "CFHTLS_D_i_141927+524056_T0002"}
VW = "751042p_V0001"  # the Very Wide exposure, image by image


def _pending_stems(survey) -> set[str]:
    """Stacks whose co-addition job (the stack job) a dry-run of the release lists."""
    dry = _snakemake(survey["workdir"], "-n", "release_T0002")
    assert dry.returncode == 0, dry.stderr[-2000:]
    jobs = re.split(r"\n(?=rule \w+:|checkpoint \w+:)", dry.stdout + dry.stderr)
    return {m[1] for job in jobs if job.startswith("rule coadd_stack:")
            for m in [re.search(r"stem=(\S+)", job)] if m}


def _lists(survey, stem):
    folder = survey["workdir"] / "results" / "releases" / "T0002" / stem
    return (read_exposure_list(folder / f"{stem}_stack.list"),
            read_exposure_list(folder / f"{stem}_astrom.list"))


def test_dry_run_lists_exactly_the_pending_stacks(survey):
    planned = _snakemake(survey["workdir"], "plan_T0002")
    assert planned.returncode == 0, planned.stderr[-2000:]
    # the small survey: D3 in r and i, and the Very Wide exposure image by image;
    # 751029 (a CCD with a wrong WCS, grade D) and the broken files are out
    assert _pending_stems(survey) == {*D3.values(), VW}
    made = _snakemake(survey["workdir"], f"results/releases/T0002/{D3['r']}/{D3['r']}.fits")
    assert made.returncode == 0, made.stderr[-2000:]
    assert _pending_stems(survey) == {D3["i"], VW}  # only the rest
    stack, astrometric = _lists(survey, D3["r"])
    assert stack == [751000, 751008]
    # the astrometric list takes every good exposure around, any filter
    assert astrometric == [751000, 751008, 751016, 751021]
    pending = (survey["workdir"] / "results" / "releases" / "T0002" / "T0002_pending.txt").read_text()
    assert pending.startswith("Pending processes (3)")
    assert "CFHTLS_D_i_141927+524056" in pending and "14 h 19 m 27" in pending


def test_scamp_solution_matches_truth(survey):
    """SCAMP, offline, over the astrometric list: the heads put stars where the truth is."""
    sources = pd.read_csv(survey["truth"] / "sources.csv")
    # match to every source, keep detections whose nearest one is a bright unsaturated star
    # (a galaxy beside a star is never taken for it)
    truth = SkyCoord(sources["ra"].values, sources["dec"].values, unit="deg")
    bright = ((sources["type"] == "star") & (sources["mag_r"] < 20.5) & (sources["mag_r"] > 17.5)).to_numpy()
    products = survey["workdir"] / "results" / "releases" / "T0002" / D3["r"] / "scamp"
    for expnum in (751000, 751008):
        heads = read_heads(products / f"{expnum}p.head")
        with fits.open(_step1(survey, expnum, "ldac")) as ldac, \
                fits.open(survey["workdir"] / survey["config"]["inputs"]["exposures"]
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
    xml = parse_scamp_xml(survey["workdir"] / "results" / "releases" / "T0002" / D3["r"]
                          / f"{D3['r']}_scamp.xml")
    assert set(xml["fields"]["catalog"]) == {f"{e}p_ldac.fits" for e in (751000, 751008, 751016, 751021)}
    # a Gaia-grade reference: tens of mas at most, not the 0.3-0.5" of header WCS jitter
    groups = xml["groups"]
    assert groups["astrom_sigma_reference_hisn"].iloc[0] < 0.05
    for plot in ("fgroups", "astr_referror2d", "phot_zpcorr"):
        png = products / f"{D3['r']}_{plot}_1.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.with_suffix(".ps").read_bytes().startswith(b"%!PS-Adobe")


def test_stack_products(survey):
    """SWarp stack of D3 r: seed header keywords, ZP 30, WCS on the plan's grid, weights."""
    stem = D3["r"]
    folder = survey["workdir"] / "results" / "releases" / "T0002" / stem
    truth = survey["exposures"].set_index("expnum").loc[[751000, 751008]]
    with fits.open(folder / f"{stem}.fits") as image, fits.open(folder / f"{stem}_weight.fits") as weight:
        header = image[0].header
        assert header["RELEASE"] == "T0002" and header["MAGZERO"] == 30.0
        assert header["PHOTCAL"] is True  # 751000 (photometric) anchors the zero point
        assert header["NCOMBINE"] == 2 and header["FILTER"] == "r.MP9601"
        assert [header["IMCMB001"], header["IMCMB002"]] == ["751000p", "751008p"]
        assert header["EXPTIME"] == pytest.approx(truth["exptime"].sum(), rel=1e-6)
        assert header["REL_DATE"] == max(truth["rel_date"])  # latest input (seed 3.3)
        d3 = survey["config"]["survey"]["deep_fields"][0]
        assert (header["CRVAL1"], header["CRVAL2"]) == pytest.approx((d3["ra"], d3["dec"]), abs=1e-6)
        side = round(survey["config"]["survey"]["tile_size_deg"] * 3600 / 0.186)
        assert abs(header["NAXIS1"] - side) <= 1 and header["CTYPE1"] == "RA---TAN"
        centre = weight[0].data[side // 2 - 50: side // 2 + 50, side // 2 - 50: side // 2 + 50]
        assert np.all(centre > 0)
        assert np.all(weight[0].data[image[0].data == 0] == 0)


def test_regraded_exposure_reenters_the_plan(survey):
    grades = survey["workdir"] / survey["config"]["inputs"]["grades"]
    table = pd.read_csv(grades, dtype=str, keep_default_na=False)
    table = table[table["expnum"] != "751029"]
    regraded = pd.DataFrame([{"expnum": "751029", "grade": "A", "comment": "WCS fixed by Elixir",
                              "graded_by": "test", "date": "2005-02-01"}])
    pd.concat([table, regraded]).to_csv(grades, index=False)
    run = _snakemake(survey["workdir"], "release_T0002")
    assert run.returncode == 0, run.stderr[-2000:]
    stack_r, astrometric_r = _lists(survey, D3["r"])
    stack_i, astrometric_i = _lists(survey, D3["i"])
    assert stack_r == [751000, 751008, 751029]  # re-injected, no manual clean-up
    assert stack_i == [751016, 751021]
    assert 751029 in astrometric_r and 751029 in astrometric_i
    assert _pending_stems(survey) == set()
    # the accept summary: every stack-list exposure judged, rejections explained,
    # and the stack made of the accepted ones
    import xml.etree.ElementTree as ET

    folder = survey["workdir"] / "results" / "releases" / "T0002" / D3["r"]
    verdicts = {e.get("name"): (e.get("accepted"), [r.text for r in e.iter("REASON")])
                for e in ET.parse(folder / f"{D3['r']}_scamp_accept.xml").getroot().iter("EXPOSURE")}
    assert set(verdicts) == {"751000p", "751008p", "751029p"}
    assert all(bool(reasons) == (flag == "F") for flag, reasons in verdicts.values())
    accepted = read_exposure_list(folder / f"{D3['r']}_accepted.list")
    assert accepted == [int(n[:-1]) for n, (flag, _) in sorted(verdicts.items()) if flag == "T"]
    assert fits.getheader(folder / f"{D3['r']}.fits")["NCOMBINE"] == len(accepted)
    for key in ("m", "m_med", "wmm", "wmm_med", "bkg_m"):
        assert (folder / f"{D3['r']}_{key}.png").read_bytes()[:4] == b"\x89PNG"


def test_release_catalogues_chi2_and_dust(survey):
    """After the full release run: chi2 of the D3 tile (r+i), 56-column dual-mode
    catalogues at ZP 30 with positions on the truth, dust maps on the stack grid."""
    folder = survey["workdir"] / "results" / "releases" / "T0002"
    tile = "CFHTLS_D_ri_141927+524056_T0002"
    with fits.open(folder / tile / f"{tile}_chi2.fits") as chi2:
        chi2_data, chi2_header = chi2[0].data, chi2[0].header
    # every product carries the release date of its latest input (seed 3.3)
    dates = [fits.getheader(folder / D3[band] / f"{D3[band]}.fits")["REL_DATE"] for band in ("r", "i")]
    assert (chi2_header["RELEASE"], chi2_header["REL_DATE"]) == ("T0002", max(dates))
    sources = pd.read_csv(survey["truth"] / "sources.csv")
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


def test_spica_summary_of_a_stack(survey):
    """``_spica.xml``: the stacked files with their observing data, the stack, the
    astrometric list with SCAMP's solution, and SCAMP's statistics (seed 4.4, 6.2)."""
    from spica.products.summary import SUMMARY_TABLES, read_product_summary

    stem = D3["r"]
    folder = survey["workdir"] / "results" / "releases" / "T0002" / stem
    tables = read_product_summary(folder / f"{stem}_spica.xml")
    assert list(tables) == list(SUMMARY_TABLES)
    header = fits.getheader(folder / f"{stem}.fits")
    stack = tables["Stack"][0]
    assert stack["name"] == stem.removesuffix("_T0002") and stack["release_version"] == "0002"
    assert (stack["ra"], stack["dec"]) == ("14:19:27.00", "+52:40:56.0")
    assert stack["exptime_total"] == pytest.approx(header["EXPTIME"])
    assert stack["ncombine"] == header["NCOMBINE"] and stack["zeropoint"] == 30.0
    assert stack["rel_date"] == header["REL_DATE"] and bool(stack["photcal"]) is True
    truth = survey["exposures"].set_index("expnum")
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
    _, astrometric_list = _lists(survey, stem)
    assert [int(name[:-6]) for name in astrometric["file"]] == astrometric_list
    # SCAMP's zero-point corrections: the injected losses (zp_offset > 0: light lost)
    corrections = np.asarray(astrometric["zeropoint_corr"]) + truth.loc[astrometric_list, "zp_offset"].to_numpy()
    assert np.abs(corrections - corrections.mean()).max() < 0.02
    assert dict(zip(tables["Filters"]["filter"], tables["Filters"]["nfiles"])) == {"r.MP9601": 3, "i.MP9701": 2}
    astrometry = tables["Astrometry"][0]
    assert astrometry["nfields"] == len(astrometric_list)
    assert astrometry["astrom_sigma_reference_hisn"] < 0.05  # arcsec, a Gaia-grade reference


def test_provenance_of_a_stack(survey, tmp_path):
    """``_cmd.txt`` and ``.xml`` alone rebuild the stack: run the script in a folder
    holding only the inputs the XML lists (checksums verified), compare the products."""
    import xml.etree.ElementTree as ET

    stem = D3["r"]
    workdir = survey["workdir"]
    folder = workdir / "results" / "releases" / "T0002" / stem
    script = (folder / f"{stem}_cmd.txt").read_text()
    tools = re.findall(r"^(scamp|SWarp|swarp|source-extractor|sex) ", script, flags=re.M)
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
    assert float(options[("swarp", "PIXEL_SCALE")]) == survey["config"]["survey"]["pixel_scale"]
    assert options[("sextractor", "BACK_SIZE")] == str(survey["config"]["catalogues"]["back_size"])
    rebuild = tmp_path / "rebuild"
    for kind, name, sha256 in files:
        assert file_sha256(workdir / name) == sha256, name
        (rebuild / name).parent.mkdir(parents=True, exist_ok=True)
        (rebuild / name).symlink_to(workdir / name)
    env = {**os.environ, "PYTHON": sys.executable}
    proc = subprocess.run(["sh", str(folder / f"{stem}_cmd.txt")], cwd=rebuild, env=env,
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


def test_image_by_image_products(survey):
    """The Very Wide exposure: its own warped image, weight, head (release date = the
    input's), chi-squared image of its one filter, catalogue and dust map."""
    folder = survey["workdir"] / "results" / "releases" / "T0002" / VW
    truth = survey["exposures"].set_index("expnum").loc[751042]
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


def test_scamp_statistics_in_the_registry(survey):
    """Zero-point corrections read back from the SCAMP XML recover the simulated
    losses of the non-photometric exposures (zp_offset > 0 is light lost)."""
    with sqlite3.connect(survey["workdir"] / "results" / "registry.sqlite") as connection:
        fields = pd.read_sql("select * from scamp_fields where stack = ?", connection,
                             params=[D3["r"]])
        groups = pd.read_sql("select * from scamp_groups", connection)
    truth = survey["exposures"].set_index("expnum")["zp_offset"]
    fields = fields.set_index("expnum")
    residual = fields["zeropoint_corr"] + truth.loc[fields.index]
    assert np.abs(residual - residual.mean()).max() < 0.02
    assert len(groups) == 3 and (groups["astrom_ndets_reference"] > 50).all()  # D3 r, D3 i, VW


def test_rerun_after_step2_configuration_changes(survey):
    """Changing SWarp's configuration reruns the stacks and what depends on them,
    not SCAMP or step 1; changing SCAMP's reruns calibration and everything after."""
    assert _pending_stems(survey) == set()  # the release is complete
    refresh = _snakemake(survey["workdir"], "release_T0002")  # the pending view catches up
    assert refresh.returncode == 0, refresh.stderr[-2000:]
    override = survey["workdir"] / "step2-change.yaml"
    # D3 r and i (one chi-squared tile) and the Very Wide image (its own)
    downstream = {"coadd_stack": 3, "make_chi2": 2, "extract_stack_catalogue": 3,
                  "make_dust_map": 3, "write_provenance": 3, "make_stack_thumbnails": 3,
                  "make_chi2_thumbnail": 2, "summarise_product": 3, "release_T0002": 1}
    calibration = {"calibrate_stack": 3, "accept_calibration": 3, "register_calibration": 1,
                   "deliver_heads": 2, "deliver_image_heads": 1, "deliver_image_ahead": 1}
    override.write_text("coaddition:\n  swarp_overrides: {SUBTRACT_BACK: N}\n")
    changed = _snakemake(survey["workdir"], "-n", "release_T0002", overrides=override)
    assert _job_counts(changed.stdout + changed.stderr) == downstream
    override.write_text("calibration:\n  scamp_overrides: {ASTRCLIP_NSIGMA: 3.5}\n")
    changed = _snakemake(survey["workdir"], "-n", "release_T0002", overrides=override)
    assert _job_counts(changed.stdout + changed.stderr) == {**calibration, **downstream}
