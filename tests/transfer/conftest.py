"""A tiny workflow folder for the transfer tests, built from synthetic files.

``survey`` writes, under a scratch folder: two raw exposures (read-only),
their step 1 products as step 1 would leave them (float32 weight MEF, uint8
flag MEF, an LDAC-like table, a diagnostic table, the QA XML), a registry
whose ``exposures`` table says ``ok`` (one exposure of a CFHTLS program, one
of a PI program), a release product of T0002 (stack, weight, catalogue,
command file, XML, summary, lists, heads) and the product grades CSV. Nothing
runs the workflow: what is real here is the transfer code, fpack/funpack and
rsync.
"""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.table import Table

from spica import paths
from spica.provenance import file_sha256
from spica.transfer.settings import TransferSettings, load_config

SURVEY_EXPNUM = 751000   # RUNID 04AL01: the Deep survey (L01)
PI_EXPNUM = 760001       # RUNID 04AP07: a PI program
PI_RUNID = "04AP07"
STEM = "CFHTLS_D_r_141927+524056_T0002"


def require(*names: str) -> None:
    for name in names:
        if shutil.which(name) is None:
            pytest.skip(f"{name} not on PATH (bin/spica install: libcfitsio-bin, rsync)")


def noisy_image(seed: int, shape=(128, 96), *, sky=100.0, noise=5.0, stars=12) -> np.ndarray:
    """A float32 sky with Gaussian stars and noise."""
    rng = np.random.default_rng(seed)
    image = rng.normal(sky, noise, shape)
    y, x = np.mgrid[: shape[0], : shape[1]]
    for _ in range(stars):
        cx, cy, flux = rng.uniform(8, shape[1] - 8), rng.uniform(8, shape[0] - 8), rng.uniform(2e3, 5e4)
        image += flux / (2 * np.pi * 1.5**2) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * 1.5**2))
    return image.astype(np.float32)


def write_mef(path: Path, arrays: list[np.ndarray], **primary) -> None:
    header = fits.Header()
    for key, value in primary.items():
        header[key] = value
    fits.HDUList([fits.PrimaryHDU(header=header),
                  *(fits.ImageHDU(a, name=f"ccd{i:02d}") for i, a in enumerate(arrays))]).writeto(path)


def write_table(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    Table({"X_IMAGE": rng.uniform(0, 100, 50), "MAG_AUTO": rng.uniform(18, 24, 50)}).write(path)


def make_step1(results: Path, expnum: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    folder = paths.step1_path(results, expnum, "weight").parent
    folder.mkdir(parents=True, exist_ok=True)
    weight = [np.where(rng.random((128, 96)) < 0.02, 0, rng.normal(1.0, 0.01, (128, 96))).astype(np.float32)
              for _ in range(2)]
    write_mef(paths.step1_path(results, expnum, "weight"), weight)
    flags = [np.where(rng.random((128, 96)) < 0.03, rng.choice([1, 2, 4], (128, 96)), 0).astype(np.uint8)
             for _ in range(2)]
    write_mef(paths.step1_path(results, expnum, "flag"), flags)
    write_table(paths.step1_path(results, expnum, "ldac"), seed)
    write_table(paths.step1_path(results, expnum, "diag"), seed + 1)
    paths.step1_path(results, expnum, "qa_xml").write_text(f"<QualityFITS expnum='{expnum}'/>\n")


def write_registry(url: str, rows: list[dict]) -> None:
    """(Re)write the registry's ``exposures`` table as build_registry does (its other tables kept)."""
    from spica.registry import conform, open_database, schema

    engine = open_database(url)
    with engine.begin() as connection:
        schema().drop_all(connection, tables=[schema().tables["exposures"]], checkfirst=True)
        schema().create_all(connection, tables=[schema().tables["exposures"]])
        conform(pd.DataFrame(rows), "exposures").to_sql("exposures", connection, if_exists="append", index=False)
    engine.dispose()


def make_release_product(results: Path, release: str, stem: str, seed: int, rel_date: str) -> None:
    heads = paths.product_path(results, release, stem, "heads")
    heads.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(noisy_image(seed, (160, 160)), header=fits.Header(
        [("RELEASE", release), ("REL_DATE", rel_date)])).writeto(paths.product_path(results, release, stem, "image"))
    fits.PrimaryHDU(np.full((160, 160), 2.5, np.float32)).writeto(paths.product_path(results, release, stem, "weight"))
    write_table(paths.product_path(results, release, stem, "ldac"), seed)
    for key in ("cmd", "xml", "summary", "scamp_xml", "scamp_accept"):
        paths.product_path(results, release, stem, key).write_text(f"{key} of {stem}\n")
    for key in ("stack_list", "astrometric_list"):
        paths.product_path(results, release, stem, key).write_text(f"{SURVEY_EXPNUM}p\n")
    (heads / f"{SURVEY_EXPNUM}p_head.txt").write_text("CRVAL1  = 214.86\nEND\n")


def write_grades(path: Path, rows: list[tuple[str, str, str]]) -> None:
    pd.DataFrame([{"product": p, "grade": g, "comment": "", "graded_by": by, "date": "2006-02-01"}
                  for p, g, by in rows]).to_csv(path, index=False)


def settings_for(root: Path, **transfer) -> TransferSettings:
    """The repository's configuration with every path moved under ``root``."""
    config = load_config()
    config["results"] = "results"
    config["inputs"] = {**config["inputs"], "exposures": "raw/exposures", "product_grades": "raw/product_grades.csv"}
    config["registry"] = {"url": "sqlite:///results/registry.sqlite"}
    config["transfer"] = {**config["transfer"], "incoming": "incoming", "settle_seconds": 0.3,
                          "outgoing": "outgoing", "pi_outgoing": "outgoing/pi", "destination": "archive",
                          **transfer}
    return TransferSettings.from_config(config, root=root)


def raw_checksums(folder: Path) -> dict[str, str]:
    return {p.name: file_sha256(p) for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def survey(tmp_path) -> dict:
    """Step 1 done for two exposures (one PI), T0002's D3 r stack graded A: ready to stage."""
    settings = settings_for(tmp_path)
    raw = settings.exposures
    raw.mkdir(parents=True)
    for expnum, seed in ((SURVEY_EXPNUM, 1), (PI_EXPNUM, 2)):
        write_mef(raw / paths.exposure_filename(expnum), [noisy_image(seed)], EXPNUM=expnum)
        (raw / paths.exposure_filename(expnum)).chmod(0o444)
        make_step1(settings.results, expnum, seed)
    raw.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP)
    write_registry(settings.registry_url, [
        {"expnum": SURVEY_EXPNUM, "file": "751000p.fits", "status": "ok", "runid": "04AL01",
         "rel_date": "2006-08-01T00:00:00"},
        {"expnum": PI_EXPNUM, "file": "760001p.fits", "status": "ok", "runid": PI_RUNID,
         "rel_date": "2005-03-01T00:00:00"},
        {"expnum": 751901, "file": "751901p.fits", "status": "quarantined", "reason": "nextend_mismatch"},
    ])
    make_release_product(settings.results, "T0002", STEM, 3, "2006-08-01T00:00:00")
    # a provisional grade never sends, nor does a C
    make_release_product(settings.results, "T0002", "CFHTLS_D_i_141927+524056_T0002", 4, "2006-08-01T00:00:00")
    write_grades(settings.product_grades, [(STEM, "A", "release control"),
                                           ("CFHTLS_D_i_141927+524056_T0002", "B", "")])
    yield {"settings": settings, "raw": raw, "raw_sums": raw_checksums(raw)}
    raw.chmod(0o755)  # let pytest clean up
