"""Stack planning: from the selected exposures to the stacks of a release.

The seed (3.2.1) defines where a selected exposure goes:

* **Deep** (``D``): the stack of the Deep field centre (Deep RUNIDs only);
  here the nearest Deep field within ``deep_match_factor * tile_size_deg`` of
  the exposure centre.
* **Wide** (``W``): the stack of the nearest Wide target whose centre lies
  within ``wide_match_radius_arcmin`` (10') of the exposure centre; farther
  exposures are not stacked (criterion ``wide_radius``), which keeps one
  exposure out of several Wide stacks.
* **Wide pre-survey** (``Pre-W``): one stack per pointing, centred on it
  (the seed's "1 exposure only per image").
* **Very Wide** (``VW``) and PI programs processed on request (``PI``): the
  image-by-image mode, one product ``546891p_V0001`` per exposure.

A selected exposure that gets no stack fails criterion ``no_stack``. Every
stack is ``tile_size_deg`` on a side and has two lists: the *stack list*
(selected exposures of that band and stack, SWarp input) and the
*astrometric list* (every ``ok`` exposure of the release's grades, any filter
and any program, within ``astrometric_radius_deg`` of the stack centre: SCAMP
input; it always contains the stack list). Stacks are assigned to processing
nodes greedily, largest SCAMP list first, to the least loaded node.

Exposures of a *repairable* grade (``calibration.repairable_grades``, D: one
CCD misplaced by its header WCS) enter both lists as *conditional* members
(:attr:`Plan.conditional_lists`): the stack list is decided before SCAMP runs,
so they are candidates, and the product's accept summary stacks them only when
SCAMP's median focal plane repaired them (:mod:`spica.calibration.accept`). A
stack is planned only around at least one unconditional exposure: a
conditional exposure alone in its stack stays out (criterion ``grade``).

A :class:`Plan` also answers the workflow's questions about its products:
:meth:`Plan.products` (product stem -> name, mode, band, centre, tile,
solution), :meth:`Plan.tiles` (chi-squared tile -> the stems detected on it)
and :meth:`Plan.solutions` (astrometric solution -> the stems that share it),
so the rules only wire files.

The stacks of one tile in several filters have the same astrometric list, and
image-by-image products at one pointing may too: SCAMP runs once per distinct
list (a *solution*, named by :func:`spica.paths.solution_id`) and every
product that shares it takes its heads from that run.

All functions are pure except :func:`write_plan`, :func:`read_plan`,
:func:`write_exposure_list`, :func:`read_exposure_list`, :func:`done_products`,
:func:`missing_product_files`, :func:`missing_files`, :func:`stale_solutions`,
:func:`pending_view` and :func:`refresh_pending_report`, which read or write the disk.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import astropy.units as u
import numpy as np
import pandas as pd
from astropy.coordinates import SkyCoord, search_around_sky

from spica.paths import (
    RELEASE_FILES,
    SOLUTIONS_FOLDER,
    chi2_stem,
    exposure_name,
    image_by_image_name,
    parse_exposure_name,
    product_name,
    product_path,
    release_path,
    release_stem,
    solution_id,
    stack_name,
    tile_stem,
)
from spica.release.selection import (
    SURVEY_COMPONENTS,
    add_failure,
    evaluate_criteria,
    exposure_bands,
    grade_in,
)
from spica.sky import format_dec, format_ra

__all__ = [
    "STACK_CRITERIA",
    "STACK_COLUMNS",
    "SELECTION_COLUMNS",
    "PLAN_FILES",
    "Plan",
    "PlannedProduct",
    "assign_stacks",
    "plan_release",
    "plan_images",
    "plan_files",
    "write_plan",
    "read_plan",
    "write_exposure_list",
    "read_exposure_list",
    "pending_report",
    "done_products",
    "missing_product_files",
    "missing_files",
    "stale_solutions",
    "PendingViewError",
    "pending_view",
    "refresh_pending_report",
]

#: Geometric criteria added by :func:`assign_stacks`, after ``spica.release.selection.CRITERIA``.
STACK_CRITERIA: tuple[str, ...] = ("wide_radius", "no_stack")

#: Columns of ``Plan.stacks`` (``plan.csv``), one row per stack or image.
STACK_COLUMNS: tuple[str, ...] = (
    "name", "mode", "release", "version", "survey", "filter", "band", "ra", "dec",
    "size_deg", "n_scamp", "n_swarp", "node", "status",
)

#: Columns of ``selection.csv`` (those present in the exposures table).
SELECTION_COLUMNS: tuple[str, ...] = (
    "expnum", "object", "runid", "filter", "band", "date_obs", "exptime", "airmass",
    "skyprobe", "qa_fwhm_arcsec", "grade", "grade_provisional", "status", "ra_deg",
    "dec_deg", "survey", "selected", "conditional", "first_failure", "failures", "stack", "mode",
)

#: Files written by :func:`write_plan`, key -> name; the names are prefixed with
#: ``<release>_`` when the plan knows its release (``T0002_plan.csv``).
PLAN_FILES: dict[str, str] = {
    key: RELEASE_FILES[key].removeprefix("_") for key in ("plan", "selection", "lists")
}

_STRING_STACK_COLUMNS = ("name", "mode", "release", "version", "survey", "filter", "band",
                         "node", "status")
_STRING_SELECTION_COLUMNS = ("object", "runid", "filter", "band", "date_obs", "grade",
                             "status", "survey", "first_failure", "failures", "stack", "mode")


@dataclass(frozen=True)
class PlannedProduct:
    """One planned product of a release, as the workflow sees it.

    Attributes
    ----------
    stem
        Stem of its files: ``CFHTLS_D_r_141927+524056_T0002``, or the
        image-by-image name itself (``546891p_V0001``).
    name
        The plan's name (``CFHTLS_D_r_141927+524056``, ``546891p_V0001``).
    mode
        ``stack`` or ``image`` (image by image).
    band
        Its band letter.
    ra, dec
        Centre of its grid, in degrees.
    size_deg
        Side of its grid, in degrees.
    tile
        The chi-squared tile it is detected on (a key of :meth:`Plan.tiles`).
    solution
        The SCAMP solution of its astrometric list (a key of :meth:`Plan.solutions`).
    """

    stem: str
    name: str
    mode: str
    band: str
    ra: float
    dec: float
    size_deg: float
    tile: str
    solution: str


@dataclass
class Plan:
    """The plan of one release.

    Attributes
    ----------
    stacks
        One row per stack (mode ``stack``) or image-by-image product (mode
        ``image``), columns :data:`STACK_COLUMNS`, sorted by name.
    stack_lists
        Stack name -> sorted EXPNUMs stacked (SWarp input).
    astrometric_lists
        Stack name -> sorted EXPNUMs of the astrometric solution (SCAMP input).
    selection
        Every exposure with its verdict (``survey``, ``selected``,
        ``first_failure``, ``failures``) and its ``stack`` (``''`` if none).
    release
        Release name (``T0002``); ``''`` if unknown.
    conditional_lists
        Stack name -> sorted EXPNUMs of its stack list that are conditional
        (repairable grade, stacked only if the accept summary says repaired);
        stacks without any are absent.
    """

    stacks: pd.DataFrame
    stack_lists: dict[str, list[int]] = field(default_factory=dict)
    astrometric_lists: dict[str, list[int]] = field(default_factory=dict)
    selection: pd.DataFrame = field(default_factory=pd.DataFrame)
    release: str = ""
    conditional_lists: dict[str, list[int]] = field(default_factory=dict)

    def products(self) -> dict[str, PlannedProduct]:
        """Planned products by file stem, in the order of :attr:`stacks`.

        Computed once per plan (input functions ask for it once per job): a plan
        is not modified after :func:`plan_release` or :func:`read_plan` made it.
        """
        return self._products

    def tiles(self) -> dict[str, list[str]]:
        """Chi-squared tiles by name, each with the sorted stems detected on it.

        A release tile groups the stacks of every filter of one position
        (``CFHTLS_D_ri_141927+524056_T0002``: the ``r`` and ``i`` stacks); an
        image-by-image product is its own tile, named with its band
        (``546891p_r_V0001``, :func:`spica.paths.chi2_stem`). Release tiles come
        first, in plan order, then the image-by-image ones. Computed once per plan.
        """
        return self._tiles

    def solutions(self) -> dict[str, list[str]]:
        """Astrometric solutions by id, each with the stems of the products that share it.

        One per distinct astrometric list, in plan order of the first product
        that uses it, which names it (:func:`spica.paths.solution_id`); the
        stems are in plan order. Computed once per plan.
        """
        return self._solutions

    def solution_list(self, solution: str) -> list[int]:
        """The astrometric list (sorted EXPNUMs) of solution ``solution``.

        Raises
        ------
        KeyError
            If ``solution`` is not a solution of the plan.
        """
        stems = self._solutions.get(solution)
        if not stems:
            raise KeyError(f"{solution} is not a solution of the plan of {self.release or 'this release'}")
        return self.astrometric_lists[self._products[stems[0]].name]

    def stem_of(self, name: str) -> str:
        """File stem of planned product ``name`` (``<name>_T0002``, or ``name`` image by image).

        Raises
        ------
        KeyError
            If ``name`` is not in the plan.
        """
        stem = self._stems.get(name)
        if stem is None:
            raise KeyError(f"{name} is not in the plan of {self.release or 'this release'}")
        return stem

    def name_of(self, stem: str) -> str:
        """The plan's name of the product with file stem ``stem``.

        Raises
        ------
        KeyError
            If ``stem`` is not a product of the plan.
        """
        product = self._products.get(stem)
        if product is None:
            raise KeyError(f"{stem} is not in the plan of {self.release or 'this release'}")
        return product.name

    @cached_property
    def _stems(self) -> dict[str, str]:
        return {str(name): release_stem(str(name), str(release))
                for name, release in zip(self.stacks["name"], self.stacks["release"])}

    @cached_property
    def _tiles(self) -> dict[str, list[str]]:
        by_tile: dict[str | None, list[str]] = {}
        images: dict[str, list[str]] = {}
        for name, mode, band in zip(self.stacks["name"], self.stacks["mode"], self.stacks["band"]):
            stem = self._stems[str(name)]
            if mode == "stack":
                by_tile.setdefault(tile_stem(stem), []).append(stem)
            else:
                images[chi2_stem([stem], band=str(band))] = [stem]
        return {**{chi2_stem(group): sorted(group) for group in by_tile.values()}, **images}

    @cached_property
    def _solution_of(self) -> dict[str, str]:
        """Product stem -> solution id: the first product with a list names its solution."""
        by_list: dict[tuple[int, ...], str] = {}
        solution_of = {}
        for name in self.stacks["name"]:
            stem = self._stems[str(name)]
            members = tuple(sorted(int(e) for e in self.astrometric_lists[str(name)]))
            if members not in by_list:
                by_list[members] = solution_id(stem, members)
            solution_of[stem] = by_list[members]
        return solution_of

    @cached_property
    def _solutions(self) -> dict[str, list[str]]:
        solutions: dict[str, list[str]] = {}
        for stem, solution in self._solution_of.items():
            solutions.setdefault(solution, []).append(stem)
        return solutions

    @cached_property
    def _products(self) -> dict[str, PlannedProduct]:
        tile_of = {stem: tile for tile, stems in self._tiles.items() for stem in stems}
        products = {}
        for row in self.stacks.itertuples(index=False):
            stem = self._stems[str(row.name)]
            products[stem] = PlannedProduct(
                stem=stem, name=str(row.name), mode=str(row.mode), band=str(row.band),
                ra=float(row.ra), dec=float(row.dec), size_deg=float(row.size_deg),
                tile=tile_of[stem], solution=self._solution_of[stem],
            )
        return products


# --------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------

def _coords(ra: Iterable[float], dec: Iterable[float]) -> SkyCoord:
    ra = np.asarray(pd.to_numeric(pd.Series(list(ra)), errors="coerce"), dtype=float)
    dec = np.asarray(pd.to_numeric(pd.Series(list(dec)), errors="coerce"), dtype=float)
    return SkyCoord(ra=ra * u.deg, dec=dec * u.deg, frame="icrs")


def _nearest(exposures: SkyCoord, centres: list[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest centre and its great-circle separation (deg); -1/inf if none."""
    n = len(exposures)
    best = np.full(n, -1, dtype=int)
    best_sep = np.full(n, np.inf)
    for index, centre in enumerate(centres):
        target = SkyCoord(ra=float(centre["ra"]) * u.deg, dec=float(centre["dec"]) * u.deg,
                          frame="icrs")
        sep = exposures.separation(target).deg if n else np.zeros(0)
        closer = np.isfinite(sep) & (sep < best_sep)
        best[closer] = index
        best_sep[closer] = sep[closer]
    return best, best_sep


