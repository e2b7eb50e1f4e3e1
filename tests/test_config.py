"""Configuration files validate, a bad key or value is named, and every value lives in one place.

config/config.yaml holds every setting; config/cfhtls.yaml is an overlay
deep-merged over it (``--configfile``); the schemas hold no defaults.
"""

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import update_config, validate

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "config" / "schemas"
SCHEMA = str(SCHEMAS / "config.schema.yaml")
SCHEMA_FILES = sorted(SCHEMAS.glob("*.schema.yaml"))


def _load(name):
    return yaml.safe_load((REPO / "config" / name).read_text())


def _merged(*names):
    """What the workflow sees: config.yaml, then each file deep-merged over it."""
    config = _load("config.yaml")
    for name in names:
        update_config(config, _load(name))
    return config


@pytest.mark.parametrize("overlays", [(), ("releases.yaml",), ("cfhtls.yaml", "releases.yaml")])
def test_shipped_configs_are_valid_and_complete(overlays):
    config = _merged(*overlays)
    before = copy.deepcopy(config)
    validate(config, SCHEMA)
    assert config == before  # nothing filled in: config.yaml holds every value


def test_real_survey_geometry():
    config = _merged("cfhtls.yaml")
    survey = config["survey"]
    assert survey["tile_size_deg"] == 1.0
    assert survey["pixel_scale"] == 0.186
    assert survey["wide_match_radius_arcmin"] == 10.0
    assert survey["astrometric_radius_deg"] == 2.5
    assert [d["name"] for d in survey["deep_fields"]] == ["D1", "D2", "D3", "D4"]
    assert survey["runid_programs"] == {"L01": "D", "L02": "D", "L03": "VW", "L04": "W", "L05": "W", "L06": "W"}
    assert config["catalogues"]["back_size"] == 256
    assert config["inputs"]["exposures"] == "data/elixir/exposures"


def _leaves(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    else:
        yield path, node


def test_overlay_holds_only_what_differs():
    base = _load("config.yaml")
    for path, value in _leaves(_load("cfhtls.yaml")):
        here = base
        for key in path:
            here = here.get(key, {}) if isinstance(here, dict) else {}
        assert here != value, f"{'.'.join(path)} repeats config.yaml's value"


def test_demo_geometry_is_scaled_consistently():
    demo, real = _load("config.yaml")["survey"], _merged("cfhtls.yaml")["survey"]
    scale = demo["tile_size_deg"] / real["tile_size_deg"]
    assert demo["wide_match_radius_arcmin"] / real["wide_match_radius_arcmin"] == pytest.approx(scale, rel=0.01)
    assert demo["astrometric_radius_deg"] / real["astrometric_radius_deg"] == pytest.approx(scale, rel=0.01)


def _schema_nodes(node, path="#"):
    """Every subschema of ``node`` (property names are not walked as keywords)."""
    if not isinstance(node, dict):
        return
    yield path, node
    for keyword in ("properties", "$defs"):
        for name, sub in (node.get(keyword) or {}).items():
            yield from _schema_nodes(sub, f"{path}/{keyword}/{name}")
    for keyword in ("items", "additionalProperties", "propertyNames"):
        yield from _schema_nodes(node.get(keyword), f"{path}/{keyword}")


@pytest.mark.parametrize("schema_file", SCHEMA_FILES, ids=lambda p: p.name)
def test_schemas_are_strict_and_hold_no_defaults(schema_file):
    schema = yaml.safe_load(schema_file.read_text())
    for path, node in _schema_nodes(schema):
        assert "default" not in node, f"{path}: defaults live in config/*.yaml, not in the schema"
        if node.get("type") == "object" or "properties" in node:
            assert node.get("additionalProperties") is not None, f"{path}: open object"
            assert node.get("additionalProperties") is not True, f"{path}: open object"
        for name, prop in (node.get("properties") or {}).items():
            assert "description" in prop, f"{path}/properties/{name}: no description"
            assert {"type", "$ref", "enum"} & set(prop), f"{path}/properties/{name}: no type"


@pytest.mark.parametrize(
    "edit, named",
    [
        (lambda c: c["step1"]["sextractor"].update(detect_thres=2.0), "detect_thres"),
        (lambda c: c["step1"]["grading"].update(max_fwhm_arcsecs=1.0), "max_fwhm_arcsecs"),
        (lambda c: c["step1"]["weights"]["trails"].update(treshold=4.0), "treshold"),
        (lambda c: c["calibration"].update(max_pixel_scale_err=0.02), "max_pixel_scale_err"),
        (lambda c: c["catalogues"].update(backsize=32), "backsize"),
        (lambda c: c["tools"].update(swarpp=["swarp"]), "swarpp"),
        (lambda c: c["demo"]["mosaic"].update(gapx=10), "gapx"),
        (lambda c: c["planning"].update(node_lod="stacks"), "node_lod"),
        (lambda c: c["releases"]["T0002"]["seeing_arcsec"]["D"].update(default_=1.0), "default_"),
        (lambda c: c["step1"]["grading"].pop("fwhm_c_factor"), "fwhm_c_factor"),
        (lambda c: c["survey"].update(tile_size_deg=-1), "tile_size_deg"),
        (lambda c: c["step1"]["integrity"].update(max_nonfinite_fraction=2), "max_nonfinite_fraction"),
        (lambda c: c["survey"]["runid_programs"].update(L09="X"), "L09"),
    ],
)
def test_bad_key_or_value_is_named(edit, named):
    config = _merged("releases.yaml")
    edit(config)
    with pytest.raises(WorkflowError, match=named):
        validate(config, SCHEMA)


def test_commands_read_the_configuration_as_the_snakefile_does(tmp_path):
    """spica.config.load_config (the operation interface, data transfer, SkyWatcher):
    config.yaml and releases.yaml, the overlays deep-merged over them, the Snakefile's
    schemas; each failure a ConfigError naming the file or the key."""
    from spica.config import ConfigError, load_config

    config = load_config()
    assert config["releases"] and config["transfer"]["quota_bytes"] == 3_600_000_000_000
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("transfer: {quota_bytes: 5}\n")
    merged = load_config([overlay])
    assert merged["transfer"]["quota_bytes"] == 5
    assert merged["transfer"]["outgoing"] == config["transfer"]["outgoing"]  # deep merge
    overlay.write_text("transfer: {quota_bytes: -5}\n")
    with pytest.raises(ConfigError, match=r"configuration transfer/quota_bytes: -5 is less than"):
        load_config([overlay])
    overlay.write_text("- a list\n")
    with pytest.raises(ConfigError, match="not a mapping"):
        load_config([overlay])
    with pytest.raises(ConfigError, match="not found"):
        load_config([tmp_path / "absent.yaml"])
    overlay.write_text("transfer: {quota_bytes: -5}\n")
    assert load_config([overlay], validate=False)["transfer"]["quota_bytes"] == -5
