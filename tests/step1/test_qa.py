"""QualityFITS-in tests on simulated MegaCam-like exposures run through the real tools."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.io.votable import parse as parse_votable

from spica.astromatic import psfex, sextractor
from spica.astromatic.psfex import read_psf_models
from spica.paths import QA_PLOTS
from spica.step1.qa import assess_exposure, provisional_grade
from spica.step1.qa.measure import CCDGeometry, astrometric_offsets, ccd_geometry
from tests.conftest import needs_tools

ROOT = Path(__file__).resolve().parents[2]
ASTRO = ROOT / "config" / "astromatic"
SEX = shutil.which("source-extractor") or shutil.which("sex")
PSFEX = shutil.which("psfex")
needs_sex_psfex = needs_tools(SEX is not None and PSFEX is not None, "source-extractor/psfex not installed")

LIMITS = {  # every key of step1.grading: the grade has no defaults of its own
    "max_fwhm_arcsec": 1.4,
    "fwhm_c_factor": 1.3,
    "max_elongation": 1.25,
    "max_ccd_fwhm_scatter": 0.25,
    "min_star_count_per_ccd": 5,
    "max_bad_fraction": 0.2,
    "max_masked_fraction_c": 0.6,
    "max_multiple_image_fraction": 0.3,
    "max_ccd_offset_arcsec": 10.0,
    "max_background_deviation": 10.0,
}
SCALE = 0.186  # arcsec / px
NX = NY = 500
GAP = 40
FWHM = 3.6  # px
N_STARS = 40  # per CCD
EXPNUM = 700001


# --------------------------------------------------------------------------
# simulation
# --------------------------------------------------------------------------
def _layout(n_ccd: int) -> list[tuple[int, int, int, int]]:
    """DETSEC of each CCD: 2 per row, upper row rotated by 180 degrees (MegaCam-like)."""
    out = []
    for k in range(n_ccd):
        col, row = k % 2, k // 2
        x1, y1 = 1 + col * (NX + GAP), 1 + row * (NY + GAP)
        x2, y2 = x1 + NX - 1, y1 + NY - 1
        out.append((x2, x1, y2, y1) if row % 2 else (x1, x2, y1, y2))
    return out


def _render(img: np.ndarray, x: float, y: float, flux: float, kind: str, shape: tuple[float, float, float]) -> None:
    """Add a Gaussian star (kind 'star') or an exponential galaxy at 0-based (x, y)."""
    half = 20
    x0, y0 = int(round(x)), int(round(y))
    ys, xs = np.mgrid[max(0, y0 - half) : min(img.shape[0], y0 + half + 1), max(0, x0 - half) : min(img.shape[1], x0 + half + 1)]
    dx, dy = xs - x, ys - y
    if kind == "star":
        sigma = FWHM / 2.3548
        prof = np.exp(-(dx**2 + dy**2) / (2 * sigma**2))
    else:
        re, q, pa = shape
        c, s = np.cos(pa), np.sin(pa)
        u, v = dx * c + dy * s, (-dx * s + dy * c) / q
        prof = np.exp(-1.678 * np.hypot(u, v) / re)
        # convolve roughly with the PSF by adding the PSF width in quadrature to the core
        prof += 0.3 * np.exp(-(dx**2 + dy**2) / (2 * (FWHM / 2.3548) ** 2))
    img[ys, xs] += flux * prof / prof.sum()


def make_exposure(
    folder: Path,
    *,
    n_ccd: int = 4,
    double: tuple[float, float] | None = None,
    seed: int = 1,
) -> dict[str, Path]:
    """Write ``NNNNNNp.fits`` (+ weight and flag MEFs) with known stars and galaxies."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{EXPNUM}p"
    prim = fits.Header()
    prim.update(EXPNUM=EXPNUM, OBJECT="SIMFIELD", FILTER="i.MP9701", EXPTIME=300.0, AIRMASS=1.2,
                INSTRUME="MegaPrime", DETECTOR="MegaCam", OBSTYPE="OBJECT", **{"MJD-OBS": 53000.5})  # fmt: skip
    sci, wei, flg = [fits.PrimaryHDU(header=prim)], [fits.PrimaryHDU(header=prim)], [fits.PrimaryHDU(header=prim)]
    dets = _layout(n_ccd)
    umax = max(max(d[:2]) for d in dets)
    vmax = max(max(d[2:]) for d in dets)
    uc, vc = (umax + 1) / 2, (vmax + 1) / 2
    for k, det in enumerate(dets):
        sky, gain = 1000.0, 1.5
        img = np.zeros((NY, NX))
        objs = [("star", rng.uniform(25, NX - 25), rng.uniform(25, NY - 25), 10 ** rng.uniform(3.9, 5.5), (0, 1, 0))
                for _ in range(N_STARS)]  # fmt: skip
        objs += [("gal", rng.uniform(25, NX - 25), rng.uniform(25, NY - 25), 10 ** rng.uniform(4.0, 5.0),
                  (rng.uniform(3.5, 6.0), rng.uniform(0.4, 1.0), rng.uniform(0, np.pi))) for _ in range(20)]  # fmt: skip
        for kind, x, y, f, shape in objs:
            if double is None:
                _render(img, x, y, f, kind, shape)
            else:
                _render(img, x, y, 0.55 * f, kind, shape)
                _render(img, x + double[0], y + double[1], 0.45 * f, kind, shape)
        var = (sky + img) / gain + 25.0
        img = (sky + img + rng.normal(size=img.shape) * np.sqrt(var)).astype(np.float32)
        weight = np.ones_like(img)
        flag = np.zeros(img.shape, np.uint8)
        weight[:, 100] = 0  # a bad column
        flag[:, 100] = 1
        cr = rng.integers(0, NX, size=(30, 2))
        flag[cr[:, 1], cr[:, 0]] |= 4
        sx = 1 if det[1] >= det[0] else -1
        sy = 1 if det[3] >= det[2] else -1
        h = fits.Header()
        h["EXTNAME"] = f"ccd{k:02d}"
        h.update(GAIN=gain, SATURATE=60000.0, PHOT_C=25.9, PHOT_K=-0.04, RDNOISE=5.0,
                 DATASEC=f"[1:{NX},1:{NY}]", DETSEC=f"[{det[0]}:{det[1]},{det[2]}:{det[3]}]")  # fmt: skip
        # tangent point at the focal-plane centre; i = (u - u0)/sx + 1
        h.update(CTYPE1="RA---TAN", CTYPE2="DEC--TAN", CRVAL1=150.0, CRVAL2=2.0, CUNIT1="deg", CUNIT2="deg",
                 CRPIX1=(uc - det[0]) / sx + 1, CRPIX2=(vc - det[2]) / sy + 1,
                 CD1_1=-SCALE / 3600 * sx, CD1_2=0.0, CD2_1=0.0, CD2_2=SCALE / 3600 * sy)  # fmt: skip
        sci.append(fits.ImageHDU(img, header=h))
        wei.append(fits.ImageHDU(weight, header=h))
        flg.append(fits.ImageHDU(flag, header=h))
    paths = {
        "exposure": folder / f"{name}.fits",
        "weight": folder / f"{name}_weight.fits",
        "flag": folder / f"{name}_flag.fits",
    }
    fits.HDUList(sci).writeto(paths["exposure"], overwrite=True)
    fits.HDUList(wei).writeto(paths["weight"], overwrite=True)
    fits.HDUList(flg).writeto(paths["flag"], overwrite=True)
    return paths