def assign_stacks(
    selection: pd.DataFrame,
    survey_cfg: Mapping[str, Any],
    *,
    image_version: str | None = None,
    deep_match_factor: float,
) -> pd.DataFrame:
    """Give every selected exposure its stack (or image-by-image product).

    Parameters
    ----------
    selection
        Output of :func:`spica.release.selection.evaluate_criteria` (needs ``expnum``,
        ``survey``, ``band`` or ``filter``, ``ra_deg``, ``dec_deg``,
        ``selected``, ``failures``).
    survey_cfg
        The ``survey`` section: ``deep_fields``, ``wide_targets``,
        ``tile_size_deg``, ``wide_match_radius_arcmin``.
    image_version
        Version of the image-by-image products (``V0001``) for VW and PI
        exposures; required when such exposures are selected.
    deep_match_factor
        A Deep exposure joins the nearest Deep field within this factor times
        ``tile_size_deg`` (``planning.deep_match_factor``).

    Returns
    -------
    pandas.DataFrame
        A copy with ``stack`` (name, ``''`` when not selected or no stack),
        ``mode`` (``stack``, ``image`` or ``''``), ``stack_ra``, ``stack_dec``
        (the stack centre), and ``failures``/``first_failure``/``selected``
        updated with ``wide_radius`` (Wide exposure farther than the radius
        from every target) and ``no_stack`` (no stack for this exposure).

    Raises
    ------
    ValueError
        If VW or PI exposures are selected and ``image_version`` is None.
    """
    result = selection.copy()
    n = len(result)
    surveys = result["survey"].astype(str).to_numpy()
    bands = exposure_bands(result).to_numpy()
    ra = pd.to_numeric(result.get("ra_deg", pd.Series(np.nan, index=result.index)),
                       errors="coerce").to_numpy(dtype=float)
    dec = pd.to_numeric(result.get("dec_deg", pd.Series(np.nan, index=result.index)),
                        errors="coerce").to_numpy(dtype=float)
    has_pos = np.isfinite(ra) & np.isfinite(dec)
    coords = _coords(ra, dec)

    candidate = np.full(n, "", dtype=object)
    mode = np.full(n, "", dtype=object)
    centre_ra = np.full(n, np.nan)
    centre_dec = np.full(n, np.nan)

    def assign_nearest(survey: str, centres: list, max_sep: float) -> np.ndarray:
        """Give each exposure of ``survey`` the stack of its nearest centre within
        ``max_sep`` (deg); return the mask of those left without one."""
        members = (surveys == survey) & has_pos
        missed = np.zeros(len(surveys), bool)
        if not members.any() or not centres:
            missed[members] = True
            return missed
        idx, sep = _nearest(coords[members], centres)
        for row, j, s in zip(np.flatnonzero(members), idx, sep):
            if j >= 0 and s <= max_sep:
                ra, dec = float(centres[j]["ra"]), float(centres[j]["dec"])
                candidate[row] = stack_name(survey, bands[row], ra, dec)
                mode[row] = "stack"
                centre_ra[row], centre_dec[row] = ra, dec
            else:
                missed[row] = True
        return missed

    assign_nearest("D", list(survey_cfg.get("deep_fields") or []),
                   float(survey_cfg["tile_size_deg"]) * float(deep_match_factor))
    wide_fail = assign_nearest("W", list(survey_cfg.get("wide_targets") or []),
                               float(survey_cfg["wide_match_radius_arcmin"]) / 60.0)

    for row in np.flatnonzero((surveys == "Pre-W") & has_pos):
        candidate[row] = stack_name("Pre-W", bands[row], ra[row], dec[row])
        mode[row] = "stack"
        centre_ra[row], centre_dec[row] = ra[row], dec[row]

    imaged = np.isin(surveys, ["VW", "PI"]) & has_pos
    selected_before = result["selected"].astype(bool).to_numpy()
    if image_version is None and (imaged & selected_before).any():
        raise ValueError("image_version is needed for the selected VW/PI exposures")
    if image_version is not None:
        for row in np.flatnonzero(imaged):
            candidate[row] = image_by_image_name(result["expnum"].iloc[row], image_version,
                                                 suffix="")
            mode[row] = "image"
            centre_ra[row], centre_dec[row] = ra[row], dec[row]

    failures = add_failure(result["failures"].fillna("").astype(str), wide_fail, "wide_radius")
    failures = add_failure(failures, (candidate == "") & ~wide_fail, "no_stack")
    selected = (failures == "").to_numpy()
    result["failures"] = failures
    result["first_failure"] = failures.str.split(";").str[0].fillna("")
    result["selected"] = selected
    result["stack"] = np.where(selected, candidate, "")
    result["mode"] = np.where(selected, mode, "")
    result["stack_ra"] = np.where(selected, centre_ra, np.nan)
    result["stack_dec"] = np.where(selected, centre_dec, np.nan)
    return result


