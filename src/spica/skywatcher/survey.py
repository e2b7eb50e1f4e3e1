"""The edge where SkyWatcher reads a survey: configuration, registry, plans, footprints.

A run's configuration is ``config/config.yaml`` with any ``--configfile``
overlays deep-merged over it (Snakemake's rule), and ``config/releases.yaml``;
relative paths in it (``results``, the SQLite registry, ``inputs``) are taken
from the folder the workflow ran in (``workdir``), as Snakemake's
``--directory`` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from spica.skywatcher.selection import SelectionError, read_registry, release_lists, survey_state

__all__ = ["LIST_COLUMNS", "Survey", "config_boxes", "image_list", "load_config", "load_survey",
           "release_products", "sent_exposures"]

#: Columns of the list of selected images (those present).
LIST_COLUMNS: tuple[str, ...] = (
    "expnum", "object", "runid", "survey", "filter", "date_obs", "exptime", "ra_deg", "dec_deg",
    "grade", "status", "progress", "releases",
)

def image_list(selected: pd.DataFrame) -> pd.DataFrame:
    """The list of selected images (columns :data:`LIST_COLUMNS` present), by EXPNUM."""
    listing = selected[[c for c in LIST_COLUMNS if c in selected.columns]].copy()
    listing["expnum"] = pd.to_numeric(listing["expnum"], errors="coerce").astype("Int64")
    return listing.sort_values("expnum", kind="stable", na_position="last").reset_index(drop=True)


def load_config(configfiles: Sequence[str | Path] = (), *,
                base: str | Path | None = None) -> dict:
    """``config.yaml`` and ``releases.yaml`` of ``base`` (the repository's ``config/``
    by default) with ``configfiles`` deep-merged over them, validated by the schemas
    (:func:`spica.config.load_config`).

    Raises
    ------
    SelectionError
        If a file is missing or unreadable, or the merged configuration is invalid.
    """
    from spica.config import ConfigError
    from spica.config import load_config as load_workflow_config

    try:
        return load_workflow_config(configfiles, base=base)
    except ConfigError as error:
        raise SelectionError(str(error)) from error


def _resolve(path: str | Path, workdir: Path) -> Path:
    path = Path(path)
    return path if path.is_absolute() else workdir / path


def _registry_url(url: str, workdir: Path) -> str:
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        return "sqlite:///" + str(_resolve(url.removeprefix("sqlite:///"), workdir))
    return url


def config_boxes(config: Mapping[str, Any]) -> list[dict]:
    """Contour boxes of a configuration: one per Deep field (``skywatcher.deep_box_deg``
    square on each ``survey.deep_fields`` centre), then ``skywatcher.boxes``."""
    import numpy as np

    sky = config.get("skywatcher") or {}
    boxes = []
    size = float(sky.get("deep_box_deg") or 0)
    if size > 0:
        for deep in (config.get("survey") or {}).get("deep_fields") or []:
            half_ra = size / 2 / max(np.cos(np.radians(deep["dec"])), 1e-6)
            boxes.append({"name": deep["name"], "ra_min": (deep["ra"] - half_ra) % 360,
                          "ra_max": (deep["ra"] + half_ra) % 360,
                          "dec_min": max(deep["dec"] - size / 2, -90.0),
                          "dec_max": min(deep["dec"] + size / 2, 90.0)})
    boxes += [dict(box) for box in sky.get("boxes") or []]
    return boxes


def release_products(results: str | Path, releases: Iterable[str]) -> pd.DataFrame:
    """Plan rows (stacks and image-by-image products) of the releases planned so far,
    with ``status`` ``done``/``pending`` from the products on disk."""
    from spica.paths import release_path
    from spica.release.planning import done_products, plan_files, read_plan

    frames = []
    for release in releases:
        folder = release_path(results, release, "plan").parent
        if not plan_files(folder, release)["plan"].is_file():
            continue
        plan = read_plan(folder, release=release)
        done = set(done_products(plan, results))
        frames.append(plan.stacks.assign(status=plan.stacks["name"].map(
            lambda name: "done" if name in done else "pending")))
    if not frames:
        return pd.DataFrame(columns=["name", "release", "band", "ra", "dec", "size_deg", "status"])
    return pd.concat(frames, ignore_index=True)


@dataclass
class Survey:
    """A survey as SkyWatcher reads it.

    Attributes
    ----------
    config
        The merged configuration.
    workdir
        Folder the workflow ran in.
    exposures
        Registry exposures annotated by :func:`survey_state`.
    ccds
        The registry's ``ccds`` table.
    releases
        Release -> EXPNUMs in its stack lists.
    """

    config: dict
    workdir: Path
    exposures: pd.DataFrame
    ccds: pd.DataFrame
    releases: dict[str, list[int]] = field(default_factory=dict)

    @property
    def results(self) -> Path:
        """The results tree."""
        return _resolve(self.config["results"], self.workdir)

    def footprints(self, expnums: Iterable[int], *, cache: str | Path | None = None) -> pd.DataFrame:
        """CCD footprints of ``expnums`` (:func:`spica.skywatcher.read_ccd_footprints`)."""
        from spica.skywatcher.footprints import read_ccd_footprints

        return read_ccd_footprints(
            expnums, results=self.results,
            exposures_dir=_resolve(self.config["inputs"]["exposures"], self.workdir), cache=cache)

    def products(self) -> pd.DataFrame:
        """Planned products of every release (:func:`release_products`)."""
        return release_products(self.results, (self.config.get("releases") or {}).keys())


def sent_exposures(results: str | Path) -> set[int] | None:
    """EXPNUMs whose step 1 delivery is sent (every file verified at the destination), from
    the transfer state (:func:`spica.transfer.sent_files`); None when the run has none.

    The state database is only read: it is not opened when absent (opening creates it).
    """
    try:
        from spica.transfer import sent_files
        from spica.transfer.state import state_path
    except ImportError:
        return None
    if not state_path(results).is_file():
        return None
    from spica.paths import parse_exposure_prefix

    files = sent_files(results)
    if "superseded_by" in files.columns:
        files = files[files["superseded_by"].isna() | (files["superseded_by"].astype(str) == "")]
    step1 = files[files["release"].astype(str) == "step1"]
    sent = step1.groupby("product")["sent"].all()
    return {e for e in (parse_exposure_prefix(str(p)) for p in sent.index[sent.to_numpy(bool)])
            if e is not None}


def load_survey(config: Mapping[str, Any], workdir: str | Path = ".") -> Survey:
    """Read the registry and the release plans of a configuration.

    Raises
    ------
    SelectionError
        If the registry cannot be read.
    """
    workdir = Path(workdir)
    exposures, ccds = read_registry(_registry_url(config["registry"]["url"], workdir))
    results = _resolve(config["results"], workdir)
    lists = release_lists(results, (config.get("releases") or {}).keys())
    sent = sent_exposures(results)
    if sent is not None:
        exposures = exposures.assign(sent=pd.to_numeric(exposures["expnum"], errors="coerce")
                                     .isin(sent).to_numpy())
    return Survey(config=dict(config), workdir=workdir,
                  exposures=survey_state(exposures, config["survey"], lists), ccds=ccds,
                  releases=lists)
