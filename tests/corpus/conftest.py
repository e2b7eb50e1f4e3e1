"""Fixtures of the corruption corpus tests: the tiny survey, the corpus derived from it."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from spica import paths
from tests.corpus.generate import exposure_corpus
from tests.corpus.survey import GOOD, copy_inputs, demo_config, shared_base, tiny_survey

#: The corpus seed: the same seed, the same bad files.
SEED = 20041106


def checksums(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (links not followed), by relative path."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> dict:
    """The bad exposures derived from the tiny survey's 751000p.fits, in a folder of their
    own, with a copy of the survey's calibrations (a broken flat is added there)."""
    work = copy_inputs(tiny_survey(shared_base(tmp_path_factory)), tmp_path_factory.mktemp("corpus"))
    inputs = demo_config()["inputs"]
    source = work / inputs["exposures"] / paths.exposure_filename(GOOD[0])
    before = hashlib.sha256(source.read_bytes()).hexdigest()
    cases = exposure_corpus(source, work / "corpus", seed=SEED, calibrations=work / inputs["calibrations"])
    assert hashlib.sha256(source.read_bytes()).hexdigest() == before  # the source is only read
    return {"work": work, "cases": cases, "source": source, "inputs": inputs,
            "calibrations": work / inputs["calibrations"]}


__all__ = ["SEED", "checksums", "corpus", "shutil"]
