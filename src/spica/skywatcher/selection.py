"""SkyWatcher's selection layer: registry rows in, selected rows out (pure).

The seed's SkyWatcher (section 7) selects images "using RunID, survey
component, filters, sky positions, etc."; here the same selection works on the
registry's ``exposures`` table (:func:`spica.registry.schema`), annotated once
with what the map needs to know about processing progress
(:func:`survey_state`), then filtered by a :class:`Criteria`
(:func:`select_exposures`). Nothing here reads a file except
:func:`read_registry` and :func:`release_lists` at the edge.

Processing status (column ``progress``: the furthest of :data:`STATUSES` an
exposure reached; selecting ``step1`` keeps every exposure whose step 1 is
done, released or not, and ``release`` the released and sent ones):

``quarantined``
    the file failed the integrity check (registry ``status`` not ``ok``).
``step1``
    step 1 done: in the registry with status ``ok``, in no release list.
``release``
    in the stack list (SWarp input) of at least one release's plan
    (``<results>/releases/<T>/<T>_lists.json``); ``releases`` names them.
``sent``
    delivered: when the exposures frame has a boolean ``sent`` column. The
    registry has none; :func:`spica.skywatcher.load_survey` adds it from the
    transfer state (the exposure's step 1 delivery verified at the
    destination, :func:`spica.transfer.sent_files`) when the run has one.
    Without it, asking for ``sent`` raises :class:`SelectionError`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from spica.release.selection import exposure_bands, survey_component

__all__ = [
    "STATUSES",
    "Criteria",
    "SelectionError",
    "read_registry",
    "release_lists",
    "survey_state",
    "select_exposures",
]

#: Processing states of an exposure, in order of progress.
STATUSES: tuple[str, ...] = ("quarantined", "step1", "release", "sent")


class SelectionError(ValueError):
    """A selection that cannot be made (bad criterion, missing column, unknown value)."""


@dataclass
class Criteria:
    """What to select; every empty field selects everything.

    Attributes
    ----------
    runids
        CFHT RUNIDs (``04AL01``) or program codes (``L01``).
    components
        Survey components (``D``, ``W``, ``Pre-W``, ``VW``, ``PI``;
        :func:`spica.release.selection.survey_component`).
    filters
        Band letters (``r``) or full filter names (``r.MP9601``).
    box
        ``(ra_min, ra_max, dec_min, dec_max)`` in degrees, on the exposure
        centre; ``ra_min > ra_max`` crosses RA 0 (``(350, 10, ...)``).
    cone
        ``(ra, dec, radius)`` in degrees, on the exposure centre.
    date_start, date_end
        ``date_obs`` (UT date) range, both included (ISO dates).
    statuses
        Processing states of :data:`STATUSES`.
    expnums
        Odometers.
    """

    runids: Sequence[str] = ()
    components: Sequence[str] = ()
    filters: Sequence[str] = ()
    box: tuple[float, float, float, float] | None = None
    cone: tuple[float, float, float] | None = None
    date_start: str | date | None = None
    date_end: str | date | None = None
    statuses: Sequence[str] = ()
    expnums: Sequence[int] = field(default_factory=tuple)


def read_registry(url: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read the registry's ``exposures`` and ``ccds`` tables (SQLAlchemy URL).

    Raises
    ------
    SelectionError
        If the database cannot be opened or lacks the tables.
    """
    from sqlalchemy import inspect

    from spica.registry import open_database

    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        raise SelectionError(f"registry not found: {url}")
    engine = open_database(url)
    try:
        with engine.connect() as connection:
            names = set(inspect(connection).get_table_names())
            missing = {"exposures", "ccds"} - names
            if missing:
                raise SelectionError(f"registry {url} lacks tables {sorted(missing)}")
            exposures = pd.read_sql_table("exposures", connection)
            ccds = pd.read_sql_table("ccds", connection)
    except SelectionError:
        raise
    except Exception as error:  # sqlalchemy's errors name the driver problem
        raise SelectionError(f"cannot read registry {url}: {error}") from error
    finally:
        engine.dispose()
    return exposures, ccds