def run_tools(paths: dict[str, Path]) -> dict[str, Path]:
    """Run SExtractor and PSFEx with the repository configuration."""
    folder = paths["exposure"].parent
    name = paths["exposure"].name[: -len(".fits")]
    out = dict(paths)
    out.update(
        ldac=folder / f"{name}_ldac.fits", sex_xml=folder / f"{name}_sex.xml",
        minibkg=folder / f"{name}_minibkg.fits", psf=folder / f"{name}_ldac.psf",
        psfex_xml=folder / f"{name}_psfex.xml",
    )  # fmt: skip
    sex_args = sextractor.arguments(
        images=paths["exposure"], config=ASTRO / "step1.sex", param=ASTRO / "step1.param",
        conv=ASTRO / "gauss_3.0_5x5.conv", nnw=ASTRO / "default.nnw",
        weights=paths["weight"], flags=paths["flag"], catalog=out["ldac"], xml_out=out["sex_xml"],
        checkimage=out["minibkg"], options={"PIXEL_SCALE": 0, "VERBOSE_TYPE": "QUIET"},
    )
    subprocess.run([SEX, *sex_args], check=True, cwd=folder, capture_output=True)
    psfex_args = psfex.arguments(
        catalog=out["ldac"], config=ASTRO / "step1.psfex", psf_dir=folder, xml_out=out["psfex_xml"],
        options={"VERBOSE_TYPE": "QUIET"},
    )
    subprocess.run([PSFEX, *psfex_args], check=True, cwd=folder, capture_output=True)
    return out


