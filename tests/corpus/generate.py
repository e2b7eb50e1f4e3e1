"""A seeded corruption corpus derived from good exposures (issue 11, section 2).

:func:`exposure_corpus` writes, next to nothing else, many bad files derived
from one good Elixir exposure (a demo one): every file gets its own odometer
(``790001p.fits``...; its ``EXPNUM`` cards patched to match, so that a file is
bad only by what it is meant to be) and a :class:`Case` saying what was done
and which outcomes are right. The same seed gives the same bytes.

Kinds of case (``Case.kind``):

``truncated``
    cut at a random offset in the headers, in the pixel data, in the last
    2880-byte block — ``unreadable``;
``header_flip``
    one random byte of the headers XOR-ed with a random value: any named
    reason, or accepted when the byte was harmless (a comment, padding);
``data_flip``
    one random byte of the 16-bit pixel data changed: accepted (Elixir files
    carry no ``DATASUM``: a changed pixel cannot be told from the sky; the
    step 1 defect masks are what catches outliers);
``bitpix``, ``naxis``
    a CCD's ``BITPIX`` (-32, 8, 17) or ``NAXISn`` that lies about the data;
``missing``, ``malformed``
    each keyword of the input contract (:data:`spica.headers.PRIMARY_KEYWORDS`,
    :data:`~spica.headers.EXTENSION_KEYWORDS`: primary, or the first CCD)
    deleted, or set to a value of the wrong kind;
``pixels``
    a CCD all NaN (``nonfinite_pixels``), all zero (``blank_ccd``);
``file``
    a zero-length file; a folder and a dangling symbolic link named like an
    exposure (found by :func:`spica.step1.inventory.discover_exposures`);
``fz``
    a tile-compressed copy (fpack) truncated, or with bytes of its compressed
    tiles changed;
``identity``
    a complete copy, a truncated copy (the issue's ``760190p.fits``) under
    another name, a file whose ``EXPNUM`` names another exposure;
``calibration``
    an exposure naming a flat that is absent, or broken (a truncated copy).

:func:`table_corpus` writes bad observing-metadata and grades CSV files, each
with the line and column its error must name.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits

from spica import paths
from spica.headers import EXTENSION_KEYWORDS, PRIMARY_KEYWORDS

__all__ = ["ANY", "EDITED_CCDS", "STRUCTURE", "Case", "TableCase", "exposure_corpus", "table_corpus"]

#: Expected outcome of a case whose result cannot be known in advance: any named
#: reason of the integrity check, or accepted ("ok").
ANY = frozenset({"*"})
FIRST_ODOMETER = 790001
BLOCK = 2880
#: CCDs kept in the files written through astropy (keyword, pixel, calibration cases).
EDITED_CCDS = 2
#: Outcomes of a file whose structure lies (BITPIX, NAXISn): named by whichever check
#: meets the lie first (the sizes, fitsverify, the shapes, NEXTEND).
STRUCTURE = frozenset({"unreadable", "fitsverify_failed", "bad_shape", "nextend_mismatch"})


@dataclass(frozen=True)
class Case:
    """One bad input: ``path`` (named like an exposure), what was done, the right outcomes:
    the reasons one of which the verdict must list among its failures (the first failure
    found is the verdict's reason: a malformed ``CTYPE1`` is also a fitsverify error),
    ``"ok"`` for accepted, or :data:`ANY`."""

    name: str
    kind: str
    path: Path
    expected: frozenset[str]
    calibration: Path | None = None  # a broken calibration file the case brings


@dataclass(frozen=True)
class TableCase:
    """A bad observing-metadata or grades CSV: the line and column its error must name."""

    name: str
    table: str  # "metadata" or "grades"
    path: Path
    line: int | None
    column: str | None


class _Writer:
    """Hands out odometers and writes derived files into ``folder``."""

    def __init__(self, source: Path, folder: Path, rng: np.random.Generator):
        self.source, self.folder, self.rng = source, folder, rng
        self.raw = source.read_bytes()
        self.next = FIRST_ODOMETER
        self.source_expnum = paths.parse_exposure_filename(source)
        with fits.open(source) as hdul:
            self.layout = [hdu.fileinfo() for hdu in hdul]

    def odometer(self) -> int:
        self.next += 1
        return self.next - 1

    def renamed_bytes(self, expnum: int) -> bytes:
        """The source's bytes with every ``EXPNUM`` card saying ``expnum`` (same width)."""
        data = bytearray(self.raw)
        old, new = str(self.source_expnum).encode(), str(expnum).encode()
        assert len(old) == len(new)
        start = 0
        while (at := data.find(b"EXPNUM  = ", start)) >= 0:
            field = data[at + 10:at + 30]
            data[at + 10:at + 30] = field.replace(old, new)
            start = at + 80
        return bytes(data)

    def write(self, expnum: int, data: bytes, suffix: str = ".fits") -> Path:
        path = self.folder / (paths.exposure_name(expnum) + suffix)
        path.write_bytes(data)
        return path

    def edited(self, expnum: int, edit: Callable[[fits.HDUList], None]) -> Path:
        """A copy through astropy (raw pixels kept) of the source's primary and first
        :data:`EDITED_CCDS` CCDs (``NEXTEND`` set: a smaller file, as valid), ``edit``
        applied, EXPNUM = ``expnum``."""
        path = self.folder / paths.exposure_filename(expnum)
        with fits.open(self.source, do_not_scale_image_data=True) as whole:
            hdul = fits.HDUList([hdu.copy() for hdu in whole[:EDITED_CCDS + 1]])
            hdul[0].header["NEXTEND"] = EDITED_CCDS
            for hdu in hdul:
                if "EXPNUM" in hdu.header:
                    hdu.header["EXPNUM"] = expnum
            edit(hdul)
            hdul.writeto(path, output_verify="silentfix+ignore")
        return path

    def headers(self) -> list[tuple[int, int]]:
        """(start, end) byte ranges of every header."""
        return [(info["hdrLoc"], info["datLoc"]) for info in self.layout]

    def data_ranges(self) -> list[tuple[int, int]]:
        return [(info["datLoc"], info["datLoc"] + info["datSpan"]) for info in self.layout
                if info["datSpan"]]


def _set_card(data: bytearray, start: int, keyword: str, value: str) -> None:
    """Overwrite the value field of ``keyword``'s card in the header starting at ``start``."""
    at = data.find(keyword.ljust(8).encode() + b"= ", start)
    assert at >= 0 and (at - start) % 80 == 0, keyword
    data[at + 10:at + 30] = value.rjust(20).encode()


def _bad_value(parser: Callable) -> object:
    """A value of the wrong kind for a keyword's parser (an integer where text is due, else text)."""
    try:
        parser(12345)
    except ValueError:
        return 12345
    return "not a number"


def exposure_corpus(source: Path, folder: Path, *, seed: int, calibrations: Path,
                    repeats: int = 2, only: tuple[str, ...] | None = None) -> list[Case]:
    """Write the bad exposures derived from ``source`` into ``folder``; return the cases.

    Parameters
    ----------
    source
        A good exposure (``NNNNNNp.fits``, uncompressed, 16-bit CCDs).
    folder
        Where the bad files go (the incoming folder of a test survey, or any).
    seed
        Seeds every random offset and byte: the same seed, the same corpus.
    calibrations
        The calibrations folder: a broken flat is written there (its cases say so).
    repeats
        Cases per random kind (truncation place, byte flips).
    only
        Write only these kinds (the random ones come first: the same seed gives
        them the same bytes with or without the others).
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    w = _Writer(source, folder, rng)
    cases: list[Case] = []

    def add(name, kind, path, expected, calibration=None):
        cases.append(Case(name, kind, path, frozenset(expected), calibration))

    headers, data_ranges = w.headers(), w.data_ranges()
    size = len(w.raw)
    # truncation at random offsets: in a header, in the data, in the last block
    for i in range(repeats):
        for where, (low, high) in (("header", (1, headers[1][1])),
                                   ("data", (data_ranges[0][0] + 1, size - BLOCK)),
                                   ("last_block", (size - BLOCK + 1, size))):
            expnum = w.odometer()
            cut = int(rng.integers(low, high))
            add(f"truncated_{where}_{i}@{cut}", "truncated",
                w.write(expnum, w.renamed_bytes(expnum)[:cut]), {"unreadable"})
    # byte flips in headers and in pixel data
    for i in range(repeats * 2):
        expnum = w.odometer()
        data = bytearray(w.renamed_bytes(expnum))
        low, high = headers[int(rng.integers(0, len(headers)))]
        at = int(rng.integers(low, high))
        data[at] ^= int(rng.integers(1, 256))
        add(f"header_flip_{i}@{at}", "header_flip", w.write(expnum, bytes(data)), ANY)
    for i in range(repeats):
        expnum = w.odometer()
        data = bytearray(w.renamed_bytes(expnum))
        low, high = data_ranges[int(rng.integers(0, len(data_ranges)))]
        at = int(rng.integers(low, high))
        data[at] ^= int(rng.integers(1, 256))
        add(f"data_flip_{i}@{at}", "data_flip", w.write(expnum, bytes(data)), {"ok"})
    if only is not None and not set(only) - {"truncated", "header_flip", "data_flip"}:
        return _kinds(cases, only)
    # BITPIX and NAXISn that lie (first CCD), same bytes otherwise
    ccd = headers[1][0]
    for bitpix in (-32, 8, 17):
        expnum = w.odometer()
        data = bytearray(w.renamed_bytes(expnum))
        _set_card(data, ccd, "BITPIX", str(bitpix))
        add(f"bitpix_{bitpix}", "bitpix", w.write(expnum, bytes(data)), STRUCTURE)
    with fits.open(source) as hdul:
        nx, ny = hdul[1].header["NAXIS1"], hdul[1].header["NAXIS2"]
    for label, cards, expected in (("naxis1_plus_one", {"NAXIS1": nx + 1}, STRUCTURE),
                                   ("naxis2_minus_one", {"NAXIS2": ny - 1}, STRUCTURE),
                                   ("naxis_swapped", {"NAXIS1": ny, "NAXIS2": nx}, {"bad_shape"})):
        expnum = w.odometer()
        data = bytearray(w.renamed_bytes(expnum))
        for key, value in cards.items():
            _set_card(data, ccd, key, str(value))
        add(label, "naxis", w.write(expnum, bytes(data)), expected)
    # each keyword of the input contract, missing and malformed
    with fits.open(source) as hdul:
        gain_pair = "GAINA" in hdul[1].header and "GAINB" in hdul[1].header
    for hdu_index, contract in ((0, PRIMARY_KEYWORDS), (1, EXTENSION_KEYWORDS)):
        for key, parser in contract.items():
            allowed = key == "GAIN" and gain_pair  # GAINA/GAINB may stand for GAIN
            path = w.edited(w.odometer(), lambda h, k=key, i=hdu_index: h[i].header.remove(k))
            add(f"missing_{key}_hdu{hdu_index}", "missing", path,
                {"ok"} if allowed else {"missing_keyword"})
            bad = _bad_value(parser)
            path = w.edited(w.odometer(), lambda h, k=key, i=hdu_index, v=bad: h[i].header.set(k, v))
            add(f"malformed_{key}_hdu{hdu_index}={bad!r}", "malformed", path, {"bad_keyword"})

    # a CCD all NaN, all zero
    def fill(value):
        def edit(hdul):
            header = hdul[2].header.copy()
            for key in ("BSCALE", "BZERO", "BLANK"):
                header.remove(key, ignore_missing=True)
            hdul[2] = fits.ImageHDU(np.full(hdul[2].data.shape, value, np.float32), header)
        return edit

    add("ccd_all_nan", "pixels", w.edited(w.odometer(), fill(np.nan)), {"nonfinite_pixels"})
    add("ccd_all_zero", "pixels", w.edited(w.odometer(), fill(0.0)), {"blank_ccd"})
    # not files
    add("zero_length", "file", w.write(w.odometer(), b""), {"unreadable"})
    folder_case = folder / paths.exposure_filename(w.odometer())
    folder_case.mkdir()
    add("a_folder", "file", folder_case, {"unreadable"})
    link = folder / paths.exposure_filename(w.odometer())
    link.symlink_to(folder / "nowhere.fits")
    add("dangling_link", "file", link, {"unreadable"})
    # tile-compressed copies (fpack), truncated and with changed compressed bytes
    fpack = shutil.which("fpack")
    if fpack:
        for label in ("fz_truncated", "fz_changed_tiles"):
            expnum = w.odometer()
            plain = w.write(expnum, w.renamed_bytes(expnum), suffix=".tmp.fits")
            subprocess.run([fpack, "-O", str(plain) + ".fz", str(plain)], check=True,
                           capture_output=True)
            packed = Path(str(plain) + ".fz").read_bytes()
            plain.unlink()
            Path(str(plain) + ".fz").unlink()
            if label == "fz_truncated":
                packed = packed[: len(packed) - BLOCK - int(rng.integers(1, BLOCK))]
                expected = {"unreadable"}
            else:
                with fits.open(io.BytesIO(packed)) as hdul:
                    info = hdul[1].fileinfo()
                packed = bytearray(packed)
                start = info["datLoc"] + info["datSpan"] // 2
                for at in range(start, start + 64):
                    packed[at] ^= 0x5A
                packed = bytes(packed)
                expected = {"unreadable", "ok"}  # Rice tiles may decode to other pixels
            add(label, "fz", w.write(expnum, packed, suffix=".fits.fz"), expected)
    # identity: copies under other names, an EXPNUM naming another exposure
    source_bytes = w.raw
    add("full_copy_other_name", "identity", w.write(w.odometer(), source_bytes), {"expnum_mismatch"})
    expnum = w.odometer()
    add("truncated_copy_other_name", "identity",
        w.write(expnum, source_bytes[: len(source_bytes) - BLOCK - 1000]), {"unreadable"})
    expnum = w.odometer()
    data = bytearray(w.renamed_bytes(expnum))
    _set_card(data, 0, "EXPNUM", str(expnum + 500))
    add("expnum_names_another", "identity", w.write(expnum, bytes(data)), {"expnum_mismatch"})

    # calibration: the flat named is absent, or broken
    def rename_flat(new):
        def edit(hdul):
            for hdu in hdul[1:]:
                name, _, ext = str(hdu.header["IMRED_FF"]).partition("[")
                hdu.header["IMRED_FF"] = f"{new}[{ext}"
        return edit

    add("flat_absent", "calibration", w.edited(w.odometer(), rename_flat("04Am99.flat.r.8.01.fits")),
        {"missing_calibration"})
    with fits.open(source) as hdul:
        flat = str(hdul[1].header["IMRED_FF"]).partition("[")[0]
    broken = calibrations / flat.replace(".01.fits", ".98.fits")
    original = (calibrations / flat).read_bytes()
    broken.write_bytes(original[: len(original) // 2])
    add("flat_broken", "calibration", w.edited(w.odometer(), rename_flat(broken.name)),
        {"broken_calibration"}, calibration=broken)
    return _kinds(cases, only)


def _kinds(cases: list[Case], only: tuple[str, ...] | None) -> list[Case]:
    """``cases`` of the kinds ``only`` (all when None)."""
    return cases if only is None else [case for case in cases if case.kind in only]


def table_corpus(metadata: Path, grades: Path, folder: Path, *, unknown: int) -> list[TableCase]:
    """Bad copies of a good observing-metadata CSV and grades CSV (each one fault).

    ``unknown`` is an odometer that is not in the survey. The line numbers count
    the header as line 1.
    """
    folder.mkdir(parents=True, exist_ok=True)
    cases: list[TableCase] = []
    meta_lines = metadata.read_text().splitlines()
    grade_lines = grades.read_text().splitlines()

    def write(name, table, lines, line, column):
        path = folder / f"{name}.csv"
        path.write_text("\n".join(lines) + "\n")
        cases.append(TableCase(name, table, path, line, column))

    header, first = meta_lines[0], meta_lines[1].split(",")
    write("metadata_bad_boolean", "metadata",
          [header, ",".join([*first[:2], "maybe"]), *meta_lines[2:]], 2, "photometric")
    write("metadata_bad_skyprobe", "metadata",
          [header, ",".join([first[0], "clear", first[2]]), *meta_lines[2:]], 2, "skyprobe")
    write("metadata_duplicate_row", "metadata", [*meta_lines, meta_lines[1]], len(meta_lines) + 1,
          "expnum")
    write("metadata_not_an_odometer", "metadata", [*meta_lines, "75100x,0.01,true"],
          len(meta_lines) + 1, "expnum")
    write("metadata_missing_column", "metadata",
          ["expnum,skyprobe", *(",".join(line.split(",")[:2]) for line in meta_lines[1:])], 1,
          "photometric")
    header, first = grade_lines[0], grade_lines[1].split(",")
    write("grades_bad_letter", "grades", [header, ",".join([first[0], "E", *first[2:]]),
                                          *grade_lines[2:]], 2, "grade")
    write("grades_unknown_exposure", "grades",
          [*grade_lines, f"{unknown},A,not ours,x,2005-01-01"], len(grade_lines) + 1, "expnum")
    write("grades_duplicate_row", "grades", [*grade_lines, grade_lines[1]], len(grade_lines) + 1,
          "expnum")
    return cases
