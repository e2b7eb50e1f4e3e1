"""Product grades and the automatic image mode, on the e2e release (fixture ``release``).

* A stack made bad on purpose: two D3 r exposures co-added by spica's SWarp wrapper
  with their SCAMP heads, once as they are and twice with 751008's head moved north
  (0.7": about one FWHM, every star blurred; 3": every star doubled); QualityFITS-out
  measures each and :func:`spica.qualityfits_out.grading.provisional_product_grade`
  grades it with config.yaml's limits.
* A team grade in ``inputs.product_grades`` reruns that product's summary only.
* ``images_V0001`` plans one image product per exposure that passed step 1 (six in
  the small survey, whatever their RunID) with their QualityFITS-out jobs.

The last two work on a copy of the run (``copied``) so that the phases' work
directory is never changed.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from spica import paths
from spica.astromatic import sextractor
from spica.coaddition.grid import stack_grid
from spica.coaddition.stack import coadd_stack
from spica.qualityfits_out.assess import assess_completeness, assess_product
from spica.qualityfits_out.figures import read_figures
from spica.qualityfits_out.grading import (
    grading_figures,
    provisional_product_grade,
    read_multiple_image_fraction,
)
from spica.qualityfits_out.options import psfex_options, sextractor_options
from spica.tools import resolve_tools
from tests.conftest import REPO
from tests.e2e.conftest import D3, job_counts, snakemake

pytestmark = [pytest.mark.e2e, pytest.mark.tools,
              pytest.mark.filterwarnings("ignore::astropy.wcs.FITSFixedWarning")]

ASTROMATIC = REPO / "config" / "astromatic"
EXPOSURES = (751000, 751008)  # two exposures of the D3 r stack
SHIFTED = 751008
D3_CENTRE = (214.8625, 52.6822222222)


def _stack(release: dict, work: Path, shift_arcsec: float) -> tuple[str, str, dict]:
    """Co-add the two exposures (751008's SCAMP head moved north by ``shift_arcsec``),
    run QualityFITS-out and the completeness on the stack, grade it."""
    workdir, config = release["workdir"], release["config"]
    results = workdir / config["results"]
    tools = resolve_tools(config["tools"])
    scamp = paths.scamp_folder(results, "T0002", D3["r"])
    work.mkdir()
    heads = []
    for expnum in EXPOSURES:
        text = (scamp / f"{paths.exposure_name(expnum)}{paths.SCAMP_HEAD_SUFFIX}").read_text()
        if expnum == SHIFTED:
            text = re.sub(r"^CRVAL2  = *([-+0-9.Ee]+)",
                          lambda m: f"CRVAL2  = {float(m[1]) + shift_arcsec / 3600:20.12f}", text,
                          flags=re.MULTILINE)
        heads.append(work / f"{expnum}.head")
        heads[-1].write_text(text)
    registry = pd.read_csv(results / "registry" / "exposures.csv", dtype={"expnum": "Int64"})
    inputs = registry.dropna(subset=["expnum"]).set_index("expnum").loc[list(EXPOSURES)].reset_index()
    stem = work / "stack"
    image, weight = f"{stem}.fits", f"{stem}_weight.fits"
    coadd_stack(tools["swarp"].path, ASTROMATIC / "stack.swarp",
                exposures=[workdir / config["inputs"]["exposures"] / paths.exposure_filename(e)
                           for e in EXPOSURES],
                weights=[paths.step1_path(results, e, "weight") for e in EXPOSURES], heads=heads,
                out_image=image, out_weight=weight, xml_out=f"{stem}_swarp.xml",
                grid=stack_grid(*D3_CENTRE, size_deg=config["survey"]["tile_size_deg"],
                                pixel_scale_arcsec=config["survey"]["pixel_scale"]),
                inputs=inputs, release="T0002", software={})
    settings = config["qualityfits_out"]
    outputs = {key: f"{stem}{suffix}" for key, suffix in {
        **paths.QUALITYFITS_OUT_PRODUCTS, **paths.COMPLETENESS_PRODUCTS,
        **paths.QUALITYFITS_OUT_INTERMEDIATES}.items()}
    filters = {"conv": ASTROMATIC / "gauss_3.0_5x5.conv", "nnw": ASTROMATIC / "default.nnw"}
    assess_product(image=image, weight=weight,
                   binaries={"sextractor": tools["sextractor"].path, "psfex": tools["psfex"].path},
                   configs={"sex": ASTROMATIC / "qualityfits_out.sex",
                            "param": ASTROMATIC / "qualityfits_out.param",
                            "psfex": ASTROMATIC / "qualityfits_out.psfex", **filters},
                   sextractor_options=sextractor_options(settings), psfex_options=psfex_options(settings),
                   psf_map_step_arcmin=settings["psf_map_step_arcmin"], min_snr=settings["min_snr"],
                   outputs=outputs)
    options = {"PHOT_APERTURES": sextractor.aperture_pixels(config["catalogues"]["phot_apertures_arcsec"],
                                                            pixel_scale=config["survey"]["pixel_scale"]),
               "BACK_SIZE": config["catalogues"]["back_size"], **config["catalogues"]["overrides"]}
    completeness = assess_completeness(
        image=image, weight=weight, psf=outputs["protopsf"], binary=tools["sextractor"].path,
        configs={"sex": ASTROMATIC / "release.sex", "param": ASTROMATIC / "release.param", **filters},
        options=options, settings=settings["completeness"], pixel_scale=config["survey"]["pixel_scale"],
        outputs=outputs)
    quality = {**read_figures(outputs["diag"]),
               "multiple_image_fraction": read_multiple_image_fraction(outputs["diag"])}
    figures = grading_figures(quality, completeness, inputs["qa_fwhm_arcsec"], [])
    return (*provisional_product_grade(figures, settings["grading"]), figures)


def test_the_provisional_grade_catches_a_misregistered_input(release, tmp_path, capsys):
    measured = {shift: _stack(release, tmp_path / f"shift{shift:g}", shift) for shift in (0.0, 0.7, 3.0)}
    with capsys.disabled():  # the grades measured, for the record
        for shift, (grade, reason, figures) in measured.items():
            shown = {k: round(float(figures[k]), 3) for k in (
                "psf_fwhm_arcsec", "predicted_seeing_arcsec", "elongation", "multiple_image_fraction",
                "completeness_50_mag")}
            print(f"\nshift {shift:g}\": {grade} ({reason}) {shown}")
    (good, _, good_figures), blurred, doubled = measured[0.0], measured[0.7], measured[3.0]
    assert good in ("A", "B"), measured[0.0]
    assert good_figures["psf_fwhm_arcsec"] < 1.15 * good_figures["predicted_seeing_arcsec"]
    # about one FWHM off: the PSF is far wider than the inputs' seeing predicts, and elongated
    assert blurred[0] == "C", blurred
    assert "C: fwhm: " in blurred[1] and "C: elongation: " in blurred[1]
    assert blurred[2]["psf_fwhm_arcsec"] > 1.25 * blurred[2]["predicted_seeing_arcsec"]
    # several FWHM off: the stars have a twin at the shift
    assert doubled[0] == "C", doubled
    assert "C: multiple_images: " in doubled[1]
    assert doubled[2]["multiple_image_fraction"] > 0.2 > 10 * good_figures["multiple_image_fraction"]


@pytest.fixture(scope="module")
def copied(release, tmp_path_factory) -> Path:
    """A copy of the e2e run with the automatic image mode planned (plan_images alone: the
    copy's step 1 and registry are taken as they are, ``--rerun-triggers mtime``)."""
    copy = tmp_path_factory.mktemp("image-mode") / "run"
    shutil.copytree(release["workdir"], copy, symlinks=True,
                    ignore=shutil.ignore_patterns("e2e-before-regrade", "locks"))
    version = release["config"]["image_mode"]["version"]
    plan = paths.release_path(release["config"]["results"], version, "plan")
    run = snakemake(copy, str(plan), "--rerun-triggers", "mtime")
    assert run.returncode == 0, run.stderr[-3000:]
    return copy


def _jobs(dry_run: str) -> dict[str, str]:
    """The jobs a dry-run lists, ``<rule> <stem>`` (or the rule alone) -> its text."""
    jobs = {}
    for job in re.split(r"\n(?=rule \w+:|checkpoint \w+:|localrule \w+:)", dry_run):
        rule = re.match(r"(?:rule|checkpoint|localrule) (\w+):", job)
        if rule:
            stem = re.search(r"stem=(\S+)", job)
            jobs[f"{rule[1]} {stem[1]}" if stem else rule[1]] = job
    return jobs


def test_a_product_regrade_reruns_its_summary_only(release, copied):
    before = snakemake(copied, "-n", "release_T0002")
    if "Nothing to be done" not in before.stdout + before.stderr:
        # a reused work directory made by older code: take it as it is (--touch)
        assert snakemake(copied, "--touch", "release_T0002").returncode == 0
        before = snakemake(copied, "-n", "release_T0002")
    assert before.returncode == 0, before.stderr[-3000:]
    grades = copied / release["config"]["inputs"]["product_grades"]
    grades.parent.chmod(0o755)
    grades.write_text("product,grade,comment,graded_by,date\n"
                      f"{D3['r']},C,\"doubled stars: 751008 off by 3 arcsec\",YM,2006-02-01\n")
    after = snakemake(copied, "-n", "release_T0002")
    assert after.returncode == 0, after.stderr[-3000:]
    # the grade reaches the summary of that product as a param: of the product jobs, it
    # alone reruns (then the release-level tables that read every summary)
    added = set(_jobs(after.stdout)) - set(_jobs(before.stdout))
    assert {job for job in added if " " in job} == {f"summarise_product {D3['r']}"}
    assert "'grade': 'C'" in _jobs(after.stdout)[f"summarise_product {D3['r']}"]


def test_images_target_plans_every_exposure_that_passed_step1(release, copied):
    config = release["config"]
    version = config["image_mode"]["version"]
    plan = pd.read_csv(copied / paths.release_path(config["results"], version, "plan"))
    registry = pd.read_csv(copied / config["results"] / "registry" / "exposures.csv",
                           dtype={"expnum": "Int64"})
    passed = registry[(registry["status"] == "ok") & registry["grade"].isin(config["image_mode"]["grades"])]
    expected = {paths.image_by_image_name(e, version, suffix="") for e in passed["expnum"]}
    assert set(plan["name"]) == expected and len(expected) == 6  # D3 (r and i) and the Very Wide one
    assert set(plan["mode"]) == {"image"} and set(plan["n_scamp"]) == {1}  # SCAMP on the exposure alone
    dry = snakemake(copied, "-n", f"images_{version}")
    assert dry.returncode == 0, dry.stderr[-3000:]
    counts = job_counts(dry.stdout)
    for rule in ("solve_astrometry", "coadd_image", "extract_stack_catalogue",
                 "assess_product_quality", "summarise_product"):
        assert counts.get(rule) == 6, (rule, counts)
    # every QualityFITS-out file under the seed's names, in the version's folder
    for name in expected:
        for key in ("diag", "psf_m", "fwhm_histo", "comptness", "summary"):
            assert str(paths.product_path(config["results"], version, name, key)) in dry.stdout
