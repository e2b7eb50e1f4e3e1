"""End to end, step 2 reruns: what a change of SWarp's or SCAMP's configuration
reruns in a finished release (dry-runs: nothing is changed)."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import Counter

import pytest

from tests.conftest import REPO
from tests.e2e.conftest import accepted_exposures, job_counts, snakemake, step1_product

pytestmark = [pytest.mark.e2e, pytest.mark.tools]


def test_rerun_after_step2_configuration_changes(release):
    """Changing SWarp's configuration reruns the stack jobs (which also deliver the
    products' SCAMP files) and what depends on them, not SCAMP or step 1; changing
    SCAMP's reruns the solutions and everything after."""
    # the release is complete and its pending view caught up (the release phase)
    assert release["pending_after_release"] == set()
    override = release["workdir"] / "step2-change.yaml"
    # D3 r and i (one chi-squared tile) and the Very Wide image (its own)
    # per product: the stack job (its calibration files from the solution, then SWarp), its
    # catalogue (with the provenance), its QualityFITS-out (with the thumbnails and dust map),
    # its summary; per tile the chi-squared image and its figure. The stack job rewrites the
    # product's SCAMP files, so the registry's copy of them and the image's .ahead follow
    downstream = {"coadd_stack": 2, "coadd_image": 1, "make_chi2": 2, "make_chi2_thumbnail": 2,
                  "extract_stack_catalogue": 3, "assess_product_quality": 3, "summarise_product": 3,
                  "register_product_quality": 1, "release_T0002": 1, "plot_tile_colours_2": 1,
                  "register_calibration": 1, "deliver_image_ahead": 1}
    # SCAMP once per astrometric list: D3 r and i share one, the Very Wide image has its own
    calibration = {"solve_astrometry": 2}
    override.write_text("coaddition:\n  swarp_overrides: {SUBTRACT_BACK: N}\n")
    changed = snakemake(release["workdir"], "-n", "release_T0002", overrides=override)
    assert job_counts(changed.stdout + changed.stderr) == downstream
    override.write_text("calibration:\n  scamp_overrides: {ASTRCLIP_NSIGMA: 3.5}\n")
    changed = snakemake(release["workdir"], "-n", "release_T0002", overrides=override)
    assert job_counts(changed.stdout + changed.stderr) == {**calibration, **downstream}


