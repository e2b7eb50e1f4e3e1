"""Two clean runs give the same release products (issue 11, section 7).

The second clean run is :func:`tests.corpus.survey.clean_run`: the small survey's
inputs (the same simulation, hence the same bytes) reduced to two good
exposures, 751000 (D3 r) and 751042 (the Very Wide exposure, image by image),
run from scratch in its own folder: step 1, the plan of T0002 and the release
products of 751042p_V0001. It also serves as the corpus run's "without the bad
ones" reference (tests/corpus), so one extra run serves both.

It is compared with the e2e fixture's run (:func:`tests.e2e.conftest.release`)
where the two are comparable: the step 1 products of both exposures (step 1 is
per exposure: the fixture's broken files do not touch them) and everything of
751042p_V0001 — its delivered files, its chi-squared tile, its SCAMP solution
(its astrometric list holds only itself, so the other exposures and the
fixture's regrade of 751029 do not reach it). The comparison is
:mod:`tests.e2e.compare_products`: byte-identical, or equal once the fields the
README lists ("Nothing lost: bad inputs and reruns") are masked.
"""

from __future__ import annotations

import pytest

from spica import paths
from tests.corpus.survey import GOOD, VW_STEM, VW_TILE, clean_run, shared_base
from tests.e2e.compare_products import (EQUAL, IDENTICAL, ONLY_AFTER, ONLY_BEFORE, PLOT_DIFFERENT,
                                        PLOT_SAME, compare_trees, failed, summarise)

pytestmark = [pytest.mark.e2e, pytest.mark.tools]


def test_two_clean_runs_give_the_same_products(release, tmp_path_factory):
    clean = clean_run(shared_base(tmp_path_factory))
    solution = paths.solution_id(VW_STEM, [751042])
    folders = ([f"step1/{paths.exposure_name(e)}" for e in GOOD]
               + [f"releases/T0002/{name}" for name in (VW_STEM, VW_TILE)]
               + [f"releases/T0002/{paths.SOLUTIONS_FOLDER}/{solution}"])
    outcomes = compare_trees(release["workdir"], clean["workdir"], only=folders)
    # the fixture's run may hold products the clean run was not asked for (none today)
    compared = [o for o in outcomes if o.status != ONLY_BEFORE]
    assert compared and not failed(compared), summarise(outcomes)
    assert not [o for o in outcomes if o.status == ONLY_AFTER]
    for folder in folders:  # every compared folder holds products
        assert any(o.path.startswith(folder + "/") for o in compared), folder
    counts = {status: sum(o.status == status for o in compared)
              for status in (IDENTICAL, EQUAL, PLOT_SAME, PLOT_DIFFERENT)}
    equal = counts[IDENTICAL] + counts[EQUAL] + counts[PLOT_SAME]
    print(f"\ntwo clean runs: {len(compared)} files compared, {equal} equal "
          f"({counts[IDENTICAL]} byte-identical, {counts[EQUAL]} equal once run dates/paths/tool "
          f"run fields are masked, {counts[PLOT_SAME]} plots identical), "
          f"{counts[PLOT_DIFFERENT]} plots differing")
    print("equal after masking:", ", ".join(o.path for o in compared if o.status == EQUAL))
    print("plots differing:", ", ".join(o.path for o in compared if o.status == PLOT_DIFFERENT))
