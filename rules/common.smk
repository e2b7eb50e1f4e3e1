# Shared definitions: path grammar, wildcard constraints, tools, input functions.
# The other rules files hold rules only: every function they call is here, and
# the logic behind these functions is in the library (spica.paths for the file
# names, spica.release.planning.Plan for what a release plans).
import functools
import hashlib
import json
import os
import re
from pathlib import Path

from snakemake.common import overwrite_function_params
from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.sourcecache import LocalSourceFile

from spica import __version__ as SPICA_VERSION
from spica import paths
from spica.astromatic import options as astromatic_options
from spica.astromatic import psfex, sextractor
from spica.astromatic.scamp import CHECKPLOTS
from spica.coaddition.grid import stack_grid
from spica.release.planning import missing_files, missing_product_files, read_plan
from spica.step1.inventory import discover_exposures, find_calibration_file, read_inventory
from spica.registry import empty_survey_message, read_metadata, read_product_grades, sqlite_file
from spica.seal import check_seal, sealed_files
from spica.seal import step1_static as seal_static
from spica.tools import resolve_tools, script_code_hash

RESULTS = config["results"]
ENVS = Path(workflow.basedir) / "envs"

#: The AstrOmatic configuration files, key -> file name (spica.astromatic.options).
ASTROMATIC_FILES = astromatic_options.CONFIG_FILES


def astromatic_file(key):
    """Path of an AstrOmatic configuration file of :data:`ASTROMATIC_FILES`."""
    return astromatic_options.config_file(key, workflow.basedir)


@functools.lru_cache(maxsize=None)
def _config_checksum(key):
    """SHA-1 of the configuration file ``key``, read once per run."""
    try:
        return astromatic_options.config_checksum(astromatic_file(key))
    except OSError as error:
        raise WorkflowError(f"SPICA: AstrOmatic configuration file {key!r} unreadable: {error}")


def astromatic_configs(*keys):
    """Param ``configs``: the AstrOmatic configuration files ``keys`` a job reads, as the
    SHA-1 of each one's content (the script finds them with
    :func:`spica.astromatic.options.config_paths`).

    A param rather than inputs: an edited file reruns the jobs that read it
    (Snakemake's params trigger), a touched one reruns nothing, and so does a moved
    checkout (no path in the param). As inputs, 4-8 of them per job were 42,000 file
    entries of a step 1 dry-run and 30,000 of a release dry-run at survey scale, each
    costing Snakemake's DAG time (issue 10, section 5).
    """
    return {key: _config_checksum(key) for key in keys}


wildcard_constraints:
    expnum=paths.WILDCARD_CONSTRAINTS["expnum"],
    release=paths.WILDCARD_CONSTRAINTS["release"],
    version=paths.WILDCARD_CONSTRAINTS["version"],
    survey=paths.WILDCARD_CONSTRAINTS["survey"],
    band=paths.WILDCARD_CONSTRAINTS["band"],
    bands=paths.WILDCARD_CONSTRAINTS["bands"],
    coords=paths.WILDCARD_CONSTRAINTS["coords"],
    calib=r"[^/]+\.fits",
    stem=paths.WILDCARD_CONSTRAINTS["stem"],
    chi2=paths.WILDCARD_CONSTRAINTS["chi2"],
    solution=paths.WILDCARD_CONSTRAINTS["solution"],


# ---------------------------------------------------------------- tools
TOOLS = resolve_tools(config["tools"])


def tool(name):
    """Path of a resolved tool; fails at job time (not parse time) if absent."""
    found = TOOLS.get(name)
    return found.path if found else f"missing-{name}-see-bin-spica-install"


def tool_version(name):
    """Version string of a tool: a param, so an upgrade reruns its products."""
    found = TOOLS.get(name)
    return found.version if found else "absent"


SCRIPTS = Path(workflow.basedir) / "scripts"


#: The scripts' code hashes kept between runs, with the versions of the files each was
#: computed from (spica.tools.script_code_hash), in Snakemake's folder of the working
#: directory: every Snakemake process of a run (the dry-run, each cluster job) reads them.
CODE_HASH_CACHE = os.path.join(".snakemake", "spica", "code_hashes.json")


@functools.lru_cache(maxsize=None)
def _script_hash(script):
    """Code hash of what ``scripts/<script>.py`` imports, once per workflow run."""
    return script_code_hash(SCRIPTS / f"{script}.py", cache=CODE_HASH_CACHE)


def software(script=None, tools=()):
    """Provenance param: package version, a hash of the ``spica`` code the rule's
    script imports (derived from the script itself) and the tool versions.

    A function of the job, evaluated (once per rule, cached) only for the rules the
    run lists: hashing all 25 scripts' imports at parse time cost every dry-run
    1.7-10 s of CPU (issue 10, section 5); the value is the same dict.
    """
    return _wildcards_only(functools.partial(_software_param, script, tuple(tools)))


def _software_param(script, tools, wildcards):
    """The :func:`software` param of a job of the rule running ``script``."""
    return dict(_software(script, tools))


@functools.lru_cache(maxsize=None)
def _software(script, tools):
    """The :func:`software` param of a rule (one dict per rule, shared by its jobs)."""
    return {
        "spica": SPICA_VERSION,
        "code": _script_hash(script) if script else "",
        **{name: tool_version(name) for name in tools},
    }


# ---------------------------------------------------------------- exposures
INCOMING = discover_exposures(config["inputs"]["exposures"])
if not INCOMING.files:
    logger.warning(
        f"SPICA: no exposures in {config['inputs']['exposures']!r}; "
        "for the demo survey run `bin/spica demo` (or `spica-demo --config config/config.yaml`)"
    )
