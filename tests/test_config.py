"""Configuration files validate, and a bad key or value is named."""

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

REPO = Path(__file__).resolve().parents[1]
SCHEMA = str(REPO / "config" / "schemas" / "config.schema.yaml")


def _load(name):
    return yaml.safe_load((REPO / "config" / name).read_text())


@pytest.mark.parametrize("name", ["config.yaml", "cfhtls.yaml"])
def test_shipped_configs_are_valid(name):
    validate(_load(name), SCHEMA)


def test_real_survey_geometry():
    survey = _load("cfhtls.yaml")["survey"]
    assert survey["tile_size_deg"] == 1.0
    assert survey["wide_match_radius_arcmin"] == 10.0
    assert survey["astrometric_radius_deg"] == 2.5
    assert [d["name"] for d in survey["deep_fields"]] == ["D1", "D2", "D3", "D4"]


def test_demo_geometry_is_scaled_consistently():
    demo, real = _load("config.yaml")["survey"], _load("cfhtls.yaml")["survey"]
    scale = demo["tile_size_deg"] / real["tile_size_deg"]
    assert demo["wide_match_radius_arcmin"] / real["wide_match_radius_arcmin"] == pytest.approx(scale, rel=0.01)
    assert demo["astrometric_radius_deg"] / real["astrometric_radius_deg"] == pytest.approx(scale, rel=0.01)


@pytest.mark.parametrize(
    "edit, named",
    [
        (lambda c: c["step1"]["sextractor"].update(detect_thres=2.0), "detect_thres"),
        (lambda c: c["survey"].update(tile_size_deg=-1), "tile_size_deg"),
        (lambda c: c["step1"]["integrity"].update(max_nonfinite_fraction=2), "max_nonfinite_fraction"),
        (lambda c: c["survey"]["runid_programs"].update(L09="X"), "L09"),
    ],
)
def test_bad_key_or_value_is_named(edit, named):
    config = copy.deepcopy(_load("config.yaml"))
    edit(config)
    with pytest.raises(WorkflowError, match=named):
        validate(config, SCHEMA)
