"""A synthetic survey for the interface's tests and benchmark (no AstrOmatic tool needed).

:func:`build_survey` writes a registry (the tables of
:func:`spica.registry.schema`, rows conformed by :func:`spica.registry.conform`),
a release plan (:func:`spica.release.planning.write_plan`) and, optionally,
small step 1 and product files, under a results tree. Exposures come from
three CFHTLS programmes (``04AL01`` Deep, ``04AL02`` Wide, ``04AL03`` Very
Wide) and two PI programmes (``04BF01``, ``04BF02``); products are Deep
stacks of CFHTLS exposures and image-by-image products of Very Wide and PI
exposures. The first Deep stack's astrometric list includes a PI exposure.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from spica.paths import (
    STACK_THUMBNAILS,
    exposure_filename,
    exposure_name,
    product_path,
    release_stem,
    scamp_folder,
    stack_name,
    step1_path,
)

__all__ = ["SyntheticSurvey", "build_survey", "CFHTLS_RUNIDS", "PI_RUNIDS"]

CFHTLS_RUNIDS = ("04AL01", "04AL02", "04AL03")
PI_RUNIDS = ("04BF01", "04BF02")
_COMPONENT = {"04AL01": "D", "04AL02": "W", "04AL03": "VW"}
#: The step 1 plots written for each exposure (the grading page's).
_STEP1_PLOTS = ("fwhm_histo", "bkg_histo", "rhmag", "ell", "psf_m", "m_med", "wmm_med", "star_histo")
_FILTERS = {"u": "u.MP9301", "g": "g.MP9401", "r": "r.MP9601", "i": "i.MP9701", "z": "z.MP9801"}


@dataclass
class SyntheticSurvey:
    """What :func:`build_survey` made."""

    results: Path
    registry_url: str
    exposures: pd.DataFrame
    stems: list[str]
    stack_lists: dict[str, list[int]]
    astrometric_lists: dict[str, list[int]]
    release: str = "T0002"


@functools.cache
def _png_bytes(seed: int) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    plt.imsave(buffer, np.random.default_rng(seed).random((24, 32)), cmap="gray", format="png")
    return buffer.getvalue()


def _png(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_png_bytes(seed % 8))


def _exposures(n: int, rng: np.random.Generator) -> pd.DataFrame:
    runids = np.array(CFHTLS_RUNIDS + PI_RUNIDS)
    weights = np.array([0.3, 0.3, 0.2, 0.1, 0.1])
    chosen = runids[np.arange(n) % len(runids)] if n <= 50 else rng.choice(runids, size=n, p=weights)
    bands = np.array(list(_FILTERS))[(np.arange(n) + np.arange(n) // 5) % 5]
    dates = pd.Timestamp("2004-03-01") + pd.to_timedelta(np.arange(n) * (260.0 / max(n, 1)), unit="D")
    frame = pd.DataFrame({
        "expnum": 800000 + np.arange(n),
        "status": "ok",
        "runid": chosen,
        "object": [{"04AL01": "D3", "04AL02": "W3+2-1", "04AL03": "VW3-3-1"}.get(r, f"PI-{r[-3:]}")
                   for r in chosen],
        "band": bands,
        "filter": [_FILTERS[b] for b in bands],
        "exptime": np.round(rng.uniform(60, 900, n), 3),
        "airmass": np.round(rng.uniform(1.0, 1.6, n), 3),
        "date_obs": dates.strftime("%Y-%m-%d"),
        "utc_obs": dates.strftime("%H:%M:%S"),
        "mjd_obs": 53000.0 + np.arange(n),
        "ra_deg": np.round(214.5 + rng.uniform(0, 1, n), 6),
        "dec_deg": np.round(52.3 + rng.uniform(0, 0.8, n), 6),
        "skyprobe": np.round(rng.uniform(0, 2.5, n), 3),
        "qa_fwhm_arcsec": np.round(rng.uniform(0.6, 1.4, n), 3),
        "qa_background_mag": np.round(rng.uniform(19, 22, n), 3),
        "provisional_grade": np.array(["A", "A", "B", "C", "D"])[np.arange(n) % 5],
        "provisional_reason": None,
        "photometric": True,
        "pi_name": ["" if r in CFHTLS_RUNIDS else f"PI {r}" for r in chosen],
        "n_ccd": 8,
    })
    frame["file"] = [f"demo/raw/exposures/{exposure_filename(e)}" for e in frame["expnum"]]
    frame["grade"] = frame["provisional_grade"]
    frame["grade_provisional"] = True
    if n >= 12:  # one quarantined file: never shown to anyone but staff
        frame.loc[n - 1, ["status", "reason", "grade", "provisional_grade", "grade_provisional"]] = \
            ["quarantined", "truncated", None, None, False]
    return frame


def _write_registry(url: str, exposures: pd.DataFrame) -> None:
    from spica.registry import STEP1_TABLES, conform, open_database, schema

    engine = open_database(url)
    with engine.begin() as connection:
        tables = [schema().tables[name] for name in STEP1_TABLES]
        schema().drop_all(connection, tables=tables, checkfirst=True)
        schema().create_all(connection, tables=tables, checkfirst=True)
        conform(exposures, "exposures").to_sql("exposures", connection, if_exists="append", index=False)
    engine.dispose()


def _plan(exposures: pd.DataFrame, n_products: int, release: str):
    from spica.release.planning import STACK_COLUMNS, Plan

    ok = exposures[exposures["status"] == "ok"]
    deep = ok[ok["runid"] == "04AL01"]
    singles = ok[ok["runid"].isin(["04AL03", *PI_RUNIDS])]
    pi_one = ok[ok["runid"] == "04BF01"]["expnum"].tolist()
    rows, stack_lists, astro_lists = [], {}, {}
    n_stacks = max(1, n_products // 4)
    for i in range(n_stacks):
        band = "ugriz"[i % 5]
        members = deep[deep["band"] == band]["expnum"].tolist()[i // 5::max(1, n_stacks // 5)]
        if not members:
            continue
        ra, dec = 214.8625 + 0.3 * (i // 5), 52.6822
        name = stack_name("D", band, ra, dec)
        if name in stack_lists:
            continue
        stack_lists[name] = members
        astro_lists[name] = sorted(set(members) | ({pi_one[0]} if i == 0 and pi_one else set()))
        rows.append({"name": name, "mode": "stack", "release": release, "version": release[1:], "survey": "D",
                     "filter": _FILTERS[band], "band": band, "ra": ra, "dec": dec, "size_deg": 0.0833,
                     "n_scamp": len(astro_lists[name]), "n_swarp": len(members), "node": f"mix{i % 3 + 1}",
                     "status": "pending"})
    for row in singles.head(max(0, n_products - len(rows))).itertuples():
        name = f"{exposure_name(row.expnum)}_V0001"
        stack_lists[name] = astro_lists[name] = [int(row.expnum)]
        rows.append({"name": name, "mode": "image", "release": release, "version": "V0001",
                     "survey": _COMPONENT.get(row.runid, "PI"), "filter": row.filter, "band": row.band,
                     "ra": row.ra_deg, "dec": row.dec_deg, "size_deg": 0.1, "n_scamp": 1, "n_swarp": 1,
                     "node": "pix9", "status": "pending"})
    stacks = pd.DataFrame(rows, columns=list(STACK_COLUMNS))
    selection = exposures[["expnum", "object", "runid", "filter", "band", "status"]].dropna(subset=["expnum"])
    return Plan(stacks=stacks, stack_lists=stack_lists, astrometric_lists=astro_lists, selection=selection,
                release=release)


def _product_files(results: Path, release: str, stem: str, members: list[int], astro: list[int],
                   exposures: pd.DataFrame) -> None:
    import xml.etree.ElementTree as ET

    from astropy.table import Table

    from spica.products.summary import SUMMARY_TABLES, write_product_summary

    image = product_path(results, release, stem, "image")
    image.parent.mkdir(parents=True, exist_ok=True)
    image.write_bytes(b"SIMPLE  =                    T" + b" " * 2850)
    rows = exposures.set_index("expnum")
    stacked = Table({"file": [exposure_filename(e) for e in members], "runid": [rows.loc[e, "runid"] for e in members],
                     "seeing_arcsec": [float(rows.loc[e, "qa_fwhm_arcsec"]) for e in members]})
    astrometric = Table({"file": [exposure_filename(e) for e in astro],
                         "runid": [rows.loc[e, "runid"] for e in astro],
                         "ra_deg": [float(rows.loc[e, "ra_deg"]) for e in astro]})
    tables = {
        "Stack": Table({"name": [stem], "n_files": [len(members)], "exptime_total": [float(rows.loc[members, "exptime"].sum())]}),
        "Stacked_Files": stacked,
        "Astrometric_Files": astrometric,
        "Filters": Table({"filter": ["r.MP9601"], "n_files": [len(astro)]}),
        "Astrometry": Table({"group": ["1"], "astrom_sigma_reference": [0.05]}),
        "Photometry": Table({"group": ["1"], "phot_sigma_internal": [0.01]}),
    }
    for name in SUMMARY_TABLES:  # tables added to the summary since: one row each
        tables.setdefault(name, Table({"stem": [stem]}))
    write_product_summary(tables, product_path(results, release, stem, "summary"))
    for i, key in enumerate(STACK_THUMBNAILS):
        _png(product_path(results, release, stem, key), i)
    _png(scamp_folder(results, release, stem) / f"{stem}_fgroups_1.png", 7)
    _png(image.parent / f"{stem}_comptness.png", 5)  # QualityFITS-out's completeness plot
    product_path(results, release, stem, "cmd").write_text(f"#!/bin/sh\n# rebuilds {stem}\nSWarp @{stem}_stack.list\n")
    top = ET.Element("SPICA", product=stem, release=release)
    inputs = ET.SubElement(top, "INPUTS")
    for expnum in astro:
        ET.SubElement(inputs, "FILE", kind="exposures", name=f"demo/raw/exposures/{exposure_filename(expnum)}",
                      size="1000", sha256=f"{expnum:064x}")
    product_path(results, release, stem, "xml").write_text(ET.tostring(top, encoding="unicode"))


def _step1_files(results: Path, expnum: int, row: pd.Series) -> None:
    from astropy.io.votable import from_table
    from astropy.table import Table

    for i, key in enumerate(_STEP1_PLOTS):
        _png(step1_path(results, expnum, key), expnum + i)
    field = Table({"exposure": [exposure_name(expnum)], "expnum": [expnum],
                   "fwhm_arcsec": [float(row["qa_fwhm_arcsec"])], "background_mag": [float(row["qa_background_mag"])]})
    votable = from_table(field, table_id="Field")
    votable.resources[0].tables[0].name = "Field"
    votable.to_xml(str(step1_path(results, expnum, "qa_xml")))


def build_survey(results: str | Path, *, n_exposures: int = 40, n_products: int = 8, files: bool = True,
                 release: str = "T0002", done: int = 1, url: str | None = None) -> SyntheticSurvey:
    """Write a synthetic survey under ``results`` (see the module docstring).

    Parameters
    ----------
    results
        The results tree to create.
    n_exposures, n_products
        Sizes (about a quarter of the products are Deep stacks).
    files
        Also write step 1 QA files for every accepted exposure and the files of the
        first ``done`` stack products (image, summary, thumbnails, SCAMP plot, provenance).
    url
        Registry URL (default ``sqlite:///<results>/registry.sqlite``).
    """
    from spica.release.planning import write_plan

    results = Path(results)
    results.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20040624)
    exposures = _exposures(n_exposures, rng)
    url = url or f"sqlite:///{results / 'registry.sqlite'}"
    _write_registry(url, exposures)
    plan = _plan(exposures, n_products, release)
    write_plan(plan, results / "releases" / release)
    stems = [release_stem(str(n), release) for n in plan.stacks["name"]]
    lists = {release_stem(k, release): v for k, v in plan.stack_lists.items()}
    astro = {release_stem(k, release): v for k, v in plan.astrometric_lists.items()}
    if files:
        for _, row in exposures[exposures["status"] == "ok"].iterrows():
            _step1_files(results, int(row["expnum"]), row)
        stacks = [s for s in stems if s.startswith("CFHTLS_")][:done]
        images = [s for s in stems if not s.startswith("CFHTLS_")]
        for stem in stacks + images[:2]:
            _product_files(results, release, stem, lists[stem], astro[stem], exposures)
    return SyntheticSurvey(results=results, registry_url=url, exposures=exposures, stems=stems,
                           stack_lists=lists, astrometric_lists=astro, release=release)
