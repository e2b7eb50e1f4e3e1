"""End to end, step 2 reruns: what a change of SWarp's or SCAMP's configuration
reruns in a finished release (dry-runs: nothing is changed)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import job_counts, snakemake

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
                  "make_chi2_thumbnail": 2, "summarise_product": 3, "release_T0002": 1}
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
