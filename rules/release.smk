# Step 2 planning (seed 3.2.1): grades, release selection and stack planning.
# The plan is a checkpoint over the registry (step 1 results, grades, observing
# metadata) and the release definitions (config/releases.yaml); each planned
# stack then gets its lists through a rule whose params are the lists
# themselves, so a change of grade or criteria reruns exactly the stacks whose
# lists change.

from spica.coaddition.grid import stack_grid
from spica.release.planning import read_plan

RELEASES = Path(RESULTS) / "releases"


def release_file(suffix):
    """Pattern of a per-release file, e.g. ``results/releases/T0002/T0002_plan.csv``."""
    return str(RELEASES / "{release}" / ("{release}" + suffix))


def stem_file(suffix):
    """Pattern of a per-stack file, e.g. ``.../CFHTLS_D_g_..._T0002/CFHTLS_D_g_..._T0002_stack.list``."""
    return str(RELEASES / "{release}" / "{stem}" / ("{stem}" + suffix))


def get_release_config(wildcards):
    try:
        return config["releases"][wildcards.release]
    except KeyError:
        raise WorkflowError(
            f"release {wildcards.release} is not defined in config (releases: {sorted(config['releases'])})"
        )


def get_plan(release):
    """The plan of a release (after its checkpoint)."""
    return _cached_plan(release)[0]