# --------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------

def _assign_nodes(stacks: pd.DataFrame, nodes: list[str], load: str) -> list[str]:
    """Greedy: largest SCAMP list first, each to the least loaded node (first on ties)."""
    loads = {node: 0 for node in nodes}
    assigned = [""] * len(stacks)
    n_scamp = stacks["n_scamp"].astype(int).tolist()
    names = stacks["name"].astype(str).tolist()
    weights = [1] * len(stacks) if load == "stacks" else stacks[load].astype(int).tolist()
    for i in sorted(range(len(stacks)), key=lambda i: (-n_scamp[i], names[i])):
        node = min(nodes, key=lambda name: loads[name])
        assigned[i] = node
        loads[node] += weights[i]
    return assigned


def plan_release(
    exposures: pd.DataFrame,
    release_name: str,
    release_cfg: Mapping[str, Any],
    survey_cfg: Mapping[str, Any],
    planning_cfg: Mapping[str, Any],
    done: set[str] | None = None,
    *,
    repairable_grades: Iterable[str] = (),
) -> Plan:
    """Select the exposures of a release and plan its stacks.

    Parameters
    ----------
    exposures
        The registry's exposures table.
    release_name
        ``T0002``; its digits are the ``version`` of the stacks.
    release_cfg
        ``releases[release_name]`` of ``config/releases.yaml``.
    survey_cfg
        The ``survey`` section of the configuration.
    planning_cfg
        The ``planning`` section (``nodes``, ``node_load``, ``deep_match_factor``).
    done
        Names of finished stacks (``status`` ``done``); the others are ``pending``.
    repairable_grades
        Grades whose exposures enter the lists as conditional members
        (``calibration.repairable_grades``; see the module docstring).

    Returns
    -------
    Plan
        Stacks, stack and astrometric lists, and the judged exposures.
    """
    done = set(done or ())
    image_version = str(release_cfg["image_version"])
    repairable_grades = tuple(repairable_grades)
    selection = evaluate_criteria(exposures, release_cfg, survey_cfg,
                                  repairable_grades=repairable_grades)
    selection = assign_stacks(
        selection, survey_cfg, image_version=image_version,
        deep_match_factor=float(planning_cfg["deep_match_factor"]),
    )
    selection = _drop_conditional_only(selection)

    chosen = selection[selection["selected"].astype(bool)]
    names = chosen["stack"].astype(str).to_numpy()
    expnums = chosen["expnum"].astype(int).to_numpy()
    members: dict[str, list[int]] = {}
    for row, name in enumerate(names):
        members.setdefault(name, []).append(row)
    ordered = sorted(members)
    stack_lists: dict[str, list[int]] = {
        name: sorted(int(expnums[i]) for i in members[name]) for name in ordered
    }

    # one row per stack: its first member carries the stack attributes
    first = [members[name][0] for name in ordered]
    centre_ra = chosen["stack_ra"].to_numpy(dtype=float)[first]
    centre_dec = chosen["stack_dec"].to_numpy(dtype=float)[first]
    modes = chosen["mode"].astype(str).to_numpy()[first]
    bands = exposure_bands(chosen).to_numpy()[first] if len(chosen) else np.array([])
    filters = chosen["filter"].astype(str).to_numpy()

    def main_filter(rows: list[int]) -> str:
        counts = Counter(filters[rows].tolist())
        top = max(counts.values())
        return min(name for name, count in counts.items() if count == top)

    # the astrometric pool: every good exposure, any filter, any program
    # (repairable grades too: SCAMP's focal plane is what repairs them)
    grade = selection["grade"] if "grade" in selection.columns else \
        pd.Series(np.nan, index=selection.index)
    pool = selection[
        (selection["status"].astype(str) == "ok")
        & grade_in(grade, [*release_cfg["grades"], *repairable_grades])
    ]
    pool_ra = pd.to_numeric(pool["ra_deg"], errors="coerce").to_numpy(dtype=float)
    pool_dec = pd.to_numeric(pool["dec_deg"], errors="coerce").to_numpy(dtype=float)
    finite = np.isfinite(pool_ra) & np.isfinite(pool_dec)
    pool_expnums = pool["expnum"].to_numpy()[finite].astype(int)
    radius = float(survey_cfg["astrometric_radius_deg"])
    pair_stack = np.zeros(0, dtype=int)
    pair_expnum = np.zeros(0, dtype=int)
    if len(ordered) and finite.any():
        # pairs found with a k-d tree, then kept on their great-circle separation
        idx_stack, idx_pool, sep, _ = search_around_sky(
            _coords(centre_ra, centre_dec), _coords(pool_ra[finite], pool_dec[finite]),
            radius * u.deg * (1 + 1e-9),
        )
        keep = sep.deg <= radius
        pair_stack = np.asarray(idx_stack[keep], dtype=int)
        pair_expnum = pool_expnums[idx_pool[keep]]
        order = np.argsort(pair_stack, kind="stable")
        pair_stack, pair_expnum = pair_stack[order], pair_expnum[order]
    bounds = np.searchsorted(pair_stack, np.arange(len(ordered) + 1))
    astrometric_lists = {
        name: [int(e) for e in np.union1d(pair_expnum[bounds[i]:bounds[i + 1]],
                                          np.asarray(stack_lists[name], dtype=int))]
        for i, name in enumerate(ordered)
    }

    version = release_name[1:]
    rows = [{
        "name": name,
        "mode": str(modes[i]),
        "release": release_name,
        "version": image_version[1:] if modes[i] == "image" else version,
        "survey": str(chosen["survey"].iloc[first[i]]),
        "filter": main_filter(members[name]),
        "band": str(bands[i]),
        "ra": float(centre_ra[i]),
        "dec": float(centre_dec[i]),
        "size_deg": float(survey_cfg["tile_size_deg"]),
        "n_scamp": len(astrometric_lists[name]),
        "n_swarp": len(stack_lists[name]),
        "node": "",
        "status": "done" if name in done else "pending",
    } for i, name in enumerate(ordered)]
    stacks = pd.DataFrame(rows, columns=list(STACK_COLUMNS))
    stacks["n_scamp"] = stacks["n_scamp"].astype(int)
    stacks["n_swarp"] = stacks["n_swarp"].astype(int)
    nodes = [str(node) for node in planning_cfg["nodes"]]
    stacks["node"] = _assign_nodes(stacks, nodes, str(planning_cfg["node_load"]))
    conditional = chosen["conditional"].astype(bool).to_numpy()
    conditional_lists = {
        name: sorted(int(expnums[i]) for i in members[name] if conditional[i]) for name in ordered
    }
    return Plan(stacks=stacks.reset_index(drop=True), stack_lists=stack_lists,
                astrometric_lists=astrometric_lists, selection=selection, release=release_name,
                conditional_lists={k: v for k, v in conditional_lists.items() if v})


