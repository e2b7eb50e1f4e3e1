"""Release selection: which exposures enter a CFHTLS release (seed, 3.2.1 and 6.2).

Every exposure of the registry is judged against the criteria of one release
(``config/releases.yaml``). The verdict keeps *all* failing criteria, not only
the first, so that the release control team can see why an image is out and
what would bring it back (a grade D re-graded A, a new SkyProbe value, ...).

Criteria, in this fixed order (:data:`CRITERIA`):

``status``
    the file was quarantined in step 1 (``status`` is not ``ok``).
``grade``
    the grade in force (human, else provisional) is not one of the release's
    grades (A, B). Grade C is lost for good; grade D is out until re-graded,
    unless D is a *repairable* grade (``calibration.repairable_grades``): then
    the exposure passes as *conditional* (column ``conditional``), a candidate
    of its stack whose accept summary stacks it only if SCAMP's focal plane
    repaired it (:mod:`spica.calibration.accept`). A missing grade fails.
``period``
    ``date_obs`` (UT date) outside the release period, both dates included.
``exptime``
    exposure time not strictly greater than ``min_exptime_s`` ("> 60 sec.").
``airmass``
    airmass not strictly less than ``max_airmass``.
``skyprobe``
    SkyProbe value not strictly less than ``max_skyprobe``, or missing while
    the release has a SkyProbe criterion (``max_skyprobe`` null: no criterion).
``seeing``
    measured seeing ``qa_fwhm_arcsec`` not strictly less than the limit of the
    exposure's survey component and band (``u`` relaxed); a missing value
    fails. A component without limits in the release (e.g. ``PI``) has no
    seeing criterion.
``pi_program``
    a PI exposure whose RUNID (or program code) is not in ``pi_programs``.

The stack assignment (:mod:`spica.release.planning`) adds two geometric criteria after
these: ``wide_radius`` and ``no_stack``.

Missing values always fail the criterion that needs them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CRITERIA",
    "SURVEY_COMPONENTS",
    "program_code",
    "survey_component",
    "seeing_limit",
    "exposure_bands",
    "add_failure",
    "grade_in",
    "evaluate_criteria",
]

#: Selection criteria, in the order they are reported.
CRITERIA: tuple[str, ...] = (
    "status", "grade", "period", "exptime", "airmass", "skyprobe", "seeing", "pi_program",
)

#: Survey components of the seed ("RunID/Object" column).
SURVEY_COMPONENTS: tuple[str, ...] = ("D", "W", "Pre-W", "VW", "PI")

_RUNID_RE = re.compile(r"^\d{2}[A-Z]([A-Z]\d{2})$")


def program_code(runid: Any) -> str | None:
    """Return the program code of a CFHT RUNID, ``04AL05`` -> ``L05``.

    Returns None for a missing or malformed RUNID.
    """
    if runid is None or (isinstance(runid, float) and np.isnan(runid)):
        return None
    match = _RUNID_RE.match(str(runid).strip().upper())
    return match[1] if match else None


def survey_component(
    runid: Any,
    object: Any,  # noqa: A002 - the FITS keyword name
    runid_programs: Mapping[str, str],
    pre_survey_prefix: str,
) -> str:
    """Return the survey component of an exposure: D, W, Pre-W, VW or PI.

    Parameters
    ----------
    runid
        CFHT RUNID, e.g. ``04AL05``; its program code (``L05``) is looked up.
    object
        OBJECT keyword; a Wide-program exposure whose OBJECT starts with
        ``pre_survey_prefix`` belongs to the Wide pre-survey (``Pre-W``).
    runid_programs
        Program code -> component (``survey.runid_programs`` of the config).
    pre_survey_prefix
        OBJECT prefix of the pre-survey pointings (``survey.pre_survey_object_prefix``).

    Returns
    -------
    str
        The component; programs not in ``runid_programs`` (and malformed
        RUNIDs) are ``PI``.
    """
    code = program_code(runid)
    component = runid_programs.get(code) if code else None
    if component is None:
        return "PI"
    if component == "W" and pre_survey_prefix and isinstance(object, str) \
            and object.strip().startswith(pre_survey_prefix):
        return "Pre-W"
    return str(component)


def seeing_limit(release_cfg: Mapping[str, Any], survey: str, band: str) -> float | None:
    """Return the seeing limit (arcsec) of a survey component and band, None if none.

    The band's own limit if the release gives one, else the component's ``default``.
    """
    limits = (release_cfg.get("seeing_arcsec") or {}).get(survey)
    if not limits:
        return None
    value = limits.get(band, limits.get("default"))
    return None if value is None else float(value)


def add_failure(failures: pd.Series, failed: pd.Series | np.ndarray, name: str) -> pd.Series:
    """Append criterion ``name`` to the ``;``-joined ``failures`` where ``failed``."""
    failed = np.asarray(failed, dtype=bool)
    current = failures.astype(str).to_numpy()
    joined = np.where(current == "", name, np.char.add(np.char.add(current.astype(str), ";"), name))
    return pd.Series(np.where(failed, joined, current), index=failures.index, dtype=object)


def _as_date(value: Any) -> pd.Timestamp:
    if isinstance(value, (date, datetime)):
        return pd.Timestamp(value).normalize()
    return pd.Timestamp(date.fromisoformat(str(value).strip()))


def _column(exposures: pd.DataFrame, name: str) -> pd.Series:
    if name in exposures.columns:
        return exposures[name]
    return pd.Series(np.nan, index=exposures.index, dtype=float)


def _numeric(exposures: pd.DataFrame, name: str) -> pd.Series:
    return pd.to_numeric(_column(exposures, name), errors="coerce")


def exposure_bands(exposures: pd.DataFrame) -> pd.Series:
    """Return the band letter of every exposure: ``band``, else the first letter of ``filter``."""
    band = _column(exposures, "band")
    from_filter = _column(exposures, "filter").astype(str).str.strip().str[:1]
    band = band.where(band.notna() & (band.astype(str).str.strip() != ""), from_filter)
    return band.astype(str).str.strip()


def _in_programs(runids: pd.Series, programs: Iterable[str]) -> pd.Series:
    wanted = {str(p).strip().upper() for p in programs}
    upper = runids.astype(str).str.strip().str.upper()
    codes = runids.map(program_code)
    return upper.isin(wanted) | codes.isin(wanted)


def grade_in(grade: pd.Series, grades: Iterable[str]) -> pd.Series:
    """Whether each grade (missing: False) is one of ``grades`` (case and blanks ignored)."""
    wanted = {str(g).strip().upper() for g in grades}
    return grade.notna() & grade.astype(str).str.strip().str.upper().isin(wanted)


def evaluate_criteria(
    exposures: pd.DataFrame,
    release_cfg: Mapping[str, Any],
    survey_cfg: Mapping[str, Any],
    *,
    repairable_grades: Iterable[str] = (),
) -> pd.DataFrame:
    """Judge every exposure against the criteria of one release.

    Parameters
    ----------
    exposures
        The registry's exposures table (``expnum``, ``status``, ``object``,
        ``runid``, ``filter``, ``band``, ``exptime``, ``airmass``,
        ``date_obs``, ``skyprobe``, ``qa_fwhm_arcsec``, ``grade``, ...).
    release_cfg
        One entry of ``releases`` in ``config/releases.yaml``.
    survey_cfg
        The ``survey`` section of the configuration (``runid_programs``,
        ``pre_survey_object_prefix``).
    repairable_grades
        Grades outside the release's that pass criterion ``grade`` as
        *conditional* (``calibration.repairable_grades``: ``[D]``).

    Returns
    -------
    pandas.DataFrame
        A copy of ``exposures`` with ``survey`` (component), ``selected``
        (bool), ``first_failure`` (first failing criterion of :data:`CRITERIA`,
        or ``''``), ``failures`` (all failing criteria joined by ``;``) and
        ``conditional`` (bool: its grade is repairable, not one of the release's).
    """
    result = exposures.copy()
    programs = survey_cfg.get("runid_programs") or {}
    prefix = survey_cfg.get("pre_survey_object_prefix") or ""
    runids = _column(result, "runid")
    objects = _column(result, "object")
    result["survey"] = [survey_component(r, o, programs, prefix) for r, o in zip(runids, objects)]

    failed: dict[str, pd.Series] = {}
    failed["status"] = _column(result, "status").astype(str).str.strip() != "ok"

    grade = _column(result, "grade")
    in_release = grade_in(grade, release_cfg["grades"])
    conditional = ~in_release & grade_in(grade, repairable_grades)
    failed["grade"] = ~(in_release | conditional)

    period = release_cfg["period"]
    obs_date = pd.to_datetime(_column(result, "date_obs").astype(str).str.strip().str[:10],
                              errors="coerce", format="%Y-%m-%d")
    failed["period"] = ~((obs_date >= _as_date(period["start"]))
                         & (obs_date <= _as_date(period["end"])))

    failed["exptime"] = ~(_numeric(result, "exptime") > float(release_cfg["min_exptime_s"]))
    failed["airmass"] = ~(_numeric(result, "airmass") < float(release_cfg["max_airmass"]))

    max_skyprobe = release_cfg.get("max_skyprobe")
    if max_skyprobe is None:
        failed["skyprobe"] = pd.Series(False, index=result.index)
    else:
        failed["skyprobe"] = ~(_numeric(result, "skyprobe") < float(max_skyprobe))

    bands = exposure_bands(result)
    limits = pd.Series([seeing_limit(release_cfg, s, b) for s, b in zip(result["survey"], bands)],
                       index=result.index, dtype=float)
    seeing = _numeric(result, "qa_fwhm_arcsec")
    failed["seeing"] = limits.notna() & ~(seeing < limits)

    is_pi = result["survey"] == "PI"
    failed["pi_program"] = is_pi & ~_in_programs(runids, release_cfg.get("pi_programs") or [])

    failures = pd.Series("", index=result.index, dtype=object)
    for name in CRITERIA:
        failures = add_failure(failures, failed[name].fillna(True), name)
    result["failures"] = failures
    result["first_failure"] = failures.str.split(";").str[0].fillna("")
    result["selected"] = failures == ""
    result["conditional"] = conditional.to_numpy(dtype=bool)
    return result
