"""Exposure integrity check: is ``NNNNNNp.fits[.fz]`` a usable Elixir exposure?

:func:`check_exposure` opens one file read-only and runs every check of the
input contract (``shared/spec/INPUTS.md``), collecting *all* failures; the
verdict's ``reason`` is the first failure in the order of :data:`REASONS`.
Pixels are read one CCD at a time and released before the next, so a 40-CCD
MegaCam exposure never sits whole in memory. The file is never written to
(it may be read-only) and :func:`find_duplicates` compares the verdicts of a
whole input set afterwards.

Each reason code is raised by exactly one kind of fault; a file whose
structure cannot be trusted (``unreadable``) is not inspected further.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from spica.headers import (
    EXTNAME_RE,
    ExposureInfo,
    HeaderError,
    KeywordProblem,
    ccd_info,
    exposure_info,
    parse_section,
)
from spica.paths import parse_exposure_filename
from spica.provenance import file_sha256
from spica.step1._pixels import raw_integer_image
from spica.sky import angular_distance

__all__ = [
    "REASONS",
    "PIXEL_SCALE_RANGE_ARCSEC",
    "MAX_POINTING_OFFSET_DEG",
    "CheckResult",
    "check_exposure",
    "find_duplicates",
    "run_fitsverify",
]

#: Every reason code, in check order (the first failure found in this order is
#: the verdict's ``reason``), with what raises it.
REASONS: dict[str, str] = {
    "unreadable": (
        "not a FITS file, or its structure cannot be trusted: astropy cannot open it, "
        "the file is shorter (truncated) or longer (trailing bytes, incomplete HDU) than "
        "its headers declare, an HDU's pixel data cannot be read/decompressed, or the path "
        "is not a regular file (a directory, a dangling link)"
    ),
    "fitsverify_failed": "HEASARC fitsverify reports at least one error (only when it is run)",
    "nextend_mismatch": "primary NEXTEND differs from the number of extensions in the file",
    "missing_keyword": (
        "a keyword required by the input contract is absent from the primary header "
        "or from a CCD extension"
    ),
    "bad_keyword": (
        "a required keyword is present but malformed (FILTER not like 'i.MP9701', EXPTIME "
        "not a positive number, DATE-OBS not a date, RUNID not like '04AL05', EXTNAME not "
        "'ccdNN' or repeated, IMRED_FF/IMRED_MK naming another CCD, ...), or an "
        "extension's EXPNUM disagrees with the primary's"
    ),
    "not_instrument": "INSTRUME or DETECTOR is not the configured instrument/detector",
    "not_science": "OBSTYPE is not the configured science type (OBJECT)",
    "bad_shape": (
        "an extension is not a 2-D image, its pixel array differs from NAXIS1/NAXIS2 or "
        "from the other CCDs, CCDSIZE does not fit in it, or the primary HDU holds data"
    ),
    "bad_wcs": (
        "a CCD has no valid celestial TAN WCS: astropy.wcs rejects it, no RA/Dec axes, "
        "projection not TAN/TPV, singular or implausible CD matrix, CRVAL out of range, "
        "or the CCD centre is far from the pointing (RA_DEG, DEC_DEG)"
    ),
    "nonfinite_pixels": "the fraction of NaN/inf pixels of a CCD exceeds the limit",
    "blank_ccd": "every finite pixel of a CCD has one value (all zero: nothing was read out)",
    "expnum_mismatch": (
        "the primary EXPNUM is not the odometer of the file name (a copy or re-delivery of "
        "another exposure saved under another name, or a misnamed file): the name's odometer "
        "is the exposure's key everywhere, so such a file never speaks for another exposure"
    ),
    "duplicate_expnum": (
        "another file of the input set has the same odometer (by name or by header EXPNUM) "
        "or identical bytes (set by find_duplicates)"
    ),
}

_ORDER = {code: rank for rank, code in enumerate(REASONS)}

#: Accepted pixel scale of a CCD WCS (sqrt |det CD|), arcsec per pixel.
PIXEL_SCALE_RANGE_ARCSEC: tuple[float, float] = (0.01, 10.0)
#: Largest accepted distance between a CCD centre and the pointing, degrees.
MAX_POINTING_OFFSET_DEG: float = 2.0

_WCS_KEYWORDS = ("CTYPE1", "CTYPE2", "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2",
                 "CD1_1", "CD1_2", "CD2_1", "CD2_2")  # fmt: skip
_SHAPE_KEYWORDS = ("NAXIS", "NAXIS1", "NAXIS2")
#: Keywords handed to astropy.wcs (a full Elixir header is ~450 cards; wcslib
#: only needs these, and unrelated cards only slow it down or trigger "fixes").
_WCS_CARD_RE = re.compile(
    r"^(WCSAXES|NAXIS\d*|CTYPE\d|CUNIT\d|CRVAL\d|CRPIX\d|CDELT\d|CROTA\d|CD\d_\d|PC\d_\d"
    r"|PV\d_\d+|PS\d_\d+|LONPOLE|LATPOLE|EQUINOX|RADESYS|RADECSYS|[AB]P?_ORDER|[AB]P?_\d+_\d+)$"
)
_FV_SUMMARY_RE = re.compile(r"Verification found (\d+) warning\(s\) and (\d+) error\(s\)")


# --------------------------------------------------------------------------
# Result record
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    """Verdict of :func:`check_exposure` on one file.

    Attributes
    ----------
    expnum
        Odometer of the file name (``760101p.fits`` -> 760101): the exposure's
        one key in the inventory, the registry and the products. Only for a
        file whose name holds none, the primary ``EXPNUM`` (an integer), else
        None. The header's value is ``details["header_expnum"]``; a
        disagreement is the failure ``expnum_mismatch``.
    path
        The file checked, as given.
    ok
        True when no check failed.
    reason
        First failure in :data:`REASONS` order, or None when ``ok``.
    message
        Human-readable verdict.
    details
        JSON-serialisable facts; ``details["failures"]`` lists every failure
        as ``{"reason", "message", "hdu", "extname", "keyword"}``.
    info
        Typed primary-header record, or None when the primary header fails
        the keyword checks (or the file is unreadable).
    n_ccd
        Number of extensions found.
    sha256
        Hex SHA-256 of the file bytes (None if the file cannot be read).
    """

    expnum: int | None
    path: str
    ok: bool
    reason: str | None
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    info: ExposureInfo | None = None
    n_ccd: int = 0
    sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (``info`` as a plain dict or None)."""
        data = asdict(self)
        data["info"] = None if self.info is None else self.info.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckResult:
        """Rebuild a result from :meth:`to_dict` output."""
        info = data.get("info")
        return cls(
            expnum=data.get("expnum"),
            path=data["path"],
            ok=bool(data["ok"]),
            reason=data.get("reason"),
            message=data.get("message", ""),
            details=dict(data.get("details") or {}),
            info=None if info is None else ExposureInfo.from_dict(info),
            n_ccd=int(data.get("n_ccd", 0)),
            sha256=data.get("sha256"),
        )


