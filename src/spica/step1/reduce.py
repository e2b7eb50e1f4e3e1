"""One exposure's step 1 reduction in one job: defect masks -> WeightWatcher ->
SExtractor -> PSFEx.

At survey scale (7,000 exposures) every Snakemake job costs planning time and,
on a cluster, a submission; the four steps that turn an Elixir exposure into
its weight and flag maps, its catalogue and its PSF model are therefore one
rule (``reduce_exposure``) calling :func:`reduce_exposure`, which calls the
existing library function of each step:

1. :func:`spica.step1.defects.write_defect_map` (cosmic rays, trails,
   saturation, NaN) writes the defect map, a file private to the job
   (``<expnum>p_defects.fits`` beside the products, deleted at the end);
2. :func:`spica.astromatic.weightwatcher.run_weightwatcher`: weight and flag
   maps and XML;
3. :func:`spica.astromatic.sextractor.run`: FITS-LDAC catalogue, XML and
   mini-background;
4. :func:`spica.astromatic.psfex.run`: the PSF model (``_ldac.psf``, named by
   PSFEx after the catalogue) and XML.

Each step is timed by :class:`spica.step1.timing.StepTimer` (given or made
here): the ``reduce_exposure.steps.json`` beside the rule's benchmark.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from spica import paths
from spica.astromatic import psfex, sextractor
from spica.astromatic.weightwatcher import run_weightwatcher
from spica.step1.defects import write_defect_map
from spica.step1.timing import StepTimer

__all__ = ["OUTPUT_KEYS", "CONFIG_KEYS", "TOOL_KEYS", "STEPS", "defects_path", "reduce_exposure"]

#: The products of the job (:mod:`spica.paths` step 1 keys).
OUTPUT_KEYS = ("weight", "flag", "ww_xml", "ldac", "sex_xml", "minibkg", "psf", "psfex_xml")
#: The AstrOmatic configuration files it reads, key -> what they configure.
CONFIG_KEYS = {"ww": "WeightWatcher", "sex": "SExtractor", "param": "SExtractor parameters",
               "conv": "SExtractor filter", "nnw": "SExtractor star/galaxy network",
               "psfex": "PSFEx"}
#: The tools it runs (config ``tools:`` names).
TOOL_KEYS = ("weightwatcher", "sextractor", "psfex")
#: The timed steps, in order, and their kind.
STEPS = {"defects": "python", "weightwatcher": "tool", "sextractor": "tool", "psfex": "tool"}


def defects_path(weight: str | Path) -> Path:
    """The job's private defect map, beside the weight map (``760101p_defects.fits``)."""
    weight = Path(weight)
    expnum, _ = paths.parse_step1_name(weight.name)
    return weight.with_name(paths.step1_name(expnum, "defects"))


def _check_keys(what: str, given: Mapping[str, Any], wanted) -> None:
    missing = sorted(set(wanted) - set(given))
    if missing:
        raise ValueError(f"reduce_exposure: {what} lacks {', '.join(missing)}")