def _drop_conditional_only(selection: pd.DataFrame) -> pd.DataFrame:
    """Unselect the conditional exposures of stacks without an unconditional member
    (criterion ``grade``): a stack is never planned around exposures that may all be refused."""
    result = selection.copy()
    chosen = result["selected"].astype(bool) & (result["stack"].astype(str) != "")
    conditional = result["conditional"].astype(bool)
    anchored = set(result.loc[chosen & ~conditional, "stack"].astype(str))
    alone = chosen & conditional & ~result["stack"].astype(str).isin(anchored)
    if not alone.any():
        return result
    failures = add_failure(result["failures"].fillna("").astype(str), alone.to_numpy(), "grade")
    result["failures"] = failures
    result["first_failure"] = failures.str.split(";").str[0].fillna("")
    result["selected"] = (failures == "").to_numpy()
    for column, empty in (("stack", ""), ("mode", ""), ("stack_ra", np.nan), ("stack_dec", np.nan)):
        result.loc[alone, column] = empty
    return result


# --------------------------------------------------------------------------
# I/O edge
# --------------------------------------------------------------------------

def _selection_table(selection: pd.DataFrame) -> pd.DataFrame:
    columns = [c for c in SELECTION_COLUMNS if c in selection.columns]
    return selection[columns].sort_values("expnum", kind="stable").reset_index(drop=True)


