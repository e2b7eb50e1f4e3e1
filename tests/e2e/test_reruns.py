"""End to end, step 2 reruns: what a change of SWarp's or SCAMP's configuration
reruns in a finished release (dry-runs: nothing is changed)."""

from __future__ import annotations

import json
import os

import pytest

from tests.e2e.conftest import job_counts, snakemake, step1_product

pytestmark = [pytest.mark.e2e, pytest.mark.tools]


def test_rerun_after_step2_configuration_changes(release):
    """Changing SWarp's configuration reruns the stacks and what depends on them,
    not SCAMP or step 1; changing SCAMP's reruns calibration and everything after."""
    # the release is complete and its pending view caught up (the release phase)
    assert release["pending_after_release"] == set()
    override = release["workdir"] / "step2-change.yaml"
    # D3 r and i (one chi-squared tile) and the Very Wide image (its own)
    downstream = {"coadd_stack": 3, "make_chi2": 2, "extract_stack_catalogue": 3,
                  "make_dust_map": 3, "write_provenance": 3, "make_stack_thumbnails": 3,
                  "make_chi2_thumbnail": 2, "summarise_product": 3, "register_product_quality": 1,
                  "release_T0002": 1,
                  "assess_product_quality": 3, "measure_completeness": 3,
                  "measure_star_clustering": 3, "plot_colour_magnitude": 1, "mask_product": 3}
    # SCAMP once per astrometric list: D3 r and i share one, the Very Wide image has its own;
    # each of the three products then takes its files from its solution
    calibration = {"solve_astrometry": 2, "deliver_calibration": 3, "accept_calibration": 3,
                   "register_calibration": 1, "deliver_heads": 2, "deliver_image_heads": 1,
                   "deliver_image_ahead": 1}
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