# the databases a run writes (the registry, the monitor's job events): an SQLite file
# must sit in its results tree, or two surveys run from one checkout (another
# ``results:``) would write one file
for _key, _url, _default in (("registry.url", config["registry"]["url"], "registry.sqlite"),
                             ("monitor.url", config.get("monitor", {}).get("url"),
                              "logs/events.sqlite")):
    _file = sqlite_file(_url) if _url else None
    if _file is not None and paths.outside_results(RESULTS, _file):
        raise WorkflowError(
            f"SPICA: {_key} {_url!r} is a file outside this run's results tree {RESULTS!r}: "
            f"another survey run from this checkout would write it too; set {_key} to "
            f"sqlite:///{Path(RESULTS) / _default} (or a database server)"
        )
STEP1_DIR = Path(RESULTS) / "step1"
CALIBRATIONS = Path(RESULTS) / "calibrations"
INVENTORY = str(STEP1_DIR / "inventory.csv")
QUARANTINE = str(Path(RESULTS) / "quarantine" / "quarantine.csv")
REGISTRY_EXPORT = str(Path(RESULTS) / "registry" / "exposures.csv")

# the integrity check: fitsverify when asked for and installed, and the limits
INTEGRITY = config["step1"]["integrity"]
FITSVERIFY = tool("fitsverify") if INTEGRITY["run_fitsverify"] and TOOLS.get("fitsverify") else None
INTEGRITY_LIMITS = {k: v for k, v in INTEGRITY.items() if k != "run_fitsverify"}


def step1(key):
    """Snakemake pattern of a step 1 product (wildcard ``expnum``)."""
    return paths.step1_pattern(RESULTS, key)


@functools.lru_cache(maxsize=None)
def _step1_format(key):
    """The :func:`step1` pattern of ``key`` as a bound ``str.format`` (built once per key)."""
    return step1(key).format


def step1_files(expnums, key):
    """Paths (str) of step 1 product ``key`` of several exposures, in their order: the
    :func:`spica.paths.step1_path` names, formatted from one pattern (input functions
    list hundreds of thousands of them at survey scale, pathlib is 10x slower)."""
    pattern = _step1_format(key)
    return [pattern(expnum=int(expnum)) for expnum in expnums]


# Run records (logs, benchmarks, step timings) go under the run's results tree,
# never the working directory: two surveys run from one checkout with different
# ``results:`` share none (spica.paths.RUN_RECORDS; Snakemake's own .snakemake/
# stays in the working directory).
def run_log(scope, name):
    """``log:`` pattern of a job: ``<results>/logs/<scope folder>/<name>.log``
    (scope: a key of :data:`spica.paths.RUN_RECORD_SCOPES`, e.g. ``exposure``)."""
    return paths.log_pattern(RESULTS, scope, name)


def run_benchmark(scope, name):
    """``benchmark:`` pattern of a job: ``<results>/benchmarks/<scope folder>/<name>.tsv``."""
    return paths.benchmark_pattern(RESULTS, scope, name)


def run_steps(scope, name):
    """Per-step timings of a job, beside its benchmark (``<name>.steps.json``)."""
    return paths.steps_pattern(RESULTS, scope, name)


def get_step1_dir(wildcards):
    """Folder of an exposure's step 1 products (PSFEx names its output itself)."""
    return str(paths.step1_path(RESULTS, wildcards.expnum, "psf").parent)


def optional_input(path):
    """``path`` if the file exists, else nothing (observing metadata and grades may not exist yet)."""
    return [path] if Path(path).is_file() else []


@functools.lru_cache(maxsize=4)
def _photometric_flags(path):
    """Odometer -> photometric, read once per workflow run: the input functions that
    ask again after a checkpoint see the same flags, so an edit of the metadata during
    a run takes effect on the next run (params then change), never half-way."""
    metadata = read_metadata(path)
    return dict(zip(metadata["expnum"].astype(int), metadata["photometric"].astype(bool)))


def is_photometric(expnum):
    """Whether the observing metadata flags exposure ``expnum`` photometric."""
    path = next(iter(optional_input(config["inputs"]["metadata"])), None)
    if path is None:
        return False
    return _photometric_flags(path).get(int(expnum), False)


def get_photometric_flag(wildcards):
    """Param: whether the exposure is photometric (its ``.ahead``'s PHOTFLAG)."""
    return is_photometric(wildcards.expnum)


def aperture_pixels(diameters_arcsec):
    """SExtractor PHOT_APERTURES (pixels) from aperture diameters in arcsec."""
    return sextractor.aperture_pixels(diameters_arcsec, pixel_scale=config["survey"]["pixel_scale"])


def get_raw_exposure(wildcards):
    """The incoming file of exposure ``expnum``."""
    return str(INCOMING.files[int(wildcards.expnum)])


def get_check_files(wildcards=None):
    """The integrity verdict of every incoming exposure."""
    return step1_files(sorted(INCOMING.files), "check")


#: Checkpoint outputs already made in this run, checkpoint (and wildcards) -> output:
#: once Snakemake says a checkpoint's output is there it stays there for the run, so
#: each is asked once, not once per job (14,000 times for the inventory, about
#: 80,000 for a plan at survey scale). The files' versions are still checked (mtime).
_CHECKPOINT_OUTPUTS = {}


def checkpoint_output(name, **wildcards):
    """``checkpoints.<name>.get(**wildcards).output``, asked of Snakemake once per run
    after it succeeds (it raises until the checkpoint has run)."""
    key = (name, *sorted(wildcards.items()))
    if key not in _CHECKPOINT_OUTPUTS:
        _CHECKPOINT_OUTPUTS[key] = getattr(checkpoints, name).get(**wildcards).output
    return _CHECKPOINT_OUTPUTS[key]