def output_paths(folder: Path) -> dict[str, Path]:
    name = f"{EXPNUM}p"
    out = {k: folder / "qa" / f"{name}{suffix}" for k, suffix in QA_PLOTS.items()}
    out["diag"] = folder / "qa" / f"{name}_diag.fits"
    out["qa_xml"] = folder / "qa" / f"{name}.xml"
    return out


def assess(inputs: dict[str, Path], folder: Path, keys: tuple[str, ...] | None = None) -> tuple[dict, dict[str, Path]]:
    """Run :func:`assess_exposure`; ``keys`` restricts the outputs (plots are the slow part)."""
    outputs = output_paths(folder)
    if keys is not None:
        outputs = {k: v for k, v in outputs.items() if k in keys}
    summary = assess_exposure(
        exposure=inputs["exposure"], weight=inputs["weight"], flag=inputs["flag"], ldac=inputs["ldac"],
        sex_xml=inputs["sex_xml"], minibkg=inputs["minibkg"], psf=inputs["psf"], psfex_xml=inputs["psfex_xml"],
        outputs=outputs, limits=LIMITS,
    )  # fmt: skip
    return summary, outputs


@pytest.fixture(scope="module")
def perfect(tmp_path_factory):
    if SEX is None or PSFEX is None:
        pytest.skip("source-extractor/psfex not installed")
    folder = tmp_path_factory.mktemp("perfect")
    inputs = run_tools(make_exposure(folder))
    summary, outputs = assess(inputs, folder)
    return inputs, summary, outputs


# --------------------------------------------------------------------------
# tests on the perfect exposure
# --------------------------------------------------------------------------
@needs_sex_psfex
def test_perfect_image_gets_grade_a(perfect):
    _, summary, _ = perfect
    assert summary["grade"] == "A", summary["grade_reasons"]
    assert summary["grade_reasons"] == []


@needs_sex_psfex
def test_fwhm_within_10_percent(perfect):
    _, summary, _ = perfect
    assert summary["fwhm_px"] == pytest.approx(FWHM, rel=0.10)
    assert summary["fwhm_arcsec"] == pytest.approx(FWHM * SCALE, rel=0.10)
    assert summary["fwhm_stars_px"] == pytest.approx(FWHM, rel=0.10)
    for ccd in summary["ccds"]:
        assert ccd["psfex_ok"]
        assert ccd["fwhm_psfex"] == pytest.approx(FWHM, rel=0.10)


@needs_sex_psfex
def test_star_counts_within_20_percent(perfect):
    _, summary, _ = perfect
    assert summary["n_stars"] == pytest.approx(4 * N_STARS, rel=0.20)
    for ccd in summary["ccds"]:
        assert ccd["n_stars"] == pytest.approx(N_STARS, rel=0.25)
    assert summary["n_galaxies"] > 0.5 * 4 * 20
    assert summary["elongation"] < 1.15


@needs_sex_psfex
def test_background_and_flags(perfect):
    _, summary, _ = perfect
    assert summary["background"] == pytest.approx(1000.0, rel=0.02)
    assert summary["background_rms"] == pytest.approx(np.sqrt(1000 / 1.5 + 25), rel=0.1)
    # mu = ZP - 2.5 log10(B / s^2), ZP = 2.5 log10(300) + 25.9 - 0.04 * 0.2
    zp = 2.5 * np.log10(300) + 25.9 - 0.04 * 0.2
    assert summary["background_mag"] == pytest.approx(zp - 2.5 * np.log10(1000 / SCALE**2), abs=0.03)
    assert summary["frac_defect"] == pytest.approx(1 / NX, rel=0.01)
    assert 0 < summary["frac_cosmic"] <= 30 / (NX * NY)
    assert summary["frac_masked"] >= summary["frac_defect"]


