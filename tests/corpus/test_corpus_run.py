"""One workflow run with bad inputs beside good ones (issue 11, section 2).

The tiny survey's two good exposures and a sample of the corruption corpus (one
case of each kind, ~20 files: truncations, a header byte flip, lying
BITPIX/NAXIS, missing and malformed keywords, a CCD all NaN or all zero, a
zero-length file, a folder and a dangling link named like exposures, a truncated
``.fz``, copies of 751000 under other names, an absent and a broken flat) go
through ``snakemake qualityfits_in``. Every bad input is quarantined with its
reason; the good exposures' step 1 products, registry and inventory rows equal
those of a clean run of the good exposures alone (:func:`tests.corpus.survey.clean_run`,
compared by :mod:`tests.e2e.compare_products`, which masks dates and paths); the raw
inputs are byte-identical after the run.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from spica import paths
from tests.corpus.conftest import checksums
from tests.corpus.generate import ANY
from tests.corpus.survey import GOOD, clean_run, copy_inputs, shared_base, snakemake, tiny_survey
from tests.e2e.compare_products import (EQUAL, IDENTICAL, PLOT_SAME, compare_trees, failed,
                                        summarise)

pytestmark = [pytest.mark.e2e, pytest.mark.tools]

#: One case of each kind (names without their random offset or value).
SAMPLE = ("truncated_header_0", "truncated_data_0", "truncated_last_block_0", "header_flip_0",
          "bitpix_-32", "naxis_swapped", "missing_FILTER_hdu0", "malformed_EXPTIME_hdu0",
          "missing_IMRED_FF_hdu1", "malformed_CD1_1_hdu1", "ccd_all_nan", "ccd_all_zero",
          "zero_length", "a_folder", "dangling_link", "fz_truncated", "full_copy_other_name",
          "truncated_copy_other_name", "expnum_names_another", "flat_absent", "flat_broken")


def _base(name: str) -> str:
    return name.split("@")[0].split("=")[0]


@pytest.fixture(scope="module")
def corpus_run(corpus, tmp_path_factory) -> dict:
    base = shared_base(tmp_path_factory)
    work = copy_inputs(tiny_survey(base), tmp_path_factory.mktemp("corpus-run"))
    inputs = corpus["inputs"]
    incoming, calibrations = work / inputs["exposures"], work / inputs["calibrations"]
    sample = [case for case in corpus["cases"] if _base(case.name) in SAMPLE]
    assert sorted(_base(c.name) for c in sample) == sorted(SAMPLE)
    for case in sample:
        target = incoming / case.path.name
        if case.path.is_symlink():
            target.symlink_to(case.path.readlink())
        elif case.path.is_dir():
            target.mkdir()
        else:
            shutil.copy2(case.path, target)
        if case.calibration is not None:
            shutil.copy2(case.calibration, calibrations / case.calibration.name)
    before = checksums(work / "demo")
    run = snakemake(work, "qualityfits_in")
    (work / "snakemake-run.log").write_text(run.stdout + run.stderr)
    assert run.returncode == 0, run.stderr[-3000:]
    return {"work": work, "sample": sample, "before": before, "after": checksums(work / "demo"),
            "clean": clean_run(base), "results": work / "results"}


def test_every_bad_input_of_the_run_is_quarantined_with_its_reason(corpus_run):
    results = corpus_run["results"]
    inventory = pd.read_csv(results / "step1" / "inventory.csv", dtype={"expnum": "Int64"})
    inventory["name"] = [p.rsplit("/", 1)[-1] for p in inventory["path"]]
    rows = inventory.set_index("name")
    for expnum in GOOD:
        assert rows.loc[paths.exposure_filename(expnum), "status"] == "ok"
    quarantined = 0
    for case in corpus_run["sample"]:
        row = rows.loc[case.path.name]
        assert row["status"] == "quarantined" and row["reason"], (case.name, dict(row))
        assert row["expnum"] == paths.parse_exposure_filename(case.path)  # its own name's odometer
        check = paths.step1_path(results, row["expnum"], "check")
        failures = ({f["reason"] for f in json.loads(check.read_text())["details"]["failures"]}
                    if check.is_file() else {row["reason"]})  # no check job: a folder, a link
        assert case.expected == ANY or case.expected & (failures | {row["reason"]}), (
            case.name, row["reason"], failures)
        quarantined += 1
    assert len(inventory) == len(GOOD) + len(corpus_run["sample"])
    print(f"\nworkflow run: {len(corpus_run['sample'])} bad inputs beside {len(GOOD)} good ones, "
          f"{quarantined} quarantined with their reasons, {len(GOOD)} accepted")


def test_good_exposures_are_processed_as_without_the_bad_ones(corpus_run):
    clean = corpus_run["clean"]["workdir"]
    folders = [f"step1/{paths.exposure_name(e)}" for e in GOOD]
    outcomes = compare_trees(clean, corpus_run["work"], only=folders)
    assert outcomes and not failed(outcomes), summarise(outcomes)
    same = [o for o in outcomes if o.status in (IDENTICAL, EQUAL, PLOT_SAME)]
    print(f"\ngood exposures with and without the bad ones: {len(outcomes)} step 1 files compared, "
          f"{len(same)} equal ({sum(o.status == IDENTICAL for o in outcomes)} byte-identical)")
    # their registry and inventory rows too
    for table in ("registry/exposures.csv", "step1/inventory.csv"):
        frames = [pd.read_csv(root / "results" / table, dtype=str, keep_default_na=False)
                  for root in (clean, corpus_run["work"])]
        good = [frame[frame["expnum"].isin([str(e) for e in GOOD])].reset_index(drop=True)
                for frame in frames]
        assert len(good[0]) == len(GOOD) and list(good[0].columns) == list(good[1].columns)
        for column in good[0].columns:  # text exactly, numbers within 1e-9
            before, after = good[0][column], good[1][column]
            numbers = [pd.to_numeric(values.replace("", "nan"), errors="coerce") for values in (before, after)]
            if numbers[0].notna().any() and (numbers[0].notna() == (before != "")).all():
                assert np.allclose(numbers[0], numbers[1], rtol=1e-9, equal_nan=True), (table, column)
            else:
                assert before.tolist() == after.tolist(), (table, column)


def test_raw_inputs_are_byte_identical_after_the_runs(corpus_run):
    assert corpus_run["after"] == corpus_run["before"]
    assert corpus_run["clean"]["after"] == corpus_run["clean"]["before"]
    print(f"\nraw inputs unchanged: {len(corpus_run['before'])} files (corpus run), "
          f"{len(corpus_run['clean']['before'])} (clean run), same sha256 before and after")