def accepted_exposures():
    """Odometers that passed the integrity check (after the inventory checkpoint)."""
    inventory = checkpoint_output("make_inventory").inventory
    return list(_accepted(inventory, os.stat(inventory).st_mtime_ns))


@functools.lru_cache(maxsize=4)
def _accepted(inventory, mtime):
    """The accepted odometers of one version of the inventory (read once); warns
    once when every incoming file was quarantined."""
    rows = read_inventory(inventory)
    accepted = tuple(int(row["expnum"]) for row in rows if row["status"] == "ok")
    if rows and not accepted:
        logger.warning(f"SPICA: {empty_survey_message(len(rows), QUARANTINE)}")
    return accepted


@functools.lru_cache(maxsize=None)
def _read_verdict(path, mtime):
    """A ``_check.json``, read once per version of the file."""
    return json.loads(Path(path).read_text())


def get_verdict(wildcards):
    """The integrity verdict JSON of an accepted exposure (the flat and the mask
    functions both ask for it: it is read once per version of the file)."""
    checkpoint_output("make_inventory")
    path = _step1_format("check")(expnum=int(wildcards.expnum))
    return _read_verdict(path, os.stat(path).st_mtime_ns)


def staged_calibration(raw_path):
    """Uncompressed working copy of a raw Elixir calibration file."""
    name = Path(raw_path).name
    for suffix in (".gz", ".fz"):
        name = name.removesuffix(suffix)
    return str(CALIBRATIONS / name)


def get_flat(wildcards):
    """The staged Elixir flat an accepted exposure names."""
    return staged_calibration(get_verdict(wildcards)["calibrations"]["flat"])


def get_mask(wildcards):
    """The staged Elixir mask an accepted exposure names."""
    return staged_calibration(get_verdict(wildcards)["calibrations"]["mask"])


def get_raw_calibration(wildcards):
    """The raw Elixir calibration file ``calib`` (maybe compressed) in the calibrations folder."""
    found = find_calibration_file(wildcards.calib, config["inputs"]["calibrations"])
    if found is None:
        raise WorkflowError(f"calibration {wildcards.calib} not in {config['inputs']['calibrations']}")
    return str(found)


def get_step1_for_registry(wildcards):
    """QA summaries and diagnostics of every accepted exposure. With the verdicts (and
    the ``.ahead`` files, written by the same check_exposure jobs) the registry closes
    step 1: what SCAMP reads of an exposure is ready when the registry is."""
    return {
        key: step1_files(accepted_exposures(), key) for key in ("qa_xml", "diag")
    }


# ------------------------------------------------------- the step 1 seal
# build_registry seals the registry (spica.seal): a run whose targets are releases
# only takes the registry and the step 1 files as they are when nothing the seal
# records changed, instead of listing the ~21,000 step 1 jobs of a survey again.
STEP1_SEAL = str(Path(RESULTS) / "registry" / "step1_seal.json")

#: Targets that need no step 1 job when the seal holds: releases, plans, image mode.
RELEASE_TARGET_RE = r"(release|plan|images)_[A-Za-z0-9]+"


@functools.lru_cache(maxsize=1)
def step1_static():
    """What step 1 is made with (:func:`spica.seal.step1_static`): a param of
    build_registry, which writes it into the seal."""
    return seal_static(config, workflow_dir=workflow.basedir,
                       tool_versions={name: tool_version(name) for name in TOOLS},
                       code_hash=_script_path_hash)


def _script_path_hash(path):
    """:func:`_script_hash` of a script given by its path (cached per run)."""
    return _script_hash(Path(path).stem)


def get_results(wildcards):
    """Param: the results tree (a function: a path prefix as a plain param is a lint)."""
    return RESULTS


def get_step1_static(wildcards):
    """Param of build_registry: :func:`step1_static`."""
    return step1_static()


def step1_seal_files():
    """The files the seal records (:func:`spica.seal.sealed_files`)."""
    return sealed_files(RESULTS, incoming=INCOMING.files, inventory=INVENTORY, quarantine=QUARANTINE,
                        optional=[config["inputs"]["metadata"], config["inputs"]["grades"]])


def _release_only_run():
    """Whether every target of this run is a release, a plan or the image mode (or
    their files), without a forced rerun: only then may the seal stand for step 1."""
    settings = getattr(workflow, "dag_settings", None)  # absent outside a DAG build (lint)
    if settings is None:
        return False
    targets = set(settings.targets or ())
    if not targets or settings.forceall or settings.forcerun or settings.until:
        return False
    releases = os.path.join(RESULTS, "releases") + os.sep
    return all(re.fullmatch(RELEASE_TARGET_RE, target) or os.path.normpath(target).startswith(releases)
               for target in targets)


@functools.lru_cache(maxsize=1)
def step1_sealed():
    """Whether this run takes step 1 as the registry's seal says it is (see
    :mod:`spica.seal`): a release-only run, and nothing the seal records changed."""
    if not _release_only_run() or not os.path.isfile(INVENTORY):
        return False
    verdict = check_seal(STEP1_SEAL, static=step1_static(), files=step1_seal_files(),
                         contents=[REGISTRY_EXPORT])
    if verdict:
        logger.info(f"SPICA: step 1 is sealed by the registry ({verdict.reason}): "
                    "its jobs are not listed again")
    elif os.path.isfile(REGISTRY_EXPORT):
        logger.info(f"SPICA: step 1 is listed again: {verdict.reason}")
    return bool(verdict)


def step1_input(files):
    """Step 1 files a release job reads: as they are (``before_update``: Snakemake
    looks for no producer) when the seal holds, else through their step 1 jobs."""
    if isinstance(files, str):
        return before_update(files) if step1_sealed() else files
    return [before_update(f) for f in files] if step1_sealed() else list(files)


