"""Every bad input gets a named reason (issue 11, section 2), checked directly.

The corpus (:mod:`tests.corpus.generate`) is derived from a good demo exposure;
each bad exposure goes through the function the ``check_exposure`` rule calls
(with fitsverify when installed, as the demo configuration asks), the folder
and the dangling link through the discovery that lists the incoming files, and
the identity cases through :func:`spica.step1.integrity.find_duplicates` with the
good file beside them. Bad metadata and grades tables raise
:class:`spica.registry.TableError` naming the file, the line and the column.
No workflow runs here (``test_corpus_run.py`` does, on a sample).
"""

from __future__ import annotations

import collections
import shutil

import pytest

from spica.registry import TableError, TableWarning, read_grades, read_metadata
from spica.step1.integrity import REASONS, CheckResult, find_duplicates
from spica.step1.inventory import check_exposure_and_calibrations, discover_exposures
from tests.corpus.conftest import SEED, checksums
from tests.corpus.generate import ANY, exposure_corpus, table_corpus
from tests.corpus.survey import GOOD, demo_config

#: Reasons of the inventory besides the integrity check's (calibrations, names).
INVENTORY_REASONS = {"missing_calibration", "inconsistent_calibration", "broken_calibration",
                     "unrecognised_name"}


def _limits() -> dict:
    integrity = demo_config()["step1"]["integrity"]
    return {k: v for k, v in integrity.items() if k != "run_fitsverify"}


def _verdicts(corpus: dict) -> dict[str, dict]:
    """Each case's outcome: ``reason`` (or "ok") and every failure's reason."""
    folder = corpus["cases"][0].path.parent
    rejected = {path: (reason, message) for path, reason, message in discover_exposures(folder).rejected}
    fitsverify = shutil.which("fitsverify")
    found = {}
    for case in corpus["cases"]:
        if str(case.path) in rejected:
            reason, message = rejected[str(case.path)]
            found[case.name] = {"reason": reason, "failures": {reason}, "message": message}
            continue
        verdict = check_exposure_and_calibrations(case.path, corpus["calibrations"],
                                                  fitsverify=fitsverify, limits=_limits())
        failures = {f["reason"] for f in (verdict.get("details") or {}).get("failures", [])}
        found[case.name] = {"reason": verdict["reason"] or "ok", "failures": failures or {"ok"},
                            "message": verdict["message"], "verdict": verdict}
    return found


@pytest.fixture(scope="module")
def outcomes(corpus) -> dict[str, dict]:
    before = checksums(corpus["work"])
    found = _verdicts(corpus)
    assert checksums(corpus["work"]) == before  # the checks only read
    return found


def test_every_bad_exposure_gets_its_named_reason(corpus, outcomes):
    named = set(REASONS) | INVENTORY_REASONS | {"ok"}
    wrong, handled = [], 0
    for case in corpus["cases"]:
        outcome = outcomes[case.name]
        assert outcome["reason"] in named, (case.name, outcome)
        assert outcome["message"], case.name  # every verdict says why
        right = case.expected == ANY or bool(case.expected & outcome["failures"]) or (
            case.expected & {outcome["reason"]})
        handled += bool(right)
        if not right:
            wrong.append((case.name, outcome["reason"], sorted(outcome["failures"]), outcome["message"][:120]))
    by_kind = collections.Counter(case.kind for case in corpus["cases"])
    by_reason = collections.Counter(outcomes[case.name]["reason"] for case in corpus["cases"])
    print(f"\ncorpus (seed {SEED}): {len(corpus['cases'])} bad inputs tried, {handled} handled "
          f"as expected; by kind {dict(sorted(by_kind.items()))}; by outcome {dict(sorted(by_reason.items()))}")
    assert not wrong, wrong
    # what must be refused is refused: only byte flips the file cannot show, and the
    # contract's GAINA/GAINB pair standing for GAIN, are accepted
    accepted = {case.name for case in corpus["cases"] if outcomes[case.name]["reason"] == "ok"}
    assert all(name.startswith(("data_flip", "header_flip", "fz_changed", "missing_GAIN_"))
               for name in accepted), accepted
    assert len(accepted) < len(corpus["cases"]) // 10


