"""Python's full garbage collections wait for the DAG (spica.workflow, the Snakefile)."""

from __future__ import annotations

import gc
import re

from spica.workflow import defer_full_collections, resume_full_collections
from tests.conftest import REPO


def test_full_collections_wait_until_resumed_and_the_dag_is_frozen():
    generations: list[int] = []

    def record(phase: str, info: dict) -> None:
        if phase == "start":
            generations.append(info["generation"])

    before = gc.get_threshold()
    frozen_before = gc.get_freeze_count()
    gc.callbacks.append(record)
    try:
        saved = defer_full_collections()
        try:
            assert saved == before
            # a growing DAG: long-lived containers, ten times as many as the default
            # thresholds let through between two full collections
            dag = [{"job": i, "files": [str(i)]} for i in range(200_000)]
            for i in range(200_000):  # short-lived cycles, the young collections' work
                cycle: list = [i]
                cycle.append(cycle)
            assert 0 in generations and 1 in generations
            assert 2 not in generations, generations.count(2)
        finally:
            resume_full_collections(saved)
        assert gc.get_threshold() == before
        assert generations[-1] == 2  # the one full collection of the resume
        assert gc.get_freeze_count() - frozen_before >= 2 * len(dag)  # each job's dict and list
        generations.clear()
        gc.collect()
        assert generations == [2]  # full collections are back
    finally:
        gc.callbacks.remove(record)
        gc.unfreeze()


def test_the_snakefile_defers_them_first_and_resumes_them_on_start():
    text = (REPO / "Snakefile").read_text()
    defer = text.index("_COLLECTOR = defer_full_collections()")
    assert defer < text.index("configfile:") < text.index("include:")  # before the DAG's code
    assert re.search(r"^onstart:\n    resume_full_collections\(_COLLECTOR\)$", text, flags=re.MULTILINE)