@needs_sex_psfex
def test_all_outputs_written_and_valid(perfect):
    _, summary, outputs = perfect  # its time: bench/unit_timings.py
    for key, path in outputs.items():
        assert path.is_file(), key
        head = path.read_bytes()[:8]
        if path.suffix == ".png":
            assert head == b"\x89PNG\r\n\x1a\n", key
        elif path.suffix == ".ps":
            assert head.startswith(b"%!PS"), key
        assert path.name.startswith(f"{EXPNUM}p")
    assert outputs["qa_xml"].name == f"{EXPNUM}p.xml"
    with fits.open(outputs["diag"]) as hdul:
        ccd = hdul["CCD_DIAG"].data
        assert len(ccd) == 4
        for col in ("extname", "background", "background_rms", "background_mag", "fwhm_arcsec", "fwhm_px",
                    "elongation", "n_stars", "n_galaxies", "frac_saturated", "frac_cosmic", "frac_defect",
                    "psfex_accepted", "astrometric_offset"):  # fmt: skip
            assert col in ccd.columns.names, col
        assert list(ccd["extname"]) == ["ccd00", "ccd01", "ccd02", "ccd03"]
        assert hdul[0].header["QAGRADE"] == "A"
        assert len(hdul["FIELD_DIAG"].data) == 1
    vot = parse_votable(str(outputs["qa_xml"]))
    res = vot.resources[0]
    params = {p.name: p.value for p in res.params}
    assert params["Grade"] in ("A", b"A")
    tables = {t.name: t for t in res.tables}
    assert len(tables["CCDs"].array) == 4
    assert float(tables["Field"].array["fwhm_arcsec"][0]) == pytest.approx(summary["fwhm_arcsec"])


# --------------------------------------------------------------------------
# degraded exposures
# --------------------------------------------------------------------------
@needs_sex_psfex
def test_shifted_ccd_wcs_gets_grade_d(perfect, tmp_path):
    inputs, _, _ = perfect
    bad = dict(inputs)
    bad["exposure"] = tmp_path / inputs["exposure"].name
    with fits.open(inputs["exposure"]) as hdul:
        hdul["ccd02"].header["CRVAL2"] += 45.0 / 3600
        hdul.writeto(bad["exposure"])
    summary, _ = assess(bad, tmp_path, keys=("diag", "qa_xml"))
    assert summary["grade"] == "D"
    assert any("ccd02" in r and r.startswith("D") for r in summary["grade_reasons"]), summary["grade_reasons"]
    assert not any(c in r for r in summary["grade_reasons"] for c in ("ccd00", "ccd01", "ccd03"))
    off = {c["extname"]: c["astrometric_offset"] for c in summary["ccds"]}
    assert off["ccd02"] == pytest.approx(45.0, abs=3.0)


@needs_sex_psfex
def test_doubled_blended_stars_get_grade_c(tmp_path):
    inputs = run_tools(make_exposure(tmp_path, n_ccd=2, double=(3.5, 2.0), seed=2))
    summary, _ = assess(inputs, tmp_path, keys=("diag", "qa_xml"))
    assert summary["grade"] == "C", summary["grade_reasons"]
    assert any(r.startswith("C: elongation") and "multiply-imaged" in r for r in summary["grade_reasons"])


@needs_sex_psfex
def test_doubled_separated_stars_get_grade_c(tmp_path):
    inputs = run_tools(make_exposure(tmp_path, n_ccd=2, double=(11.0, 6.0), seed=3))
    summary, _ = assess(inputs, tmp_path, keys=("diag", "qa_xml"))
    assert summary["grade"] == "C", summary["grade_reasons"]
    assert any(r.startswith("C: multiple_images") for r in summary["grade_reasons"]), summary["grade_reasons"]


@needs_sex_psfex
def test_missing_psf_model_does_not_crash(perfect, tmp_path):
    inputs, _, _ = perfect
    bad = dict(inputs)
    bad["psf"] = tmp_path / inputs["psf"].name
    with fits.open(inputs["psf"]) as hdul:
        hdul[2].header["PSF_FWHM"] = 0.0
        hdul[2].data["PSF_MASK"][:] = 0
        del hdul[4]  # last CCD has no model at all
        hdul.writeto(bad["psf"])
    bad["psfex_xml"] = tmp_path / "absent.xml"
    summary, outputs = assess(bad, tmp_path, keys=("diag", "qa_xml", "psf_m"))
    ok = [c["psfex_ok"] for c in summary["ccds"]]
    assert ok == [True, False, True, False]
    assert summary["grade"] == "B"
    assert any("ccd01" in r and "psfex" in r for r in summary["grade_reasons"])
    assert summary["ccds"][1]["fwhm_px"] == pytest.approx(FWHM, rel=0.10)  # from stars
    assert outputs["psf_m"].is_file()
    models = read_psf_models(bad["psf"])
    assert models[1][1] is None