def test_each_contract_keyword_missing_and_malformed_is_named(corpus, outcomes):
    from spica.headers import EXTENSION_KEYWORDS, PRIMARY_KEYWORDS

    names = {case.name for case in corpus["cases"]}
    for hdu, contract in ((0, PRIMARY_KEYWORDS), (1, EXTENSION_KEYWORDS)):
        for key in contract:
            assert f"missing_{key}_hdu{hdu}" in names
            malformed = next(n for n in names if n.startswith(f"malformed_{key}_hdu{hdu}="))
            assert "bad_keyword" in outcomes[malformed]["failures"], (malformed, outcomes[malformed])
            verdict = outcomes[malformed]["verdict"]
            keywords = {f["keyword"] for f in verdict["details"]["failures"] if f["reason"] == "bad_keyword"}
            assert key in keywords, (malformed, keywords)  # the failure names the keyword


def test_duplicates_never_speak_for_the_good_exposure(corpus, outcomes):
    """With the good exposure in the set, each copy under another name is quarantined and
    the good file stays accepted, as itself."""
    good = check_exposure_and_calibrations(corpus["source"], corpus["calibrations"], fitsverify=None,
                                           limits=_limits())
    assert good["ok"] and good["expnum"] == GOOD[0]
    copies = [outcomes[name]["verdict"] for name in ("full_copy_other_name", "truncated_copy_other_name")]
    marked = find_duplicates([CheckResult.from_dict(v) for v in (good, *copies)])
    assert marked[0].ok and marked[0].expnum == GOOD[0] and marked[0].n_ccd == good["n_ccd"]
    for verdict, result in zip(copies, marked[1:]):
        assert not result.ok and result.expnum == verdict["expnum"] != GOOD[0]
        assert result.details["duplicate_of"] == str(corpus["source"])
    assert marked[1].reason == "expnum_mismatch" and marked[2].reason == "unreadable"


def test_the_corpus_is_reproducible(corpus, tmp_path):
    """The same seed writes the same bytes (a sample of the random kinds: truncations,
    byte flips); names carry the random offsets."""
    again = exposure_corpus(corpus["source"], tmp_path / "again", seed=SEED,
                            calibrations=tmp_path / "calib-copy", repeats=2, only=("truncated", "header_flip", "data_flip"))
    first = {case.name: case.path for case in corpus["cases"]}
    assert again and all(case.name in first for case in again)
    for case in again:
        assert case.path.read_bytes() == first[case.name].read_bytes(), case.name
    print(f"\ncorpus reproducible: {len(again)} random cases rewritten from seed {SEED}, identical")


@pytest.fixture(scope="module")
def tables(corpus, tmp_path_factory) -> list:
    inputs = corpus["inputs"]
    return table_corpus(corpus["work"] / inputs["metadata"], corpus["work"] / inputs["grades"],
                        tmp_path_factory.mktemp("tables"), unknown=799999)


def test_bad_table_rows_name_file_line_and_column(corpus, tables):
    known = list(GOOD)
    inputs = corpus["inputs"]
    assert len(read_metadata(corpus["work"] / inputs["metadata"])) == len(GOOD)  # the good ones pass
    assert len(read_grades(corpus["work"] / inputs["grades"], known=known)) >= 1
    for case in tables:
        if case.name == "grades_unknown_exposure":  # left out, with a warning naming the row
            with pytest.warns(TableWarning, match=f"line {case.line}, column expnum: exposure 799999"):
                grades = read_grades(case.path, known=known)
            assert 799999 not in set(grades["expnum"]) and len(grades) >= 1
            continue
        with pytest.raises(TableError) as raised:
            if case.table == "metadata":
                read_metadata(case.path)
            else:
                read_grades(case.path, known=known)
        error = raised.value
        assert (error.file, error.line, error.column) == (str(case.path), case.line, case.column), (
            case.name, str(error))
        assert str(case.path) in str(error) and f"column {case.column}" in str(error)
    print(f"\ntables: {len(tables)} bad CSV files tried, {len(tables)} named (file, line, column): "
          f"{len(tables) - 1} errors, 1 row of an unknown exposure left out with a warning")