def get_registry_export(wildcards):
    """Input of the plans: the registry export (sealed: as it is)."""
    return step1_input(REGISTRY_EXPORT)


def get_registry_ancient(wildcards):
    """Input of the jobs that read the registry after the plan: the export, ancient()
    (a rebuilt registry reruns the plan, whose lists decide), as it is when sealed."""
    return ancient(step1_input(REGISTRY_EXPORT))


# ---------------------------------------------------------------- releases
def release_file(key):
    """Pattern of a per-release file (:data:`spica.paths.RELEASE_FILES`),
    e.g. ``results/releases/T0002/T0002_plan.csv``."""
    return paths.release_pattern(RESULTS, key)


def product_file(key):
    """Pattern of a planned product's file (:data:`spica.paths.STACK_PRODUCTS`...),
    e.g. ``.../CFHTLS_D_g_..._T0002/CFHTLS_D_g_..._T0002_stack.list``."""
    return paths.product_pattern(RESULTS, key)


def product_files(keys):
    """Patterns of several files of a planned product, key -> pattern (named outputs)."""
    return {key: product_file(key) for key in keys}


# ------------------------------------------------------------ the report
#: Captions of the plots in Snakemake's report (``snakemake --report report.zip
#: release_T0002``): one reStructuredText file per plot kind, ``report/<kind>.rst``.
REPORT_CAPTIONS = Path(workflow.basedir) / "report"


def report_plot(path, kind, category, subcategory):
    """``path`` (an output pattern, or an input) marked for the report: caption
    ``report/<kind>.rst``, ``category`` (``Step 1``, ``SCAMP``, ``Stacks``,
    ``QualityFITS-out``), ``subcategory`` the exposure or product (``{stem}``)."""
    caption = LocalSourceFile(str(REPORT_CAPTIONS / f"{kind}.rst"))
    return report(path, caption=caption, category=category, subcategory=subcategory, labels={"plot": kind})


def report_plots(files, category, subcategory="{stem}"):
    """Named outputs (key -> pattern) with their PNG files marked for the report
    (:func:`report_plot`, the key is the plot kind); the others as they are."""
    return {key: report_plot(path, key, category, subcategory) if path.endswith(".png") else path
            for key, path in files.items()}


#: The report marks of a product's SCAMP check plots (a folder: one pattern, one caption
#: template, report/scamp.rst, whose text follows the plot's kind).
SCAMP_REPORT = {
    "patterns": ["{product}_{kind,(?:%s)}_{n,[0-9]+}.png" % "|".join(CHECKPLOTS.values())],
    "caption": LocalSourceFile(str(REPORT_CAPTIONS / "scamp.rst")),
    "category": "SCAMP",
    "subcategory": "{stem}",
    "labels": {"plot": "{kind}_{n}"},
}


def release_step1_plots(release):
    """The step 1 QA plots (PNG) of every exposure of a release's astrometric lists,
    marked for the report (category ``Step 1``, the exposure as subcategory), with
    each exposure's QA XML. No rule declares the plots (the XML does, see
    :data:`spica.paths.STEP1_DECLARED`): the release target takes them as inputs, so
    the report holds them and step 1's jobs stay as they are."""
    plan = get_plan(release)
    expnums = sorted({int(e) for members in plan.astrometric_lists.values() for e in members})
    files, missing = step1_input(step1_files(expnums, "qa_xml")), []
    for expnum in expnums:
        qa_xml = paths.step1_path(RESULTS, expnum, "qa_xml")
        for key, plot in paths.qa_plot_paths(qa_xml).items():
            if plot.suffix != ".png":
                continue
            if os.path.exists(plot):  # made with the XML, before it: present once the plan is
                files.append(report_plot(str(plot), key, "Step 1", paths.exposure_name(expnum)))
            else:  # deleted by hand: the report lacks it, the release goes on
                missing.append(str(plot))
    if missing:
        logger.warning(f"SPICA: {len(missing)} step 1 QA plot(s) missing, not in the report "
                       f"of {release} (e.g. {missing[0]}); rerun that exposure's reduce_exposure")
    return files


def chi2_file(key):
    """Pattern of a chi-squared tile's file (:data:`spica.paths.CHI2_FILES`),
    e.g. ``.../CFHTLS_D_gri_..._T0002/CFHTLS_D_gri_..._T0002_chi2.fits``."""
    return paths.chi2_pattern(RESULTS, key)


#: Pattern of a planned product's SCAMP outputs folder (heads, check plots).
SCAMP_PRODUCTS = paths.scamp_folder_pattern(RESULTS)


def solution_file(key):
    """Pattern of an astrometric solution's file (:data:`spica.paths.SOLUTION_FILES`),
    e.g. ``results/releases/T0002/_scamp/<solution>/<solution>_scamp.xml``."""
    return paths.solution_pattern(RESULTS, key)


#: Pattern of an astrometric solution's SCAMP outputs folder (heads, check plots).
SOLUTION_PRODUCTS = paths.solution_scamp_folder_pattern(RESULTS)


#: Outputs of a product's stack job (rules coadd_stack, coadd_image): its calibration
#: files, then SWarp's. The SCAMP check plots (PNG) go in the report (SCAMP_REPORT).
COADD_OUTPUTS = {
    "stack": product_file("stack_list"),
    "astrometric": product_file("astrometric_list"),
    "scamp_xml": product_file("scamp_xml"),
    "scamp_cmd": product_file("scamp_cmd"),
    "scamp_delivery": product_file("scamp_delivery_cmd"),
    "scamp": report(directory(SCAMP_PRODUCTS), **SCAMP_REPORT),
    "accept": product_file("scamp_accept"),
    "accepted": product_file("accepted"),
    "heads": directory(product_file("heads")),
    "image": product_file("image"),
    "weight": product_file("weight"),
    "swarp_xml": product_file("swarp_xml"),
    "swarp_cmd": product_file("swarp_cmd"),
}