def release_lists(results: str | Path, releases: Iterable[str]) -> dict[str, list[int]]:
    """Release -> EXPNUMs in any of its stack lists, from ``<T>_lists.json`` of each plan.

    A release without a plan yet has no entry.
    """
    from spica.release.planning import plan_files
    from spica.paths import release_path

    found: dict[str, list[int]] = {}
    for release in releases:
        path = plan_files(release_path(results, release, "plan").parent, release)["lists"]
        if not path.is_file():
            continue
        try:
            lists = json.loads(path.read_text())["stack_lists"]
        except (ValueError, KeyError) as error:
            raise SelectionError(f"{path}: not a plan's lists file ({error})") from error
        found[release] = sorted({int(e) for members in lists.values() for e in members})
    return found


def survey_state(
    exposures: pd.DataFrame,
    survey_cfg: Mapping[str, Any],
    releases: Mapping[str, Iterable[int]] | None = None,
) -> pd.DataFrame:
    """Annotate registry exposures with what the selection and the map need.

    Adds ``survey`` (component, by :func:`spica.release.selection.survey_component`),
    ``band`` (filled from ``filter`` where missing), ``releases`` (``;``-joined
    releases whose stack lists hold the exposure), ``progress`` (the furthest
    state of :data:`STATUSES`) and ``step1_done``.
    """
    result = exposures.copy()
    programs = survey_cfg.get("runid_programs") or {}
    prefix = survey_cfg.get("pre_survey_object_prefix") or ""
    result["survey"] = [survey_component(r, o, programs, prefix)
                        for r, o in zip(result.get("runid", [None] * len(result)),
                                        result.get("object", [None] * len(result)))]
    result["band"] = exposure_bands(result).replace({"N": "", "n": ""}).where(
        result.get("filter", pd.Series(None, index=result.index)).notna(), "")
    membership: dict[int, list[str]] = {}
    for release, expnums in sorted((releases or {}).items()):
        for expnum in expnums:
            membership.setdefault(int(expnum), []).append(release)
    expnum = pd.to_numeric(result["expnum"], errors="coerce")
    result["releases"] = [";".join(membership.get(int(e), [])) if pd.notna(e) else ""
                          for e in expnum]
    ok = result["status"].astype(str).str.strip() == "ok"
    result["step1_done"] = ok.to_numpy()
    progress = np.where(ok, "step1", "quarantined").astype(object)
    progress[ok.to_numpy() & (result["releases"] != "").to_numpy()] = "release"
    if "sent" in result.columns:
        progress[result["sent"].fillna(False).astype(bool).to_numpy()] = "sent"
    result["progress"] = progress
    return result


def _need(frame: pd.DataFrame, column: str, what: str) -> pd.Series:
    if column not in frame.columns:
        raise SelectionError(f"selection by {what} needs column {column!r} "
                             f"(annotate the registry rows with survey_state first)")
    return frame[column]


def _as_date(value: str | date, what: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(date.fromisoformat(str(value).strip()))
    except ValueError as error:
        raise SelectionError(f"{what}: not an ISO date: {value!r}") from error


def _angular_distance(ra1, dec1, ra2, dec2) -> np.ndarray:
    """Great-circle distance (deg), haversine; NaN where a position is missing."""
    ra1, dec1, ra2, dec2 = (np.radians(np.asarray(v, dtype=float)) for v in (ra1, dec1, ra2, dec2))
    s = (np.sin((dec2 - dec1) / 2) ** 2
         + np.cos(dec1) * np.cos(dec2) * np.sin((ra2 - ra1) / 2) ** 2)
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(s, 0, 1))))


