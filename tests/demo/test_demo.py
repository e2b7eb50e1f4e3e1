"""Fast tests of the demo-survey simulator (spica.demo)."""

from __future__ import annotations

import csv
import hashlib
import math
import re
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import yaml
from astropy.io import fits

from spica.demo import simulate as sim
from spica.demo.generate import (
    DEFAULTS,
    config_hash,
    make_sky,
    simulate_survey,
    write_exposure,
)
from spica.demo.survey import plan_survey

ROOT = Path(__file__).resolve().parents[2]


def _config() -> dict:
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    cfg["demo"]["processes"] = 2
    return cfg


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_small")
    cfg = _config()
    manifest = simulate_survey(cfg, out, small=True)
    return cfg, out, manifest


def _raw(out: Path) -> Path:
    return out / "demo" / "raw"


def _truth_rows(out: Path, name: str) -> list[dict[str, str]]:
    with open(_raw(out) / "truth" / name) as fh:
        return list(csv.DictReader(fh))


# --------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------


def test_schema_validates_config_and_defaults():
    # config.yaml holds every value (the schema none); DEFAULTS, the simulator's
    # fallbacks for a partial section, must still be a complete, valid section
    schema = yaml.safe_load((ROOT / "config" / "schemas" / "demo.schema.yaml").read_text())
    cfg = _config()
    jsonschema.validate(cfg["demo"], schema)
    jsonschema.validate(DEFAULTS, schema)
    for key, prop in schema["properties"].items():
        assert "description" in prop and "type" in prop and "default" not in prop, key
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**cfg["demo"], "nonsense": 1}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({k: v for k, v in cfg["demo"].items() if k != "seed"}, schema)


# --------------------------------------------------------------------------
# survey products
# --------------------------------------------------------------------------


def test_manifest_and_fates(small):
    cfg, out, manifest = small
    fates = {e["fate"] for e in manifest.exposures}
    assert "good" in fates and "wrong_wcs_ccd" in fates and "broken:truncated" in fates
    for f in manifest.files:
        p = out / f["path"]
        assert p.exists()
        if f["kind"] != "grades":
            assert not (p.stat().st_mode & 0o222), f"{p} should be read-only"
    # up to date: a second call regenerates nothing
    again = simulate_survey(cfg, out, small=True)
    assert again.config_hash == manifest.config_hash == config_hash({**cfg}, True)


def test_determinism_same_seed_same_bytes(small, tmp_path):
    cfg, out, manifest = small
    plans = plan_survey({**cfg, "demo": {**DEFAULTS, **cfg["demo"]}}, small=True)
    p = plans[0]
    sky = make_sky({**cfg, "demo": {**DEFAULTS, **cfg["demo"]}}, plans)
    write_exposure(p, cfg, sky, tmp_path)
    ref = next(f for f in manifest.files if f["path"].endswith(f"{p.expnum}p.fits"))
    assert _sha(tmp_path / f"{p.expnum}p.fits") == ref["sha256"]