def ancient_plan():
    """Input ``plan`` of every release job below the plan: of the rules whose inputs
    or params come from the plan, and of those that read only a product's files.

    The plan is an input so that, when the plan_release checkpoint reruns,
    Snakemake re-evaluates those rules' input functions, and so that no job of the
    release runs before the checkpoint: a job that read only a product's files (its
    QualityFITS-out, say, missing after a run that made the stack alone) ran at once,
    from the stack as it was, and the stack job the new plan asked for then rewrote
    the stack under it, which the next run found older than its input. It is
    ancient() so that a new plan's date alone reruns nothing: the lists, grids and
    tiles themselves (inputs and params) decide, and a regrade reruns exactly the
    stacks whose lists change.
    """
    return ancient(release_file("plan"))


def get_release_config(wildcards):
    """Param: the release's definition (config/releases.yaml)."""
    try:
        return config["releases"][wildcards.release]
    except KeyError:
        raise WorkflowError(
            f"release {wildcards.release} is not defined in config (releases: {sorted(config['releases'])})"
        )


def get_plan(release):
    """The plan of a release, or of the automatic image mode (``V0001``), after its checkpoint."""
    planner = "plan_images" if release.startswith("V") else "plan_release"
    plan_csv = checkpoint_output(planner, release=release).plan
    lists = _release_lists_path(release)
    return _read_plan(os.path.dirname(plan_csv), release, os.stat(plan_csv).st_mtime_ns,
                      os.stat(lists).st_mtime_ns)


@functools.lru_cache(maxsize=None)
def _release_lists_path(release):
    """The ``_lists.json`` of a release (str, built once)."""
    return str(paths.release_path(RESULTS, release, "lists"))


@functools.lru_cache(maxsize=8)
def _read_plan(folder, release, plan_mtime, lists_mtime):
    """The plan, read once per version of its files (input functions ask for it
    several times per stack; its products and tiles are computed once per plan)."""
    return read_plan(folder, release=release)


def planned_product(release, stem):
    """The plan's product with file stem ``stem`` (:class:`spica.release.planning.PlannedProduct`)."""
    try:
        return get_plan(release).products()[stem]
    except KeyError:
        raise WorkflowError(f"{stem} is not in the plan of {release}") from None


def get_stack_name(wildcards):
    """Param: the plan's name of a product (``CFHTLS_D_r_141927+524056``, ``546891p_V0001``)."""
    return planned_product(wildcards.release, wildcards.stem).name


def get_stack_lists(wildcards):
    """Param: the stack's stack and astrometric lists (a change reruns this stack only)."""
    plan = get_plan(wildcards.release)
    stack = planned_product(wildcards.release, wildcards.stem).name
    return {"stack": plan.stack_lists[stack], "astrometric": plan.astrometric_lists[stack]}


def get_conditional_exposures(wildcards):
    """Param: the conditional members of a stack list (repairable grade: stacked only if repaired)."""
    stack = planned_product(wildcards.release, wildcards.stem).name
    return get_plan(wildcards.release).conditional_lists.get(stack, [])


def get_accept_settings(wildcards):
    """Param: the accept summary's limits, and the stack's conditional members."""
    calibration = config["calibration"]
    return {
        "pixel_scale": config["survey"]["pixel_scale"],
        "tolerance": calibration["max_pixel_scale_error"],
        "max_reference_sigma": calibration["max_reference_sigma_arcsec"],
        "conditional": get_conditional_exposures(wildcards),
        "max_focal_plane_offset": calibration["max_focal_plane_offset_arcsec"],
    }


def get_astrometric_catalogs(wildcards):
    """Step 1 catalogues of a stack's astrometric list."""
    return step1_files(get_stack_lists(wildcards)["astrometric"], "ldac")


def get_astrometric_aheads(wildcards):
    """The ``.ahead`` files SCAMP reads beside those catalogues."""
    return step1_files(get_stack_lists(wildcards)["astrometric"], "ahead")


def get_solution_list(wildcards):
    """The astrometric list (EXPNUMs) of solution ``solution`` of the plan; empty if the
    plan has no such solution.

    A solution is named after its list, so a new plan (a regrade) renames it:
    when the plan_release checkpoint reruns, Snakemake re-evaluates the jobs it
    had planned from the old plan, the old solution's among them, before it
    drops that job (no product asks for it any more). solve_astrometry itself
    fails on an empty list.
    """
    try:
        return get_plan(wildcards.release).solution_list(wildcards.solution)
    except KeyError:
        return []


def get_solution_catalogs(wildcards):
    """Param: step 1 catalogues of a solution's astrometric list (SCAMP reads the
    ``.ahead`` files beside them). Not inputs: at survey scale the lists hold 133,000
    catalogues and as many ``.ahead`` files (issue 10, section 5); Snakemake waits for
    them through the plan (the registry reads them, see :func:`get_step1_for_registry`), and a changed one reruns
    the solution through :func:`get_solution_state`."""
    return step1_files(get_solution_list(wildcards), "ldac")