def _write_if_changed(path: Path, text: str) -> bool:
    """Write ``text`` to ``path`` unless it holds it already: whole or not at all (a
    temporary file renamed over it; its fixed name means a killed run's leftover is
    overwritten by the next write, never left to pile up). Whether it wrote."""
    if path.is_file() and path.read_text() == text:
        return False
    tmp = path.with_name(f".{path.name}.partial")
    with open(tmp, "w") as stream:
        stream.write(text)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(tmp, path)
    return True


def plan_files(directory: str | Path, release: str = "") -> dict[str, Path]:
    """Return the plan files of a release in ``directory``, key of :data:`PLAN_FILES` -> path.

    ``<directory>/T0002_plan.csv`` etc. for release ``T0002``; unprefixed
    (``plan.csv``) when ``release`` is empty.
    """
    prefix = f"{release}_" if release else ""
    return {key: Path(directory) / f"{prefix}{name}" for key, name in PLAN_FILES.items()}


def write_plan(plan: Plan, directory: str | Path) -> dict[str, Path]:
    """Write the plan, selection and lists files into ``directory``.

    Files are named by :func:`plan_files` (``T0002_plan.csv``,
    ``T0002_selection.csv``, ``T0002_lists.json``: the stack and astrometric
    lists and, under ``solutions``, the products sharing each SCAMP solution,
    :meth:`Plan.solutions`). A file is rewritten only
    when its content changed, so unchanged files keep their modification time
    (and do not trigger downstream rules).

    Returns
    -------
    dict of str to Path
        Key of :data:`PLAN_FILES` -> path.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stacks = plan.stacks[list(STACK_COLUMNS)].sort_values("name", kind="stable")
    texts = {
        "plan": stacks.to_csv(index=False, lineterminator="\n"),
        "selection": _selection_table(plan.selection).to_csv(index=False, lineterminator="\n"),
        "lists": json.dumps(
            {"release": plan.release,
             "stack_lists": {k: sorted(map(int, v)) for k, v in plan.stack_lists.items()},
             "astrometric_lists": {k: sorted(map(int, v))
                                   for k, v in plan.astrometric_lists.items()},
             # the products sharing each SCAMP solution (derived from the lists)
             "solutions": plan.solutions(),
             # only when there are some: a plan without them keeps its bytes
             **({"conditional_lists": {k: sorted(map(int, v))
                                       for k, v in plan.conditional_lists.items()}}
                if plan.conditional_lists else {})},
            indent=1, sort_keys=True,
        ) + "\n",
    }
    paths = plan_files(directory, plan.release)
    for key, text in texts.items():
        _write_if_changed(paths[key], text)
    return paths


def _read_csv(path: Path, strings: Iterable[str]) -> pd.DataFrame:
    header = pd.read_csv(path, nrows=0).columns
    dtypes = {c: str for c in strings if c in header}
    table = pd.read_csv(path, dtype=dtypes, keep_default_na=True)
    for column in dtypes:
        table[column] = table[column].fillna("")
    return table


def _find_release(directory: Path) -> str:
    if (directory / PLAN_FILES["plan"]).is_file():
        return ""
    found = sorted(p.name[: -len("_" + PLAN_FILES["plan"])]
                   for p in directory.glob("*_" + PLAN_FILES["plan"]))
    if len(found) != 1:
        raise FileNotFoundError(f"{directory}: expected one plan file, found {found or 'none'}")
    return found[0]


def read_plan(directory: str | Path, *, release: str | None = None,
              done: set[str] | None = None) -> Plan:
    """Read a plan written by :func:`write_plan`.

    Parameters
    ----------
    directory
        Where the plan files are.
    release
        Release whose files to read; by default the only plan in ``directory``.
    done
        If given, names of the finished stacks: ``status`` is recomputed
        (``done`` / ``pending``).
    """
    directory = Path(directory)
    if release is None:
        release = _find_release(directory)
    paths = plan_files(directory, release)
    stacks = _read_csv(paths["plan"], _STRING_STACK_COLUMNS)
    for column in ("n_scamp", "n_swarp"):
        stacks[column] = stacks[column].astype(int)
    if done is not None:
        stacks["status"] = np.where(stacks["name"].isin(set(done)), "done", "pending")
    selection = _read_csv(paths["selection"], _STRING_SELECTION_COLUMNS)
    for column in ("selected", "conditional"):
        if column in selection.columns:
            selection[column] = selection[column].astype(str).str.lower() == "true"
    lists = json.loads(paths["lists"].read_text())
    return Plan(
        stacks=stacks,
        stack_lists={k: [int(e) for e in v] for k, v in lists["stack_lists"].items()},
        astrometric_lists={k: [int(e) for e in v] for k, v in lists["astrometric_lists"].items()},
        selection=selection,
        release=str(lists.get("release", release)),
        conditional_lists={k: [int(e) for e in v]
                           for k, v in lists.get("conditional_lists", {}).items()},
    )


def write_exposure_list(expnums: Iterable[int], path: str | Path) -> Path:
    """Write a stack or astrometric list: one exposure name (``751034p``) a line, sorted.

    The file is rewritten only when its content changed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{exposure_name(e)}\n" for e in sorted(int(e) for e in expnums))
    _write_if_changed(path, text)
    return path