def _failure(
    reason: str,
    message: str,
    *,
    hdu: int | None = None,
    extname: str | None = None,
    keyword: str | None = None,
) -> dict[str, Any]:
    if reason not in REASONS:  # pragma: no cover - programming error
        raise ValueError(f"unknown reason code {reason!r}")
    return {"reason": reason, "message": message, "hdu": hdu, "extname": extname,
            "keyword": keyword}  # fmt: skip


def _verdict(
    path: Path,
    failures: list[dict[str, Any]],
    details: dict[str, Any],
    *,
    expnum: int | None,
    info: ExposureInfo | None,
    n_ccd: int,
    sha256: str | None,
) -> CheckResult:
    ordered = sorted(failures, key=lambda f: _ORDER[f["reason"]])  # stable
    details = {**details, "failures": ordered}
    if not ordered:
        summary = f"{n_ccd} CCDs"
        if info is not None:
            summary += f", {info.filter}, {info.exptime:g} s, {info.object}"
        return CheckResult(expnum, str(path), True, None, f"ok: {summary}", details, info,
                           n_ccd, sha256)  # fmt: skip
    first = ordered[0]
    message = f"{first['reason']}: {first['message']}"
    if len(ordered) > 1:
        message += f" (+{len(ordered) - 1} more failure(s))"
    return CheckResult(expnum, str(path), False, first["reason"], message, details, info,
                       n_ccd, sha256)  # fmt: skip