def get_solution_state(wildcards):
    """Param: the version of the step 1 files a solution reads, a digest of the
    modification time and size of each catalogue and ``.ahead`` of its list, so that
    a remade one reruns SCAMP as an input would (rerun trigger ``params``).

    Read when the plan is: on a run that remakes a catalogue or an ``.ahead``, the
    plan_release checkpoint reruns after them (the registry reads every QA summary,
    the plan every ``.ahead``) and Snakemake re-evaluates this param then.
    """
    digest = hashlib.sha1()
    for key in ("ldac", "ahead"):
        for path in step1_files(get_solution_list(wildcards), key):
            try:
                stat = os.stat(path)
                digest.update(f"{path} {stat.st_mtime_ns} {stat.st_size}\n".encode())
            except FileNotFoundError:
                digest.update(f"{path} missing\n".encode())
    return digest.hexdigest()


def get_solution_id(wildcards):
    """Param: the SCAMP solution of a planned product (its astrometric list's)."""
    return planned_product(wildcards.release, wildcards.stem).solution


def get_product_solution(wildcards):
    """The SCAMP run a planned product takes its heads from: XML, command, folder."""
    release, solution = wildcards.release, get_solution_id(wildcards)
    return {
        "solution_xml": str(paths.solution_path(RESULTS, release, solution, "scamp_xml")),
        "solution_cmd": str(paths.solution_path(RESULTS, release, solution, "scamp_cmd")),
        "solution": str(paths.solution_scamp_folder(RESULTS, release, solution)),
    }


def get_stack_exposures(wildcards):
    """Raw exposures of a stack list, in list order."""
    return [str(INCOMING.files[e]) for e in sorted(get_stack_lists(wildcards)["stack"])]


def get_stack_aheads(wildcards):
    """The ``.ahead`` files of a stack list (photometric flags of its exposures)."""
    return step1_input(step1_files(sorted(get_stack_lists(wildcards)["stack"]), "ahead"))


def get_stack_weights(wildcards):
    """Step 1 weight maps of a stack list, in list order."""
    return step1_input(step1_files(sorted(get_stack_lists(wildcards)["stack"]), "weight"))


def product_grid(product):
    """SWarp output grid (CENTER, IMAGE_SIZE, PIXEL_SCALE) of a planned product."""
    return stack_grid(product.ra, product.dec, size_deg=product.size_deg,
                      pixel_scale_arcsec=config["survey"]["pixel_scale"])


def get_stack_grid(wildcards):
    """Param: SWarp output grid of a planned stack."""
    return product_grid(planned_product(wildcards.release, wildcards.stem))


def get_tile_stems(wildcards):
    """Stems of the stacks of chi-squared tile ``chi2`` (every filter of the tile)."""
    return get_plan(wildcards.release).tiles()[wildcards.chi2]


def get_tile_stacks(wildcards):
    """Stacks and weights of every filter of a chi-squared tile."""
    release = wildcards.release
    return {
        key: [str(paths.product_path(RESULTS, release, stem, file_key)) for stem in get_tile_stems(wildcards)]
        for key, file_key in (("stacks", "image"), ("weights", "weight"))
    }


def get_tile_grid(wildcards):
    """Param: the SWarp grid of a tile (that of its stacks)."""
    return product_grid(planned_product(wildcards.release, get_tile_stems(wildcards)[0]))


def get_stack_chi2(wildcards):
    """The chi-squared image (and weight) a stack's catalogue detects on."""
    tile = planned_product(wildcards.release, wildcards.stem).tile
    return {
        key: str(paths.chi2_path(RESULTS, wildcards.release, tile, file_key))
        for key, file_key in (("chi2", "image"), ("chi2_weight", "weight"))
    }


def tile_colour_outputs(n):
    """Named outputs of the colour diagrams of a release tile of ``n`` filters
    (:func:`spica.paths.tile_colour_patterns`), the PNG files marked for the report
    (caption ``report/diagcc.rst`` or ``diagcm.rst``, the tile as subcategory)."""
    tile = paths.colour_tile_pattern(n)
    return {key: report_plot(path, key.split("_")[0], "QualityFITS-out", tile) if path.endswith(".png") else path
            for key, path in paths.tile_colour_patterns(RESULTS, n).items()}


def tile_band_constraints(n):
    """Wildcard constraints of the filters ``b1``... ``b<n>`` of a release tile: one filter each."""
    return {f"b{i}": paths.WILDCARD_CONSTRAINTS["band"] for i in range(1, n + 1)}


def _tile_bands(wildcards):
    """The filters of a colour diagrams job's tile, from its wildcards ``b1``... ``bn``."""
    return "".join(wildcards[f"b{i}"] for i in range(1, max(paths.TILE_COLOUR_SIZES) + 1)
                   if f"b{i}" in wildcards.keys())


def get_colour_tile(wildcards):
    """Param: the release tile of a colour diagrams job (``CFHTLS_D_ugriz_141927+524056_T0002``)."""
    return paths.colour_tile(wildcards.survey, _tile_bands(wildcards), wildcards.coords, wildcards.release)


def get_tile_colour_catalogues(wildcards):
    """The QualityFITS-out catalogues of a release tile's products, named by band
    (``g``, ``r``, ``i``...): one per filter of the tile."""
    tile, bands = get_colour_tile(wildcards), _tile_bands(wildcards)
    if bands != "".join(b for b in "ugriz" if b in bands) or len(set(bands)) != len(bands):
        raise WorkflowError(f"{tile}: its filters are not distinct and in ugriz order")
    stems = get_plan(wildcards.release).tiles().get(tile)
    if stems is None:
        raise WorkflowError(f"{tile} is not a tile of the plan of {wildcards.release}")
    by_band = {planned_product(wildcards.release, stem).band: stem for stem in stems}
    missing = sorted(set(bands) - set(by_band))
    if missing:
        raise WorkflowError(f"{tile} has no product in filter(s) {missing}")
    return {band: str(paths.product_path(RESULTS, wildcards.release, by_band[band], "qfo_ldac"))
            for band in bands}


