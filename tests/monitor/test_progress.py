"""Job events -> products and their steps (spica.monitor.progress), on synthetic events."""

from __future__ import annotations

import pytest

from spica.monitor import STEPS, product_steps, products_of, progress

STACK = "CFHTLS_D_r_141927+524056_T0002"
OTHER = "CFHTLS_D_g_141927+524056_T0002"
IMAGE = "751042p_V0001"
SOLUTION = "CFHTLS_D_141927+524056_T0002_1a2b3c4d"


def ev(kind: str, rule: str, job_id: int, product: str = STACK, product_kind: str = "stack",
       **extra) -> dict:
    return {"kind": kind, "rule": rule, "job_id": job_id, "product": product,
            "product_kind": product_kind, "host": "node1", **extra}


def states(entry: dict) -> dict[str, str]:
    return {step["rule"]: step["state"] for step in entry["steps"]}


def test_products_from_wildcards_through_the_path_grammar():
    assert products_of({"release": "T0002", "stem": STACK}) == [("stack", STACK)]
    assert products_of({"release": "T0002", "stem": IMAGE}) == [("image", IMAGE)]
    assert products_of({"release": "T0002", "chi2": "CFHTLS_D_gri_141927+524056_T0002"}) == [
        ("chi2", "CFHTLS_D_gri_141927+524056_T0002")]
    assert products_of({"release": "T0002", "chi2": "751042p_r_V0001"}) == [("chi2", "751042p_r_V0001")]
    assert products_of({"expnum": "751000"}) == [("exposure", "751000p")]
    # a SCAMP solution belongs to every product of the plan sharing it, or to none
    plan = {SOLUTION: [STACK, OTHER], "751042p_V0001_00000000": [IMAGE]}
    assert products_of({"release": "T0002", "solution": SOLUTION}, plan) == [
        ("stack", OTHER), ("stack", STACK)]
    assert products_of({"release": "T0002", "solution": SOLUTION}) == []
    # jobs of no product, and values outside the grammar
    assert products_of({}) == []
    assert products_of({"release": "T0002"}) == []
    assert products_of({"calib": "13AM01.flat.r.36.00.fits"}) == []
    assert products_of({"stem": "../etc/passwd"}) == []
    assert products_of({"expnum": "75x"}) == []


def test_a_running_stack_with_earlier_steps_done_in_a_previous_run():
    """Only coadd_stack ran in this run: the steps it needs are done (their outputs
    were there), its siblings that need it only are pending."""
    entry = product_steps(STACK, "stack", [ev("job_started", "coadd_stack", 7)])
    got = states(entry)
    assert [s["rule"] for s in entry["steps"]] == [
        "solve_astrometry", "coadd_stack", "extract_stack_catalogue",
        "assess_product_quality", "summarise_product"]
    assert entry["current"] == "Running swarp"
    assert got == {"solve_astrometry": "done", "coadd_stack": "running",
                   "extract_stack_catalogue": "pending", "assess_product_quality": "pending",
                   "summarise_product": "pending"}


def test_parallel_steps_and_a_failure():
    events = [
        ev("job_started", "coadd_stack", 1), ev("job_finished", "coadd_stack", 1),
        ev("job_started", "assess_product_quality", 2),
        ev("job_started", "extract_stack_catalogue", 3), ev("job_failed", "extract_stack_catalogue", 3),
    ]
    entry = product_steps(STACK, "stack", events)
    got = states(entry)
    assert got["assess_product_quality"] == "running"
    assert got["extract_stack_catalogue"] == "failed"
    assert got["coadd_stack"] == "done" and got["summarise_product"] == "pending"
    assert entry["current"] == ("Running Qualityfits (completeness, masks, star correlation), "
                                "creating thumbnails and the dust map")
    # the summary reads the quality assessment and the calibration, not the catalogue
    summary = product_steps(STACK, "stack", [ev("job_started", "summarise_product", 4)])
    assert states(summary) == {"solve_astrometry": "done",
                               "coadd_stack": "done", "extract_stack_catalogue": "pending",
                               "assess_product_quality": "done", "summarise_product": "running"}
    assert summary["current"] == "Writing the product summary"


def test_a_retried_job_and_a_run_that_died():
    events = [ev("job_started", "coadd_stack", 1), ev("job_failed", "coadd_stack", 1)]
    assert states(product_steps(STACK, "stack", events))["coadd_stack"] == "failed"
    events += [ev("job_started", "coadd_stack", 1)]   # Snakemake's retry (retries:)
    assert states(product_steps(STACK, "stack", events))["coadd_stack"] == "running"
    died = product_steps(STACK, "stack", [ev("job_started", "assess_product_quality", 5)], run_active=False)
    assert states(died)["assess_product_quality"] == "failed" and died["current"] is None


