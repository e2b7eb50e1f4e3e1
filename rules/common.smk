# Shared definitions: path grammar, wildcard constraints, tools, input functions.
import functools
import json
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

from spica import __version__ as SPICA_VERSION
from spica import paths
from spica.step1.inventory import discover_exposures, find_calibration_file, read_inventory
from spica.registry import read_metadata
from spica.tools import resolve_tools, script_code_hash

RESULTS = config["results"]
ASTROMATIC = Path(workflow.basedir) / "config" / "astromatic"
ENVS = Path(workflow.basedir) / "envs"

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


@functools.lru_cache(maxsize=None)
def _script_hash(script):
    """Code hash of what ``scripts/<script>.py`` imports, once per workflow run."""
    return script_code_hash(SCRIPTS / f"{script}.py")


def software(script=None, tools=()):
    """Provenance param: package version, a hash of the ``spica`` code the rule's
    script imports (derived from the script itself) and the tool versions."""
    return {
        "spica": SPICA_VERSION,
        "code": _script_hash(script) if script else "",
        **{name: tool_version(name) for name in tools},
    }


def astromatic_overrides(options):
    """Format ``{KEY: value}`` as ``-KEY value`` command-line options."""
    return " ".join(f"-{key} {value}" for key, value in sorted(options.items()))


# ---------------------------------------------------------------- exposures
INCOMING = discover_exposures(config["inputs"]["exposures"])
if not INCOMING.files:
    logger.warning(
        f"SPICA: no exposures in {config['inputs']['exposures']!r}; "
        "for the demo survey run `bin/spica demo` (or `spica-demo --config config/config.yaml`)"
    )
STEP1_DIR = Path(RESULTS) / "step1"
CALIBRATIONS = Path(RESULTS) / "calibrations"
INVENTORY = str(STEP1_DIR / "inventory.csv")
QUARANTINE = str(Path(RESULTS) / "quarantine" / "quarantine.csv")


def step1(key):
    """Snakemake pattern of a step 1 product (wildcard ``expnum``)."""
    return paths.step1_pattern(RESULTS, key)


def step1_log(name):
    """Log path mirroring the ``expnum`` wildcard."""
    return f"logs/step1/{{expnum}}p/{name}.log"


def get_step1_dir(wildcards):
    """Folder of an exposure's step 1 products (PSFEx names its output itself)."""
    return str(paths.step1_path(RESULTS, wildcards.expnum, "psf").parent)


def optional_input(path):
    """``path`` if the file exists, else nothing (observing metadata and grades may not exist yet)."""
    return [path] if Path(path).is_file() else []


@functools.lru_cache(maxsize=4)
def _photometric_flags(path, mtime):
    """Odometer -> photometric, read once per version of the metadata file."""
    metadata = read_metadata(path)
    return dict(zip(metadata["expnum"].astype(int), metadata["photometric"].astype(bool)))


def is_photometric(expnum):
    """Whether the observing metadata flags exposure ``expnum`` photometric."""
    path = next(iter(optional_input(config["inputs"]["metadata"])), None)
    if path is None:
        return False
    return _photometric_flags(path, Path(path).stat().st_mtime_ns).get(int(expnum), False)


def get_photometric_flag(wildcards):
    """Param: whether the exposure is photometric (its ``.ahead``'s PHOTFLAG)."""
    return is_photometric(wildcards.expnum)


def aperture_pixels(diameters_arcsec):
    """SExtractor PHOT_APERTURES (pixels) from aperture diameters in arcsec."""
    return ",".join(f"{d / config['survey']['pixel_scale']:.2f}" for d in diameters_arcsec)


def get_raw_exposure(wildcards):
    return str(INCOMING.files[int(wildcards.expnum)])


def get_check_files(wildcards=None):
    return [paths.step1_path(RESULTS, expnum, "check") for expnum in sorted(INCOMING.files)]


def accepted_exposures():
    """Odometers that passed the integrity check (after the inventory checkpoint)."""
    inventory = checkpoints.make_inventory.get().output.inventory
    return [int(row["expnum"]) for row in read_inventory(inventory) if row["status"] == "ok"]


def get_verdict(wildcards):
    """The integrity verdict JSON of an accepted exposure."""
    checkpoints.make_inventory.get()
    return json.loads(paths.step1_path(RESULTS, wildcards.expnum, "check").read_text())


def staged_calibration(raw_path):
    """Uncompressed working copy of a raw Elixir calibration file."""
    name = Path(raw_path).name
    for suffix in (".gz", ".fz"):
        name = name.removesuffix(suffix)
    return str(CALIBRATIONS / name)


def get_flat(wildcards):
    return staged_calibration(get_verdict(wildcards)["calibrations"]["flat"])


def get_mask(wildcards):
    return staged_calibration(get_verdict(wildcards)["calibrations"]["mask"])


def get_raw_calibration(wildcards):
    found = find_calibration_file(wildcards.calib, config["inputs"]["calibrations"])
    if found is None:
        raise WorkflowError(f"calibration {wildcards.calib} not in {config['inputs']['calibrations']}")
    return str(found)


def get_step1_products(wildcards):
    """Every delivered step 1 product of every accepted exposure."""
    return [
        str(paths.step1_path(RESULTS, expnum, key))
        for expnum in accepted_exposures()
        for key in paths.STEP1_PRODUCTS
    ]


def get_step1_for_registry(wildcards):
    """QA summaries and diagnostics of every accepted exposure."""
    return {
        key: [str(paths.step1_path(RESULTS, expnum, key)) for expnum in accepted_exposures()]
        for key in ("qa_xml", "diag")
    }
