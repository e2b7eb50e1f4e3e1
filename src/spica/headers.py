"""Elixir MegaPrime headers: text header dumps and typed records.

Two jobs, both pure (no file is opened except by :func:`read_header_dump`):

* Parse text dumps of FITS headers (80-character cards, one per line) into
  :class:`astropy.io.fits.Header` objects. Two layouts occur in real CFHT
  material and both are read: HDUs introduced by ``# HDU N in file`` lines
  (``979412p.fits.header``), and HDUs simply separated by their ``END`` card
  (``1257365p.fits.header``). A dump of a tile-compressed file holds the
  ``BINTABLE`` headers (``ZIMAGE = T``); they are turned into the equivalent
  image headers (``ZNAXISn`` -> ``NAXISn`` ...) unless asked otherwise.
* Turn a primary header into an :class:`ExposureInfo` and an extension header
  into a :class:`CcdInfo`, with strict parsing: every keyword of the input
  contract (``shared/spec/INPUTS.md``) must be present and well formed,
  otherwise :class:`HeaderError` lists *all* problems found, each as a
  :class:`KeywordProblem` (``kind`` is ``"missing"`` or ``"bad"``).
"""

from __future__ import annotations

import datetime as _dt
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from astropy.io import fits

__all__ = [
    "PRIMARY_KEYWORDS",
    "EXTENSION_KEYWORDS",
    "FILTER_RE",
    "RUNID_RE",
    "EXTNAME_RE",
    "KeywordProblem",
    "HeaderError",
    "ExposureInfo",
    "CcdInfo",
    "parse_header_dump",
    "read_header_dump",
    "image_header",
    "exposure_info",
    "ccd_info",
    "calibration_reference",
    "parse_section",
    "section_or_none",
    "section_slices",
    "image_hdus",
]

#: ``FILTER`` values: band letter, a dot, the CFHT filter id (``i.MP9701``).
FILTER_RE = re.compile(r"^(?P<band>[ugriz])\.MP\d{4}$")
#: ``RUNID`` / ``QRUNID`` / ``CRUNID``: year, semester, letter, number
#: (``04AL05``, ``08AQ05``, ``08Am03``).
RUNID_RE = re.compile(r"^\d{2}[AB][A-Za-z]\d{2}$")
#: ``EXTNAME`` of a CCD extension (``ccd00`` ... ``ccd39``).
EXTNAME_RE = re.compile(r"^ccd\d{2}$")
_UTC_RE = re.compile(r"^(?P<h>\d{1,2}):(?P<m>\d{2}):(?P<s>\d{2}(?:\.\d*)?)$")
_SECTION_RE = re.compile(r"^\[(\d+):(\d+),(\d+):(\d+)\]$")
_CALIB_RE = re.compile(r"^(?P<file>[^\[\]\s]+)(?:\[(?P<ext>[^\[\]\s]+)\])?$")
_SEPARATOR_PREFIX = "# HDU"
_CARD = 80


# --------------------------------------------------------------------------
# Problems
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class KeywordProblem:
    """One missing or malformed keyword.

    Attributes
    ----------
    kind
        ``"missing"`` or ``"bad"``.
    keyword
        FITS keyword name (``"FILTER"``).
    message
        Human-readable explanation, including the offending value.
    """

    kind: str
    keyword: str
    message: str