def select_exposures(frame: pd.DataFrame, criteria: Criteria) -> pd.DataFrame:
    """The rows of ``frame`` matching every criterion, in their order (index kept).

    Parameters
    ----------
    frame
        Registry exposures, annotated by :func:`survey_state` for selections by
        component or status.
    criteria
        What to keep.

    Raises
    ------
    SelectionError
        For an unknown component or status, a malformed date, box or cone, or a
        status the registry cannot tell (``sent`` without a ``sent`` column).
    """
    from spica.release.selection import SURVEY_COMPONENTS, program_code

    keep = pd.Series(True, index=frame.index)
    if criteria.expnums:
        keep &= pd.to_numeric(frame["expnum"], errors="coerce").isin(
            [int(e) for e in criteria.expnums])
    if criteria.runids:
        wanted = {str(r).strip().upper() for r in criteria.runids}
        runids = frame["runid"].astype(str).str.strip().str.upper()
        codes = frame["runid"].map(program_code)
        keep &= runids.isin(wanted) | codes.isin(wanted)
    if criteria.components:
        unknown = set(criteria.components) - set(SURVEY_COMPONENTS)
        if unknown:
            raise SelectionError(f"unknown survey component(s) {sorted(unknown)}; "
                                 f"known: {', '.join(SURVEY_COMPONENTS)}")
        keep &= _need(frame, "survey", "survey component").isin(set(criteria.components))
    if criteria.filters:
        names = {str(f).strip() for f in criteria.filters}
        bands = exposure_bands(frame)
        full = frame["filter"].astype(str).str.strip()
        keep &= (frame["filter"].notna() & (bands.isin(names) | full.isin(names)))
    ra = pd.to_numeric(frame.get("ra_deg"), errors="coerce")
    dec = pd.to_numeric(frame.get("dec_deg"), errors="coerce")
    if criteria.box is not None:
        try:
            ra_min, ra_max, dec_min, dec_max = (float(v) for v in criteria.box)
        except (TypeError, ValueError) as error:
            raise SelectionError(f"box needs 4 numbers (ra_min ra_max dec_min dec_max): "
                                 f"{criteria.box!r}") from error
        if not (-90 <= dec_min <= dec_max <= 90):
            raise SelectionError(f"box: need -90 <= dec_min <= dec_max <= 90: {criteria.box!r}")
        ra_min, ra_max = ra_min % 360, ra_max % 360 if ra_max != 360 else 360.0
        in_ra = (ra >= ra_min) & (ra <= ra_max) if ra_min <= ra_max \
            else (ra >= ra_min) | (ra <= ra_max)
        keep &= in_ra & (dec >= dec_min) & (dec <= dec_max)
    if criteria.cone is not None:
        try:
            ra0, dec0, radius = (float(v) for v in criteria.cone)
        except (TypeError, ValueError) as error:
            raise SelectionError(f"cone needs 3 numbers (ra dec radius): "
                                 f"{criteria.cone!r}") from error
        if radius < 0 or not -90 <= dec0 <= 90:
            raise SelectionError(f"cone: need radius >= 0 and |dec| <= 90: {criteria.cone!r}")
        distance = pd.Series(_angular_distance(ra, dec, ra0, dec0), index=frame.index)
        keep &= distance <= radius
    if criteria.date_start is not None or criteria.date_end is not None:
        obs = pd.to_datetime(frame["date_obs"].astype(str).str.strip().str[:10],
                             errors="coerce", format="%Y-%m-%d")
        if criteria.date_start is not None:
            keep &= obs >= _as_date(criteria.date_start, "date_start")
        if criteria.date_end is not None:
            keep &= obs <= _as_date(criteria.date_end, "date_end")
    if criteria.statuses:
        unknown = set(criteria.statuses) - set(STATUSES)
        if unknown:
            raise SelectionError(f"unknown status(es) {sorted(unknown)}; known: "
                                 f"{', '.join(STATUSES)}")
        if "sent" in criteria.statuses and "sent" not in frame.columns:
            raise SelectionError("status 'sent': no 'sent' column (the registry does not "
                                 "record deliveries and this run has no transfer state)")
        progress = _need(frame, "progress", "status")
        wanted = set(criteria.statuses)
        # a released exposure has also done step 1, a sent one is also released
        order = {name: i for i, name in enumerate(STATUSES)}
        rank = progress.map(order)
        match = progress.isin(wanted)
        if "step1" in wanted:
            match |= rank >= order["step1"]
        if "release" in wanted:
            match |= rank >= order["release"]
        keep &= match
    return frame[keep.fillna(False).astype(bool)]