def read_exposure_list(path: str | Path) -> list[int]:
    """Read a list written by :func:`write_exposure_list` into EXPNUMs."""
    return [parse_exposure_name(line.strip())
            for line in Path(path).read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------
# The seed's "Pending processes" view
# --------------------------------------------------------------------------

def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return lines


def pending_report(plan: Plan, *, longest: int, stale: Iterable[str] = ()) -> str:
    """Render the seed's "Pending processes (N)" view of the stacks not yet done.

    The table (Image, Stack Mode, Release Version, Survey, Filter, Ra, Dec,
    Node, Scamp files, Swarp files), then the number of remaining stacks by
    survey, by node and by filter (full FILTER names), then the ``longest``
    remaining stacks by number of Swarp files, then, only if there are any,
    the ``stale`` SCAMP solution folders (:func:`stale_solutions`).
    """
    pending = plan.stacks[plan.stacks["status"] != "done"].sort_values("name", kind="stable")
    lines = [f"Pending processes ({len(pending)})", ""]
    lines += _table(
        ["Image", "Stack Mode", "Release Version", "Survey", "Filter", "Ra", "Dec", "Node",
         "Scamp files", "Swarp files"],
        [[str(s["name"]), str(s["mode"]), str(s["version"]), str(s["survey"]), str(s["filter"]),
          format_ra(float(s["ra"]), sep=(" h ", " m ")), format_dec(float(s["dec"]), sep=(" \u00b0 ", " ' ")),
          str(s["node"]),
          str(int(s["n_scamp"])), str(int(s["n_swarp"]))] for _, s in pending.iterrows()],
    )

    def counts(column: str, order: list[str] | None = None) -> list[list[str]]:
        values = pending[column].astype(str).value_counts()
        keys = [k for k in (order or []) if k in values.index]
        keys += sorted(k for k in values.index if k not in keys)
        return [[k, str(int(values[k]))] for k in keys]

    lines += [""] + _table(["Survey", "Number of remaining stack"],
                           counts("survey", list(SURVEY_COMPONENTS)))
    lines += [""] + _table(["Node", "Number of remaining stack"], counts("node"))
    lines += [""] + _table(["Filter", "Number of remaining stack"], counts("filter"))
    top = pending.sort_values(["n_swarp", "name"], ascending=[False, True], kind="stable")
    lines += [""] + _table(["Image", "Node", "Longest stack remaining"],
                           [[str(s["name"]), str(s["node"]), str(int(s["n_swarp"]))]
                            for _, s in top.head(max(longest, 0)).iterrows()])
    stale = sorted(stale)
    if stale:  # left by an earlier plan (a regrade renamed them): safe to delete
        lines += ["", f"Stale SCAMP solutions ({len(stale)}): no planned product uses them"]
        lines += [f"  {name}" for name in stale]
    return "\n".join(lines) + "\n"


def done_products(
    plan: Plan, results: str | Path, *, exists: Callable[[Path], bool] = Path.exists
) -> list[str]:
    """Names of the planned products already made: those whose final stack image
    (``<results>/releases/T0002/<stem>/<stem>.fits``) exists, sorted.

    The plan is made before its stacks (a checkpoint) and its ``status`` column
    records what was done then; the "Pending processes" view needs what is done
    now. The workflow asks for it when it builds the DAG, and passes it as a
    param of the view's rule, so a stack made since the last view reruns the view.

    Parameters
    ----------
    plan
        The plan of the release (its ``release`` names the folder).
    results
        The results tree.
    exists
        Test of a path (a stub in tests).
    """
    return sorted(product.name for product in plan.products().values()
                  if exists(product_path(results, plan.release, product.stem, "image")))


def missing_product_files(results: str | Path, release: str, stem: str, keys: Iterable[str]) -> list[str]:
    """Paths of the files ``keys`` of planned product ``stem`` that are not on disk,
    from one listing of the product's folder (every product file lies in it).

    The release target asks Snakemake for these by name (``rules/common.smk``,
    ``release_targets``): Snakemake reruns a job for a missing output only when some
    job or target asks for that very file, and asking for every file of every
    product (about 40 each) multiplied a release dry-run's cost (issue 10, section 5).

    Parameters
    ----------
    results
        The results tree.
    release
        The release (``T0002``).
    stem
        The product's stem (``CFHTLS_D_r_141927+524056_T0002``, ``546891p_V0001``).
    keys
        Keys of :func:`spica.paths.product_path`.

    Returns
    -------
    list of str
        The missing files' paths, in the order of ``keys`` (all of them when the
        folder does not exist).
    """
    folder = str(product_path(results, release, stem, "image").parent)
    try:
        listing = set(os.listdir(folder))
    except (FileNotFoundError, NotADirectoryError):
        listing = set()
    # names joined as strings: a release target builds ~100,000 of them at survey scale
    names = (product_name(stem, key) for key in keys)
    return [os.path.join(folder, name) for name in names if name not in listing]


def missing_files(files: Iterable[str | Path]) -> list[str]:
    """The paths of ``files`` that are not on disk, from one listing of each folder.

    Parameters
    ----------
    files
        Paths, usually a few folders' worth.

    Returns
    -------
    list of str
        The missing ones, in the order of ``files``.
    """
    listings: dict[Path, set[str]] = {}
    missing = []
    for path in map(Path, files):
        if path.parent not in listings:
            try:
                listings[path.parent] = set(os.listdir(path.parent))
            except (FileNotFoundError, NotADirectoryError):
                listings[path.parent] = set()
        if path.name not in listings[path.parent]:
            missing.append(str(path))
    return missing


def stale_solutions(plan: Plan, results: str | Path) -> list[str]:
    """SCAMP solution folders of the release that no planned product uses, sorted.

    A solution is named after its astrometric list (:func:`spica.paths.solution_id`),
    so a regrade that changes a list gives it a new folder and leaves the old one
    (``<results>/releases/T0002/_scamp/<old id>/``) behind: no rule owns it any more.
    The "Pending processes" view lists them (they are not deleted: a solution is
    hours of SCAMP on a Deep field, and the astronomer may revert the grade).

    Parameters
    ----------
    plan
        The plan of the release (its ``release`` names the folder).
    results
        The results tree.
    """
    folder = release_path(results, plan.release, "plan").parent / SOLUTIONS_FOLDER
    if not folder.is_dir():
        return []
    wanted = set(plan.solutions())
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name not in wanted)