def reduce_exposure(
    exposure: str | Path,
    *,
    flat: str | Path,
    mask: str | Path,
    outputs: Mapping[str, str | Path],
    configs: Mapping[str, str | Path],
    binaries: Mapping[str, str],
    cosmics: Mapping[str, Any],
    trails: Mapping[str, Any],
    flat_range: Any,
    sextractor_options: Mapping[str, Any],
    psfex_options: Mapping[str, Any],
    threads: int = 1,
    log: Any = None,
    timer: StepTimer | None = None,
) -> dict[str, Any]:
    """Defect masks, weight/flag maps, catalogue and PSF model of one exposure.

    Parameters
    ----------
    exposure : str or Path
        Elixir exposure (``760101p.fits`` or ``.fits.fz``).
    flat, mask : str or Path
        Uncompressed Elixir flat and bad-pixel mask (the staged copies).
    outputs : mapping
        Step 1 key -> path, every key of :data:`OUTPUT_KEYS`. ``psf`` must be
        the name PSFEx gives (the catalogue's stem + ``.psf``, in its folder).
    configs : mapping
        :data:`CONFIG_KEYS` -> AstrOmatic configuration file.
    binaries : mapping
        :data:`TOOL_KEYS` -> resolved executable.
    cosmics, trails : mapping
        Config ``step1.weights.cosmics`` / ``.trails``
        (:func:`spica.step1.defects.write_defect_map`).
    flat_range : sequence of float
        Config ``step1.weights.flat_range`` (WeightWatcher's flat limits).
    sextractor_options, psfex_options : mapping
        Command-line options (:func:`spica.astromatic.sextractor.step1_options`,
        :func:`spica.astromatic.psfex.step1_options`).
    threads : int
        CCDs analysed side by side by the defect step (the tools are run with
        their configuration's ``NTHREADS``, 1).
    log : file, optional
        Receives the tools' output and the commands run.
    timer : StepTimer, optional
        Records the four steps (:data:`STEPS`); by default a new one, returned.

    Returns
    -------
    dict
        ``defects``: the defect pixel counts per EXTNAME; ``commands``: step ->
        the command run; ``timer``: the :class:`~spica.step1.timing.StepTimer`.

    Raises
    ------
    ValueError
        A missing output, configuration or tool key, or a ``psf`` path PSFEx
        would not write.
    subprocess.CalledProcessError
        If a tool fails (the defect map is removed all the same).
    """
    _check_keys("outputs", outputs, OUTPUT_KEYS)
    _check_keys("configs", configs, CONFIG_KEYS)
    _check_keys("binaries", binaries, TOOL_KEYS)
    out = {key: Path(outputs[key]) for key in OUTPUT_KEYS}
    psf_dir = out["psf"].parent
    if out["psf"] != psf_dir / (out["ldac"].stem + ".psf"):
        raise ValueError(f"PSFEx writes {out['ldac'].stem}.psf beside the catalogue, not {out['psf']}")
    if timer is None:
        expnum, _ = paths.parse_step1_name(out["weight"].name)
        timer = StepTimer("reduce_exposure", str(expnum))
    defects = defects_path(out["weight"])
    commands: dict[str, list[str]] = {}
    try:
        with timer.step("defects", STEPS["defects"]):
            counts = write_defect_map(exposure, defects, cosmics=cosmics, trails=trails,
                                      mask_path=mask, threads=threads)
        with timer.step("weightwatcher", STEPS["weightwatcher"]):
            commands["weightwatcher"] = run_weightwatcher(
                binaries["weightwatcher"], configs["ww"], flat=flat, mask=mask, defects=defects,
                weight_out=out["weight"], flag_out=out["flag"], xml_out=out["ww_xml"],
                flat_range=flat_range, log=log,
            ).command
        with timer.step("sextractor", STEPS["sextractor"]):
            commands["sextractor"] = sextractor.run(
                binaries["sextractor"], images=exposure, config=configs["sex"],
                param=configs["param"], conv=configs["conv"], nnw=configs["nnw"],
                weights=out["weight"], flags=out["flag"], catalog=out["ldac"],
                xml_out=out["sex_xml"], checkimage=out["minibkg"], options=sextractor_options,
                log=log,
            ).command
        with timer.step("psfex", STEPS["psfex"]):
            commands["psfex"] = psfex.run(
                binaries["psfex"], catalog=out["ldac"], config=configs["psfex"], psf_dir=psf_dir,
                xml_out=out["psfex_xml"], options=psfex_options, log=log,
            ).command
    finally:
        defects.unlink(missing_ok=True)
    if log is not None:
        for step, command in commands.items():
            print(f"{step}: {' '.join(map(str, command))}", file=log, flush=True)
    return {"defects": counts, "commands": commands, "timer": timer}
