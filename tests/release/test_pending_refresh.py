"""The "Pending processes" view refreshed at the end of a run
(spica.release.planning.refresh_pending_report, the workflow's onsuccess/onerror handlers)."""

from __future__ import annotations

import pytest

from spica.paths import product_path, release_path
from spica.release.planning import (
    PendingViewError,
    done_products,
    pending_report,
    read_plan,
    refresh_pending_report,
    stale_solutions,
    write_plan,
)
from tests.release.test_planning import D3, plan_of, read_plan_with_done
from tests.release.test_selection import demo_exposures


@pytest.fixture
def planned(cfg, demo_survey, tmp_path):
    """Release T0002 of the demo exposures planned under ``tmp_path`` with its view
    written before any product was made (what rule report_pending leaves after the
    run that makes the stacks)."""
    plan = plan_of(demo_exposures(), cfg, demo_survey)
    write_plan(plan, release_path(tmp_path, "T0002", "plan").parent)
    view = release_path(tmp_path, "T0002", "pending")
    view.write_text(pending_report(read_plan_with_done(plan, tmp_path),
                                   longest=cfg["planning"]["longest_stacks"]))
    return plan, view


def test_refresh_lists_only_what_is_pending_on_disk(cfg, planned, tmp_path):
    plan, view = planned
    longest = cfg["planning"]["longest_stacks"]
    n = len(plan.stacks)
    stem = f"CFHTLS_D_r_{D3}_T0002"
    name = plan.products()[stem].name
    assert view.read_text().startswith(f"Pending processes ({n})\n") and name in view.read_text()
    image = product_path(tmp_path, "T0002", stem, "image")
    image.parent.mkdir(parents=True)
    image.write_bytes(b"")  # the product's final stack image: it is done

    assert refresh_pending_report(tmp_path, "T0002", longest=longest) is True
    text = view.read_text()
    assert text.splitlines()[0] == f"Pending processes ({n - 1})"
    assert name not in text
    # exactly what the rule's script renders from the same disk
    folder = view.parent
    expected = pending_report(read_plan(folder, done=set(done_products(plan, tmp_path))),
                              longest=longest, stale=stale_solutions(plan, tmp_path))
    assert text == expected
    assert not list(folder.glob(".*partial"))  # written through a temporary file, renamed

    # nothing changed on disk: the file is left alone
    mtime = view.stat().st_mtime_ns
    assert refresh_pending_report(tmp_path, "T0002", longest=longest) is False
    assert view.stat().st_mtime_ns == mtime and view.read_text() == text


def test_refresh_never_makes_a_plan_or_a_view(cfg, planned, tmp_path):
    plan, view = planned
    longest = cfg["planning"]["longest_stacks"]
    # a release without a plan: nothing written, even beside a view
    other = release_path(tmp_path, "T0001", "pending")
    assert refresh_pending_report(tmp_path, "T0001", longest=longest) is False
    assert not other.parent.exists()
    other.parent.mkdir(parents=True)
    other.write_text("Pending processes (7)\n")
    assert refresh_pending_report(tmp_path, "T0001", longest=longest) is False
    assert other.read_text() == "Pending processes (7)\n"
    assert sorted(p.name for p in other.parent.iterdir()) == [other.name]
    # a plan without its view (never asked for): no view made
    view.unlink()
    assert refresh_pending_report(tmp_path, "T0002", longest=longest) is False
    assert not view.exists()


def test_refresh_of_an_unreadable_plan_is_a_named_error(cfg, planned, tmp_path):
    plan, view = planned
    before = view.read_text()
    release_path(tmp_path, "T0002", "lists").write_text("{not json")
    with pytest.raises(PendingViewError, match="pending view of T0002 not refreshed: plan unreadable") as error:
        refresh_pending_report(tmp_path, "T0002", longest=cfg["planning"]["longest_stacks"])
    assert error.value.reason == "plan unreadable" and error.value.release == "T0002"
    assert view.read_text() == before