# --------------------------------------------------------------------------
# pure functions
# --------------------------------------------------------------------------
def _ccd(name: str, **kw) -> dict:
    base = {"extname": name, "fwhm_arcsec": 0.8, "elongation": 1.05, "n_stars": 50, "psfex_ok": True,
            "background": 1000.0, "astrometric_offset": 0.3}  # fmt: skip
    return {**base, **kw}


def _field(**kw) -> dict:
    base = {"fwhm_arcsec": 0.8, "elongation": 1.05, "multiple_image_fraction": 0.0, "frac_masked": 0.02,
            "fwhm_scatter": 0.05}  # fmt: skip
    return {**base, **kw}


def test_grade_rules():
    ccds = [_ccd(f"ccd{i:02d}") for i in range(6)]
    assert provisional_grade({"field": _field(), "ccds": ccds}, LIMITS) == ("A", [])
    g, r = provisional_grade({"field": _field(fwhm_arcsec=1.5), "ccds": ccds}, LIMITS)
    assert g == "B" and r[0].startswith("B: fwhm")
    g, r = provisional_grade({"field": _field(fwhm_arcsec=2.5), "ccds": ccds}, LIMITS)
    assert g == "C" and "far above" in r[0]
    g, r = provisional_grade({"field": _field(), "ccds": [_ccd("a", n_stars=2)] * 6}, LIMITS)
    assert g == "C" and "too few stars" in r[0]
    bad = ccds[:3] + [_ccd("ccd03", astrometric_offset=40.0)] + ccds[4:]
    g, r = provisional_grade({"field": _field(fwhm_arcsec=2.5), "ccds": bad}, LIMITS)
    assert g == "D" and "ccd03" in r[0] and any(x.startswith("C") for x in r)
    g, r = provisional_grade({"field": _field(), "ccds": ccds[:5] + [_ccd("ccd05", background=1500.0)]}, LIMITS)
    assert g == "B" and "ccd05" in r[0]


def test_astrometric_offsets_pure():
    from astropy.wcs import WCS

    geoms, wcss = [], []
    for k, det in enumerate(_layout(6)):
        h = fits.Header()
        h.update(NAXIS1=NX, NAXIS2=NY, DETSEC=f"[{det[0]}:{det[1]},{det[2]}:{det[3]}]")
        g = ccd_geometry(h)
        sx, sy = g.flips
        w = WCS(naxis=2)
        w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        w.wcs.crval = [10.0, -30.0 + (20 / 3600 if k == 4 else 0)]
        w.wcs.crpix = [(520 - det[0]) / sx + 1, (800 - det[2]) / sy + 1]
        w.wcs.cd = [[-SCALE / 3600 * sx, 0], [0, SCALE / 3600 * sy]]
        geoms.append(g)
        wcss.append(w)
    off = astrometric_offsets(geoms, wcss, tolerance=5.0)
    assert off[4] == pytest.approx(20.0, abs=1.0)
    assert np.all(np.delete(off, 4) < 0.5)
    assert isinstance(geoms[0], CCDGeometry) and geoms[2].flips == (-1, -1)


@needs_sex_psfex
def test_pixels_kept_in_memory_give_the_same_qa(perfect, tmp_path):
    """The merged step 1 job hands the QA the CCD pixels its defect step read
    (spica.step1.reduce.KeptPixels): same diagnostics as reading the exposure, and
    each CCD is dropped once used."""
    from spica.step1.reduce import KeptPixels

    inputs, summary, _ = perfect
    kept = KeptPixels()
    with fits.open(inputs["exposure"]) as hdul:
        for index, hdu in enumerate(hdul[1:]):
            bzero = hdu.header.get("BZERO")
            kept.keep(index, np.asarray(hdu.data, np.float32), bzero if hdu.header.get("BITPIX") == 16 else None)
    outputs = {k: v for k, v in output_paths(tmp_path).items() if k in ("diag", "qa_xml", "m")}
    again = assess_exposure(
        exposure=inputs["exposure"], weight=inputs["weight"], flag=inputs["flag"], ldac=inputs["ldac"],
        sex_xml=inputs["sex_xml"], minibkg=inputs["minibkg"], psf=inputs["psf"], psfex_xml=inputs["psfex_xml"],
        outputs=outputs, limits=LIMITS, science=kept,
    )  # fmt: skip
    assert len(kept) == 0  # dropped one by one
    assert again["grade"] == summary["grade"] and again["fwhm_arcsec"] == summary["fwhm_arcsec"]
    for mine, theirs in zip(again["ccds"], summary["ccds"]):
        assert {k: v for k, v in mine.items() if isinstance(v, float) and np.isfinite(v)} == \
            {k: v for k, v in theirs.items() if isinstance(v, float) and np.isfinite(v)}