# --------------------------------------------------------------------------
# Edges: file bytes and fitsverify
# --------------------------------------------------------------------------


def run_fitsverify(path: str | Path, executable: str = "fitsverify") -> dict[str, Any]:
    """Run HEASARC ``fitsverify -e`` (errors only) on a file.

    Parameters
    ----------
    path
        FITS file.
    executable
        Name or path of the ``fitsverify`` binary.

    Returns
    -------
    dict
        ``errors`` and ``warnings`` (counts), ``summary`` (fitsverify's
        summary line), ``messages`` (its first 20 ``*** Error`` lines) and
        ``returncode``.

    Raises
    ------
    FileNotFoundError
        If the executable cannot be found.
    """
    binary = shutil.which(executable)
    if binary is None:
        raise FileNotFoundError(f"fitsverify executable not found: {executable!r}")
    proc = subprocess.run(
        [binary, "-e", str(path)], capture_output=True, text=True, errors="replace",
        check=False, timeout=3600,
    )  # fmt: skip
    lines = [line.strip() for line in (proc.stdout + proc.stderr).splitlines()]
    summary = next((line for line in reversed(lines) if _FV_SUMMARY_RE.search(line)), "")
    match = _FV_SUMMARY_RE.search(summary)
    if match:
        n_warn, n_err = int(match[1]), int(match[2])
    else:  # no summary: fitsverify could not even start on the file
        n_warn, n_err = 0, int(proc.returncode != 0)
        summary = next((line for line in reversed(lines) if line), f"exit {proc.returncode}")
    messages = [line for line in lines if line.startswith("*** Error")][:20]
    return {"errors": n_err, "warnings": n_warn, "summary": summary.strip("* "),
            "messages": messages, "returncode": proc.returncode}  # fmt: skip


# --------------------------------------------------------------------------
# Pure checks on headers and arrays
# --------------------------------------------------------------------------


def _keyword_failures(
    problems: list[KeywordProblem], *, hdu: int, extname: str | None
) -> list[dict[str, Any]]:
    out = []
    for problem in problems:
        if problem.keyword in _SHAPE_KEYWORDS:
            reason = "bad_shape"
        else:
            reason = "missing_keyword" if problem.kind == "missing" else "bad_keyword"
        out.append(_failure(reason, problem.message, hdu=hdu, extname=extname,
                            keyword=problem.keyword))  # fmt: skip
    return out


def _clean(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) else None