def _cached_plan(release):
    plan_csv = Path(checkpoints.plan_release.get(release=release).output.plan)
    lists = plan_csv.with_name(f"{release}_lists.json")
    return _read_plan(plan_csv.parent, plan_csv.stat().st_mtime_ns, lists.stat().st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _read_plan(folder, plan_mtime, lists_mtime):
    """The plan and its product stem -> stack name map, read once per version of the files
    (input functions ask for them several times per stack)."""
    plan = read_plan(folder)
    names = {paths.release_stem(n, r): n for n, r in zip(plan.stacks["name"], plan.stacks["release"])}
    return plan, names


def get_stack_lists(wildcards):
    """Param: the stack's stack and astrometric lists (a change reruns this stack only)."""
    plan = get_plan(wildcards.release)
    stack = stack_of_stem(wildcards.release, wildcards.stem)
    return {"stack": plan.stack_lists[stack], "astrometric": plan.astrometric_lists[stack]}


def get_astrometric_catalogs(wildcards):
    """Step 1 catalogues of a stack's astrometric list."""
    return [str(paths.step1_path(RESULTS, e, "ldac")) for e in get_stack_lists(wildcards)["astrometric"]]


def get_astrometric_aheads(wildcards):
    """The ``.ahead`` files SCAMP reads beside those catalogues."""
    return [str(paths.step1_path(RESULTS, e, "ahead")) for e in get_stack_lists(wildcards)["astrometric"]]


def get_stack_exposures(wildcards):
    """Raw exposures of a stack list, in list order."""
    return [str(INCOMING.files[e]) for e in sorted(get_stack_lists(wildcards)["stack"])]


def get_stack_aheads(wildcards):
    """The ``.ahead`` files of a stack list (photometric flags of its exposures)."""
    return [str(paths.step1_path(RESULTS, e, "ahead")) for e in sorted(get_stack_lists(wildcards)["stack"])]


def get_stack_weights(wildcards):
    """Step 1 weight maps of a stack list, in list order."""
    return [str(paths.step1_path(RESULTS, e, "weight")) for e in sorted(get_stack_lists(wildcards)["stack"])]


def get_stack_grid(wildcards):
    """Param: SWarp output grid (CENTER, IMAGE_SIZE, PIXEL_SCALE) of a planned stack."""
    return stem_grid(wildcards.release, wildcards.stem)


def stem_grid(release, stem):
    plan = get_plan(release)
    row = plan.stacks.set_index("name").loc[stack_of_stem(release, stem)]
    return stack_grid(float(row["ra"]), float(row["dec"]), size_deg=float(row["size_deg"]),
                      pixel_scale_arcsec=config["survey"]["pixel_scale"])


def chi2_file(suffix):
    """Pattern of a tile's chi-squared file, e.g. ``.../CFHTLS_D_gri_..._T0002/CFHTLS_D_gri_..._T0002_chi2.fits``."""
    return str(RELEASES / "{release}" / "{chi2}" / ("{chi2}" + suffix))


def tile_stems(plan, release):
    """Product stems of the plan grouped by chi-squared tile name: a release tile's
    filters together, an image-by-image product alone (``546891p_r_V0001``)."""
    by_tile, images = {}, {}
    for name, mode, band in zip(plan.stacks["name"], plan.stacks["mode"], plan.stacks["band"]):
        stem = paths.release_stem(name, release)
        if mode == "stack":
            by_tile.setdefault(paths.tile_stem(stem), []).append(stem)
        else:
            images[paths.chi2_stem([stem], band=band)] = [stem]
    return {**{paths.chi2_stem(group): sorted(group) for group in by_tile.values()}, **images}


def get_tile_stacks(wildcards):
    """Stacks and weights of every filter of a chi-squared tile."""
    stems = tile_stems(get_plan(wildcards.release), wildcards.release)[wildcards.chi2]
    return {
        key: [stem_file(suffix).format(release=wildcards.release, stem=s) for s in stems]
        for key, suffix in (("stacks", ".fits"), ("weights", "_weight.fits"))
    }


def get_tile_grid(wildcards):
    """Param: the SWarp grid of a tile (that of its stacks)."""
    stem = tile_stems(get_plan(wildcards.release), wildcards.release)[wildcards.chi2][0]
    return stem_grid(wildcards.release, stem)


def get_stem_chi2(wildcards):
    """The chi-squared image (and weight) a stack's catalogue detects on."""
    for chi2, stems in tile_stems(get_plan(wildcards.release), wildcards.release).items():
        if wildcards.stem in stems:
            return {key: chi2_file(suffix).format(release=wildcards.release, chi2=chi2)
                    for key, suffix in (("chi2", "_chi2.fits"), ("chi2_weight", "_chi2_weight.fits"))}
    raise WorkflowError(f"{wildcards.stem} is not a stack of the plan")


def get_catalogue_options(wildcards):
    """Param: options of the release catalogue on top of release.sex (apertures in pixels...)."""
    apertures = aperture_pixels(config["catalogues"]["phot_apertures_arcsec"])
    return {"PHOT_APERTURES": apertures, "BACK_SIZE": config["catalogues"]["back_size"],
            **config["catalogues"]["overrides"]}


def get_provenance_inputs(wildcards):
    """Command files of the steps that made a product, and the files they read."""
    release, stem = wildcards.release, wildcards.stem
    chi2 = get_stem_chi2(wildcards)["chi2"].removesuffix("_chi2.fits")
    steps = {"scamp_cmd": stem_file("_scamp.cmd"), "swarp_cmd": stem_file("_swarp.cmd"),
             "chi2_cmd": chi2 + "_chi2.cmd", "sex_cmd": stem_file("_sex.cmd")}
    found = {k: v.format(release=release, stem=stem) for k, v in steps.items()}
    # the tile's other filters enter the chi-squared image
    tile = [s for s in tile_stems(get_plan(release), release)[Path(chi2).name] if s != stem]
    found.update(
        exposures=get_stack_exposures(wildcards),
        weights=get_stack_weights(wildcards),
        catalogs=get_astrometric_catalogs(wildcards),
        aheads=get_astrometric_aheads(wildcards),
        tile_stacks=[stem_file(suffix).format(release=release, stem=other)
                     for other in tile for suffix in (".fits", "_weight.fits")],
        configs=[str(ASTROMATIC / name) for name in
                 ("scamp.scamp", "stack.swarp", "chi2.swarp", "release.sex", "release.param",
                  "gauss_3.0_5x5.conv", "default.nnw")],
    )
    return found


def get_provenance_options(wildcards):
    """Param: per step, the options given on top of the configuration files."""
    return {
        "scamp": dict(config["calibration"]["scamp_overrides"]),
        "swarp": {**get_stack_grid(wildcards), **config["coaddition"]["swarp_overrides"]},
        "sextractor": get_catalogue_options(wildcards),
    }


def get_release_scamp_xml(wildcards):
    """SCAMP XML of every planned product of a release, keyed by product stem."""
    plan = get_plan(wildcards.release)
    return {
        stem: stem_file("_scamp.xml").format(release=wildcards.release, stem=stem)
        for stem in (paths.release_stem(n, wildcards.release) for n in plan.stacks["name"])
    }


def get_stack_name(wildcards):
    """Param: the plan's name of a product (``CFHTLS_D_r_141927+524056``, ``546891p_V0001``)."""
    return stack_of_stem(wildcards.release, wildcards.stem)


def stack_of_stem(release, stem):
    """The plan's stack name of a product stem (``..._T0002`` or ``NNNNNNp_V0001``)."""
    try:
        return _cached_plan(release)[1][stem]
    except KeyError:
        raise WorkflowError(f"{stem} is not in the plan of {release}") from None


def release_targets(release):
    """Input function of target ``release_<name>``: every planned stack's products."""

    def targets(wildcards):
        plan = get_plan(release)
        targets = []
        for name, mode in zip(plan.stacks["name"], plan.stacks["mode"]):
            stem = paths.release_stem(name, release)
            suffixes = ["_stack.list", "_astrom.list", "_scamp.xml", "_scamp_accept.xml", "_heads",
                        ".fits", "_weight.fits", "_ldac.fits", "_dust.fits", "_cmd.txt", ".xml",
                        "_spica.xml"]
            suffixes += ["_m.png", "_m_med.png", "_wmm.png", "_wmm_med.png", "_bkg_m.png"]
            if mode != "stack":  # image by image: the image's own SCAMP head (seed: _V0001_head.txt)
                suffixes += [paths.HEAD_SUFFIX]  # and its .ahead if photometric (_V0001_ahed.txt)
                suffixes += [paths.AHEAD_SUFFIX] if is_photometric(paths.parse_image_stem(stem)[0]) else []
            targets += [stem_file(s).format(release=release, stem=stem) for s in suffixes]
        targets += [chi2_file("_chi2.png").format(release=release, chi2=chi2)
                    for chi2 in tile_stems(plan, release)]
        return targets + [release_file(s).format(release=release)
                          for s in ("_pending.txt", "_scamp_fields.csv")]

    return targets


def get_done_stems(wildcards):
    """Param: planned products already made (their final stack image exists)."""
    plan = get_plan(wildcards.release)
    done = []
    for name in plan.stacks["name"]:
        stem = paths.release_stem(name, wildcards.release)
        if Path(stem_file(".fits").format(release=wildcards.release, stem=stem)).exists():
            done.append(name)
    return sorted(done)


checkpoint plan_release:
    """Select the exposures of a release and plan its stacks (seed 3.2.1)."""
    input:
        registry=REGISTRY_EXPORT,
    output:
        plan=release_file("_plan.csv"),
        selection=release_file("_selection.csv"),
        lists=release_file("_lists.json"),
    params:
        release=get_release_config,
        survey=config["survey"],
        planning=config["planning"],
        software=software("plan_release"),
    log:
        "logs/releases/{release}/plan_release.log",
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/plan_release.py"


rule write_stack_lists:
    """The stack list (exposures co-added) and the astrometric list (exposures calibrated together)."""
    input:
        # ancient: a new plan alone reruns nothing; the lists themselves (params)
        # decide, so a regrade reruns exactly the stacks whose lists change
        plan=ancient(release_file("_plan.csv")),
    output:
        stack=stem_file("_stack.list"),
        astrometric=stem_file("_astrom.list"),
    params:
        lists=get_stack_lists,
    log:
        "logs/releases/{release}/{stem}/write_stack_lists.log",
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/write_stack_lists.py"


rule report_pending:
    """The seed's "Pending processes" view of a release."""
    input:
        plan=release_file("_plan.csv"),
        lists=release_file("_lists.json"),
    output:
        report=release_file("_pending.txt"),
    params:
        done=get_done_stems,
        longest=config["planning"]["longest_stacks"],
    log:
        "logs/releases/{release}/report_pending.log",
    conda:
        "../envs/spica.yaml"
    script:
        "../scripts/report_pending.py"


for _release in config["releases"]:

    rule:
        name:
            f"plan_{_release}"
        input:
            release_file("_plan.csv").format(release=_release),
            release_file("_pending.txt").format(release=_release),

    rule:
        name:
            f"release_{_release}"
        input:
            release_targets(_release),