def test_a_remade_catalogue_reruns_its_scamp_solution(release):
    """The catalogues and ``.ahead`` files of an astrometric list are not inputs of
    ``solve_astrometry`` (issue 10, section 5: 267,000 of them at survey scale) but
    the digest param ``step1_state``: a remade catalogue of a D3 exposure reruns the
    D3 solution (shared by r and i) and not the Very Wide image's."""
    workdir = release["workdir"]
    lists = json.loads((workdir / "results" / "releases" / "T0002" / "T0002_lists.json").read_text())
    solutions = lists["solutions"]
    d3 = next(s for s, stems in solutions.items() if any("_D_" in stem for stem in stems))
    expnum = sorted(lists["astrometric_lists"][solutions[d3][0].removesuffix("_T0002")])[0]
    ldac = step1_product(release, expnum, "ldac")
    before = ldac.stat()
    try:
        # remade with the same bytes, as a rerun of reduce_exposure would: only the
        # modification time changes (an input's mtime would rerun SCAMP too)
        os.utime(ldac, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
        changed = snakemake(workdir, "-n", "release_T0002")
        counts = job_counts(changed.stdout + changed.stderr)
        assert counts.get("solve_astrometry") == 1, counts
        assert f"solution={d3}" in changed.stdout + changed.stderr
    finally:
        os.utime(ldac, ns=(before.st_atime_ns, before.st_mtime_ns))
    # the catalogue's date back: the digest is the recorded one again, nothing reruns
    after = snakemake(workdir, "-n", "release_T0002")
    assert after.returncode == 0 and "solve_astrometry" not in after.stdout + after.stderr


def _release_jobs_without(release, deleted: list, tmp_path) -> dict[str, int]:
    """Jobs per rule of a release dry-run with the files ``deleted`` gone; they are put
    back afterwards (hard links kept in ``tmp_path``, dates included)."""
    kept = {path: (tmp_path / path.name, path.stat()) for path in deleted}
    for path, (copy, _) in kept.items():
        os.link(path, copy)
        path.unlink()
    try:
        run = snakemake(release["workdir"], "-n", "release_T0002")
        assert run.returncode == 0, run.stderr[-3000:]
        return job_counts(run.stdout + run.stderr)
    finally:
        for path, (copy, stat) in kept.items():
            os.link(copy, path)
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_a_deleted_product_file_is_made_again(release, tmp_path):
    """``release_T0002`` names per product only what nothing else reads (its catalogue)
    plus the delivery files missing on disk (issue 10, section 5): a QualityFITS-out plot
    and a SCAMP-delivery file deleted by hand rerun exactly the jobs that make them, and
    what reads their other outputs. (Dry-runs; the files are put back, dates included.)"""
    results = release["workdir"] / "results"
    stem = "CFHTLS_D_r_141927+524056_T0002"
    deleted = [results / "releases" / "T0002" / stem / f"{stem}{suffix}" for suffix in ("_psf_m.png", "_astrom.list")]
    counts = _release_jobs_without(release, deleted, tmp_path)
    # the r stack's SWarp job (it writes the lists), then everything of the r stack
    # after it, the tile's chi-squared image (r and i) and what reads it: the i
    # catalogue; the Very Wide image is untouched
    assert counts == {"coadd_stack": 1, "make_chi2": 1, "make_chi2_thumbnail": 1,
                      "extract_stack_catalogue": 2, "assess_product_quality": 1, "summarise_product": 1,
                      "plot_tile_colours_2": 1, "register_calibration": 1, "register_product_quality": 1,
                      "release_T0002": 1}, counts
    after = snakemake(release["workdir"], "-n", "release_T0002")
    assert "Nothing to be done" in after.stdout + after.stderr


#: Step 1's rules: a release run whose registry seal holds lists none of them.
STEP1_RULES = {"check_exposure", "make_inventory", "stage_calibration", "reduce_exposure",
               "build_registry"}


def _dag_rules(run) -> Counter:
    """Jobs per rule in the DAG Snakemake builds (``--dag``: every job, done or not)."""
    assert run.returncode == 0, run.stderr[-2000:]
    return Counter(re.findall(r'label = "([a-z_0-9]+)', run.stdout))


def test_a_deleted_tile_figure_or_summary_input_is_made_again(release, tmp_path):
    """Per tile ``release_T0002`` names the first file of each figure job, and per product
    the files its summary reads only when missing (``SUMMARY_FILES``): the tile's
    chi-squared PostScript, its colour-magnitude PostScript and the Very Wide image's
    completeness table, deleted by hand, rerun exactly the jobs that make them and what
    reads their outputs. (Dry-runs; the files are put back, dates included.)"""
    releases = release["workdir"] / "results" / "releases" / "T0002"
    tile, image = "CFHTLS_D_ri_141927+524056_T0002", "751042p_V0001"
    deleted = [releases / tile / f"{tile}_chi2.ps", releases / tile / f"{tile}_diagcm.ps",
               releases / image / f"{image}_comptness.fits"]
    counts = _release_jobs_without(release, deleted, tmp_path)
    assert counts == {"make_chi2_thumbnail": 1, "plot_tile_colours_2": 1, "assess_product_quality": 1,
                      "summarise_product": 1, "register_product_quality": 1, "release_T0002": 1}, counts


def test_a_release_run_takes_the_sealed_registry_as_it_is(release):
    """Issue 10, section 5: the registry closes step 1 and seals it (spica.seal). A
    run of release targets only, with nothing the seal records changed, builds no step 1
    job (at survey scale ~21,000 of them); one that asks for step 1 too, or after a
    step 1 file changed, lists step 1 as before."""
    workdir = release["workdir"]
    seal = json.loads((workdir / "results" / "registry" / "step1_seal.json").read_text())
    accepted = len(accepted_exposures(release))
    assert seal["files"] >= 11 * accepted  # every accepted exposure's 11 step 1 files
    sealed = snakemake(workdir, "--dag=dot", "release_T0002")
    rules = _dag_rules(sealed)
    assert "step 1 is sealed by the registry" in sealed.stderr
    assert not STEP1_RULES & set(rules), rules
    assert rules["plan_release"] == 1 and rules["coadd_stack"] + rules["coadd_image"] == 3 and rules["solve_astrometry"] == 2
    # step 1 asked for too: the whole DAG, one reduce_exposure job per accepted exposure
    both = _dag_rules(snakemake(workdir, "--dag=dot", "qualityfits_in", "release_T0002"))
    assert both["reduce_exposure"] == accepted and both["build_registry"] == 1
    assert {key: n for key, n in both.items() if key not in STEP1_RULES | {"qualityfits_in"}} == rules
    # a remade catalogue breaks the seal: step 1 is listed again
    expnum = int(accepted_exposures(release)["expnum"].iloc[0])
    ldac = step1_product(release, expnum, "ldac")
    before = ldac.stat()
    try:
        os.utime(ldac, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
        broken = snakemake(workdir, "--dag=dot", "release_T0002")
        assert "step 1 is listed again: step 1's inputs or products changed" in broken.stderr
        assert _dag_rules(broken)["reduce_exposure"] == accepted
    finally:
        os.utime(ldac, ns=(before.st_atime_ns, before.st_mtime_ns))
    again = snakemake(workdir, "-n", "release_T0002")  # a dry-run logs to stdout
    assert "step 1 is sealed" in again.stdout + again.stderr


def test_a_configuration_file_reruns_the_jobs_that_read_it(release, tmp_path):
    """The AstrOmatic configuration files reach their rules as a param of checksums
    (``astromatic_configs``), not as inputs (issue 10, section 5): the workflow copied
    to another folder reruns nothing, a touched file reruns nothing, and an edited
    ``release.sex`` reruns the jobs that read it (each product's catalogue and
    QualityFITS-out) and what follows them, nothing upstream."""
    workflow = tmp_path / "workflow"
    workflow.mkdir()
    for name in ("Snakefile", "rules", "scripts", "config", "envs", "report"):
        source = REPO / name
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, workflow / name)
    snakefile, workdir = workflow / "Snakefile", release["workdir"]

    def dry_run():
        run = snakemake(workdir, "-n", "release_T0002", snakefile=snakefile)
        assert run.returncode == 0, run.stderr[-2000:]
        return run.stdout + run.stderr

    assert "Nothing to be done" in dry_run()  # a moved checkout
    scamp = workflow / "config" / "astromatic" / "scamp.scamp"
    os.utime(scamp, (scamp.stat().st_atime + 3600, scamp.stat().st_mtime + 3600))
    assert "Nothing to be done" in dry_run()  # touched, not edited
    sex = workflow / "config" / "astromatic" / "release.sex"
    sex.write_text(sex.read_text() + "\n# edited by a test\n")
    edited = dry_run()
    # 3 products (D3 r and i, the Very Wide image): catalogue and QualityFITS-out each, their
    # summaries and the registry table; the D3 ri tile's colour diagrams read the catalogues
    assert job_counts(edited) == {"extract_stack_catalogue": 3, "assess_product_quality": 3,
                                  "summarise_product": 3, "register_product_quality": 1,
                                  "plot_tile_colours_2": 1, "release_T0002": 1}
    assert "params have changed since last execution" in edited