def test_header_contract(small):
    cfg, out, manifest = small
    good = next(e for e in manifest.exposures if e["fate"] == "good")
    path = _raw(out) / "exposures" / good["filename"]
    with fits.open(path) as h:
        p = h[0].header
        assert p["INSTRUME"] == "MegaPrime" and p["DETECTOR"] == "MegaCam"
        assert p["OBSTYPE"] == "OBJECT" and p["EXPNUM"] == good["expnum"]
        assert p["NEXTEND"] == len(h) - 1 == 8
        assert re.fullmatch(r"[ugriz]\.MP9[3-8]0[12]", p["FILTER"])
        assert re.fullmatch(r"\d\d[AB]L0\d", p["RUNID"])
        assert re.fullmatch(r"\d\d[AB]Q\d\d", p["QRUNID"])
        assert re.fullmatch(r"\d\d[AB]m\d\d", p["CRUNID"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT00:00:00", p["REL_DATE"])
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", p["DATE-OBS"])
        assert re.fullmatch(r"\d{1,2}:\d\d:\d\d\.\d\d", p["UTC-OBS"])
        assert re.fullmatch(r"\d{1,2}:\d\d:\d\d\.\d\d", p["RA"])
        assert re.fullmatch(r"-?\d{1,2}:\d\d:\d\d\.\d", p["DEC"])
        for key in ("EXPTIME", "AIRMASS", "MJD-OBS", "RA_DEG", "DEC_DEG", "PI_NAME", "OBJECT"):
            assert key in p
        for k, ext in enumerate(h[1:]):
            e = ext.header
            assert e["EXTNAME"] == f"ccd{k:02d}"
            assert e["BITPIX"] == 16 and e["BZERO"] == 32768 and e["BSCALE"] == 1
            assert e["FILTER"] == p["FILTER"] and e["EXPNUM"] == p["EXPNUM"]
            assert re.fullmatch(r"\[\d+:\d+,\d+:\d+\]", e["DETSEC"])
            assert e["CCDSIZE"] == "[1:400,1:800]"
            for key in ("GAIN", "GAINA", "GAINB", "RDNOISE", "SATURATE", "MAXLIN", "PHOT_C", "PHOT_K",
                        "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2", "CD1_1", "CD1_2", "CD2_1", "CD2_2"):
                assert key in e
            assert e["CTYPE1"] == "RA---TAN" and e["CTYPE2"] == "DEC--TAN"
            ff = e["IMRED_FF"]
            mk = e["IMRED_MK"]
            assert re.fullmatch(rf"{p['CRUNID']}\.flat\.[ugriz]\.8\.01\.fits\[ccd{k:02d}\]", ff)
            assert re.fullmatch(rf"\d{{4}}[AB]\.mask\.0\.8\.01\.fits\[ccd{k:02d}\]", mk)
            for name in (ff, mk):
                with fits.open(_raw(out) / "elixir" / name.split("[")[0]) as cal:
                    assert cal[f"ccd{k:02d}"].data.shape == ext.data.shape
        assert path.stat().st_size <= 25 * 2**20


def test_metadata_and_grades(small):
    cfg, out, manifest = small
    with open(_raw(out) / "metadata.csv") as fh:
        meta = list(csv.DictReader(fh))
    assert {int(r["expnum"]) for r in meta} == {e["expnum"] for e in manifest.exposures}
    truth = {int(r["expnum"]): r for r in _truth_rows(out, "exposures.csv")}
    for r in meta:
        t = truth[int(r["expnum"])]
        assert r["photometric"] == t["photometric"]
        if r["photometric"] == "false":
            assert float(t["zp_offset"]) >= 0.05
            assert abs(float(r["skyprobe"]) - float(t["zp_offset"])) < 0.05
    with open(_raw(out) / "grades.csv") as fh:
        grades = list(csv.DictReader(fh))
    assert list(grades[0]) == ["expnum", "grade", "comment", "graded_by", "date"]
    assert 0 < len(grades) < len(meta)


def test_wrong_wcs_ccd_is_off(small):
    cfg, out, manifest = small
    from astropy.wcs import WCS

    row = next(r for r in _truth_rows(out, "exposures.csv") if r["fate"] == "wrong_wcs_ccd")
    bad = int(row["wrong_wcs_ccd"])
    demo = {**DEFAULTS, **cfg["demo"]}
    mosaic = sim.Mosaic(pixel_scale=cfg["survey"]["pixel_scale"], **demo["mosaic"])
    k = demo["distortion_edge_pix"] / mosaic.corner_radius**3
    with fits.open(_raw(out) / "exposures" / row["filename"]) as h:
        for ccd in range(mosaic.nccd):
            w = WCS(h[ccd + 1].header)
            ra_h, dec_h = w.all_pix2world([[200.5, 400.5]], 1)[0]
            u, v = mosaic.ccd_to_focal(ccd, 200.5, 400.5)
            ra_t, dec_t = sim.focal_to_sky(u, v, float(row["ra_deg"]), float(row["dec_deg"]),
                                           mosaic.pixel_scale, k)
            sep = math.hypot((ra_h - ra_t) * math.cos(math.radians(dec_t)), dec_h - dec_t) * 3600
            if ccd == bad:
                assert sep > 30.0
            else:
                assert sep < 5.0


def test_truncated_file_is_truncated(small):
    cfg, out, manifest = small
    e = next(e for e in manifest.exposures if e["fate"] == "broken:truncated")
    path = _raw(out) / "exposures" / e["filename"]
    assert path.stat().st_size % 2880 != 0
    with pytest.raises(Exception):
        with fits.open(path) as h:
            for ext in h[1:]:
                _ = ext.data.sum()


def test_nextend_lies(tmp_path):
    cfg = _config()
    full = {**cfg, "demo": {**DEFAULTS, **cfg["demo"]}}
    plans = plan_survey(full)
    p = next(p for p in plans if p.broken == "nextend_lie")
    sky = make_sky(full, [p])
    write_exposure(p, cfg, sky, tmp_path)
    with fits.open(tmp_path / f"{p.expnum}p.fits") as h:
        assert h[0].header["NEXTEND"] == 8
        assert len(h) - 1 == 7


def test_defect_truth_matches_pixels(small):
    cfg, out, manifest = small
    rows = _truth_rows(out, "defects.csv")
    good = next(e for e in manifest.exposures if e["fate"] == "good")
    with fits.open(_raw(out) / "exposures" / good["filename"]) as h:
        for r in rows:
            if int(r["expnum"]) != good["expnum"]:
                continue
            data = h[r["extname"]].data
            if r["kind"] == "saturated":
                assert data[int(r["ymin"]) - 1 : int(r["ymax"]), int(r["xmin"]) - 1 : int(r["xmax"])].max() == 65535
            elif r["kind"] == "bad_column":
                assert np.all(data[:, int(r["x"]) - 1] == 0)
    kinds = {r["kind"] for r in rows}
    assert {"cosmic_ray", "bad_column", "satellite_trail", "low_flat"} <= kinds


# --------------------------------------------------------------------------
# pure functions: photometry, PSF, astrometry
# --------------------------------------------------------------------------


def test_star_flux_follows_elixir_zero_point():
    rng = np.random.default_rng(1)
    f = sim.FILTERS["r.MP9601"]
    mag, exptime, airmass, gain = 18.5, 300.0, 1.2, 1.6
    dn = float(sim.mag_to_dn(mag, exptime, f.phot_c, f.phot_k, airmass))
    sky = 1500.0
    img = np.full((121, 121), sky)
    st = sim.moffat_stamps(np.array([0.2]), np.array([-0.3]), np.array([4.2]), 3.0, 41, 2)
    sim.add_stamps(img, np.array([60]), np.array([60]), st, np.array([dn]))
    img = sim.add_noise(rng, img, gain, 5.0)
    y, x = np.mgrid[:121, :121]
    r = np.hypot(x - 60.2, y - 59.7)
    measured = img[r < 30].sum() - np.median(img[r > 40]) * (r < 30).sum()
    assert abs(measured / dn - 1) < 0.02
    assert abs(float(sim.dn_to_mag(measured, exptime, f.phot_c, f.phot_k, airmass)) - mag) < 0.022


def test_fwhm_of_rendered_star():
    fwhm = 4.3
    st = sim.moffat_stamps(np.array([0.0]), np.array([0.0]), np.array([fwhm]), 3.0, 41, 3)[0]
    prof = st[20, :]  # through the centre
    half = prof.max() / 2
    right = prof[20:]
    i = int(np.argmax(right < half))
    x_half = (i - 1) + (right[i - 1] - half) / (right[i - 1] - right[i])
    measured = 2 * x_half
    assert abs(measured / fwhm - 1) < 0.05


def test_true_mapping_roundtrip_and_distortion():
    mosaic = sim.Mosaic()
    k = 6.0 / mosaic.corner_radius**3
    u = np.array([0.0, 300.0, -820.0])
    v = np.array([0.0, -200.0, 810.0])
    ra, dec = sim.focal_to_sky(u, v, 214.86, 52.68, 0.186, k)
    u2, v2 = sim.sky_to_focal(ra, dec, 214.86, 52.68, 0.186, k)
    assert np.allclose(u, u2, atol=1e-6) and np.allclose(v, v2, atol=1e-6)
    p, q = sim.distort(u, v, k)
    shift = np.hypot(p - u, q - v)
    assert shift[0] == 0 and 3.0 < shift[2] < 7.0


# --------------------------------------------------------------------------
# Full-size MegaCam exposures (config/demo-fullsize.yaml), CCD by CCD
# --------------------------------------------------------------------------


def _fullsize_config(mosaic: dict | None = None) -> dict:
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_fullsize", ROOT / "bench" / "fullsize.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    cfg = bench.merged_config()  # the overlay merged over config/config.yaml, as Snakemake does
    if mosaic:
        cfg["demo"]["mosaic"] = {**cfg["demo"]["mosaic"], **mosaic}
    return cfg


def test_fullsize_overlay_is_megacam_on_the_real_grid():
    cfg = _fullsize_config()
    schema = yaml.safe_load((ROOT / "config" / "schemas" / "demo.schema.yaml").read_text())
    jsonschema.validate(cfg["demo"], schema)
    assert cfg["demo"]["mosaic"] == {"nx": 9, "ny": 4, "ccd_nx": 2048, "ccd_ny": 4612, "gap_x": 70, "gap_y": 70}
    assert cfg["survey"]["pixel_scale"] == 0.186 and cfg["survey"]["tile_size_deg"] == 1.0
    assert int(cfg["survey"]["tile_size_deg"] * 3600 / cfg["survey"]["pixel_scale"]) == 19354
    plans = plan_survey({**cfg, "demo": {**DEFAULTS, **cfg["demo"]}})
    assert [(p.obj, p.band, p.fate) for p in plans] == [("D3", "r", "good"), ("D3", "r", "good")]
    assert [p.satellite_trail for p in plans] == [False, True]


def test_streamed_exposure_equals_the_in_memory_one(tmp_path):
    """A cut-down mosaic written CCD by CCD has the bytes of the whole-HDUList write."""
    from spica.demo.generate import exposure_hdulist, render_ccds, render_exposure

    cfg = _fullsize_config({"nx": 3, "ny": 2, "ccd_nx": 128, "ccd_ny": 288, "gap_x": 9, "gap_y": 9})
    cfg["demo"] = {**DEFAULTS, **cfg["demo"]}
    cfg["demo"]["stars"] = {**cfg["demo"]["stars"], "per_ccd": 20.0}  # densities per CCD: tiny CCDs here
    cfg["demo"]["galaxies"] = {**cfg["demo"]["galaxies"], "per_ccd": 20.0}
    plans = plan_survey(cfg)
    sky = make_sky(cfg, plans)
    p = plans[1]  # the one with a satellite trail
    ccds = render_ccds(p, sky, cfg)
    first = next(ccds)  # a generator: one CCD at a time
    assert first.k == 0 and first.image.shape == (288, 128)
    assert [c.k for c in ccds] == [1, 2, 3, 4, 5]
    rows = write_exposure(p, cfg, sky, tmp_path)
    images, wcs, truth, defects = render_exposure(p, sky, cfg)
    assert rows == {"ccd": truth, "defects": defects}
    assert any(d["kind"] == "satellite_trail" for d in defects)
    whole = tmp_path / "whole.fits"
    exposure_hdulist(p, images, wcs, cfg).writeto(whole, output_verify="silentfix")
    streamed = tmp_path / f"{p.expnum}p.fits"
    assert _sha(streamed) == _sha(whole)
    with fits.open(streamed) as hdul:
        assert len(hdul) == 7 and hdul[0].header["NEXTEND"] == 6
    raw = streamed.read_bytes()[2880 : 2880 * 12].decode("ascii", "replace")
    assert "BITPIX  =                   16" in raw and "BZERO   =                32768" in raw
    assert "BSCALE  =                    1" in raw


def test_one_full_size_ccd(tmp_path):
    """CCD 0 of a full MegaCam exposure: 2048 x 4612, int16 + BZERO, header geometry."""
    import tracemalloc

    from spica.demo.generate import exposure_ccd_hdu, render_ccds

    cfg = _fullsize_config()
    cfg["demo"] = {**DEFAULTS, **cfg["demo"]}
    plans = plan_survey(cfg)
    sky = make_sky(cfg, plans)
    tracemalloc.start()
    c = next(render_ccds(plans[0], sky, cfg))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert c.image.shape == (4612, 2048)
    # one CCD's arrays, not 36 (36 float64 CCDs are 2.7 GB)
    assert peak < 1.2e9, peak
    hdu = exposure_ccd_hdu(plans[0], c.k, c.image, c.wcs, cfg)
    path = tmp_path / "ccd00.fits"
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    with fits.open(path, do_not_scale_image_data=True) as hdul:
        h = hdul[1].header
        assert (h["BITPIX"], h["BZERO"], h["BSCALE"]) == (16, 32768, 1)
        assert (h["NAXIS1"], h["NAXIS2"]) == (2048, 4612)
        assert h["DETSEC"] == "[1:2048,14047:18658]"  # top-left CCD of 4 rows of 4612 + 3 gaps of 70
        assert abs(h["CD2_2"] * 3600 - 0.186) < 1e-3
    assert c.truth["n_sources"] > 1000
    assert sum(d["kind"] == "cosmic_ray" for d in c.defects) > 400


# --------------------------------------------------------------------------
# The command line: spica-demo --config BASE [OVERLAY ...]
# --------------------------------------------------------------------------


def test_demo_command_merges_its_overlays_as_snakemake_does(monkeypatch, tmp_path, capsys):
    from types import SimpleNamespace

    from spica.demo import cli

    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("demo:\n  seed: 7\n  mosaic: {nx: 3}\n")
    seen = {}

    def simulate(config, outdir, *, small, force):
        seen.update(config=config, outdir=outdir, small=small)
        return SimpleNamespace(exposures=[1, 2], files=[1, 2, 3])

    monkeypatch.setattr(cli, "simulate_survey", simulate)
    base = ROOT / "config" / "config.yaml"
    assert cli.main(["--config", str(base), str(overlay), "--outdir", str(tmp_path), "--small"]) == 0
    base_demo = yaml.safe_load(base.read_text())["demo"]
    demo = seen["config"]["demo"]
    # the overlay's keys replace the base's, key by key: the rest of the mosaic is the base's
    assert demo["seed"] == 7 and demo["mosaic"] == {**base_demo["mosaic"], "nx": 3}
    assert {k: v for k, v in demo.items() if k not in ("seed", "mosaic")} == \
        {k: v for k, v in base_demo.items() if k not in ("seed", "mosaic")}
    assert seen["config"]["survey"] == yaml.safe_load(base.read_text())["survey"]
    assert seen["outdir"] == tmp_path and seen["small"] is True
    assert "2 exposures, 3 files (seed 7)" in capsys.readouterr().err


def test_demo_command_names_the_bad_key_of_an_overlay(monkeypatch, tmp_path, capsys):
    from spica.demo import cli

    monkeypatch.setattr(cli, "simulate_survey", lambda *a, **k: pytest.fail("simulated a bad configuration"))
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("demo:\n  seed: abc\n")
    base = str(ROOT / "config" / "config.yaml")
    assert cli.main(["--config", base, str(overlay)]) == 2
    assert capsys.readouterr().err.strip() == "spica-demo: demo/seed: 'abc' is not of type 'integer'"
    assert cli.main(["--config", base, str(tmp_path / "missing.yaml")]) == 2
    assert f"configuration file not found: {tmp_path / 'missing.yaml'}" in capsys.readouterr().err