def test_exposure_steps_and_unknown_rules():
    exposure = [ev("job_started", "check_exposure", 1, "751000p", "exposure"),
                ev("job_finished", "check_exposure", 1, "751000p", "exposure"),
                ev("job_started", "reduce_exposure", 2, "751000p", "exposure")]
    entry = product_steps("751000p", "exposure", exposure)
    assert [(s["rule"], s["state"]) for s in entry["steps"]] == [
        ("check_exposure", "done"), ("reduce_exposure", "running")]
    assert entry["current"] == "Weight and flag maps, SExtractor, PSFEx, QualityFITS-in"
    # a rule the steps do not know is appended under its own name
    more = exposure + [ev("job_started", "fix_header", 4, "751000p", "exposure")]
    rules = [s["rule"] for s in product_steps("751000p", "exposure", more)["steps"]]
    assert rules == ["check_exposure", "reduce_exposure", "fix_header"]
    # so is a rule of an older workflow, recorded in the database before the rules were merged
    old = product_steps(STACK, "stack", [ev("job_started", "make_dust_map", 1)])
    assert old["steps"][-1] == {"label": "Make dust map", "rule": "make_dust_map", "state": "running"}
    assert states(old)["coadd_stack"] == "pending"


def test_image_by_image_products_have_their_head_steps():
    entry = product_steps(IMAGE, "image", [ev("job_started", "deliver_image_ahead", 1, IMAGE, "image")])
    got = states(entry)
    assert [s["rule"] for s in entry["steps"]] == [
        "solve_astrometry", "coadd_image", "deliver_image_ahead",
        "extract_stack_catalogue", "assess_product_quality", "summarise_product"]
    assert got["coadd_image"] == got["solve_astrometry"] == "done"
    assert got["extract_stack_catalogue"] == "pending"
    assert entry["current"] == "Writing the image's .ahead header"


def test_progress_groups_a_runs_events_by_product():
    events = [
        {"kind": "run_started", "rule": None, "job_id": None, "product": None, "host": "node1"},
        ev("job_started", "solve_astrometry", 3), ev("job_started", "solve_astrometry", 3, OTHER),
        ev("job_started", "make_chi2", 4, "CFHTLS_D_gr_141927+524056_T0002", "chi2"),
        ev("job_finished", "make_chi2", 4, "CFHTLS_D_gr_141927+524056_T0002", "chi2"),
        ev("job_submitted", "solve_astrometry", 3, slurm_job_id="4242"),
        {"kind": "job_started", "rule": "plan_release", "job_id": 9, "product": None, "host": "node1"},
    ]
    entries = progress(events)
    assert [e["product"] for e in entries] == [STACK, OTHER, "CFHTLS_D_gr_141927+524056_T0002"]
    assert [e["running"] for e in entries] == [True, True, False]
    assert entries[0]["current"] == entries[1]["current"] == "Scamp running"
    assert entries[0]["host"] == "node1, SLURM job 4242" and entries[1]["host"] == "node1"
    assert [(s["rule"], s["state"]) for s in entries[2]["steps"]] == [
        ("make_chi2", "done"), ("make_chi2_thumbnail", "pending")]


def test_the_slurm_id_shown_is_the_running_jobs():
    events = [ev("job_started", "coadd_stack", 1), ev("job_submitted", "coadd_stack", 1, slurm_job_id="10"),
              ev("job_finished", "coadd_stack", 1), ev("job_started", "extract_stack_catalogue", 2)]
    host = lambda rows: progress(rows)[0]["host"]  # noqa: E731
    assert host(events[:2]) == "node1, SLURM job 10"
    assert host(events) == "node1"   # extract_stack_catalogue not submitted yet: not coadd_stack's id
    events += [ev("job_submitted", "extract_stack_catalogue", 2, slurm_job_id="11"),
               ev("job_started", "assess_product_quality", 3),
               ev("job_submitted", "assess_product_quality", 3, slurm_job_id="12")]
    assert host(events) == "node1, SLURM job 11, 12"
    events += [ev("job_finished", "extract_stack_catalogue", 2),
               ev("job_finished", "assess_product_quality", 3)]
    assert host(events) == "node1, SLURM job 12"   # after the run: the latest


@pytest.mark.parametrize("kind", sorted(STEPS))
def test_every_step_is_a_rule_of_the_workflow(kind):
    """Step names are the rules' real names (rules/*.smk) and their requirements are steps."""
    from tests.conftest import REPO

    text = "\n".join(p.read_text() for p in (REPO / "rules").glob("*.smk"))
    names = {s.rule for s in STEPS[kind]}
    for step in STEPS[kind]:
        assert f"rule {step.rule}:" in text or f" as {step.rule} " in text, step.rule
        assert set(step.requires) <= names, step.rule