class PendingViewError(RuntimeError):
    """The "Pending processes" view of a release could not be refreshed: its plan is
    unreadable or the view unwritable (:attr:`reason` names which)."""

    def __init__(self, release: str, reason: str, detail: object) -> None:
        self.release = release
        self.reason = reason
        super().__init__(f"pending view of {release} not refreshed: {reason} ({detail})")


def refresh_pending_report(results: str | Path, release: str, *, longest: int) -> bool:
    """Rewrite the "Pending processes" view of ``release`` from the disk as it is now.

    Rule ``report_pending`` writes the view when the plan is made, before the
    stacks, so the run that makes them would leave a view that lists them all as
    pending; the workflow's ``onsuccess``/``onerror`` handlers call this at the end
    of every real run. The view is :func:`pending_view`, written atomically and
    only when its content changes.

    Only a view that exists, of a release whose plan (``_plan.csv`` and
    ``_lists.json``) exists, is refreshed: a plan is never made here.

    Parameters
    ----------
    results
        The results tree.
    release
        The release (``T0002``) or image-mode version (``V0001``).
    longest
        Number of longest remaining stacks listed (config
        ``planning.longest_stacks``, the rule's param ``longest``).

    Returns
    -------
    bool
        Whether the view was rewritten (``False``: no plan or no view, or the
        view already says what is pending).

    Raises
    ------
    PendingViewError
        With reason ``plan unreadable`` or ``view unwritable``.
    """
    view = release_path(results, release, "pending")
    plan_csv = release_path(results, release, "plan")
    if not (view.is_file() and plan_csv.is_file() and release_path(results, release, "lists").is_file()):
        return False
    try:
        text = pending_view(results, release, longest=longest)
    except (OSError, ValueError, KeyError, TypeError) as error:  # JSON and CSV errors are ValueErrors
        raise PendingViewError(release, "plan unreadable", error) from error
    try:
        return _write_if_changed(view, text)
    except OSError as error:
        raise PendingViewError(release, "view unwritable", error) from error


