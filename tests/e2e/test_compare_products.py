"""The product comparison (tests/e2e/compare_products.py) on tiny synthetic files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from tests.e2e.compare_products import (
    DIFFERING,
    EQUAL,
    IDENTICAL,
    ONLY_AFTER,
    ONLY_BEFORE,
    PLOT_DIFFERENT,
    Masks,
    compare_cards,
    compare_file,
    compare_trees,
    compare_values,
    failed,
    main,
    mask_votable,
)

MASKS = Masks(roots=(("/work/run-a", "<WORKDIR>"), ("/work/run-b", "<WORKDIR>"), ("/src/spica", "<REPO>")),
              dates=frozenset({"2026-12-02"}))


def _pair(tmp_path: Path, name: str, before: str | bytes, after: str | bytes) -> tuple[Path, Path]:
    paths = []
    for side, content in (("a", before), ("b", after)):
        path = tmp_path / side / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        paths.append(path)
    return paths[0], paths[1]


def _compare(tmp_path: Path, name: str, before, after) -> tuple[str, str]:
    a, b = _pair(tmp_path, name, before, after)
    outcome = compare_file(name, a, b, MASKS)
    return outcome.status, outcome.detail


# ------------------------------------------------------------------ masking
def test_masks_run_dates_paths_hashes_and_temporary_folders():
    text = ("ran 2026-12-02T04:55:09+00:00 and 02/12/2026 in /work/run-a/results/x.fits "
            "with /src/spica/config/a.sex, sha256 " + "ab" * 32 + ", code 0123456789abcdef, "
            "scratch results/swarp-ny65yu7v/751000p.fits")
    assert MASKS.text(text) == (
        "ran <RUN DATE> and <RUN DATE> in <WORKDIR>/results/x.fits with <REPO>/config/a.sex, "
        "sha256 <SHA256>, code <CODE HASH>, scratch results/swarp-<TMP>/751000p.fits")
    # dates of the data (not of the run), odometers and plain numbers stay
    kept = "REL_DATE 2006-09-01T00:00:00, 751000p, 1234567890123456, 12:34:56"
    assert MASKS.text(kept) == kept
    # the other run's folder too: the same placeholder
    assert MASKS.text("/work/run-b/results") == MASKS.text("/work/run-a/results")


def test_run_date_of_a_header_value():
    assert MASKS.is_run_date("2026-12-02T04:56:13")
    assert not MASKS.is_run_date("2004-03-21T07:42:30")
    assert not MASKS.is_run_date(2026.0)


def test_mask_votable_blanks_run_fields_only():
    votable = """<VOTABLE><RESOURCE>
  <PARAM name="Date" datatype="char" value="2026-12-02"/>
  <PARAM name="Duration" datatype="float" value="3"/>
  <PARAM name="NThreads" datatype="int" value="2"/>
  <TABLE><FIELD name="Extension"/><FIELD name="Date"/><FIELD name="Time"/><FIELD name="NDetect"/>
   <DATA><TABLEDATA><TR><TD>1</TD><TD>2026-12-02</TD><TD>04:54:37</TD><TD>133</TD></TR></TABLEDATA></DATA>
  </TABLE></RESOURCE></VOTABLE>"""
    later = votable.replace('"3"', '"5"').replace("04:54:37", "09:00:01")
    assert mask_votable(votable) == mask_votable(later)
    assert mask_votable(votable) != mask_votable(votable.replace("<TD>133</TD>", "<TD>134</TD>"))
    assert mask_votable(votable) != mask_votable(votable.replace('value="2"', 'value="1"'))
    assert mask_votable("not xml <") == "not xml <"


# ------------------------------------------------------------------- values
def test_compare_values():
    assert compare_values(1.0, 1.0 + 1e-10)
    assert not compare_values(1.0, 1.0 + 1e-8)
    assert compare_values(float("nan"), float("nan"))
    assert not compare_values(3, 4) and compare_values(3, 3)
    assert not compare_values(True, 1.0) and not compare_values("1.0", 1.0)


def test_compare_cards_skips_run_keywords_only():
    def cards(**values):
        return list(fits.Header(values).cards)

    same = {"CRPIX1": 828.9288445808, "NCOMBINE": 2, "OBJECT": "D3"}
    assert compare_cards(cards(**same, SEXDATE="02/12/2026", DATE="2026-12-02T04:56:13"),
                         cards(**same, SEXDATE="03/12/2026", DATE="2026-12-03T10:00:00"),
                         Masks(dates=frozenset({"2026-12-02", "2026-12-03"}))) is None
    # DATE of the exposure (not a run date) is compared
    assert "DATE" in compare_cards(cards(DATE="2004-03-21T07:42:30"), cards(DATE="2004-03-22T07:42:30"), MASKS)
    assert compare_cards(cards(CRPIX1=828.9288445808), cards(CRPIX1=828.9288445808 * (1 + 1e-10)), MASKS) is None
    assert "CRPIX1" in compare_cards(cards(CRPIX1=828.92884), cards(CRPIX1=828.93), MASKS)
    assert "keywords differ" in compare_cards(cards(A=1, B=2), cards(A=1), MASKS)


# -------------------------------------------------------------------- files
def _fits_bytes(data: np.ndarray, **header) -> bytes:
    hdu = fits.PrimaryHDU(data)
    hdu.header.update(header)
    table = fits.BinTableHDU.from_columns([
        fits.Column(name="MAG", format="E", array=np.array([20.0, 21.5], np.float32)),
        fits.Column(name="FLAGS", format="J", array=np.array([0, 3], np.int32))], name="LDAC_OBJECTS")
    imhead = fits.Header({"EXPNUM": 751000, "SEXDATE": header.get("SEXDATE", "02/12/2026")})
    text = imhead.tostring()
    ldac = fits.BinTableHDU.from_columns(
        [fits.Column(name="Field Header Card", format=f"{len(text)}A", array=np.array([text]))],
        name="LDAC_IMHEAD")
    from io import BytesIO

    buffer = BytesIO()
    fits.HDUList([hdu, ldac, table]).writeto(buffer)
    return buffer.getvalue()


def test_fits_data_and_headers(tmp_path):
    image = np.arange(12, dtype=np.float32).reshape(3, 4) + 100
    reference = _fits_bytes(image, DATE="2026-12-02T04:56:13", MAGZERO=30.0)
    assert _compare(tmp_path / "1", "s.fits", reference, reference)[0] == IDENTICAL
    # another run the same day: DATE and SEXDATE masked, floats within the tolerance
    later = _fits_bytes(image * np.float32(1 + 1e-7), DATE="2026-12-02T05:10:00", MAGZERO=30.0)
    assert _compare(tmp_path / "2", "s.fits", reference, later) == (EQUAL, "")
    status, detail = _compare(tmp_path / "3", "s.fits", reference,
                              _fits_bytes(image + np.float32(1), DATE="2026-12-02T04:56:13", MAGZERO=30.0))
    assert status == DIFFERING and "data" in detail and "12 values differ" in detail
    status, detail = _compare(tmp_path / "4", "s.fits", reference,
                              _fits_bytes(image, DATE="2026-12-02T04:56:13", MAGZERO=31.0))
    assert status == DIFFERING and "MAGZERO" in detail
    # integers: exactly
    ints = np.arange(6, dtype=np.int16).reshape(2, 3)
    status, detail = _compare(tmp_path / "5", "f.fits", _fits_bytes(ints), _fits_bytes(ints + 1))
    assert status == DIFFERING and "first difference at (0, 0)" in detail


def test_heads_within_1e9(tmp_path):
    def head(crpix: float) -> str:
        cards = [fits.Card("CRPIX1", crpix, "Reference pixel"), fits.Card("FLXSCALE", 0.5),
                 fits.Card("HISTORY", "Astrometric solution by SCAMP")]
        return "\n".join([c.image for c in cards] + ["END"] * 1) + "\n"

    base = 8.289288445808e02
    assert _compare(tmp_path / "1", "751000p.head", head(base), head(base * (1 + 1e-10)))[0] == EQUAL
    status, detail = _compare(tmp_path / "2", "751000p.head", head(base), head(base * (1 + 1e-8)))
    assert status == DIFFERING and "CRPIX1" in detail


def test_csv_rows_and_numbers(tmp_path):
    before = "expnum,zp,path\n751000,0.1234567890123,/work/run-a/results/a.fits\n"
    assert _compare(tmp_path / "1", "t.csv", before,
                    "expnum,zp,path\n751000,0.1234567890124,/work/run-b/results/a.fits\n")[0] == EQUAL
    status, detail = _compare(tmp_path / "2", "t.csv", before,
                              "expnum,zp,path\n751001,0.1234567890123,/work/run-a/results/a.fits\n")
    assert status == DIFFERING and "expnum" in detail
    status, detail = _compare(tmp_path / "3", "t.csv", before, before + "751008,0.2,b\n")
    assert status == DIFFERING and "1 rows != 2" in detail


def test_sqlite_tables(tmp_path):
    def database(path: Path, grade: str) -> None:
        path.parent.mkdir(parents=True)
        with sqlite3.connect(path) as connection:
            connection.execute("create table exposures (expnum integer, grade text, fwhm real)")
            connection.execute("insert into exposures values (751000, ?, 0.8)", (grade,))
        connection.close()

    database(tmp_path / "a" / "registry.sqlite", "A")
    database(tmp_path / "b" / "registry.sqlite", "A")
    database(tmp_path / "c" / "registry.sqlite", "B")
    assert compare_file("registry.sqlite", tmp_path / "a" / "registry.sqlite",
                        tmp_path / "b" / "registry.sqlite", MASKS).status in (IDENTICAL, EQUAL)
    outcome = compare_file("registry.sqlite", tmp_path / "a" / "registry.sqlite",
                           tmp_path / "c" / "registry.sqlite", MASKS)
    assert outcome.status == DIFFERING and "grade" in outcome.detail


@pytest.mark.parametrize("after, status", [
    ("sigma 0.01234567 ndet 133 at /work/run-b on 2026-12-02", EQUAL),   # last digit, path, date
    ("sigma 0.01234568 ndet 133 at /work/run-a on 2026-12-02", EQUAL),   # one unit of the last digit
    ("sigma 0.01234570 ndet 133 at /work/run-a on 2026-12-02", DIFFERING),
    ("sigma 0.01234567 ndet 134 at /work/run-a on 2026-12-02", DIFFERING),  # a count: exactly
    ("sigma 0.01234567 ndet 133 in /work/run-a on 2026-12-02", DIFFERING),
])
def test_text_after_masking(tmp_path, after, status):
    before = "sigma 0.01234567 ndet 133 at /work/run-a on 2026-12-02"
    assert _compare(tmp_path, "x.txt", before, after)[0] == status


# -------------------------------------------------------------------- trees
def test_trees_and_exit_status(tmp_path, capsys):
    for side in ("a", "b"):
        results = tmp_path / side / "results"
        (results / "step1").mkdir(parents=True)
        (results / "step1" / "a.list").write_text("751000p\n")
        (results / "step1" / "plot.png").write_bytes(b"\x89PNG" + side.encode())
        (results / "step1" / ".snakemake_timestamp").write_text("")
    (tmp_path / "a" / "results" / "gone.txt").write_text("x")
    outcomes = {o.path: o.status for o in compare_trees(tmp_path / "a", tmp_path / "b")}
    assert outcomes == {"gone.txt": ONLY_BEFORE, "step1/a.list": IDENTICAL,
                        "step1/plot.png": PLOT_DIFFERENT}
    assert main([str(tmp_path / "a"), str(tmp_path / "b")]) == 1
    assert "FAIL: 1 product(s)" in capsys.readouterr().out
    (tmp_path / "b" / "results" / "gone.txt").write_text("x")
    (tmp_path / "b" / "results" / "new.txt").write_text("y")
    assert [o.path for o in failed(compare_trees(tmp_path / "a", tmp_path / "b"))] == ["new.txt"]
    assert compare_trees(tmp_path / "a", tmp_path / "b")[1].status == ONLY_AFTER
    # a plot alone never fails; the results folder itself may be given
    (tmp_path / "b" / "results" / "new.txt").unlink()
    assert main([str(tmp_path / "a" / "results"), str(tmp_path / "b" / "results")]) == 0
    assert "OK: 0 product(s)" in capsys.readouterr().out


def test_postscript_differing_only_in_creation_date(tmp_path):
    from tests.e2e.compare_products import PLOT_DIFFERENT, PLOT_SAME, compare_file

    body = b"%!PS-Adobe-3.0\n%%CreationDate: {date}\n0 0 moveto\n"
    before, after, other = tmp_path / "a.ps", tmp_path / "b.ps", tmp_path / "c.ps"
    before.write_bytes(body.replace(b"{date}", b"Wed Dec  2 04:55:08 2026"))
    after.write_bytes(body.replace(b"{date}", b"Wed Dec  2 05:38:54 2026"))
    other.write_bytes(body.replace(b"{date}", b"Wed Dec  2 05:38:54 2026") + b"1 1 lineto\n")
    masks = None  # plots are not masked
    assert compare_file("x.ps", before, after, masks).status == PLOT_SAME
    assert compare_file("x.ps", before, other, masks).status == PLOT_DIFFERENT