def _check_primary(
    header: fits.Header,
    *,
    n_ext: int,
    instrument: str,
    detector: str,
    obstype: str,
) -> tuple[ExposureInfo | None, list[dict[str, Any]]]:
    """Keyword, identity and content checks of the primary header."""
    failures: list[dict[str, Any]] = []
    info: ExposureInfo | None = None
    try:
        info = exposure_info(header)
    except HeaderError as exc:
        failures += _keyword_failures(exc.problems, hdu=0, extname=None)
    nextend = header.get("NEXTEND")
    if isinstance(nextend, int) and not isinstance(nextend, bool) and nextend != n_ext:
        failures.append(_failure(
            "nextend_mismatch", f"NEXTEND = {nextend} but the file has {n_ext} extension(s)",
            hdu=0, keyword="NEXTEND"))  # fmt: skip
    if header.get("NAXIS", 0) not in (0, None):
        failures.append(_failure("bad_shape", f"primary HDU holds data (NAXIS = "
                                 f"{header.get('NAXIS')})", hdu=0, keyword="NAXIS"))
    for key, wanted in (("INSTRUME", instrument), ("DETECTOR", detector)):
        value = _clean(header.get(key))
        if value is not None and value and value != wanted:
            failures.append(_failure("not_instrument", f"{key} = {value!r}, expected {wanted!r}",
                                     hdu=0, keyword=key))  # fmt: skip
    value = _clean(header.get("OBSTYPE"))
    if value is not None and value and value != obstype:
        failures.append(_failure("not_science", f"OBSTYPE = {value!r}, expected {obstype!r}",
                                 hdu=0, keyword="OBSTYPE"))  # fmt: skip
    return info, failures


