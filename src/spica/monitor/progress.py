"""From job events to the steps of each product (the in-progress view, seed 3.2.1).

A *product* is what the operation interface lists: an exposure of step 1
(``751000p``), a release product (``CFHTLS_D_r_141927+524056_T0002`` or the
image-by-image ``751042p_V0001``) or a chi-squared tile
(``CFHTLS_D_gri_141927+524056_T0002``). Which one a job works on is read from
its wildcards through the path grammar (:mod:`spica.paths`): ``stem``,
``chi2``, ``expnum``; a SCAMP solution (wildcard ``solution``) belongs to every
product of the release plan that shares it (:func:`products_of`).

Each kind of product has an ordered list of steps (:data:`STEPS`), the rules
that make it, labelled in the words of the seed's in-progress screen
("Scamp running", "Running swarp", "Running Qualityfits"...). A step's state in
a run (:func:`product_steps`) comes from the events of its jobs; a step with
no job in the run is ``done`` when a step that needs it has started (its output
was already there), ``pending`` otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from spica import paths

__all__ = [
    "Step",
    "STEPS",
    "STATES",
    "products_of",
    "product_steps",
    "progress",
]

#: The states a step can be in.
STATES = ("done", "running", "pending", "failed")


@dataclass(frozen=True)
class Step:
    """One step of a product: the rule that runs it and its label.

    Attributes
    ----------
    rule
        The Snakemake rule.
    label
        What the in-progress view shows (the seed's wording where it has one).
    requires
        Rules of the same product whose outputs this rule reads: when it has
        started they are done, even when they ran in an earlier run.
    """

    rule: str
    label: str
    requires: tuple[str, ...] = ()


def _release_steps(coadd: str, after: tuple[Step, ...] = ()) -> tuple[Step, ...]:
    """Steps of a release product whose stack job (calibration files, then SWarp) is ``coadd``."""
    return (
        Step("solve_astrometry", "Scamp running"),
        # the job copies the solution, checks it and the heads (Copy header to swarp), then SWarp
        Step(coadd, "Running swarp", ("solve_astrometry",)),
        *after,
        Step("extract_stack_catalogue", "Running sextractor on stack image, writing the provenance",
             (coadd,)),
        Step("assess_product_quality", "Running Qualityfits (completeness, masks, star correlation), "
             "creating thumbnails and the dust map", (coadd,)),
        Step("summarise_product", "Writing the product summary", ("assess_product_quality", coadd)),
    )


#: Ordered steps of each kind of product (the kinds :func:`products_of` gives).
STEPS: dict[str, tuple[Step, ...]] = {
    "exposure": (
        Step("check_exposure", "Checking the exposure (integrity), its .ahead header"),
        Step("reduce_exposure", "Weight and flag maps, SExtractor, PSFEx, QualityFITS-in", ("check_exposure",)),
    ),
    "stack": _release_steps("coadd_stack"),
    "image": _release_steps("coadd_image", (
        Step("deliver_image_ahead", "Writing the image's .ahead header", ("coadd_image",)),
    )),
    "chi2": (
        Step("make_chi2", "Running swarp (chi-squared image)"),
        Step("make_chi2_thumbnail", "Creating the chi-squared thumbnail", ("make_chi2",)),
    ),
}


def _stem_kind(stem: str) -> str:
    return "image" if re.fullmatch(paths.IMAGE_STEM_RE, stem) else "stack"


def products_of(wildcards: Mapping[str, object],
                solutions: Mapping[str, Iterable[str]] | None = None) -> list[tuple[str, str]]:
    """Products a job works on, from its wildcards (Snakemake's names).

    Parameters
    ----------
    wildcards
        The job's wildcards: ``stem`` (a release product), ``chi2`` (a tile),
        ``expnum`` (a step-1 exposure), ``solution`` (a SCAMP solution).
    solutions
        The release plan's solutions, id -> product stems
        (:meth:`spica.release.planning.Plan.solutions`). A ``solution`` job
        belongs to every product that shares it; without this mapping (the
        plan could not be read) it belongs to none.

    Returns
    -------
    list of (str, str)
        ``(kind, name)`` per product, kind a key of :data:`STEPS`; empty for
        jobs of no product (``plan_release``, ``build_registry``,
        ``stage_calibration``...) or with values outside the path grammar.
    """
    stem = str(wildcards.get("stem", ""))
    if stem and re.fullmatch(paths.WILDCARD_CONSTRAINTS["stem"], stem):
        return [(_stem_kind(stem), stem)]
    chi2 = str(wildcards.get("chi2", ""))
    if chi2 and re.fullmatch(paths.WILDCARD_CONSTRAINTS["chi2"], chi2):
        return [("chi2", chi2)]
    solution = str(wildcards.get("solution", ""))
    if solution and re.fullmatch(paths.SOLUTION_RE, solution):
        stems = sorted(str(s) for s in (solutions or {}).get(solution, ()))
        return [(_stem_kind(s), s) for s in stems if re.fullmatch(paths.WILDCARD_CONSTRAINTS["stem"], s)]
    expnum = str(wildcards.get("expnum", ""))
    if expnum and re.fullmatch(paths.WILDCARD_CONSTRAINTS["expnum"], expnum):
        return [("exposure", paths.exposure_name(expnum))]
    return []


def _rule_states(events: Iterable[Mapping[str, object]]) -> dict[str, str]:
    """Rule -> state of its job, from one product's job events of one run.

    A product has one job per rule in a run; Snakemake's retry of a failed job
    (``retries:``) starts it again: the latest event decides.
    """
    states: dict[str, str] = {}
    for event in events:
        kind, rule = event["kind"], event.get("rule")
        if not rule:
            continue
        if kind == "job_started" or (kind == "job_submitted" and str(rule) not in states):
            states[str(rule)] = "running"
        elif kind == "job_finished":
            states[str(rule)] = "done"
        elif kind == "job_failed":
            states[str(rule)] = "failed"
    return states


def product_steps(product: str, kind: str, events: Iterable[Mapping[str, object]], *,
                  run_active: bool = True) -> dict[str, object]:
    """Steps of one product in one run, and the current one.

    Parameters
    ----------
    product
        The product's name.
    kind
        Its kind, a key of :data:`STEPS` (another kind lists only the rules seen).
    events
        Its job events in the run (mappings with ``kind``, ``rule``,
        ``job_id``), in time order.
    run_active
        False once the run has ended: a job still marked running then never
        finished (Snakemake was killed) and is shown ``failed``.

    Returns
    -------
    dict
        ``{"product", "steps": [{"label", "rule", "state"}], "current"}``:
        ``current`` is the label of the first running step, None when none runs.
    """
    observed = _rule_states(events)
    if not run_active:
        observed = {r: ("failed" if s == "running" else s) for r, s in observed.items()}
    declared = STEPS.get(kind, ())
    requires = {s.rule: s.requires for s in declared}
    needed: set[str] = set()
    todo = list(observed)
    while todo:
        for dep in requires.get(todo.pop(), ()):
            if dep not in needed:
                needed.add(dep)
                todo.append(dep)
    steps = list(declared)
    known = {s.rule for s in declared}
    steps += [Step(rule, rule.replace("_", " ").capitalize()) for rule in observed if rule not in known]
    rows = []
    for step in steps:
        state = observed.get(step.rule) or ("done" if step.rule in needed else "pending")
        rows.append({"label": step.label, "rule": step.rule, "state": state})
    current = next((row["label"] for row in rows if row["state"] == "running"), None)
    return {"product": product, "steps": rows, "current": current}


def _host(host: str, jobs: Mapping[object, str | None]) -> str:
    """The Snakemake host, then the SLURM ids of the running jobs (or the latest one)."""
    running = {k: v for k, v in jobs.items() if k is not None}
    if running:  # a job not submitted yet has no id (not its predecessor's)
        ids = sorted({v for v in running.values() if v})
    else:
        ids = [jobs[None]] if jobs.get(None) else []
    return host + (f", SLURM job {', '.join(ids)}" if ids else "")


def progress(events: Iterable[Mapping[str, object]], *, run_active: bool = True) -> list[dict]:
    """Steps of every product of one run (:func:`product_steps`), in order of first event.

    Parameters
    ----------
    events
        The run's event rows (``kind``, ``rule``, ``job_id``, ``product``,
        ``product_kind``, ``host``), in time order; rows without a product are skipped.
    run_active
        Whether the run is still going (see :func:`product_steps`).

    Returns
    -------
    list of dict
        ``{"product", "host", "steps", "current", "running"}`` per product:
        ``host`` is the host of the Snakemake process, followed by
        ``, SLURM job <id>`` when its jobs went through SLURM (the running
        jobs' ids, or the latest one); ``running`` tells whether one of its jobs runs now.
    """
    by_product: dict[str, list[Mapping[str, object]]] = {}
    hosts: dict[str, str] = {}
    kinds: dict[str, str] = {}
    slurm: dict[str, dict] = {}   # product -> running job id -> SLURM id (None: the latest)
    for event in events:
        product = event.get("product")
        if not product:
            continue
        by_product.setdefault(str(product), []).append(event)
        kinds.setdefault(str(product), str(event.get("product_kind") or ""))
        if event.get("host"):
            hosts[str(product)] = str(event["host"])
        jobs = slurm.setdefault(str(product), {})
        if event["kind"] in ("job_started", "job_submitted"):
            if event.get("slurm_job_id") or event.get("job_id") not in jobs:
                jobs[event.get("job_id")] = event.get("slurm_job_id")
                jobs[None] = event.get("slurm_job_id") or jobs.get(None)   # the latest
        elif event["kind"] in ("job_finished", "job_failed"):
            jobs.pop(event.get("job_id"), None)
    out = []
    for product, rows in by_product.items():
        entry = product_steps(product, kinds[product], rows, run_active=run_active)
        out.append({
            "product": product,
            "host": _host(hosts.get(product, ""), slurm[product]),
            "steps": entry["steps"],
            "current": entry["current"],
            "running": entry["current"] is not None,
        })
    return out