def get_catalogue_options(wildcards):
    """Param: options of the release catalogue on top of release.sex (apertures in pixels...)."""
    apertures = aperture_pixels(config["catalogues"]["phot_apertures_arcsec"])
    return {"PHOT_APERTURES": apertures, "BACK_SIZE": config["catalogues"]["back_size"],
            **config["catalogues"]["overrides"]}


#: Configuration files a release product's provenance lists, in its order.
PROVENANCE_CONFIGS = ("scamp", "stack_swarp", "chi2_swarp", "release_sex", "release_param", "conv", "nnw")


def get_provenance_inputs(wildcards):
    """Command files of the steps that made a product before its catalogue (the
    catalogue's own is written by the same job, extract_stack_catalogue)."""
    release, stem = wildcards.release, wildcards.stem
    tile = planned_product(release, stem).tile
    return {
        "scamp_cmd": str(paths.product_path(RESULTS, release, stem, "scamp_cmd")),
        "scamp_delivery_cmd": str(paths.product_path(RESULTS, release, stem, "scamp_delivery_cmd")),
        "swarp_cmd": str(paths.product_path(RESULTS, release, stem, "swarp_cmd")),
        "chi2_cmd": str(paths.chi2_path(RESULTS, release, tile, "cmd")),
    }


def get_provenance_files(wildcards):
    """Param: the files a product's provenance lists and checksums, in list order: the
    astrometric list's catalogues and ``.ahead`` files, the stacked exposures and weight
    maps, the tile's other stacks and weights (they enter the chi-squared image), the
    configuration files.

    Not inputs of the catalogue job: each is an input of the job that reads it
    (solve_astrometry, the stack job, make_chi2...), whose command file or image is an
    input here and carries its changes. As inputs they multiplied the release DAG by
    the lists' lengths (~400 exposures a stack at survey scale; issue 10, section 5).
    """
    release, stem = wildcards.release, wildcards.stem
    tile = planned_product(release, stem).tile
    stack = sorted(get_stack_lists(wildcards)["stack"])
    others = [s for s in get_plan(release).tiles()[tile] if s != stem]
    return {
        "catalogs": get_astrometric_catalogs(wildcards),
        "aheads": get_astrometric_aheads(wildcards),
        "exposures": get_stack_exposures(wildcards),
        "weights": step1_files(stack, "weight"),
        "tile_stacks": [str(paths.product_path(RESULTS, release, other, key))
                        for other in others for key in ("image", "weight")],
        # keys, not paths: no path of the workflow's folder in a param (config_paths)
        "configs": list(PROVENANCE_CONFIGS),
    }


def get_provenance_options(wildcards):
    """Param: per step, the options given on top of the configuration files."""
    return {
        "scamp": dict(config["calibration"]["scamp_overrides"]),
        "swarp": {**get_stack_grid(wildcards), **config["coaddition"]["swarp_overrides"]},
        "sextractor": get_catalogue_options(wildcards),
    }


def get_release_scamp_xml(wildcards):
    """SCAMP XML of every planned product of a release, keyed by product stem."""
    release = wildcards.release
    return {
        stem: str(paths.product_path(RESULTS, release, stem, "scamp_xml"))
        for stem in get_plan(release).products()
    }


@functools.lru_cache(maxsize=4)
def _product_grades(path, mtime):
    """The release control team's product grades, read once per version of the CSV."""
    return read_product_grades(path)


def get_product_grade(wildcards):
    """Param: the release control team's grade of one product (grade, comment,
    graded_by, date; empty if not graded), from ``inputs.product_grades`` as exposure
    grades come from ``inputs.grades``: a changed grade reruns that product's summary."""
    path = config["inputs"]["product_grades"]
    if not os.path.isfile(path):
        return {}
    from spica.qualityfits_out.grading import team_grade  # imports matplotlib: only when asked

    return team_grade(_product_grades(path, os.stat(path).st_mtime_ns), wildcards.release, wildcards.stem)


#: The product files a summary reads besides its inputs, key -> product file key.
SUMMARY_FILES = {"stack": "stack_list", "astrometric": "astrometric_list", "accept": "scamp_accept",
                 "scamp_xml": "scamp_xml", "completeness": "comptness_table", "regions": "reg"}


def get_summary_files(wildcards):
    """Param: the files of :data:`SUMMARY_FILES` of a product.

    Not inputs: each is written by the job that writes one of the summary's inputs (the
    stack job's image, QualityFITS-out's table), so a change reaches the summary through
    that input, and the release target names any of them that is missing
    (:func:`release_targets`). As inputs they were 14,000 file entries of the release
    dry-run at survey scale (issue 10, section 5).
    """
    return {key: str(paths.product_path(RESULTS, wildcards.release, wildcards.stem, file_key))
            for key, file_key in SUMMARY_FILES.items()}


def get_release_summaries(wildcards):
    """The SPICA summary (``_spica.xml``) of every planned product of a release, keyed by stem."""
    release = wildcards.release
    return {stem: str(paths.product_path(RESULTS, release, stem, "summary"))
            for stem in get_plan(release).products()}


def release_files(release, *keys):
    """Paths of per-release files of release ``release`` (target rules)."""
    return [str(paths.release_path(RESULTS, release, key)) for key in keys]


#: release -> (plan, the release target's inputs for that plan): see release_targets.
_TARGETS = {}


