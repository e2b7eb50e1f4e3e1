"""Selection filters give exactly the registry's matching rows."""

from __future__ import annotations

import pandas as pd
import pytest

from spica.skywatcher import (
    Criteria,
    SelectionError,
    read_registry,
    release_lists,
    select_exposures,
    survey_state,
)

from tests.skywatcher.conftest import ROWS, SURVEY, exposure_frame


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return survey_state(exposure_frame(), SURVEY, {"T0002": [700001, 700003]})


def chosen(frame, **criteria) -> list[int]:
    return sorted(select_exposures(frame, Criteria(**criteria))["expnum"].astype(int))


def test_annotation(frame):
    assert list(frame["survey"]) == ["D", "D", "W", "Pre-W", "VW", "PI", "D", "D"]
    assert list(frame["progress"]) == ["release", "step1", "release", "step1", "step1", "step1",
                                       "quarantined", "step1"]
    assert list(frame["releases"])[:3] == ["T0002", "", "T0002"]


def test_each_filter(frame):
    assert chosen(frame) == sorted(frame["expnum"].astype(int))
    assert chosen(frame, runids=["04AL02"]) == [700003, 700004]
    assert chosen(frame, runids=["L03", "04BF99"]) == [700005, 700006]
    assert chosen(frame, components=["D"]) == [700001, 700002, 700007, 700008]
    assert chosen(frame, components=["Pre-W", "PI"]) == [700004, 700006]
    assert chosen(frame, filters=["r"]) == [700001, 700004, 700007]
    assert chosen(frame, filters=["i.MP9701", "u"]) == [700002, 700006, 700008]
    assert chosen(frame, box=(214.0, 215.0, 52.0, 53.0)) == [700001, 700002, 700007]
    assert chosen(frame, box=(359.0, 1.0, -10.0, 20.0)) == [700004, 700005]   # across RA 0
    assert chosen(frame, cone=(0.0, 0.0, 10.1)) == [700004, 700005]
    assert chosen(frame, cone=(200.0, 90.0, 0.05)) == [700008]
    assert chosen(frame, date_start="2004-04-18", date_end="2004-06-10") == [700002, 700003, 700004]
    assert chosen(frame, statuses=["release"]) == [700001, 700003]
    assert chosen(frame, statuses=["step1"]) == [700001, 700002, 700003, 700004, 700005, 700006,
                                                 700008]
    assert chosen(frame, statuses=["quarantined"]) == [700007]
    assert chosen(frame, expnums=[700002, 700005]) == [700002, 700005]
    # combined: the conjunction
    assert chosen(frame, components=["D"], filters=["r"], statuses=["step1"]) == [700001]


def test_selection_equals_a_pandas_query(frame):
    got = select_exposures(frame, Criteria(filters=["r", "i"], date_end="2004-06-30"))
    expected = frame[frame["band"].isin(["r", "i"]) & (frame["date_obs"] <= "2004-06-30")]
    pd.testing.assert_frame_equal(got, expected)


def test_bad_criteria_are_named_errors(frame):
    with pytest.raises(SelectionError, match="unknown survey component"):
        chosen(frame, components=["X"])
    with pytest.raises(SelectionError, match="not an ISO date"):
        chosen(frame, date_start="21/03/2004")
    with pytest.raises(SelectionError, match="no 'sent' column"):
        chosen(frame, statuses=["sent"])
    with pytest.raises(SelectionError, match="unknown status"):
        chosen(frame, statuses=["done"])
    with pytest.raises(SelectionError, match="box"):
        chosen(frame, box=(0, 1, 10, -10))
    with pytest.raises(SelectionError, match="survey_state"):
        select_exposures(exposure_frame(), Criteria(components=["D"]))


def test_sent_column_when_present(frame):
    sent = frame.assign(sent=[False, False, True, False, False, False, False, False])
    assert chosen(survey_state(sent, SURVEY, {"T0002": [700003]}), statuses=["sent"]) == [700003]


def test_registry_round_trip(workdir):
    exposures, ccds = read_registry(f"sqlite:///{workdir / 'results' / 'registry.sqlite'}")
    assert sorted(exposures["expnum"].astype(int)) == [row[0] for row in sorted(
        ROWS)]
    assert len(ccds) == 0
    assert release_lists(workdir / "results", ["T0002", "T0001"]) == {"T0002": [700001]}
    with pytest.raises(SelectionError, match="registry not found"):
        read_registry(f"sqlite:///{workdir / 'nowhere.sqlite'}")


def test_contour_boxes_from_the_configurations():
    from spica.skywatcher import config_boxes, load_config

    demo = config_boxes(load_config())
    assert [b["name"] for b in demo] == ["D3", "W3 (demo)"]
    assert demo[0]["dec_max"] - demo[0]["dec_min"] == pytest.approx(0.0833)
    from tests.conftest import REPO

    real = config_boxes(load_config([REPO / "config" / "cfhtls.yaml"]))
    assert [b["name"] for b in real] == ["D1", "D2", "D3", "D4", "W1", "W2", "W3", "W4"]
    d1 = real[0]
    assert (d1["ra_min"] + d1["ra_max"]) / 2 == pytest.approx(36.4958333333)
    assert d1["dec_max"] - d1["dec_min"] == pytest.approx(1.0)
    with pytest.raises(SelectionError, match="not found"):
        load_config(["no/such.yaml"])


def test_sent_from_the_transfer_state(tmp_path, monkeypatch):
    import spica.transfer
    import spica.transfer.state
    from spica.skywatcher import sent_exposures

    assert sent_exposures(tmp_path) is None          # no transfer state: nothing created
    assert not list(tmp_path.iterdir())
    monkeypatch.setattr(spica.transfer.state, "state_path", lambda results: tmp_path / "t.sqlite")
    (tmp_path / "t.sqlite").touch()
    files = pd.DataFrame({
        "product": ["700001p", "700001p", "700002p", "700003p", "CFHTLS_D_r_141927+524056"],
        "release": ["step1", "step1", "step1", "step1", "T0002"],
        "sent": [True, True, True, False, True], "superseded_by": [None, None, None, None, None]})
    monkeypatch.setattr(spica.transfer, "sent_files", lambda results: files)
    assert sent_exposures(tmp_path) == {700001, 700002}
