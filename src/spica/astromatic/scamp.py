"""SCAMP (seed section 4): its arguments, its run and the readers of what it writes."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.wcs import WCS

from spica.astromatic._run import run_tool
from spica.astromatic.options import option_arguments
from spica.astromatic.votable import read_xml
from spica.paths import exposure_name, parse_exposure_prefix, scamp_head_name
from spica.provenance import ToolRun

__all__ = ["plain_head_text", "CHECKPLOTS", "checkplot_names", "checkplot_files", "scamp_arguments", "parse_heads", "read_heads", "head_wcs", "head_statistics", "parse_scamp_xml", "run_scamp"]


#: SCAMP ``CHECKPLOT_TYPE`` -> the seed's file-name suffix, in the order of
#: ``CHECKPLOT_TYPE`` in ``config/astromatic/scamp.scamp``. SCAMP appends
#: ``_<n>.png``/``_<n>.ps`` (field group or instrument number) to each name.
CHECKPLOTS: dict[str, str] = {
    "FGROUPS": "fgroups",
    "DISTORTION": "distortion",
    "ASTR_INTERROR2D": "astr_interror2d",
    "ASTR_INTERROR1D": "astr_interror1d",
    "ASTR_REFERROR2D": "astr_referror2d",
    "ASTR_REFERROR1D": "astr_referror1d",
    "PHOT_ERROR": "phot_error",
    "PHOT_ZPCORR": "phot_zpcorr",
    "PHOT_ZPCORR3D": "phot_zpcorr3d",
}


_NON_ASCII_RE = re.compile(r"[^\x20-\x7e]")


def checkplot_names(prefix: str | Path) -> list[str]:
    """Return the ``CHECKPLOT_NAME`` values for a run: ``<prefix>_<seed name>``.

    Parameters
    ----------
    prefix : str or Path
        Path and stem of the plots, e.g. ``results/step2/D3_r/D3_r``.

    Returns
    -------
    list of str
        One name per :data:`CHECKPLOTS` entry, in ``CHECKPLOT_TYPE`` order.
    """
    return [f"{prefix}_{name}" for name in CHECKPLOTS.values()]


def checkplot_files(
    prefix: str | Path, *, groups: int = 1, astr_instruments: int = 1, extensions: Sequence[str] = (".png", ".ps")
) -> list[Path]:
    """Return the plot files SCAMP 2.10 writes for :func:`checkplot_names`.

    ``distortion`` is numbered by astrometric instrument; every other plot
    (``phot_zpcorr`` and ``phot_zpcorr3d`` included, whatever the number of photometric
    instruments) by field group.

    Parameters
    ----------
    prefix : str or Path
        As given to :func:`checkplot_names`.
    groups, astr_instruments : int
        ``ngroups`` and ``n_astr_instruments`` of :func:`parse_scamp_xml`.
    extensions : sequence of str
        One per ``CHECKPLOT_DEV`` device (``PNG,PSC`` in ``scamp.scamp``).

    Returns
    -------
    list of Path
    """
    return [
        Path(f"{prefix}_{name}_{n}{extension}")
        for name in CHECKPLOTS.values()
        for n in range(1, (astr_instruments if name == "distortion" else groups) + 1)
        for extension in extensions
    ]


def scamp_arguments(
    *,
    catalogs: Sequence[str | Path],
    refcat: str | Path,
    xml_out: str | Path,
    checkplot_names: Sequence[str],
    config: str | Path | None = None,
    header_suffix: str = ".head",
    aheader_suffix: str = ".ahead",
    header_names: Sequence[str | Path] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> list[str]:
    """Return the SCAMP argument vector of one run (everything after ``scamp``).

    ``[*catalogs, "-c", config, -ASTREFCAT_NAME ..., -XML_NAME ...,
    -CHECKPLOT_NAME ..., -AHEADER_SUFFIX ..., -HEADER_SUFFIX | -HEADER_NAME ...,
    -KEY value ...]``; fixed settings are in ``config/astromatic/scamp.scamp``.

    Parameters
    ----------
    catalogs : sequence of path
        FITS-LDAC catalogues (each with its ``.ahead`` beside it).
    refcat : path
        FITS-LDAC astrometric reference catalogue (``ASTREF_CATALOG FILE``).
    xml_out : path
        ``XML_NAME``.
    checkplot_names : sequence of str
        ``CHECKPLOT_NAME`` values, one per ``CHECKPLOT_TYPE`` of the config
        (see :func:`checkplot_names`).
    config : path, optional
        The configuration file; ``-c config`` is emitted after the catalogues.
    header_suffix : str
        ``HEADER_SUFFIX``: output heads beside the catalogues.
    aheader_suffix : str
        ``AHEADER_SUFFIX``: input ``.ahead`` beside the catalogues.
    header_names : sequence of path, optional
        ``HEADER_NAME``: one output head per catalogue, anywhere (overrides
        ``header_suffix``).
    overrides : mapping, optional
        Any other keyword -> value (bool -> Y/N, sequence -> comma list).

    Returns
    -------
    list of str

    Raises
    ------
    ValueError
        No catalogue, a header name count mismatch, a bad keyword, or a
        per-run keyword repeated in ``overrides``.
    """
    if not catalogs:
        raise ValueError("SCAMP needs at least one catalogue")
    if header_names is not None and len(header_names) != len(catalogs):
        raise ValueError(f"{len(header_names)} header names for {len(catalogs)} catalogues")
    names = [str(n) for n in checkplot_names]
    if any("," in n or not n for n in names):
        raise ValueError(f"bad check-plot names: {names}")
    args = [str(c) for c in catalogs]
    if config is not None:
        args += ["-c", str(config)]
    per_run: dict[str, str] = {
        "ASTREFCAT_NAME": str(refcat),
        "XML_NAME": str(xml_out),
        "CHECKPLOT_NAME": ",".join(names),
        "AHEADER_SUFFIX": aheader_suffix,
    }
    if header_names is not None:
        per_run["HEADER_NAME"] = ",".join(str(n) for n in header_names)
    else:
        per_run["HEADER_SUFFIX"] = header_suffix
    return args + option_arguments(per_run) + option_arguments(overrides or {}, fixed=per_run)


def parse_heads(text: str) -> list[fits.Header]:
    """Parse the text of a SCAMP ``.head``/``.ahead``: one header per CCD.

    Non-ASCII characters (SCAMP writes one in a ``COMMENT``, which breaks
    astropy) are dropped and lines padded to 80 characters.

    Parameters
    ----------
    text : str

    Returns
    -------
    list of astropy.io.fits.Header
    """
    headers, block = [], []
    for raw in text.splitlines():
        line = _NON_ASCII_RE.sub("", raw).rstrip()
        if line.strip() == "END":
            headers.append(fits.Header.fromstring("\n".join(block), sep="\n") if block else fits.Header())
            block = []
        elif line.strip():
            block.append(line[:80].ljust(80))
    if block:
        headers.append(fits.Header.fromstring("\n".join(block), sep="\n"))
    return headers


def read_heads(head_path: str | Path) -> list[fits.Header]:
    """Read a SCAMP ``.head`` file (see :func:`parse_heads`)."""
    raw = Path(head_path).read_bytes().decode("ascii", errors="ignore")
    return parse_heads(raw)


def plain_head_text(head_path: str | Path) -> str:
    """The text of a SCAMP ``.head`` made plain ASCII, one card a line.

    SCAMP writes one non-ASCII character in a ``COMMENT`` line, which breaks
    astropy and other FITS readers; it is dropped.
    """
    lines = Path(head_path).read_bytes().decode("ascii", errors="ignore").splitlines()
    return "".join(_NON_ASCII_RE.sub("", line) + "\n" for line in lines)


def head_wcs(header: fits.Header) -> WCS:
    """Return the celestial WCS of one CCD of a SCAMP head.

    SCAMP writes ``RA---TAN``/``DEC--TAN`` with ``PVi_j`` polynomial terms:
    the TPV convention. The types are rewritten as ``TPV`` so that WCSLIB
    applies the polynomial explicitly.

    Parameters
    ----------
    header : astropy.io.fits.Header
        One header from :func:`read_heads` (or an image header merged with it).

    Returns
    -------
    astropy.wcs.WCS
    """
    h = fits.Header()
    for card in header.cards:
        if card.keyword in ("", "COMMENT", "HISTORY"):
            continue
        h[card.keyword] = card.value
    has_pv = any(k.startswith(("PV1_", "PV2_")) for k in h.keys())
    if has_pv:
        for axis in ("1", "2"):
            ctype = str(h.get(f"CTYPE{axis}", ""))
            if ctype.endswith("-TAN"):
                h[f"CTYPE{axis}"] = ctype[:-4] + "-TPV"
    h["NAXIS"] = 2
    return WCS(h, naxis=2)


def head_statistics(heads: Sequence[fits.Header]) -> pd.DataFrame:
    """Per-CCD quality figures SCAMP writes into a ``.head``.

    Parameters
    ----------
    heads : sequence of astropy.io.fits.Header
        From :func:`read_heads`.

    Returns
    -------
    pandas.DataFrame
        One row per CCD: ``astirms`` and ``astrrms`` (arcsec, 2-D internal and
        reference dispersions of high-S/N detections, from ``ASTIRMS1/2`` and
        ``ASTRRMS1/2`` in degrees), ``photirms`` (mag), ``flxscale``,
        ``astinst``, ``photinst``, ``photlink``, ``fgroupno``.
    """
    rows = []
    for ccd, h in enumerate(heads):
        def deg2(a: str, b: str) -> float:
            if a in h and b in h:
                return 3600.0 * math.hypot(float(h[a]), float(h[b]))
            return float("nan")

        rows.append({
            "ccd": ccd,
            "astirms": deg2("ASTIRMS1", "ASTIRMS2"),
            "astrrms": deg2("ASTRRMS1", "ASTRRMS2"),
            "photirms": float(h.get("PHOTIRMS", float("nan"))),
            "flxscale": float(h.get("FLXSCALE", float("nan"))),
            "astinst": h.get("ASTINST"),
            "photinst": h.get("PHOTINST"),
            "photlink": h.get("PHOTLINK"),
            "fgroupno": h.get("FGROUPNO"),
        })
    return pd.DataFrame(rows)


def _pair(value: Any, index: int) -> float:
    if isinstance(value, list):
        return float(value[index]) if len(value) > index else float("nan")
    return float(value) if value not in (None, "") else float("nan")


def _rms2(value: Any) -> float:
    """Combined 2-D dispersion from a per-axis pair."""
    if isinstance(value, list) and len(value) >= 2:
        return float(math.hypot(value[0], value[1]))
    return _pair(value, 0)


def parse_scamp_xml(path: str | Path) -> dict[str, Any]:
    """Read SCAMP's XML summary with ElementTree (it is not always valid VOTable).

    Parameters
    ----------
    path : str or Path
        ``XML_NAME`` of the run.

    Returns
    -------
    dict
        ``tables``: every ``TABLE`` by name (``Fields``, ``FGroups``,
        ``Astrometric_Instruments``, ``Photometric_Instruments``,
        ``Warnings``, ...) as DataFrames with SCAMP's column names;
        ``fields``: one row per catalogue with ``catalog``, ``group``,
        ``astr_instrument``, ``phot_instrument``, ``photometric``,
        ``ndetect``, ``zeropoint_corr`` (mag, = ``dzp`` of
        :func:`exposure_zeropoints`), ``flux_scale`` (``10**(-0.4
        zeropoint_corr)``: the factor on Elixir-calibrated fluxes),
        ``astrom_sigma_reference`` and ``astrom_offset_reference`` (arcsec,
        2-D), ``chi2_internal``/``chi2_reference`` (and ``_hisn``);
        ``astrom_sigma_internal`` is NaN: SCAMP 2.10 writes no per-field
        internal dispersion (the heads carry it, :func:`head_statistics`); ``groups``: one row per field group
        with ``nfields``, internal/reference dispersions (arcsec, 2-D, all and
        high-S/N), chi2, match counts and photometric dispersions;
        ``summary``: run-level values (``nfields``, ``ngroups``,
        ``n_astr_instruments``, ``n_phot_instruments``, ``version``,
        ``date``, ``warnings``) and the global statistics (the detection
        weighted mean of group dispersions).
    """
    doc = read_xml(path)
    tables: dict[str, pd.DataFrame] = {}
    for table in doc.tables:
        key = table.name if table.name is not None else table.id if table.id is not None else f"table{len(tables)}"
        tables[key] = table.frame()
    params = doc.resources.get("MetaData", {})

    raw = tables.get("Fields", pd.DataFrame())

    def column(name: str, default: Any = np.nan) -> Any:
        return raw[name].to_numpy() if name in raw else default

    zpc = np.asarray(column("ZeroPoint_Corr"), dtype=float)
    fields = pd.DataFrame({
        "catalog": column("Catalog_Name", None),
        "group": column("Group"),
        "astr_instrument": column("Astr_Instrum", None),
        "phot_instrument": column("Phot_Instrum", None),
        "photometric": column("Photom_Flag", None),
        "photometric_link": column("Photom_Link", None),
        "ndetect": column("NDetect"),
        "exposure_time": column("Exposure_Time"),
        "airmass": column("AirMass"),
        "zeropoint_corr": zpc,
        # multiplicative correction to Elixir-calibrated fluxes
        "flux_scale": 10.0 ** (-0.4 * zpc),
        # SCAMP 2.10 writes no per-field internal dispersion: see head_statistics
        "astrom_sigma_internal": np.nan,
        "astrom_sigma_reference": [_rms2(v) for v in raw["AstromSigma_Reference"]]
        if "AstromSigma_Reference" in raw else np.nan,
        "astrom_offset_reference": [_rms2(v) for v in raw["AstromOffset_Reference"]]
        if "AstromOffset_Reference" in raw else np.nan,
        "chi2_internal": column("Chi2_Internal"),
        "chi2_internal_hisn": column("Chi2_Internal_HighSN"),
        "chi2_reference": column("Chi2_Reference"),
        "chi2_reference_hisn": column("Chi2_Reference_HighSN"),
    }, index=range(len(raw)))

    groups_raw = tables.get("FGroups", pd.DataFrame())
    group_rows = []
    for _, g in groups_raw.iterrows():
        row = {"group": g.get("Name"), "nfields": g.get("NFields")}
        for src, dst in (("Internal", "internal"), ("Reference", "reference")):
            row[f"astrom_sigma_{dst}"] = _rms2(g.get(f"AstromSigma_{src}"))
            row[f"astrom_sigma_{dst}_hisn"] = _rms2(g.get(f"AstromSigma_{src}_HighSN"))
            row[f"astrom_chi2_{dst}"] = _pair(g.get(f"AstromChi2_{src}"), 0)
            row[f"astrom_chi2_{dst}_hisn"] = _pair(g.get(f"AstromChi2_{src}_HighSN"), 0)
            row[f"astrom_ndets_{dst}"] = _pair(g.get(f"AstromNDets_{src}"), 0)
            row[f"astrom_ndets_{dst}_hisn"] = _pair(g.get(f"AstromNDets_{src}_HighSN"), 0)
            row[f"phot_sigma_{dst}"] = _pair(g.get(f"PhotSigma_{src}"), 0)
            row[f"phot_sigma_{dst}_hisn"] = _pair(g.get(f"PhotSigma_{src}_HighSN"), 0)
            row[f"phot_chi2_{dst}"] = _pair(g.get(f"PhotChi2_{src}"), 0)
            row[f"phot_ndets_{dst}"] = _pair(g.get(f"PhotNDets_{src}"), 0)
        group_rows.append(row)
    groups = pd.DataFrame(group_rows)

    summary: dict[str, Any] = {
        "version": params.get("Version"),
        "date": params.get("Date"),
        "nfields": int(len(fields)),
        "ngroups": int(len(groups)),
        "n_astr_instruments": int(len(tables.get("Astrometric_Instruments", []))),
        "n_phot_instruments": int(len(tables.get("Photometric_Instruments", []))),
        "warnings": list(tables["Warnings"].iloc[:, -1]) if "Warnings" in tables and len(tables["Warnings"]) else [],
    }
    for dst in ("internal", "reference"):
        for suffix in ("", "_hisn"):
            sig, n = f"astrom_sigma_{dst}{suffix}", f"astrom_ndets_{dst}{suffix}"
            if len(groups) and sig in groups:
                w = groups[n].fillna(0).to_numpy(float)
                s = groups[sig].to_numpy(float)
                ok = np.isfinite(s) & (w > 0)
                summary[sig] = float(np.sqrt(np.sum(w[ok] * s[ok] ** 2) / np.sum(w[ok]))) if ok.any() else float("nan")
                summary[n] = int(w.sum())
    return {"tables": tables, "fields": fields, "groups": groups, "summary": summary}


def run_scamp(
    binary: str,
    config: str | Path,
    *,
    catalogs: Sequence[str | Path],
    refcat: str | Path,
    xml_out: str | Path,
    products: str | Path,
    stem: str,
    stack_list: Sequence[int],
    overrides: Mapping[str, Any] | None = None,
    log: Any = None,
) -> ToolRun:
    """Calibrate one stack's astrometric list with SCAMP; return the run
    (:class:`spica.provenance.ToolRun`).

    The ``.ahead`` of each catalogue must sit beside it. Output heads go to
    ``products/NNNNNNp.head`` (one per catalogue: ``HEADER_NAME``, so runs of
    different stacks never write over each other's heads) and the seed's check
    plots to ``products/<stem>_<plot>_<n>.png`` and ``.ps``.

    Raises
    ------
    subprocess.CalledProcessError
        If SCAMP fails.
    FileNotFoundError
        If SCAMP wrote no head for an exposure of the stack list.
    """
    # absolute paths: SCAMP runs inside ``products`` so stray files stay there
    products = Path(products).resolve()
    products.mkdir(parents=True, exist_ok=True)
    catalogs = [Path(c).resolve() for c in catalogs]
    refcat, xml_out, config = (Path(p).resolve() for p in (refcat, xml_out, config))
    heads = []
    for catalog in catalogs:
        expnum = parse_exposure_prefix(Path(catalog).name)
        if expnum is None:
            raise ValueError(f"not a step 1 catalogue: {catalog}")
        heads.append(products / scamp_head_name(expnum))
    command = [str(binary)] + scamp_arguments(
        catalogs=catalogs, refcat=refcat, xml_out=xml_out, config=config,
        checkplot_names=checkplot_names(products / stem), header_names=heads,
        overrides=overrides,
    )
    run = run_tool(command, log=log, cwd=products, outputs=[xml_out])
    for expnum in stack_list:
        if not (products / scamp_head_name(expnum)).is_file():
            raise FileNotFoundError(f"SCAMP wrote no head for {exposure_name(expnum)}")
    return run