def release_targets(release):
    """Input function of the target ``release_<release>``: every planned product, each
    tile's chi-squared figure and colour diagrams, the pending view, the SCAMP fields
    and the products' quality table.

    What it names per product is what no other job reads (its catalogue, and the
    ``.ahead`` of a photometric image), plus any file of the product's delivery, or of
    those its summary reads (:data:`SUMMARY_FILES`), that is missing on disk while its
    image is not; per tile, the first file of each figure job and any other that is
    missing while the first is not. Everything else a product has is an output of a job upstream of
    ``product_quality`` (every summary reads the stack job's image and the
    QualityFITS-out job's table): Snakemake lists those jobs and reruns them when an
    input changed. It reruns a job for a missing output only when
    that file is asked for by name, hence the missing ones; a product without its image
    is made whole anyway. Naming all ~40 files of each of 2,300 products cost a
    release dry-run a third of its time (issue 10, section 5).

    One target per release (without wildcards), hence this factory.
    """

    def get_release_products(wildcards):
        plan = get_plan(release)
        # Snakemake asks again after the plan's checkpoint (the same plan: one version of
        # its files is one object, see get_plan): listing every product's folder twice cost
        # a release dry-run at survey scale ~1 s
        if plan is _TARGETS[release][0]:
            return list(_TARGETS[release][1])
        targets = _release_products(plan)
        _TARGETS[release] = (plan, targets)
        return list(targets)

    def _release_products(plan):
        if not plan.products():
            logger.warning(f"SPICA: the plan of {release} is empty, nothing to build "
                           f"(verdicts: {paths.release_path(RESULTS, release, 'selection')})")
        targets = []
        for stem, product in plan.products().items():
            needed = ["ldac"]  # the catalogue: nothing downstream reads it
            keys = list(paths.STACK_PRODUCTS)
            if product.mode != "stack":  # image by image: the image's own SCAMP head (seed: _V0001_head.txt)
                keys += ["image_head"]  # and its .ahead if photometric (_V0001_ahed.txt, a job of its own)
                needed += ["image_ahead"] if is_photometric(paths.parse_image_stem(stem)[0]) else []
            # every QualityFITS-out file under the seed's names (_psf_m.png, _comptness.png, _reg.txt,
            # the w(theta) of its stars): what a delivery of it carries
            keys += list(paths.QUALITYFITS_OUT_DELIVERED)
            keys += [key for key in SUMMARY_FILES.values() if key not in keys]  # what summaries read
            targets += [str(paths.product_path(RESULTS, release, stem, key)) for key in needed]
            missing = missing_product_files(RESULTS, release, stem, [k for k in keys if k not in needed])
            if str(paths.product_path(RESULTS, release, stem, "image")) not in missing:
                targets += missing  # without its image a product is made whole anyway
        # per tile, the chi-squared figure (PNG, PostScript) and the colour-colour diagrams of
        # every three filters, colour-magnitude of every two: the first file of each job, and
        # the others that are missing while it is not (the 40 files of a 5-filter tile were
        # 12 % of the names); without its first file the job runs anyway
        for tile in plan.tiles():
            for files in ([str(paths.chi2_path(RESULTS, release, tile, key)) for key in ("png", "ps")],
                          [str(path) for path in paths.colour_paths(RESULTS, release, tile)]):
                missing = missing_files(files)
                targets += files[:1] + (missing if files and files[0] not in missing else [])
        return targets + release_files(release, "pending", "scamp_fields", "product_quality")

    _TARGETS[release] = (None, [])

    return _wildcards_only(get_release_products)


def report_targets(release):
    """Input function of the target ``report_<release>`` (``snakemake --report report.zip
    report_T0002``): the release's targets and the step 1 QA plots of its exposures,
    which are no job's outputs (:func:`release_step1_plots`), so that the report holds them.
    Not in ``release_<release>``: 100,000 plots at survey scale for a report only."""
    release_products = release_targets(release)

    def get_report_products(wildcards):
        return release_products(wildcards) + release_step1_plots(release)

    return _wildcards_only(get_report_products)


# ------------------------------------------------ input functions, cheaply
# Snakemake asks inspect.signature() of an input or param function on every call
# (which aux parameters it takes: input, output, threads...), about 60 us each, a
# tenth of a release dry-run's CPU at survey scale (issue 10, section 5). Every
# function here takes the wildcards only: say so once.
def _wildcards_only(function):
    """Mark ``function`` as taking the wildcards only (Snakemake skips its signature)."""
    overwrite_function_params(function, {})  # a mapping, as inspect.signature().parameters
    return function


for _name, _value in list(globals().items()):
    if _name.startswith("get_") and callable(_value) and not isinstance(_value, type):
        _wildcards_only(_value)


# ------------------------------------------------ the pending views, after a run
def refresh_pending_views():
    """The ``onsuccess``/``onerror`` handlers (Snakefile): rewrite the "Pending
    processes" view of every configured release (and of the image mode) from the disk
    as it is at the end of the run (:func:`spica.release.planning.refresh_pending_report`).

    Rule ``report_pending`` draws the view when the plan is made, before the stacks:
    without this the run that makes them would leave them all listed as pending.
    Snakemake calls no handler on a dry-run (nor with ``--no-hooks``). Only a view and
    plan that exist are refreshed; a problem is a warning, never a failed run.
    """
    from spica.release.planning import PendingViewError, refresh_pending_report

    for release in [*config["releases"], config["image_mode"]["version"]]:
        try:
            if refresh_pending_report(RESULTS, release,
                                      longest=config["planning"]["longest_stacks"]):
                logger.info(f"SPICA: pending view of {release} refreshed: "
                            f"{paths.release_path(RESULTS, release, 'pending')}")
        except PendingViewError as error:
            logger.warning(f"SPICA: {error}")
        except Exception as error:  # a handler must not fail the run it reports on
            logger.warning(f"SPICA: pending view of {release} not refreshed: "
                           f"unexpected {type(error).__name__} ({error})")
