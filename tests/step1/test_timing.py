"""The per-step timings of a step 1 job (spica.step1.timing) and the reduction's
checks that need no tool (spica.step1.reduce)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from spica.step1.reduce import OUTPUT_KEYS, defects_path, reduce_exposure
from spica.step1.timing import StepTimer, read_steps, steps_path


def _burn(seconds: float) -> None:
    """Spin the CPU of this process for about ``seconds``."""
    import time

    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_steps_split_our_cpu_from_the_childrens(tmp_path):
    timer = StepTimer("reduce_exposure", "760101")
    with timer.step("defects", "python"):
        _burn(0.2)
    with timer.step("sextractor", "tool"):
        subprocess.run([sys.executable, "-c",
                        "import time\nt = time.process_time() + 0.3\n"
                        "while time.process_time() < t: pass"], check=True)
    written = timer.write(tmp_path / "bench" / "reduce_exposure.steps.json")
    data = read_steps(written)
    assert data["rule"] == "reduce_exposure" and data["expnum"] == "760101"
    defects, tool = data["steps"]
    assert (defects["name"], defects["kind"], tool["name"], tool["kind"]) == (
        "defects", "python", "sextractor", "tool")
    assert defects["cpu_self_s"] == pytest.approx(0.2, abs=0.05)
    assert defects["cpu_children_s"] == 0.0
    assert tool["cpu_children_s"] >= 0.3  # the child's start-up comes on top
    assert tool["cpu_self_s"] < 0.1
    assert tool["wall_s"] >= tool["cpu_children_s"] - 0.05
    assert defects["max_rss_self_mb"] > 1
    assert data["total"]["cpu_children_s"] >= tool["cpu_children_s"] - 0.002
    assert data["total"]["cpu_self_s"] >= defects["cpu_self_s"] - 0.002
    # the whole process' own CPU (start-up and imports included): at least the total
    assert data["process"]["cpu_self_s"] >= data["total"]["cpu_self_s"] - 0.002


def test_a_failed_step_is_recorded_and_raises():
    timer = StepTimer("assess_quality", "760101")
    with pytest.raises(RuntimeError, match="boom"):
        with timer.step("qa", "python"):
            raise RuntimeError("boom")
    assert [(s["name"], s.get("failed")) for s in timer.steps] == [("qa", True)]


def test_unknown_kinds_are_refused(tmp_path):
    with pytest.raises(ValueError, match="kind"):
        with StepTimer("r", "1").step("x", "shell"):
            pass
    bad = tmp_path / "r.steps.json"
    bad.write_text(json.dumps({"rule": "r", "expnum": "1", "total": {},
                               "steps": [{"name": "x", "kind": "shell"}]}))
    with pytest.raises(ValueError, match="shell"):
        read_steps(bad)


def test_steps_file_sits_beside_the_benchmark():
    assert steps_path("benchmarks/step1/760101p/reduce_exposure.tsv") == Path(
        "benchmarks/step1/760101p/reduce_exposure.steps.json")


def test_the_defect_map_is_beside_the_weight_map():
    assert defects_path("results/step1/760101p/760101p_weight.fits") == Path(
        "results/step1/760101p/760101p_defects.fits")


def _outputs(folder: Path) -> dict[str, Path]:
    from spica import paths

    return {key: folder / paths.step1_name(760101, key) for key in OUTPUT_KEYS}


def _call(outputs, **changes):
    settings = dict(flat="f.fits", mask="m.fits", outputs=outputs,
                    configs=dict.fromkeys(("ww", "sex", "param", "conv", "nnw", "psfex"), "c"),
                    binaries=dict.fromkeys(("weightwatcher", "sextractor", "psfex"), "false"),
                    cosmics={}, trails={}, flat_range=[0.1, 10], sextractor_options={},
                    psfex_options={})
    return reduce_exposure("760101p.fits", **{**settings, **changes})


def test_reduce_exposure_checks_its_arguments_before_any_work(tmp_path):
    outputs = _outputs(tmp_path)
    with pytest.raises(ValueError, match="outputs lacks psf, psfex_xml"):
        _call({k: v for k, v in outputs.items() if k not in ("psf", "psfex_xml")})
    with pytest.raises(ValueError, match="binaries lacks psfex"):
        _call(outputs, binaries={"weightwatcher": "ww", "sextractor": "sex"})
    # PSFEx names the model after the catalogue, in PSF_DIR: another name is an error
    with pytest.raises(ValueError, match="760101p_ldac.psf"):
        _call({**outputs, "psf": tmp_path / "model.psf"})
    assert list(tmp_path.iterdir()) == []


def test_the_defect_map_is_removed_when_a_step_fails(tmp_path):
    """The exposure does not exist: the defect step fails, nothing is left behind and
    the failed step is timed."""
    timer = StepTimer("reduce_exposure", "760101")
    with pytest.raises(FileNotFoundError):
        _call(_outputs(tmp_path), timer=timer)
    assert [(s["name"], s.get("failed")) for s in timer.steps] == [("defects", True)]
    assert not defects_path(_outputs(tmp_path)["weight"]).exists()
