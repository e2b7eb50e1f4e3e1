"""One exposure's step 1 in one job: defect masks -> WeightWatcher ->
SExtractor -> PSFEx -> QualityFITS-in QA.

At survey scale (7,000 exposures) every Snakemake job costs planning time and,
on a cluster, a submission; everything that turns an accepted Elixir exposure
into its weight and flag maps, catalogue, PSF model and QA (plots,
diagnostics, XML) is therefore one rule (``reduce_exposure``, after the
integrity check) calling :func:`reduce_exposure`, which calls the existing
library function of each step:

1. :func:`spica.step1.defects.write_defect_map` (cosmic rays, trails,
   saturation, NaN) writes the defect map, a file private to the job
   (``<expnum>p_defects.fits`` beside the products, deleted at the end); the
   CCD pixels it reads are kept (:class:`KeptPixels`: a map of the file's
   int16 pixels, or a 16-bit copy) for the QA, so the exposure is read once;
2. :func:`spica.astromatic.weightwatcher.run_weightwatcher`: weight and flag
   maps and XML;
3. :func:`spica.astromatic.sextractor.run`: FITS-LDAC catalogue, XML and
   mini-background;
4. :func:`spica.astromatic.psfex.run`: the PSF model (``_ldac.psf``, named by
   PSFEx after the catalogue) and XML;
5. :func:`spica.step1.qa.assess_exposure`: the 21 QA plots, ``_diag.fits`` and
   the QA XML ``NNNNNNp.xml``, written last (the plots are one product with it,
   :data:`spica.paths.STEP1_DECLARED`: old plots are deleted first).

The defect and QA steps run with freed memory kept for reuse
(:func:`spica.step1._memory.reused_memory`: a CCD's arrays reuse the previous
CCD's pages instead of faulting in new ones), given back before the tools run,
and with the objects alive when they start left out of Python's cyclic
collections (:func:`spica.step1._memory.frozen_objects`); the QA's imports run
without collections (:func:`spica.step1._memory.paused_collector`). The defect
step analyses ``threads`` CCDs side by side (the rule gives one: see ``rules/step1.smk``).

Each step is timed by :class:`spica.step1.timing.StepTimer` (given or made
here): the ``reduce_exposure.steps.json`` beside the rule's benchmark.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from spica import paths
from spica.astromatic import psfex, sextractor
from spica.astromatic.weightwatcher import run_weightwatcher
from spica.step1._memory import frozen_objects, paused_collector, reused_memory
from spica.step1.defects import write_defect_map
from spica.step1.timing import StepTimer

__all__ = ["OUTPUT_KEYS", "QA_KEYS", "CONFIG_KEYS", "TOOL_KEYS", "STEPS", "KeptPixels", "defects_path",
           "reduce_exposure"]

#: The products of the tools' steps (:mod:`spica.paths` step 1 keys).
OUTPUT_KEYS = ("weight", "flag", "ww_xml", "ldac", "sex_xml", "minibkg", "psf", "psfex_xml")
#: The products of the QA step (its 21 plots go beside ``qa_xml``: :func:`spica.paths.qa_plot_paths`).
QA_KEYS = ("diag", "qa_xml")
#: The AstrOmatic configuration files it reads, key -> what they configure.
CONFIG_KEYS = {"ww": "WeightWatcher", "sex": "SExtractor", "param": "SExtractor parameters",
               "conv": "SExtractor filter", "nnw": "SExtractor star/galaxy network",
               "psfex": "PSFEx"}
#: The tools it runs (config ``tools:`` names).
TOOL_KEYS = ("weightwatcher", "sextractor", "psfex")
#: The timed steps, in order, and their kind.
STEPS = {"defects": "python", "weightwatcher": "tool", "sextractor": "tool", "psfex": "tool",
         "qa": "python"}


class KeptPixels:
    """The CCD pixels read by the defect step, kept for the QA step.

    A 16-bit exposure (``BITPIX = 16``, ``BSCALE = 1``: Elixir's) read
    straight from the file is kept as the read-only map of its int16 pixels
    the defect step converted (:func:`spica.step1._pixels.raw_integer_image`):
    no copy and no memory of the process' own (a 680 MB copy cost 1.2-1.9 s
    of page faults per exposure, more than reading the file again); a
    16-bit exposure read by astropy (``.fits.fz``) is copied in 16 bits
    (uint16 for ``BZERO = 32768``, else int16 minus BZERO); anything else in
    float32. :meth:`__call__` gives a CCD back in float32, the
    values :mod:`astropy.io.fits` read. Use as ``keep`` of
    :func:`spica.step1.defects.write_defect_map` (:meth:`keep`).
    """

    def __init__(self) -> None:
        self._ccds: dict[int, tuple[np.ndarray, float | None]] = {}

    def keep(self, index: int, pixels: np.ndarray, offset: float | None, raw: np.ndarray | None = None) -> None:
        """Keep CCD ``index`` (0-based image extension); ``offset`` and ``raw``: see
        :func:`~spica.step1.defects.write_defect_map` (``raw`` is kept as it is: no copy)."""
        if raw is not None and offset is not None:
            self._ccds[index] = (raw, offset)
        elif offset == 32768:  # unsigned 16-bit (Elixir's): the values themselves are exact in uint16
            self._ccds[index] = (pixels.astype(np.uint16), 0.0)
        elif offset is not None:
            self._ccds[index] = (np.subtract(pixels, np.float32(offset)).astype(np.int16), offset)
        else:
            self._ccds[index] = (np.array(pixels, dtype=np.float32), None)

    def __len__(self) -> int:
        return len(self._ccds)

    def __call__(self, index: int) -> np.ndarray | None:
        """CCD ``index`` in float32 (None if not kept)."""
        if index not in self._ccds:
            return None
        pixels, offset = self._ccds[index]
        if offset is None:
            return pixels
        out = pixels.astype(np.float32)
        if offset:
            out += np.float32(offset)
        return out

    def integers(self, index: int) -> tuple[np.ndarray, float] | None:
        """CCD ``index`` as kept in 16 bits and the offset to add (``pixels = values +
        offset``, exact), without the float32 conversion; None if not kept or kept in float."""
        kept = self._ccds.get(index)
        if kept is None or kept[1] is None:
            return None
        return kept[0], float(kept[1])

    def drop(self, index: int) -> None:
        """Forget CCD ``index`` (its memory is freed)."""
        self._ccds.pop(index, None)


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
    qa: Mapping[str, Any] | None = None,
    log: Any = None,
    timer: StepTimer | None = None,
) -> dict[str, Any]:
    """Defect masks, weight/flag maps, catalogue, PSF model and QA of one exposure.

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
        The job's threads: CCDs the defect step analyses side by side (the tools
        are run with their configuration's ``NTHREADS``, 1).
    qa : mapping, optional
        The QA step: ``outputs`` (:data:`QA_KEYS` -> path; the 21 plots are
        written beside ``qa_xml``, which is written last) and ``limits``
        (config ``step1.grading``). Without it, no QA (the tools' products only).
    log : file, optional
        Receives the tools' output and the commands run.
    timer : StepTimer, optional
        Records the steps (:data:`STEPS`); by default a new one, returned.

    Returns
    -------
    dict
        ``defects``: the defect pixel counts per EXTNAME; ``commands``: step ->
        the command run; ``timer``: the :class:`~spica.step1.timing.StepTimer`;
        ``qa``: the QA summary (:func:`spica.step1.qa.assess_exposure`), None
        without ``qa``.

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
    if qa is not None:
        _check_keys("qa", qa, ("outputs", "limits"))
        _check_keys("qa outputs", qa["outputs"], QA_KEYS)
    out = {key: Path(outputs[key]) for key in OUTPUT_KEYS}
    psf_dir = out["psf"].parent
    if out["psf"] != psf_dir / (out["ldac"].stem + ".psf"):
        raise ValueError(f"PSFEx writes {out['ldac'].stem}.psf beside the catalogue, not {out['psf']}")
    if timer is None:
        expnum, _ = paths.parse_step1_name(out["weight"].name)
        timer = StepTimer("reduce_exposure", str(expnum))
    defects = defects_path(out["weight"])
    commands: dict[str, list[str]] = {}
    pixels = KeptPixels() if qa is not None else None
    try:
        with timer.step("defects", STEPS["defects"]), reused_memory(), frozen_objects():
            counts = write_defect_map(exposure, defects, cosmics=cosmics, trails=trails,
                                      mask_path=mask, threads=max(1, threads),
                                      keep=None if pixels is None else pixels.keep)
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
    summary = None
    if qa is not None:
        with timer.step("qa", STEPS["qa"]), reused_memory():
            summary = _assess(exposure, out, qa, pixels)
    return {"defects": counts, "commands": commands, "timer": timer, "qa": summary}


def _assess(exposure: str | Path, out: Mapping[str, Path], qa: Mapping[str, Any],
            pixels: KeptPixels | None) -> dict[str, Any]:
    """The QA step: old plots deleted, then plots, diagnostics and the QA XML (last)."""
    with paused_collector():  # matplotlib: imported when the tools are done
        from spica.step1.qa import assess_exposure

    qa_out = {key: Path(qa["outputs"][key]) for key in QA_KEYS}
    plots = paths.qa_plot_paths(qa_out["qa_xml"])
    for plot in plots.values():  # one product with the XML: no stale plot beside a new XML
        plot.unlink(missing_ok=True)
    with frozen_objects():  # the modules imported, matplotlib's included, left out of the collections
        return assess_exposure(
            exposure=exposure, weight=out["weight"], flag=out["flag"], ldac=out["ldac"],
            sex_xml=out["sex_xml"], minibkg=out["minibkg"], psf=out["psf"], psfex_xml=out["psfex_xml"],
            outputs={**plots, **qa_out}, limits=qa["limits"],
            science=pixels if pixels is not None and len(pixels) else None,
        )