def _wcs_problems(header: fits.Header, pointing: tuple[float, float] | None) -> list[str]:
    """Return what is wrong with the celestial WCS of a CCD header (empty if valid)."""
    header = fits.Header([card for card in header.cards if _WCS_CARD_RE.match(card.keyword)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            wcs = WCS(header)
        except Exception as exc:  # astropy raises many kinds here
            return [f"astropy.wcs rejects the header: {exc}"]
    if wcs.naxis != 2 or not wcs.has_celestial or wcs.wcs.lng != 0 or wcs.wcs.lat != 1:
        return [f"no celestial RA/Dec axes (CTYPE = {list(wcs.wcs.ctype)})"]
    problems = []
    ctype = [str(c) for c in wcs.wcs.ctype]
    if any(len(c) < 8 or c[5:8] not in ("TAN", "TPV") for c in ctype):
        problems.append(f"projection is not TAN (CTYPE = {ctype})")
    matrix = np.asarray(wcs.pixel_scale_matrix, dtype=float)
    det = float(np.linalg.det(matrix)) if np.all(np.isfinite(matrix)) else math.nan
    if not math.isfinite(det) or det == 0.0:
        problems.append(f"singular CD matrix {matrix.tolist()}")
    else:
        scale = math.sqrt(abs(det)) * 3600.0
        low, high = PIXEL_SCALE_RANGE_ARCSEC
        if not low <= scale <= high:
            problems.append(f"pixel scale {scale:.4g} arcsec outside [{low}, {high}]")
    crval1, crval2 = (float(v) for v in wcs.wcs.crval)
    if not (math.isfinite(crval1) and 0.0 <= crval1 <= 360.0):
        problems.append(f"CRVAL1 = {crval1} outside [0, 360]")
    if not (math.isfinite(crval2) and -90.0 <= crval2 <= 90.0):
        problems.append(f"CRVAL2 = {crval2} outside [-90, 90]")
    if problems:
        return problems
    nx, ny = header.get("NAXIS1", 1), header.get("NAXIS2", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ra, dec = (float(v) for v in wcs.wcs_pix2world([[(nx + 1) / 2, (ny + 1) / 2]], 1)[0])
    if not (math.isfinite(ra) and math.isfinite(dec)):
        return ["CCD centre has no sky position"]
    if pointing is not None:
        offset = angular_distance(ra, dec, *pointing)
        if offset > MAX_POINTING_OFFSET_DEG:
            problems.append(f"CCD centre ({ra:.4f}, {dec:.4f}) is {offset:.2f} deg from the "
                            f"pointing RA_DEG/DEC_DEG")  # fmt: skip
    return problems


def _check_extension_header(
    header: fits.Header,
    *,
    hdu: int,
    expnum: Any,
    pointing: tuple[float, float] | None,
) -> tuple[str | None, list[dict[str, Any]]]:
    """Keyword, shape-keyword and WCS checks of one CCD header."""
    failures: list[dict[str, Any]] = []
    extname = _clean(header.get("EXTNAME"))
    problems: list[KeywordProblem] = []
    try:
        ccd_info(header)
    except HeaderError as exc:
        problems = exc.problems
        failures += _keyword_failures(problems, hdu=hdu, extname=extname)
    where = f"extension {extname or hdu}"
    ext_expnum = header.get("EXPNUM")
    if ext_expnum is not None and isinstance(expnum, int) and ext_expnum != expnum:
        failures.append(_failure("bad_keyword", f"{where}: EXPNUM = {ext_expnum!r} but the "
                                 f"primary says {expnum}", hdu=hdu, extname=extname,
                                 keyword="EXPNUM"))  # fmt: skip
    bad = {p.keyword for p in problems}
    if "CCDSIZE" not in bad and "NAXIS" not in bad and "CCDSIZE" in header:
        x1, x2, y1, y2 = parse_section(header["CCDSIZE"])
        width, height = abs(x2 - x1) + 1, abs(y2 - y1) + 1
        nx, ny = header.get("NAXIS1", 0), header.get("NAXIS2", 0)
        if width > nx or height > ny:
            failures.append(_failure("bad_shape", f"{where}: CCDSIZE {header['CCDSIZE']} does "
                                     f"not fit in the {nx}x{ny} array", hdu=hdu,
                                     extname=extname, keyword="CCDSIZE"))  # fmt: skip
    if not bad.intersection(_WCS_KEYWORDS) and not bad.intersection(_SHAPE_KEYWORDS):
        for problem in _wcs_problems(header, pointing):
            failures.append(_failure("bad_wcs", f"{where}: {problem}", hdu=hdu,
                                     extname=extname))  # fmt: skip
    return extname, failures


def _constant(data: np.ndarray) -> bool:
    """Whether every finite pixel of ``data`` has one value (NaN-only arrays excluded).

    Integer pixels (all finite) that already differ within the first row answer
    False without reading the rest: a real CCD's first row is not flat, and a map
    of the file (:func:`spica.step1._pixels.raw_integer_image`) is then not read
    through (680 MB per MegaCam exposure); otherwise the whole minimum and maximum.
    """
    if data.dtype.kind in "iub" and data.ndim >= 1 and data.size:
        head = np.asarray(data.reshape(-1)[: data.shape[-1]])
        if head.min() != head.max():
            return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices
        low, high = np.nanmin(data), np.nanmax(data)
    return bool(np.isfinite(low) and low == high)


def _nonfinite_fraction(data: np.ndarray) -> float:
    if data.dtype.kind not in "fc" or data.size == 0:
        return 0.0
    return float(np.count_nonzero(~np.isfinite(data))) / data.size


# --------------------------------------------------------------------------
# The check
# --------------------------------------------------------------------------


def check_exposure(
    path: str | Path,
    *,
    instrument: str,
    detector: str,
    obstype: str,
    max_nonfinite_fraction: float,
    fitsverify: str | None = None,
) -> CheckResult:
    """Check that a file is a usable Elixir exposure, without modifying it.

    Parameters
    ----------
    path
        ``NNNNNNp.fits`` or ``NNNNNNp.fits.fz``.
    instrument, detector
        Required ``INSTRUME`` and ``DETECTOR`` values (``step1.integrity``).
    obstype
        Required ``OBSTYPE`` (science frames, ``step1.integrity.obstype``).
    max_nonfinite_fraction
        Largest accepted fraction of NaN/inf pixels on any one CCD
        (``step1.integrity.max_nonfinite_fraction``).
    fitsverify
        Name or path of HEASARC ``fitsverify``; None skips that check.

    Returns
    -------
    CheckResult
        ``reason`` is the first failure in :data:`REASONS` order; every
        failure is in ``details["failures"]``.

    Raises
    ------
    FileNotFoundError
        If ``fitsverify`` is given but cannot be found (a configuration
        error, not a property of the file).
    """
    path = Path(path)
    filename_expnum = parse_exposure_filename(path)
    details: dict[str, Any] = {
        "filename_expnum": filename_expnum,
        "header_expnum": None,
        "file_size": None,
        "declared_size": None,
        "compressed": None,
        "extnames": [],
        "ccd_shape": None,
        "nonfinite_fraction": {},
        "fitsverify": None,
        "astropy_warnings": [],
        "limits": {"instrument": instrument, "detector": detector, "obstype": obstype,
                   "max_nonfinite_fraction": max_nonfinite_fraction},
    }  # fmt: skip
    if fitsverify is not None and shutil.which(fitsverify) is None:
        raise FileNotFoundError(f"fitsverify executable not found: {fitsverify!r}")

    def verdict(failures: list[dict[str, Any]], **kw: Any) -> CheckResult:
        kw.setdefault("expnum", filename_expnum)
        kw.setdefault("info", None)
        kw.setdefault("n_ccd", 0)
        kw.setdefault("sha256", None)
        return _verdict(path, failures, details, **kw)

    if path.is_symlink() and not path.exists():
        return verdict([_failure("unreadable", f"dangling symbolic link to {path.readlink()}")])
    if path.exists() and not path.is_file():
        return verdict([_failure("unreadable", "not a regular file (a directory or a device)")])
    try:
        size = path.stat().st_size
        sha256 = file_sha256(path)
    except OSError as exc:
        return verdict([_failure("unreadable", f"cannot read file: {exc}")])
    details["file_size"] = size

    failures: list[dict[str, Any]] = []
    if fitsverify is not None:
        report = run_fitsverify(path, fitsverify)
        details["fitsverify"] = report
        if report["errors"]:
            failures.append(_failure("fitsverify_failed", report["summary"]))

    result: CheckResult | None = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:  # every header is read here (lazy_load_hdus=False); pixels are not
            hdul = fits.open(path, mode="readonly", memmap=False, lazy_load_hdus=False)
        except Exception as exc:  # astropy raises OSError, ValueError, VerifyError, ...
            failures.append(_failure("unreadable", f"astropy cannot open the file: {exc}"))
        else:
            with hdul:
                result = _check_hdulist(
                    hdul, path, size, sha256, failures, details,
                    filename_expnum=filename_expnum, instrument=instrument,
                    detector=detector, obstype=obstype,
                    max_nonfinite_fraction=max_nonfinite_fraction,
                )  # fmt: skip
        messages = list(dict.fromkeys(str(w.message).strip() for w in caught))
        details["astropy_warnings"] = messages[:20]
    if result is not None:
        return result
    return verdict(failures, sha256=sha256)


def _check_hdulist(
    hdul: fits.HDUList,
    path: Path,
    size: int,
    sha256: str,
    failures: list[dict[str, Any]],
    details: dict[str, Any],
    *,
    filename_expnum: int | None,
    instrument: str,
    detector: str,
    obstype: str,
    max_nonfinite_fraction: float,
) -> CheckResult:
    """Run the checks on an opened file (the caller opens and closes it)."""
    n_ext = len(hdul) - 1
    primary = hdul[0].header
    raw_expnum = primary.get("EXPNUM")
    header_expnum = (raw_expnum if isinstance(raw_expnum, int) and not isinstance(raw_expnum, bool)
                     else None)  # fmt: skip
    details["header_expnum"] = header_expnum
    # one key: the file name's odometer (the header's only when the name has none)
    expnum = filename_expnum if filename_expnum is not None else header_expnum
    if filename_expnum is not None and header_expnum is not None and header_expnum != filename_expnum:
        failures.append(_failure(
            "expnum_mismatch", f"EXPNUM = {header_expnum} but the file name says {filename_expnum}",
            hdu=0, keyword="EXPNUM"))  # fmt: skip
    details["compressed"] = any(isinstance(h, fits.CompImageHDU) for h in hdul)

    # Structure: the bytes the headers declare must be exactly the file.
    declared = max(
        info["datLoc"] + info["datSpan"] for info in (hdu.fileinfo() for hdu in hdul) if info
    )  # fmt: skip
    details["declared_size"] = declared
    if size < declared:
        failures.append(_failure("unreadable", f"truncated: {size} bytes on disk, headers "
                                 f"declare {declared}"))  # fmt: skip
    elif size > declared:
        failures.append(_failure("unreadable", f"{size - declared} bytes after the last "
                                 "complete HDU (incomplete or corrupt HDU)"))  # fmt: skip
    if any(f["reason"] == "unreadable" for f in failures):
        return _verdict(path, failures, details, expnum=expnum, info=None, n_ccd=n_ext,
                        sha256=sha256)  # fmt: skip

    info, primary_failures = _check_primary(
        primary, n_ext=n_ext,
        instrument=instrument, detector=detector, obstype=obstype,
    )  # fmt: skip
    failures += primary_failures
    if info is not None:
        pointing: tuple[float, float] | None = (info.ra_deg, info.dec_deg)
    else:
        pointing = None

    seen: dict[str, int] = {}
    reference_shape: tuple[int, int] | None = None
    for index in range(1, len(hdul)):
        hdu = hdul[index]
        if not isinstance(hdu, (fits.ImageHDU, fits.CompImageHDU)):
            failures.append(_failure("bad_shape", f"HDU {index} is a "
                                     f"{type(hdu).__name__}, not an image", hdu=index))
            continue
        header = hdu.header
        extname, ext_failures = _check_extension_header(
            header, hdu=index, expnum=raw_expnum, pointing=pointing
        )
        failures += ext_failures
        name = extname or f"hdu{index}"
        details["extnames"].append(extname)
        if extname and EXTNAME_RE.match(extname):
            if extname in seen:
                failures.append(_failure(
                    "bad_keyword", f"EXTNAME {extname!r} of HDU {index} repeats HDU "
                    f"{seen[extname]}", hdu=index, extname=extname, keyword="EXTNAME"))
            seen.setdefault(extname, index)

        # Pixels: one CCD at a time, released before the next. Plain integer
        # images are read raw (no float copy: they hold no NaN, and constancy
        # does not depend on BSCALE/BZERO): 6x cheaper on a MegaCam exposure.
        raw = raw_integer_image(hdu, path)
        scale = (float(header.get("BSCALE", 1.0)), float(header.get("BZERO", 0.0))) if raw is not None else (1.0, 0.0)
        try:
            data = raw if raw is not None else hdu.data
        except Exception as exc:
            failures.append(_failure("unreadable", f"cannot read pixels of HDU {index} "
                                     f"({name}): {exc}", hdu=index, extname=extname))
            continue
        try:
            declared_shape = tuple(header.get(f"NAXIS{i}") for i in (2, 1))
            if data is None or data.ndim != 2 or header.get("NAXIS") != 2:
                shape = None if data is None else list(data.shape)
                failures.append(_failure("bad_shape", f"{name}: pixel array {shape} is not "
                                         "a 2-D image", hdu=index, extname=extname))
                continue
            if tuple(data.shape) != declared_shape:
                failures.append(_failure(
                    "bad_shape", f"{name}: pixel array {list(data.shape)} differs from "
                    f"NAXIS2 x NAXIS1 = {list(declared_shape)}", hdu=index, extname=extname))
            if reference_shape is None:
                reference_shape = tuple(data.shape)
                details["ccd_shape"] = list(reference_shape)
            elif tuple(data.shape) != reference_shape:
                failures.append(_failure(
                    "bad_shape", f"{name}: pixel array {list(data.shape)} differs from the "
                    f"first CCD's {list(reference_shape)}", hdu=index, extname=extname))
            fraction = _nonfinite_fraction(data)
            details["nonfinite_fraction"][name] = fraction
            if fraction > max_nonfinite_fraction:
                failures.append(_failure(
                    "nonfinite_pixels", f"{name}: {fraction:.2%} of the pixels are NaN/inf "
                    f"(limit {max_nonfinite_fraction:.2%})", hdu=index, extname=extname))
            elif data.size and _constant(data):
                failures.append(_failure(
                    "blank_ccd", f"{name}: every pixel is {float(np.nanmax(data)) * scale[0] + scale[1]:g}",
                    hdu=index, extname=extname))
        finally:
            del data, raw
            try:
                del hdu.data
            except AttributeError:  # pragma: no cover - nothing cached
                pass

    return _verdict(path, failures, details, expnum=expnum, info=info, n_ccd=n_ext,
                    sha256=sha256)  # fmt: skip


# --------------------------------------------------------------------------
# Across files
# --------------------------------------------------------------------------


def _claims(result: CheckResult) -> list[int]:
    """The odometers a file claims: its name's (its key) and its header's EXPNUM."""
    header = result.details.get("header_expnum")
    return [e for e in dict.fromkeys([result.expnum, header]) if isinstance(e, int)]


def find_duplicates(results: list[CheckResult]) -> list[CheckResult]:
    """Mark files that repeat an exposure of the set as ``duplicate_expnum``.

    Two files are duplicates when they claim one odometer (by file name or by
    header ``EXPNUM``: ``760190p.fits`` whose header says 760101 repeats
    ``760101p.fits``) or have the same ``sha256``. In each group one file is
    kept: the first by sorted path among those that passed every other check
    (then those whose name and header agree; the first by sorted path if none
    did); the others get a ``duplicate_expnum`` failure (it becomes their
    ``reason`` unless they already failed) and ``details["duplicate_of"]``.
    Nothing of a marked file reaches the kept one: every verdict keeps its own
    ``expnum`` (its name's odometer).

    Parameters
    ----------
    results
        Verdicts of :func:`check_exposure` on the whole input set.

    Returns
    -------
    list of CheckResult
        Same length and order as ``results``; unaffected entries are the
        same objects, marked ones are new (the inputs are not modified).
    """

    def rank(i: int) -> tuple:
        res = results[i]
        agrees = res.details.get("header_expnum") in (None, res.expnum)
        return (not res.ok, not agrees, res.path)

    keeper_by_expnum: dict[int, int] = {}
    keeper_by_sha: dict[str, int] = {}
    duplicate_of: dict[int, int] = {}
    for i in sorted(range(len(results)), key=rank):
        res = results[i]
        claims = _claims(res)
        keeper = next((keeper_by_expnum[e] for e in claims if e in keeper_by_expnum), None)
        if keeper is None and res.sha256 is not None:
            keeper = keeper_by_sha.get(res.sha256)
        if keeper is not None:
            duplicate_of[i] = keeper
            continue
        for expnum in claims:
            keeper_by_expnum[expnum] = i
        if res.sha256 is not None:
            keeper_by_sha[res.sha256] = i

    out = list(results)
    for i, keeper in duplicate_of.items():
        res, kept = results[i], results[keeper]
        shared = sorted(set(_claims(res)) & set(_claims(kept)))
        same = "identical bytes" if res.sha256 and res.sha256 == kept.sha256 else (
            f"EXPNUM {shared[0] if shared else res.expnum}")  # fmt: skip
        failure = _failure("duplicate_expnum", f"{same} already in {kept.path}")
        previous = [f for f in res.details.get("failures", []) if f["reason"] != "duplicate_expnum"]
        details = {**res.details, "duplicate_of": kept.path}
        out[i] = _verdict(Path(res.path), [*previous, failure], details, expnum=res.expnum,
                          info=res.info, n_ccd=res.n_ccd, sha256=res.sha256)  # fmt: skip
        out[i] = replace(out[i], path=res.path)
    return out
