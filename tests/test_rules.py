"""The rules files are wiring: every rule is complete (named files, log, conda env,
provenance param) and the functions live in rules/common.smk (and the library)."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RULES = sorted((REPO / "rules").glob("*.smk"))
SNAKEFILES = [REPO / "Snakefile", *RULES]

#: A rule's header at the start of a line: ``rule x:``, ``checkpoint x:``,
#: ``use rule x as y with:``; a target rule built in a loop (``rule:`` + ``name:``) is nameless.
_HEADER = re.compile(
    r"^[ ]*(?:(?P<kind>rule|checkpoint)(?:[ ]+(?P<name>\w+))?[ ]*:"
    r"|use[ ]+rule[ ]+(?P<parent>\w+)[ ]+as[ ]+(?P<child>\w+)[ ]+with[ ]*:)",
    re.M,
)


@dataclass
class Rule:
    """One rule of a rules file: its name and directive -> text."""

    file: str
    name: str
    parent: str | None
    directives: dict[str, str]

    def items(self, directive: str) -> list[str]:
        """The items of ``input:``/``output:``/``params:``, one string each (first line)."""
        text = self.directives.get(directive, "")
        lines = [line for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
        if not lines:
            return []
        indent = min(len(line) - len(line.lstrip()) for line in lines)
        # an item starts at the section's indentation; deeper lines continue it
        return [line.strip() for line in lines
                if len(line) - len(line.lstrip()) == indent and not line.strip()[0] in ")]}"]


def parse_rules(path: Path) -> list[Rule]:
    """The rules of a Snakemake file, split on rule headers and directive lines."""
    text = path.read_text()
    headers = list(_HEADER.finditer(text))
    rules = []
    for header, following in zip(headers, [*headers[1:], None]):
        block = text[header.end(): following.start() if following else len(text)]
        lines = block.splitlines()[1:]
        body = [line for line in lines if line.strip()]
        if not body:
            continue
        indent = len(body[0]) - len(body[0].lstrip())
        directives: dict[str, list[str]] = {}
        current = None
        for line in lines:
            stripped = line.strip()
            depth = len(line) - len(line.lstrip())
            if stripped and depth < indent and not stripped.startswith("#"):
                break  # back to the file's top level: the rule is over
            match = re.fullmatch(r"(\w+):(.*)", stripped) if depth == indent else None
            if match:
                current = match[1]
                directives[current] = [match[2]] if match[2].strip() else []
            elif current is not None:
                directives[current].append(line)
        joined = {key: "\n".join(value) for key, value in directives.items()}
        name = header["name"] or header["child"] or joined.get("name", "").strip()
        rules.append(Rule(path.name, name, header["parent"], joined))
    return rules


ALL_RULES = [rule for path in SNAKEFILES for rule in parse_rules(path)]
#: Rules that run something (the others are targets: ``input:`` only).
RUNNING = [rule for rule in ALL_RULES if {"script", "shell", "run"} & set(rule.directives)]


def _ids(rule):
    return rule.name


def test_the_parser_finds_the_rules():
    names = {rule.name for rule in ALL_RULES}
    assert {"check_exposure", "plan_release", "coadd_stack", "coadd_image",
            "qualityfits_in"} <= names
    assert len(RUNNING) >= 18
    coadd = next(rule for rule in ALL_RULES if rule.name == "coadd_stack")
    assert coadd.items("output")[0] == "**COADD_OUTPUTS,"
    assert 'software=software("coadd_stack", tools=["swarp", "scamp"]),' in coadd.items("params")


@pytest.mark.parametrize("rule", [r for r in RUNNING if "script" in r.directives], ids=_ids)
def test_script_rules_hash_their_script(rule):
    """software("<script>") makes the code the script imports a param of the rule."""
    script = re.search(r'^\s*"\.\./scripts/(\w+)\.py"\s*$', rule.directives["script"], re.M)
    assert script, f"{rule.name}: script is not ../scripts/<name>.py"
    assert (REPO / "scripts" / f"{script[1]}.py").is_file()
    assert re.search(rf'^software=software\("{script[1]}"[,)]', "\n".join(rule.items("params")), re.M), \
        f"{rule.name}: params need software=software(\"{script[1]}\", ...)"


@pytest.mark.parametrize("rule", RUNNING, ids=_ids)
def test_running_rules_log_and_declare_an_env(rule):
    assert rule.directives.get("log", "").strip(), f"{rule.name}: no log:"
    assert re.search(r'"\.\./envs/[\w.-]+\.yaml"', rule.directives.get("conda", "")), \
        f"{rule.name}: no conda: env"
    assert (REPO / "envs").is_dir()


@pytest.mark.parametrize("rule", [*RUNNING, *[r for r in ALL_RULES if r.parent]], ids=_ids)
def test_inputs_and_outputs_are_named(rule):
    for directive in ("input", "output"):
        for item in rule.items(directive):
            assert re.match(r"(\w+=|unpack\(|\*\*)", item), f"{rule.name} {directive}: unnamed {item!r}"
    if not rule.parent:
        assert rule.items("output"), f"{rule.name}: no output"


@pytest.mark.parametrize("path", SNAKEFILES, ids=lambda p: p.name)
def test_functions_live_in_common_smk(path):
    text = path.read_text()
    if path.name != "common.smk":
        assert not re.search(r"^\s*def \w+", text, re.M), f"{path.name} defines functions"
    assert "lambda" not in text, f"{path.name}: a lambda (use a get_<thing>(wildcards) function)"


def test_common_smk_holds_no_rules():
    assert not parse_rules(REPO / "rules" / "common.smk")


def test_snakemake_lint_is_clean(tmp_path):
    """``snakemake --lint`` on the workflow (in an empty folder: no survey needed)."""
    snakemake = Path(sys.executable).with_name("snakemake")
    if not snakemake.is_file():
        pytest.skip("snakemake is not installed beside this Python")
    run = subprocess.run([str(snakemake), "-s", str(REPO / "Snakefile"), "--lint"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and "Congratulations" in run.stdout + run.stderr, run.stdout + run.stderr


def test_step1_qa_plots_are_one_product_with_the_qa_xml():
    """reduce_exposure (the one step 1 job after the check, QA included) declares the
    QA XML and diagnostics, not the plots; the 21 QA plots keep the seed's names
    beside the XML (issue 10, section 5: declared one by one they were half of the
    files Snakemake listed per step 1 job at survey scale)."""
    from spica import paths

    assert not [rule for rule in ALL_RULES if rule.name == "assess_quality"]
    (reduce,) = [rule for rule in ALL_RULES if rule.name == "reduce_exposure"]
    outputs = [item.split("=")[0] for item in reduce.items("output")]
    assert outputs[-2:] == ["diag", "qa_xml"] and not any(key in paths.QA_PLOTS for key in outputs)
    assert paths.STEP1_DECLARED == ("weight", "flag", "ldac", "diag", "qa_xml")
    plots = paths.qa_plot_paths("results/step1/751000p/751000p.xml")
    assert len(plots) == 21
    assert str(plots["m"]) == "results/step1/751000p/751000p_m.png"
    assert str(plots["rhmag_gal_ps"]) == "results/step1/751000p/751000p_rhmag_gal.ps"
    assert {key: path for key, path in plots.items()} == \
        {key: paths.step1_path("results", 751000, key) for key in paths.QA_PLOTS}
    import inspect

    from spica.step1 import reduce as step1_reduce

    source = inspect.getsource(step1_reduce._assess)
    assert "unlink" in source  # old plots deleted before the new ones, the XML last


#: Rules files of step 2, whose every job is below a release's plan.
RELEASE_RULES_FILES = ("calibration.smk", "coaddition.smk", "qualityfits_out.smk")


@pytest.mark.parametrize("rule", [r for r in RUNNING if r.file in RELEASE_RULES_FILES]
                         + [r for r in RUNNING if r.name == "register_product_quality"], ids=_ids)
def test_release_jobs_wait_for_the_plan(rule):
    """Every release job has the plan as an input (ancient_plan): none runs before the
    plan's checkpoint, from a stack the new plan's stack job then rewrites."""
    assert "plan=ancient_plan()," in rule.items("input"), f"{rule.name}: no plan=ancient_plan() input"


def test_solve_astrometry_takes_its_list_as_params():
    """The astrometric list's catalogues are a param with a digest of their versions,
    not inputs (267,000 files at survey scale); the plan waits for the .ahead files
    through the registry, which reads them."""
    (solve,) = [rule for rule in ALL_RULES if rule.name == "solve_astrometry"]
    inputs = [item.split("=")[0] for item in solve.items("input")]
    assert "catalogs" not in inputs and "aheads" not in inputs
    params = [item.split("=")[0] for item in solve.items("params")]
    assert {"catalogs", "step1_state"} <= set(params)
    (plan,) = [rule for rule in ALL_RULES if rule.name == "plan_release"]
    assert "registry=get_registry_export," in plan.items("input")
    (registry,) = [rule for rule in ALL_RULES if rule.name == "build_registry"]
    assert "unpack(get_step1_for_registry)," in registry.items("input")
