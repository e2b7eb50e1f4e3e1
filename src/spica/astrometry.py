"""SCAMP: global astrometric and photometric calibration (seed section 4).

Fixed settings live in ``config/astromatic/scamp.scamp``; this module builds
what changes per exposure or per run, and reads what SCAMP writes back::

    write_ahead(NNNNNNp.fits, NNNNNNp_ldac.ahead, photometric=...)   # per exposure
    scamp <scamp_arguments(catalogs=..., config=..., refcat=..., xml_out=...,
                           checkplot_names=checkplot_names(prefix))>
    read_heads(NNNNNNp_ldac.head) -> head_wcs(...)   # astrometry per CCD
    parse_scamp_xml(scamp.xml)                       # summary tables

Why the ``.ahead``: SExtractor's ``LDAC_IMHEAD`` keeps only the extension
header, while Elixir puts ``FILTER``, ``QRUNID``, ``EXPTIME``, ``MJD-OBS``
and ``AIRMASS`` in the primary header only; SCAMP would then see a blank
filter, epoch 0 and no photometric anchor. The ``.ahead`` beside each
catalogue repeats them for every CCD, with ``PHOTFLAG`` (from the observing
metadata) and the Elixir ``PHOT_C``/``PHOT_K``.

Zero points: SCAMP writes ``MAGZEROP`` (= ``MAGZERO_OUT``, 30) and
``FLXSCALE`` per CCD such that ``30 - 2.5 log10(FLUX * FLXSCALE)`` is the
calibrated magnitude of a detection measured in ADU on the exposure;
:func:`exposure_zeropoints` turns this into the zero point of the exposure
in ADU and its change from the Elixir one
(``PHOT_C + 2.5 log10(EXPTIME) + PHOT_K (AIRMASS - 1)``).
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from astropy.io import fits

from astropy.wcs import WCS

from spica.paths import AHEAD_SUFFIX, HEAD_SUFFIX, exposure_name
from spica.provenance import ToolRun

__all__ = [
    "PRIMARY_KEYWORDS",
    "PHOTOMETRY_KEYWORDS",
    "CHECKPLOTS",
    "ahead_cards",
    "write_ahead",
    "checkplot_names",
    "checkplot_files",
    "scamp_arguments",
    "parse_heads",
    "read_heads",
    "head_wcs",
    "exposure_zeropoints",
    "head_statistics",
    "parse_scamp_xml",
    "run_scamp",
    "head_problems",
    "write_accept_summary",
    "read_accept_summary",
    "deliver_heads",
    "deliver_image_ahead",
]

#: Primary-header keywords SCAMP needs on every CCD (astrometric context,
#: epoch, photometric context, airmass term).
PRIMARY_KEYWORDS: tuple[str, ...] = ("FILTER", "EXPTIME", "MJD-OBS", "QRUNID", "AIRMASS")

#: Elixir photometric keywords, taken from the extension (primary as fallback).
PHOTOMETRY_KEYWORDS: tuple[str, ...] = ("PHOT_C", "PHOT_K")

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

_KEY_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_NON_ASCII_RE = re.compile(r"[^\x20-\x7e]")


# ------------------------------------------------------------------ .ahead
def _lookup(key: str, *headers: fits.Header) -> Any:
    for header in headers:
        if key in header:
            return header[key]
    return None


def ahead_cards(
    primary: fits.Header, extension_headers: Sequence[fits.Header], *, photometric: bool
) -> str:
    """Return the text of the ``.ahead`` file of one exposure.

    One block per extension (CCD), each a series of 80-character cards
    ending with ``END``, in the order of the extensions (the order of the
    catalogue's ``LDAC_IMHEAD`` tables).

    Parameters
    ----------
    primary : astropy.io.fits.Header
        Primary header of the exposure (``FILTER``, ``QRUNID``, ...).
    extension_headers : sequence of astropy.io.fits.Header
        The image extension headers, in file order.
    photometric : bool
        The night was photometric (observing metadata): ``PHOTFLAG = T``
        makes SCAMP anchor the zero point to ``PHOT_C`` within
        ``MAGZERO_REFERR``.

    Returns
    -------
    str
        Newline-separated cards; parse one block with
        ``fits.Header.fromstring(block, sep="\\n")``.

    Raises
    ------
    ValueError
        No extension, or a required keyword missing from both headers.
    """
    if not extension_headers:
        raise ValueError("an exposure without image extensions has no .ahead")
    blocks = []
    for index, ext in enumerate(extension_headers):
        out = fits.Header()
        for key in PRIMARY_KEYWORDS:
            value = _lookup(key, primary, ext)
            if value is None:
                raise ValueError(f"{key} in neither the primary header nor extension {index + 1}")
            if isinstance(value, str):
                value = value.strip()
            comment = primary.comments[key] if key in primary else ext.comments[key]
            out[key] = (value, comment)
        out["PHOTFLAG"] = (bool(photometric), "photometric night (observing metadata)")
        for key in PHOTOMETRY_KEYWORDS:
            value = _lookup(key, ext, primary)
            if value is None:
                raise ValueError(f"{key} in neither extension {index + 1} nor the primary header")
            comment = ext.comments[key] if key in ext else primary.comments[key]
            out[key] = (float(value), comment)
        cards = [card.image for card in out.cards] + ["END".ljust(80)]
        blocks.append("\n".join(cards))
    return "\n".join(blocks) + "\n"


def write_ahead(exposure_path: str | Path, out_path: str | Path, *, photometric: bool) -> Path:
    """Write the ``.ahead`` of an exposure (MEF) beside its catalogue.

    Parameters
    ----------
    exposure_path : str or Path
        The exposure (``NNNNNNp.fits``, ``.fits.fz``).
    out_path : str or Path
        ``NNNNNNp_ldac.ahead``: the catalogue name with its suffix replaced
        by ``AHEADER_SUFFIX``.
    photometric : bool
        From the observing metadata (``photometric`` column).

    Returns
    -------
    Path
        ``out_path``.
    """
    with fits.open(exposure_path, memmap=False) as hdul:
        primary = hdul[0].header
        extensions = [hdu.header for hdu in hdul[1:] if hdu.is_image and hdu.header.get("NAXIS", 0) == 2]
        text = ahead_cards(primary, extensions, photometric=photometric)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="ascii")
    return out


# --------------------------------------------------------------- arguments
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


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, (list, tuple)):
        return ",".join(_format_value(v) for v in value)
    return str(value)


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
    for key, value in (overrides or {}).items():
        if not _KEY_RE.match(key):
            raise ValueError(f"not a SCAMP keyword: {key!r}")
        if key in per_run:
            raise ValueError(f"{key} is a per-run argument; pass it explicitly")
        per_run[key] = _format_value(value)
    for key, value in per_run.items():
        args += [f"-{key}", value]
    return args


# ------------------------------------------------------------------- heads
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


def exposure_zeropoints(
    heads: Sequence[fits.Header], aheads: Sequence[fits.Header]
) -> pd.DataFrame:
    """Per-CCD zero points after SCAMP, in ADU of the exposure.

    Parameters
    ----------
    heads : sequence of astropy.io.fits.Header
        The SCAMP ``.head`` of one exposure (``FLXSCALE``, ``MAGZEROP``).
    aheads : sequence of astropy.io.fits.Header
        Its ``.ahead`` (``PHOT_C``, ``PHOT_K``, ``AIRMASS``, ``EXPTIME``).

    Returns
    -------
    pandas.DataFrame
        One row per CCD: ``flxscale``, ``magzerop``, ``zp_scamp`` (
        ``MAGZEROP - 2.5 log10(FLXSCALE)``: magnitude of 1 ADU),
        ``zp_elixir`` (``PHOT_C + 2.5 log10(EXPTIME) + PHOT_K (AIRMASS-1)``)
        and ``dzp = zp_scamp - zp_elixir`` (< 0: light lost).
    """
    if len(heads) != len(aheads):
        raise ValueError(f"{len(heads)} heads but {len(aheads)} aheads")
    rows = []
    for ccd, (head, ahead) in enumerate(zip(heads, aheads)):
        flx, zp0 = float(head["FLXSCALE"]), float(head["MAGZEROP"])
        zp_scamp = zp0 - 2.5 * math.log10(flx)
        zp_elixir = (
            float(ahead["PHOT_C"]) + 2.5 * math.log10(float(ahead["EXPTIME"]))
            + float(ahead["PHOT_K"]) * (float(ahead["AIRMASS"]) - 1.0)
        )
        rows.append({"ccd": ccd, "flxscale": flx, "magzerop": zp0, "zp_scamp": zp_scamp,
                     "zp_elixir": zp_elixir, "dzp": zp_scamp - zp_elixir})
    return pd.DataFrame(rows)


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


# --------------------------------------------------------------------- XML
def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _convert(text: str | None, datatype: str, arraysize: str | None) -> Any:
    text = (text or "").strip()
    numeric = datatype in ("int", "short", "long", "unsignedByte", "float", "double")
    if datatype == "char" or not numeric and datatype != "boolean":
        return text
    if datatype == "boolean":
        values: list[Any] = [t.upper().startswith("T") for t in text.split()]
    else:
        cast = int if datatype in ("int", "short", "long", "unsignedByte") else float
        values = []
        for t in text.split():
            try:
                values.append(cast(t))
            except ValueError:
                values.append(float("nan"))
    if arraysize and arraysize != "1":
        return values
    return values[0] if values else (float("nan") if numeric else None)


def _table(table: ET.Element) -> pd.DataFrame:
    fields = [f for f in table if _local(f.tag) == "FIELD"]
    names = [f.get("name", f"col{i}") for i, f in enumerate(fields)]
    rows = []
    for tr in table.iter():
        if _local(tr.tag) != "TR":
            continue
        tds = [td for td in tr if _local(td.tag) == "TD"]
        rows.append({
            name: _convert(td.text, f.get("datatype", "char"), f.get("arraysize"))
            for name, f, td in zip(names, fields, tds)
        })
    return pd.DataFrame(rows, columns=names)


def _params(element: ET.Element) -> dict[str, Any]:
    out = {}
    for p in element:
        if _local(p.tag) == "PARAM":
            out[p.get("name", "")] = _convert(p.get("value"), p.get("datatype", "char"), p.get("arraysize"))
    return out


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
    root = ET.parse(path).getroot()
    tables: dict[str, pd.DataFrame] = {}
    for table in root.iter():
        if _local(table.tag) == "TABLE":
            tables[table.get("name", table.get("ID", f"table{len(tables)}"))] = _table(table)
    params: dict[str, Any] = {}
    for res in root.iter():
        if _local(res.tag) == "RESOURCE" and res.get("ID") == "MetaData":
            params = _params(res)

    fields_raw = tables.get("Fields", pd.DataFrame())
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
    import re
    import subprocess

    # absolute paths: SCAMP runs inside ``products`` so stray files stay there
    products = Path(products).resolve()
    products.mkdir(parents=True, exist_ok=True)
    catalogs = [Path(c).resolve() for c in catalogs]
    refcat, xml_out, config = (Path(p).resolve() for p in (refcat, xml_out, config))
    heads = []
    for catalog in catalogs:
        match = re.match(r"^(\d{6,7}p)", Path(catalog).name)
        if not match:
            raise ValueError(f"not a step 1 catalogue: {catalog}")
        heads.append(products / f"{match[1]}.head")
    command = [str(binary)] + scamp_arguments(
        catalogs=catalogs, refcat=refcat, xml_out=xml_out, config=config,
        checkplot_names=checkplot_names(products / stem), header_names=heads,
        overrides=overrides,
    )
    subprocess.run(command, check=True, stdout=log, stderr=log, cwd=products)
    for expnum in stack_list:
        if not (products / f"{int(expnum)}p.head").is_file():
            raise FileNotFoundError(f"SCAMP wrote no head for {int(expnum)}p")
    return ToolRun(command=command, cwd=str(products), outputs=[str(xml_out)])


def head_problems(
    heads: Sequence[fits.Header],
    shapes: Sequence[tuple[int, int]],
    *,
    pixel_scale: float,
    tolerance: float = 0.02,
) -> list[str]:
    """Problems of one exposure's SCAMP solution, CCD by CCD (empty: accepted).

    A distortion fit that went astray (an exposure alone in its astrometric
    context, too few matches) stretches a CCD over the sky; resampled, it
    smears the stack. The local pixel scale at the CCD's corners and centre
    must stay within ``tolerance`` of the survey's ``pixel_scale``.
    """
    problems = []
    for index, (head, (ny, nx)) in enumerate(zip(heads, shapes)):
        wcs = head_wcs(head)
        x = np.array([1.0, nx, 1.0, nx, nx / 2])
        y = np.array([1.0, 1.0, ny, ny, ny / 2])
        scales = []
        for dx, dy in ((1.0, 0.0), (0.0, 1.0)):
            ra0, dec0 = wcs.all_pix2world(x, y, 1)
            ra1, dec1 = wcs.all_pix2world(x + dx, y + dy, 1)
            scales.append(_angular_distance(ra0, dec0, ra1, dec1) * 3600.0)
        worst = float(np.max(np.abs(np.concatenate(scales) / pixel_scale - 1.0)))
        if not np.isfinite(worst) or worst > tolerance:
            problems.append(f"CCD {index + 1}: pixel scale off by {100 * worst:.1f} % "
                            f"(limit {100 * tolerance:.0f} %)")
    return problems


def _angular_distance(ra0, dec0, ra1, dec1):
    ra0, dec0, ra1, dec1 = (np.radians(np.asarray(v, float)) for v in (ra0, dec0, ra1, dec1))
    hav = np.sin((dec1 - dec0) / 2) ** 2 + np.cos(dec0) * np.cos(dec1) * np.sin((ra1 - ra0) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(hav)))


def write_accept_summary(
    *,
    stem: str,
    stack_list: Sequence[int],
    heads_dir: str | Path,
    exposures: Mapping[int, str | Path],
    pixel_scale: float,
    tolerance: float,
    xml_out: str | Path,
    accepted_out: str | Path,
    scamp_xml: str | Path | None = None,
    max_reference_sigma: float | None = None,
) -> list[int]:
    """Check the SCAMP heads of a stack list; write ``_scamp_accept.xml`` and the
    accepted list (one ``NNNNNNp`` a line). Returns the accepted odometers.

    An exposure is rejected, with the reason, when SCAMP wrote no head for it,
    when a CCD's solved pixel scale is off by more than ``tolerance``
    (:func:`head_problems`), or, with ``scamp_xml`` and
    ``max_reference_sigma`` (arcsec), when its residuals against the reference
    catalogue exceed that (a failed pattern match leaves the Elixir WCS, ~1"
    off, which would smear the stack).

    With ``scamp_xml`` (the run's XML), the summary also says whether each
    exposure's zero point is anchored: its photometric instrument (filter) holds
    a photometric exposure in the run. A non-photometric exposure without one
    keeps Elixir's zero point (SCAMP has nothing to tie it to): it is still
    stacked, and ``<PHOTOMETRY anchored="F">`` says why its photometry is not
    calibrated.
    """
    import xml.etree.ElementTree as ElementTree

    root = ElementTree.Element("SCAMP_ACCEPT", product=stem,
                               pixel_scale=str(pixel_scale), tolerance=str(tolerance))
    anchored: dict[int, tuple[bool, str]] = {}
    reference_sigma: dict[int, float] = {}
    if scamp_xml is not None:
        fields = parse_scamp_xml(scamp_xml)["fields"]
        flags = fields["photometric"].astype(str).str.upper().isin(["T", "TRUE", "1"])
        anchors = set(fields.loc[flags, "phot_instrument"])
        for catalog, instrument, sigma in zip(fields["catalog"], fields["phot_instrument"],
                                              fields["astrom_sigma_reference"]):
            match = re.match(r"^(\d{6,7})p", str(catalog))
            if match:
                anchored[int(match[1])] = (instrument in anchors, str(instrument))
                reference_sigma[int(match[1])] = float(sigma)
    accepted = []
    for expnum in sorted(int(e) for e in stack_list):
        head = Path(heads_dir) / f"{expnum}p.head"
        if not head.is_file():
            problems = ["SCAMP wrote no head: not calibrated"]
        else:
            with fits.open(exposures[expnum]) as hdul:
                shapes = [(h.header["NAXIS2"], h.header["NAXIS1"]) for h in hdul[1:]]
            problems = head_problems(read_heads(head), shapes, pixel_scale=pixel_scale, tolerance=tolerance)
        if scamp_xml is not None and max_reference_sigma is not None:
            sigma = reference_sigma.get(expnum)
            if sigma is None:
                problems.append("not among the fields of the SCAMP run")
            elif not sigma <= max_reference_sigma:  # NaN: no reference match at all
                problems.append(f"residuals against the reference catalogue {sigma:.3f}\" RMS "
                                f"(limit {max_reference_sigma}\"): the astrometric match failed")
        element = ElementTree.SubElement(root, "EXPOSURE", name=f"{expnum}p",
                                         accepted="T" if not problems else "F")
        for problem in problems:
            ElementTree.SubElement(element, "REASON").text = problem
        if expnum in anchored:
            is_anchored, instrument = anchored[expnum]
            photometry = ElementTree.SubElement(element, "PHOTOMETRY", instrument=instrument,
                                                anchored="T" if is_anchored else "F")
            if not is_anchored:
                photometry.text = (f"no photometric exposure in photometric instrument {instrument} "
                                   "of the SCAMP run: zero point not calibrated (Elixir's kept)")
        if not problems:
            accepted.append(expnum)
    ElementTree.indent(root)
    Path(xml_out).write_text(ElementTree.tostring(root, encoding="unicode", xml_declaration=True))
    Path(accepted_out).write_text("".join(f"{e}p\n" for e in accepted))
    return accepted


def read_accept_summary(path: str | Path) -> pd.DataFrame:
    """Read ``_scamp_accept.xml``: one row per exposure (``expnum``, ``accepted``,
    ``anchored`` (None when the summary does not say), ``reasons``)."""
    rows = []
    for element in ET.parse(path).getroot().iter("EXPOSURE"):
        photometry = element.find("PHOTOMETRY")
        rows.append({
            "expnum": int(element.get("name").rstrip("p")),
            "accepted": element.get("accepted") == "T",
            "anchored": None if photometry is None else photometry.get("anchored") == "T",
            "reasons": [reason.text for reason in element.iter("REASON")],
        })
    return pd.DataFrame(rows, columns=["expnum", "accepted", "anchored", "reasons"])


def deliver_heads(
    *,
    stack_list: Sequence[int],
    heads_dir: str | Path,
    aheads: Mapping[int, str | Path],
    out_dir: str | Path,
    image_head_out: str | Path | None = None,
) -> list[Path]:
    """Write the heads a product delivers (seed, product table and section 4).

    For every exposure of the stack list, SCAMP's ``NNNNNNp.head`` of this
    calibration run becomes ``NNNNNNp_head.txt`` (astrometry and rescaled
    photometry, one block per CCD), and for exposures of photometric nights
    the ``.ahead`` SCAMP anchored them with becomes ``NNNNNNp_ahed.txt``. The
    text is SCAMP's, made plain ASCII (SCAMP's one non-ASCII character in a
    ``COMMENT`` line is dropped) so that any FITS reader takes it.

    Parameters
    ----------
    stack_list : sequence of int
        Odometers of the product's stack list.
    heads_dir : str or Path
        SCAMP's output folder of the run (``NNNNNNp.head`` files).
    aheads : mapping of int to path
        The ``.ahead`` of each exposure (``PHOTFLAG`` says photometric).
    out_dir : str or Path
        Folder to write (created).
    image_head_out : str or Path, optional
        Image-by-image mode: also write the one exposure's head under the
        product's name (``546891p_V0001_head.txt``).

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    FileNotFoundError
        Image-by-image mode: SCAMP wrote no head for the image. (A stack's
        exposure without a head is skipped: its accept summary rejects it.)
    ValueError
        ``image_head_out`` given for a list of more than one exposure.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    expnums = sorted(int(e) for e in stack_list)
    if image_head_out is not None and len(expnums) != 1:
        raise ValueError(f"an image-by-image product has one exposure, not {expnums}")
    for expnum in expnums:
        head = Path(heads_dir) / f"{expnum}p.head"
        if not head.is_file():
            if image_head_out is not None:  # the product's own head cannot be made
                raise FileNotFoundError(f"SCAMP wrote no head for {expnum}p: {head}")
            continue  # the accept summary rejects it and says why; the others are delivered
        lines = head.read_bytes().decode("ascii", errors="ignore").splitlines()
        text = "".join(_NON_ASCII_RE.sub("", line) + "\n" for line in lines)
        target = out / (exposure_name(expnum) + HEAD_SUFFIX)
        target.write_text(text, encoding="ascii")
        written.append(target)
        if image_head_out is not None:
            Path(image_head_out).write_text(text, encoding="ascii")
            written.append(Path(image_head_out))
        ahead = Path(aheads[expnum])
        if any(h.get("PHOTFLAG", False) for h in read_heads(ahead)):
            target = out / (exposure_name(expnum) + AHEAD_SUFFIX)
            target.write_text(ahead.read_text(encoding="ascii"), encoding="ascii")
            written.append(target)
    return written


def deliver_image_ahead(*, heads_dir: str | Path, out: str | Path) -> Path:
    """Image-by-image mode, photometric image: its ``.ahead`` under the product's name.

    Copies the one ``NNNNNNp_ahed.txt`` that :func:`deliver_heads` wrote for
    the image to ``546891p_V0001_ahed.txt`` (seed, product table).

    Raises
    ------
    FileNotFoundError
        No ``_ahed.txt`` in ``heads_dir``: the image was not taken on a
        photometric night, so it has none to deliver.
    ValueError
        More than one: ``heads_dir`` is not an image-by-image product's.
    """
    found = sorted(Path(heads_dir).glob("*" + AHEAD_SUFFIX))
    if not found:
        raise FileNotFoundError(f"no {AHEAD_SUFFIX} in {heads_dir}: the image is not photometric")
    if len(found) > 1:
        raise ValueError(f"an image-by-image product has one exposure, found {[p.name for p in found]}")
    Path(out).write_text(found[0].read_text(encoding="ascii"), encoding="ascii")
    return Path(out)