def pending_view(results: str | Path, release: str, *, longest: int) -> str:
    """The "Pending processes" view of ``release`` as the disk is now: its plan, the
    products made (:func:`done_products`) and the stale SCAMP solution folders
    (:func:`stale_solutions`), rendered by :func:`pending_report`.

    What rule ``report_pending`` writes when the plan is made or changes, and what
    :func:`refresh_pending_report` rewrites at the end of every run.

    Parameters
    ----------
    results
        The results tree.
    release
        The release (``T0002``) or image-mode version (``V0001``).
    longest
        Number of longest remaining stacks listed (config ``planning.longest_stacks``).

    Returns
    -------
    str
        The view's text.
    """
    plan = read_plan(release_path(results, release, "plan").parent, release=release)
    done = set(done_products(plan, results))
    stacks = plan.stacks.copy()  # a plan is not modified once read: a copy, marked as read_plan(done=) does
    stacks["status"] = np.where(stacks["name"].isin(done), "done", "pending")
    return pending_report(dataclasses.replace(plan, stacks=stacks), longest=longest,
                          stale=stale_solutions(plan, results))


# --------------------------------------------------------------------------
# The automatic image mode (seed 2.2, 3.2.1, 6.2)
# --------------------------------------------------------------------------

def plan_images(
    exposures: pd.DataFrame,
    version: str,
    image_cfg: Mapping[str, Any],
    survey_cfg: Mapping[str, Any],
    planning_cfg: Mapping[str, Any],
) -> Plan:
    """Plan the automatic image mode: one image-by-image product per exposure that
    passed step 1, whatever its RunID.

    The seed's "image by image" mode "works on each single Megacam image that
    successfully passed the data ingestion process regardless of its RunID";
    its "Automatic image mode" page lists them all. Here: every exposure of the
    registry whose step 1 status is ``ok`` and whose grade is one of
    ``image_cfg["grades"]`` (the seed keeps "only images with Grade A or B"
    beyond QualityFITS-in) becomes product ``<expnum>p_<version>`` (mode
    ``image``), calibrated by SCAMP alone: its astrometric list is itself.
    Its files go in the folder of ``version`` (``<results>/releases/V0001/``),
    as a release's go in ``T0002``; the Very Wide exposures of a release
    keep theirs there too (:func:`plan_release`: their astrometric list is the
    release's, every good exposure within the astrometric radius).

    Parameters
    ----------
    exposures
        The registry's exposures table.
    version
        ``V0001``: the image products' version and the plan's name.
    image_cfg
        Config ``image_mode`` (``grades``).
    survey_cfg
        The ``survey`` section (``runid_programs``, ``pre_survey_object_prefix``,
        ``tile_size_deg``).
    planning_cfg
        The ``planning`` section (``nodes``, ``node_load``).

    Returns
    -------
    Plan
        One product per selected exposure; ``selection`` judges every exposure
        on criteria ``status`` and ``grade``.
    """
    from spica.release.selection import survey_component

    image_by_image_name(0, version)  # a named error for a malformed version
    result = exposures.copy()
    programs = survey_cfg.get("runid_programs") or {}
    prefix = survey_cfg.get("pre_survey_object_prefix") or ""
    runids = result["runid"] if "runid" in result else pd.Series(np.nan, index=result.index)
    objects = result["object"] if "object" in result else pd.Series(np.nan, index=result.index)
    result["survey"] = [survey_component(r, o, programs, prefix) for r, o in zip(runids, objects)]
    status = result["status"] if "status" in result else pd.Series("", index=result.index)
    grade = result["grade"] if "grade" in result else pd.Series(np.nan, index=result.index)
    ra = pd.to_numeric(result.get("ra_deg"), errors="coerce")
    dec = pd.to_numeric(result.get("dec_deg"), errors="coerce")
    failures = pd.Series("", index=result.index, dtype=object)
    failures = add_failure(failures, (status.astype(str).str.strip() != "ok").to_numpy(), "status")
    failures = add_failure(failures, (~grade_in(grade, image_cfg["grades"])).to_numpy(), "grade")
    failures = add_failure(failures, (~(np.isfinite(ra) & np.isfinite(dec))).to_numpy(), "no_stack")
    selected = (failures == "").to_numpy()
    names = [image_by_image_name(e, version, suffix="") if ok else ""
             for e, ok in zip(result["expnum"], selected)]
    result["failures"] = failures
    result["first_failure"] = failures.str.split(";").str[0].fillna("")
    result["selected"] = selected
    result["conditional"] = False
    result["stack"] = names
    result["mode"] = np.where(selected, "image", "")

    chosen = result[selected]
    bands = exposure_bands(chosen).to_numpy() if len(chosen) else np.array([])
    rows = [{
        "name": names_i, "mode": "image", "release": version, "version": version[1:],
        "survey": str(row["survey"]), "filter": str(row.get("filter", "")), "band": str(band),
        "ra": float(row["ra_deg"]), "dec": float(row["dec_deg"]),
        "size_deg": float(survey_cfg["tile_size_deg"]), "n_scamp": 1, "n_swarp": 1,
        "node": "", "status": "pending",
    } for names_i, (_, row), band in zip(chosen["stack"], chosen.iterrows(), bands)]
    stacks = pd.DataFrame(rows, columns=list(STACK_COLUMNS)).sort_values("name", kind="stable")
    stacks = stacks.reset_index(drop=True)
    stacks["n_scamp"] = stacks["n_scamp"].astype(int)
    stacks["n_swarp"] = stacks["n_swarp"].astype(int)
    stacks["node"] = _assign_nodes(stacks, [str(n) for n in planning_cfg["nodes"]],
                                   str(planning_cfg["node_load"]))
    lists = {str(name): [int(e)] for name, e in zip(chosen["stack"], chosen["expnum"])}
    return Plan(stacks=stacks, stack_lists=lists, astrometric_lists=dict(lists), selection=result,
                release=version)