def test_pixel_summaries_equal_the_separate_measures():
    """One pass-sharing function gives the values of block_mean, flag_fractions and
    weight_statistics exactly (finite weight map, and one with NaN)."""
    from spica.step1.qa import measure

    rng = np.random.default_rng(3)
    sci = rng.normal(1000, 30, (203, 150)).astype(np.float32)
    weight = rng.uniform(0.5, 1.5, sci.shape).astype(np.float32)
    flag = np.zeros(sci.shape, np.uint8)
    flag[rng.random(sci.shape) < 0.03] = 4
    flag[10:20, 5] = 1 | 16
    flag[40, :] |= 8
    weight[flag > 0] = 0
    weight[100, 100] = 0  # zero weight, no flag: masked
    for w in (weight, np.where(np.arange(sci.shape[1]) == 7, np.nan, weight).astype(np.float32)):
        got = measure._pixel_summaries(sci, w, flag, 8)
        assert_equal = np.testing.assert_array_equal
        assert_equal(got["thumb"], measure.block_mean(sci, 8, good=w > 0))
        assert_equal(got["weight_thumb"], measure.block_mean(w, 8))
        assert got["weights"] == measure.weight_statistics(w)
        slow = {f"frac_{k}": np.count_nonzero(flag & bit) / flag.size for k, bit in measure.FLAG_BITS.items()}
        slow["frac_masked"] = (np.count_nonzero(flag) + np.count_nonzero((flag == 0) & ~(w > 0))) / flag.size
        assert got["flags"] == pytest.approx(slow, abs=0, rel=1e-12)
        assert got["flags"]["frac_trail"] == 150 / flag.size


def test_pixel_summaries_from_16_bit_pixels_and_listed_zero_weights():
    """The science thumbnail from the kept 16-bit pixels (block sums in integers minus
    the zero-weight pixels) and the weight figures located from the list of zero
    weights (a subsample of every 3rd positive pixel here) are the float path's, to
    the last bit; a big-endian map of the file's int16 (as KeptPixels keeps it) too."""
    from spica.step1.qa import measure

    rng = np.random.default_rng(8)
    shape = (1103, 1001)  # > 1e6 positive pixels: weight_statistics subsamples them
    raw = rng.integers(-32768, 32767, shape).astype(np.int16)
    sci = raw.astype(np.float32) + np.float32(32768)
    weight = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    flag = np.zeros(shape, np.uint8)
    flag[rng.random(shape) < 0.002] = 4
    flag[:, 17] |= 1
    weight[flag > 0] = 0
    weight[5, 5] = weight[-1, -1] = 0  # zero weight without a flag: masked
    slow = measure._pixel_summaries(sci, weight, flag, 12)
    assert slow["weights"] == measure.weight_statistics(weight)
    for values in (raw, raw.astype(">i2")):
        fast = measure._pixel_summaries(None, weight, flag, 12, integers=(values, 32768.0))
        np.testing.assert_array_equal(fast["thumb"], measure.block_mean(sci, 12, good=weight > 0))
        np.testing.assert_array_equal(fast["weight_thumb"], slow["weight_thumb"])
        assert fast["weights"] == slow["weights"]
        assert fast["flags"] == measure.flag_fractions(flag, weight)


def test_pixel_summaries_of_a_16_bit_flag_map():
    """A flag map in 16 bits (not WeightWatcher's 8) gives the same fractions."""
    from spica.step1.qa import measure

    rng = np.random.default_rng(4)
    weight = rng.uniform(0.5, 1.5, (90, 70)).astype(np.float32)
    flag = np.where(rng.random(weight.shape) < 0.05, 4 | 256, 0).astype(np.int16)
    weight[flag > 0] = 0
    got = measure._pixel_summaries(np.ones(weight.shape, np.float32), weight, flag, 8)
    assert got["flags"] == measure.flag_fractions(flag, weight)
    assert got["flags"]["frac_cosmic"] == np.count_nonzero(flag) / flag.size