class HeaderError(ValueError):
    """A header does not satisfy the input contract.

    Parameters
    ----------
    problems
        Every problem found (never empty).
    """

    def __init__(self, problems: list[KeywordProblem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(p.message for p in self.problems))


# --------------------------------------------------------------------------
# Header dumps
# --------------------------------------------------------------------------


def _split_cards(lines: Iterable[str]) -> Iterable[str]:
    """Yield card images (or separators) from dump lines.

    A line longer than 80 characters whose length is a multiple of 80 (raw
    header bytes without newlines) is cut into cards.
    """
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if line.startswith(_SEPARATOR_PREFIX):
            yield line
        elif not line.strip():
            if len(line) == _CARD:
                yield line  # a blank card
            continue
        elif len(line) <= _CARD:
            yield line.ljust(_CARD)
        elif len(line) % _CARD == 0:
            yield from (line[i : i + _CARD] for i in range(0, len(line), _CARD))
        else:
            raise ValueError(f"line {number}: {len(line)} characters, not an 80-character card")


def parse_header_dump(text: str, *, image_headers: bool = True) -> list[fits.Header]:
    """Parse a text dump of FITS headers into one Header per HDU.

    Parameters
    ----------
    text
        The dump: one 80-character card per line. HDUs are delimited by
        ``# HDU N in <file>`` lines, by ``END`` cards, or both. A last HDU
        without ``END`` is accepted (dumps are often cut short).
    image_headers
        Turn headers of tile-compressed images (``ZIMAGE = T``) into the
        image headers they stand for (see :func:`image_header`).

    Returns
    -------
    list of astropy.io.fits.Header
        In file order; element 0 is the primary header.

    Raises
    ------
    ValueError
        If a line is not a card or no card is found.
    """
    headers: list[fits.Header] = []
    cards: list[fits.Card] = []
    started = False  # a separator opened an HDU (it may be empty)

    def close() -> None:
        nonlocal cards, started
        if cards or started:
            header = fits.Header(cards)
            headers.append(image_header(header) if image_headers else header)
        cards, started = [], False

    for image in _split_cards(text.splitlines()):
        if image.startswith(_SEPARATOR_PREFIX):
            close()
            started = True
        elif image.rstrip() == "END":
            close()
        else:
            cards.append(fits.Card.fromstring(image))
    close()
    if not headers:
        raise ValueError("no FITS card found in header dump")
    return headers


def read_header_dump(path: str | Path, *, image_headers: bool = True) -> list[fits.Header]:
    """Read a ``*.fits.header`` text dump; see :func:`parse_header_dump`."""
    text = Path(path).read_text(encoding="ascii", errors="replace")
    return parse_header_dump(text, image_headers=image_headers)


_TABLE_KEY_RE = re.compile(r"^(TTYPE|TFORM|TUNIT|TNULL|TSCAL|TZERO|TDISP|TDIM|TBCOL)\d+$")
_ZKEY_RE = re.compile(r"^(ZNAXIS|ZTILE|ZNAME|ZVAL)\d+$")
_ZKEYS = {
    "ZIMAGE", "ZCMPTYPE", "ZBITPIX", "ZNAXIS", "ZMASKCMP", "ZQUANTIZ", "ZDITHER0",
    "ZSIMPLE", "ZTENSION", "ZEXTEND", "ZBLOCKED", "ZPCOUNT", "ZGCOUNT", "ZHECKSUM",
    "ZDATASUM", "ZBLANK", "ZSCALE", "ZZERO", "TFIELDS", "THEAP",
}  # fmt: skip


def image_header(header: fits.Header) -> fits.Header:
    """Return the image header a tile-compressed ``BINTABLE`` header stands for.

    ``ZBITPIX``, ``ZNAXIS``, ``ZNAXISn`` become ``BITPIX``, ``NAXIS``,
    ``NAXISn``; table and compression keywords are dropped; every other card
    is kept in order. A header without ``ZIMAGE = T`` is returned as a copy.
    """
    out = header.copy()
    if not header.get("ZIMAGE", False):
        return out
    for key in list(out.keys()):
        if key in _ZKEYS or _ZKEY_RE.match(key) or _TABLE_KEY_RE.match(key):
            out.remove(key, ignore_missing=True, remove_all=True)
    for key in ("XTENSION", "BITPIX", "NAXIS", "PCOUNT", "GCOUNT", "NAXIS1", "NAXIS2"):
        out.remove(key, ignore_missing=True, remove_all=True)
    naxis = int(header["ZNAXIS"])
    new = [
        ("XTENSION", "IMAGE", "image extension"),
        ("BITPIX", header["ZBITPIX"], "data type of original image"),
        ("NAXIS", naxis, "dimension of original image"),
        *[(f"NAXIS{i}", header[f"ZNAXIS{i}"], "length of original image axis")
          for i in range(1, naxis + 1)],
        ("PCOUNT", header.get("ZPCOUNT", 0), "size of special data area"),
        ("GCOUNT", header.get("ZGCOUNT", 1), "one data group"),
    ]  # fmt: skip
    for index, (key, value, comment) in enumerate(new):
        out.insert(index, (key, value, comment))
    return out


# --------------------------------------------------------------------------
# Strict keyword parsers: value -> typed value, ValueError when malformed
# --------------------------------------------------------------------------


def _as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("not a string")
    text = value.strip()
    if not text:
        raise ValueError("empty string")
    return text


def _as_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("not a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError("not finite")
    return number


def _as_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("not an integer")
    return int(value)


def _positive(parse: Callable[[Any], float]) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        number = parse(value)
        if number <= 0:
            raise ValueError("not positive")
        return number

    return check


def _non_negative_int(value: Any) -> int:
    number = _as_int(value)
    if number < 0:
        raise ValueError("negative")
    return number


def _matching(pattern: re.Pattern[str], message: str) -> Callable[[Any], str]:
    """A text parser: the stripped string if ``pattern`` matches it, else ``ValueError(message)``."""

    def check(value: Any) -> str:
        text = _as_str(value)
        if not pattern.match(text):
            raise ValueError(message)
        return text

    return check


def _iso(pattern: str, parse: Callable[[str], Any], message: str) -> Callable[[Any], str]:
    """An ISO date parser: the text if it matches ``pattern`` in full and ``parse`` takes it."""

    def check(value: Any) -> str:
        text = _as_str(value)
        try:
            if not re.fullmatch(pattern, text):
                raise ValueError
            parse(text)
        except ValueError:
            raise ValueError(message) from None
        return text

    return check


def _within(low: float, high: float, message: str) -> Callable[[Any], float]:
    """A number parser: the finite number if ``low <= number <= high``, else ``ValueError(message)``."""

    def check(value: Any) -> float:
        number = _as_float(value)
        if not low <= number <= high:
            raise ValueError(message)
        return number

    return check


_runid = _matching(RUNID_RE, "not a CFHT run id like '04AL05'")
_filter = _matching(FILTER_RE, "not a MegaPrime filter like 'i.MP9701'")
_extname = _matching(EXTNAME_RE, "not a CCD extension name like 'ccd07'")
_date = _iso(r"\d{4}-\d{2}-\d{2}", _dt.date.fromisoformat, "not a date YYYY-MM-DD")
_datetime = _iso(r"\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}:\d{2}(\.\d*)?)?", _dt.datetime.fromisoformat,
                 "not a date-time YYYY-MM-DDThh:mm:ss")  # fmt: skip
_ra = _within(0.0, 360.0, "outside [0, 360]")
_dec = _within(-90.0, 90.0, "outside [-90, 90]")
_airmass = _within(0.99, math.inf, "below 1")  # finite numbers only: below 0.99 fails


def _utc(value: Any) -> str:
    text = _as_str(value)
    match = _UTC_RE.match(text)
    if not match or int(match["h"]) > 23 or int(match["m"]) > 59 or float(match["s"]) >= 61:
        raise ValueError("not a time h:mm:ss.s")
    return text


def _section(value: Any) -> str:
    text = _as_str(value)
    parse_section(text)
    return text


def _calibration(value: Any) -> str:
    text = _as_str(value)
    calibration_reference(text)
    return text


#: Primary keywords of the input contract -> strict parser. Every one is required.
PRIMARY_KEYWORDS: dict[str, Callable[[Any], Any]] = {
    "INSTRUME": _as_str,
    "DETECTOR": _as_str,
    "NEXTEND": _non_negative_int,
    "EXPNUM": _positive(_as_int),
    "OBSTYPE": _as_str,
    "OBJECT": _as_str,
    "RUNID": _runid,
    "QRUNID": _runid,
    "CRUNID": _runid,
    "PI_NAME": _as_str,
    "FILTER": _filter,
    "EXPTIME": _positive(_as_float),
    "AIRMASS": _airmass,
    "DATE-OBS": _date,
    "UTC-OBS": _utc,
    "MJD-OBS": _positive(_as_float),
    "RA_DEG": _ra,
    "DEC_DEG": _dec,
    "REL_DATE": _datetime,
}

#: Extension keywords of the input contract -> strict parser. All required,
#: except that ``GAIN`` may be replaced by the pair ``GAINA``/``GAINB``.
#: The WCS keywords are checked for presence here and for meaning by the
#: integrity check (``astropy.wcs``).
EXTENSION_KEYWORDS: dict[str, Callable[[Any], Any]] = {
    "EXTNAME": _extname,
    "CCDSIZE": _section,
    "DETSEC": _section,
    "GAIN": _positive(_as_float),
    "RDNOISE": _as_float,
    "SATURATE": _positive(_as_float),
    "MAXLIN": _positive(_as_float),
    "PHOT_C": _as_float,
    "PHOT_K": _as_float,
    "IMRED_FF": _calibration,
    "IMRED_MK": _calibration,
    "CTYPE1": _as_str,
    "CTYPE2": _as_str,
    "CRVAL1": _as_float,
    "CRVAL2": _as_float,
    "CRPIX1": _as_float,
    "CRPIX2": _as_float,
    "CD1_1": _as_float,
    "CD1_2": _as_float,
    "CD2_1": _as_float,
    "CD2_2": _as_float,
}


def _parse_keywords(
    header: fits.Header, parsers: dict[str, Callable[[Any], Any]], where: str
) -> tuple[dict[str, Any], list[KeywordProblem]]:
    values: dict[str, Any] = {}
    problems: list[KeywordProblem] = []
    for key, parse in parsers.items():
        if key not in header:
            problems.append(KeywordProblem("missing", key, f"{where}: keyword {key} is missing"))
            continue
        value = header[key]
        try:
            values[key] = parse(value)
        except ValueError as exc:
            problems.append(KeywordProblem("bad", key, f"{where}: {key} = {value!r}: {exc}"))
    return values, problems


# --------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------


class _Record:
    """JSON round trip shared by the records (plain fields only)."""

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-serialisable dict."""
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """Rebuild a record from :meth:`to_dict` output (extra keys ignored)."""
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class ExposureInfo(_Record):
    """What the pipeline needs from the primary header of an exposure.

    Strings are stripped of FITS padding (``'08AC14  '`` -> ``'08AC14'``);
    dates stay ISO strings (``date_obs`` ``YYYY-MM-DD``, ``utc_obs``
    ``h:mm:ss.s``, ``rel_date`` ``YYYY-MM-DDThh:mm:ss``).
    """

    expnum: int
    obstype: str
    object: str
    runid: str
    qrunid: str
    crunid: str
    pi_name: str
    filter: str
    band: str
    exptime: float
    airmass: float
    date_obs: str
    utc_obs: str
    mjd_obs: float
    ra_deg: float
    dec_deg: float
    rel_date: str
    nextend: int
    instrume: str
    detector: str


@dataclass(frozen=True)
class CcdInfo(_Record):
    """What the pipeline needs from one CCD extension header.

    ``imred_ff`` / ``imred_mk`` are the Elixir flat and mask file names without
    the extension selector; ``imred_ff_ext`` / ``imred_mk_ext`` hold the
    selected extension (``'ccd14'``) or None when the header names none.
    ``gain`` is ``GAIN``, or the mean of ``GAINA`` and ``GAINB``.
    """

    extname: str
    gain: float
    rdnoise: float
    saturate: float
    maxlin: float
    phot_c: float
    phot_k: float
    imred_ff: str
    imred_ff_ext: str | None
    imred_mk: str
    imred_mk_ext: str | None
    naxis1: int
    naxis2: int


def exposure_info(primary: fits.Header) -> ExposureInfo:
    """Build the :class:`ExposureInfo` of an exposure from its primary header.

    Parameters
    ----------
    primary
        Primary header (keywords of :data:`PRIMARY_KEYWORDS`).

    Returns
    -------
    ExposureInfo

    Raises
    ------
    HeaderError
        Listing every missing or malformed keyword.
    """
    values, problems = _parse_keywords(primary, PRIMARY_KEYWORDS, "primary header")
    if problems:
        raise HeaderError(problems)
    return ExposureInfo(
        expnum=values["EXPNUM"],
        obstype=values["OBSTYPE"],
        object=values["OBJECT"],
        runid=values["RUNID"],
        qrunid=values["QRUNID"],
        crunid=values["CRUNID"],
        pi_name=values["PI_NAME"],
        filter=values["FILTER"],
        band=values["FILTER"][0],
        exptime=values["EXPTIME"],
        airmass=values["AIRMASS"],
        date_obs=values["DATE-OBS"],
        utc_obs=values["UTC-OBS"],
        mjd_obs=values["MJD-OBS"],
        ra_deg=values["RA_DEG"],
        dec_deg=values["DEC_DEG"],
        rel_date=values["REL_DATE"],
        nextend=values["NEXTEND"],
        instrume=values["INSTRUME"],
        detector=values["DETECTOR"],
    )


def ccd_info(header: fits.Header, *, extname: str | None = None) -> CcdInfo:
    """Build the :class:`CcdInfo` of one CCD extension header.

    Parameters
    ----------
    header
        Extension header; a tile-compressed ``BINTABLE`` header is accepted
        (read through :func:`image_header`).
    extname
        Name to use when the header has no ``EXTNAME`` (some header dumps
        lose it); ignored when ``EXTNAME`` is present.

    Returns
    -------
    CcdInfo

    Raises
    ------
    HeaderError
        Listing every missing or malformed keyword (including ``NAXIS``,
        which must be 2, and calibration references naming another CCD).
    """
    if header.get("ZIMAGE", False):
        header = image_header(header)
    parsers = dict(EXTENSION_KEYWORDS)
    if "GAIN" not in header and ("GAINA" in header or "GAINB" in header):
        del parsers["GAIN"]
        parsers["GAINA"] = parsers["GAINB"] = _positive(_as_float)
    if "EXTNAME" not in header and extname is not None:
        header = header.copy()
        header["EXTNAME"] = extname
    where = f"extension {header.get('EXTNAME', '?')!s}".strip()
    values, problems = _parse_keywords(header, parsers, where)
    naxis = header.get("NAXIS")
    if naxis != 2:
        problems.append(KeywordProblem("bad", "NAXIS", f"{where}: NAXIS = {naxis!r}: not 2"))
    else:
        for key in ("NAXIS1", "NAXIS2"):
            try:
                values[key] = _positive(_as_int)(header.get(key))
            except ValueError as exc:
                problems.append(KeywordProblem("bad", key, f"{where}: {key}: {exc}"))
    refs: dict[str, tuple[str, str | None]] = {}
    for key in ("IMRED_FF", "IMRED_MK"):
        if key in values:
            refs[key] = calibration_reference(values[key])
            ext = refs[key][1]
            if ext is not None and "EXTNAME" in values and ext != values["EXTNAME"]:
                problems.append(
                    KeywordProblem(
                        "bad", key, f"{where}: {key} = {values[key]!r} names another CCD"
                    )
                )
    if problems:
        raise HeaderError(problems)
    gain = values["GAIN"] if "GAIN" in values else 0.5 * (values["GAINA"] + values["GAINB"])
    return CcdInfo(
        extname=values["EXTNAME"],
        gain=gain,
        rdnoise=values["RDNOISE"],
        saturate=values["SATURATE"],
        maxlin=values["MAXLIN"],
        phot_c=values["PHOT_C"],
        phot_k=values["PHOT_K"],
        imred_ff=refs["IMRED_FF"][0],
        imred_ff_ext=refs["IMRED_FF"][1],
        imred_mk=refs["IMRED_MK"][0],
        imred_mk_ext=refs["IMRED_MK"][1],
        naxis1=values["NAXIS1"],
        naxis2=values["NAXIS2"],
    )


def calibration_reference(value: str) -> tuple[str, str | None]:
    """Split an Elixir calibration reference into file name and extension.

    Examples
    --------
    >>> calibration_reference("04Am05.flat.i.36.01.fits[ccd14]")
    ('04Am05.flat.i.36.01.fits', 'ccd14')
    >>> calibration_reference("08Am03.flat.r.36.02")
    ('08Am03.flat.r.36.02', None)

    Raises
    ------
    ValueError
        If the value is empty or not of the form ``file`` or ``file[ext]``.
    """
    match = _CALIB_RE.match(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"not a calibration reference 'file[ext]': {value!r}")
    return match["file"], match["ext"]


def parse_section(value: str) -> tuple[int, int, int, int]:
    """Parse an IRAF section ``'[x1:x2,y1:y2]'`` (1-based, inclusive).

    Returns
    -------
    tuple of int
        ``(x1, x2, y1, y2)`` as written (``DETSEC`` may run backwards).

    Raises
    ------
    ValueError
        If the value is not a 2-D section.
    """
    match = _SECTION_RE.match(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"not a section '[x1:x2,y1:y2]': {value!r}")
    x1, x2, y1, y2 = (int(g) for g in match.groups())
    if min(x1, x2, y1, y2) < 1:
        raise ValueError(f"section starts below 1: {value!r}")
    return x1, x2, y1, y2


def section_or_none(value: str | None) -> tuple[int, int, int, int] | None:
    """:func:`parse_section`, or None when ``value`` is missing, empty or malformed.

    Returns
    -------
    tuple of int or None
        ``(x1, x2, y1, y2)`` as written, 1-based and inclusive.
    """
    try:
        return parse_section(value) if value else None
    except ValueError:
        return None


def section_slices(section: str | None, shape: tuple[int, int]) -> tuple[slice, slice]:
    """Convert a FITS section (``DATASEC = '[33:2080,1:4612]'``) to array slices.

    Parameters
    ----------
    section : str or None
        1-based inclusive ``[x1:x2,y1:y2]`` (:func:`parse_section`; a
        backwards section is turned forwards); None, unparsable or starting
        outside the array -> the whole array.
    shape : tuple of int
        ``(ny, nx)`` of the array, used to clip the section.

    Returns
    -------
    tuple of slice
        ``(rows, columns)``, 0-based.
    """
    full = (slice(0, shape[0]), slice(0, shape[1]))
    try:
        x1, x2, y1, y2 = parse_section(section)
    except ValueError:
        return full
    x1, x2 = sorted((x1, x2))
    y1, y2 = sorted((y1, y2))
    if x1 < 1 or y1 < 1 or x1 > shape[1] or y1 > shape[0]:
        return full
    return slice(y1 - 1, min(y2, shape[0])), slice(x1 - 1, min(x2, shape[1]))


def image_hdus(hdul: Iterable[Any]) -> list[Any]:
    """The HDUs of an opened FITS file that hold a 2-D image.

    A primary HDU, an image extension or a tile-compressed image
    (``CompImageHDU``, decompressed by astropy) with ``NAXIS = 2``; tables and
    random groups are left out.

    Parameters
    ----------
    hdul : iterable of astropy HDUs
        An :class:`astropy.io.fits.HDUList`, or a slice of one (``hdul[1:]``
        for the extensions only).

    Returns
    -------
    list
        The image HDUs, in file order.
    """
    kinds = (fits.PrimaryHDU, fits.ImageHDU)  # CompImageHDU is an ImageHDU
    return [h for h in hdul if isinstance(h, kinds) and h.is_image and h.header.get("NAXIS", 0) == 2]
