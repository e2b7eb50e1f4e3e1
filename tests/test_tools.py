"""Tool resolution and the code hash that drives reruns after a software fix."""

import sys
from pathlib import Path

import pytest

from spica.tools import ToolNotFoundError, code_hash, resolve_tool, resolve_tools


def test_first_candidate_on_path_wins(tmp_path, monkeypatch):
    for name in ("sex", "source-extractor"):
        exe = tmp_path / name
        exe.write_text(f"#!/bin/sh\necho 'SExtractor version 9.{len(name)}.0 (2099-01-01)'\n")
        exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    tool = resolve_tool("sextractor", ["nonexistent", "source-extractor", "sex"])
    assert tool.path == str(tmp_path / "source-extractor")
    assert tool.version == "9.16.0"


def test_missing_tool_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolNotFoundError, match="weightwatcher"):
        resolve_tool("weightwatcher", ["weightwatcher", "ww"])
    assert resolve_tools({"weightwatcher": ["ww"]}) == {"weightwatcher": None}


def test_code_hash_follows_the_source(tmp_path, monkeypatch):
    package = tmp_path / "fakepkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "algo.py").write_text("def f():\n    return 1\n")
    (package / "other.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = code_hash("fakepkg.algo")
    assert code_hash("fakepkg.algo") == before  # stable
    (package / "other.py").write_text("X = 2\n")
    assert code_hash("fakepkg.algo") == before  # unrelated module: no rerun
    (package / "algo.py").write_text('"""Doc."""\n\n\ndef f():  # a comment\n    """Say 1."""\n    return (1)\n')
    assert code_hash("fakepkg.algo") == before  # comments, docstrings, layout: no rerun
    (package / "algo.py").write_text("def f():\n    return 2\n")
    fixed = code_hash("fakepkg.algo")
    assert fixed != before  # the fix reruns its products
    (package / "algo.py").write_text("def f():\n    return '2'\n")
    assert code_hash("fakepkg.algo") not in (before, fixed)  # a string that is not a docstring is code
    assert code_hash("fakepkg") != code_hash("fakepkg.algo")  # a package hashes all its modules
    assert "fakepkg.algo" not in sys.modules  # hashing never imports


def test_code_hash_follows_imports(tmp_path, monkeypatch):
    """A fix in a helper a module imports (at any depth, absolute or relative, even
    inside a function) reruns that module's products; other modules stay put."""
    package = tmp_path / "fakepkg2"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "algo.py").write_text("def f():\n    from .sub.helper import g\n    return g()\n")
    (package / "sub" / "helper.py").write_text("from fakepkg2 import base\n\ndef g():\n    return base.K\n")
    (package / "base.py").write_text("K = 1\n")
    (package / "alone.py").write_text("import os\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from spica.tools import code_files

    names = [p.relative_to(package).as_posix() for p in code_files("fakepkg2.algo")]
    assert names == ["__init__.py", "algo.py", "base.py", "sub/helper.py"]
    before, alone = code_hash("fakepkg2.algo"), code_hash("fakepkg2.alone")
    (package / "base.py").write_text("K = 2\n")  # two imports away
    assert code_hash("fakepkg2.algo") != before
    assert code_hash("fakepkg2.alone") == alone
    with pytest.raises(ModuleNotFoundError):
        code_hash("fakepkg2.missing")


def test_script_code_hash_cache_holds_while_no_file_changes(tmp_path, monkeypatch):
    """The hash cache between runs: the same hash as without it, taken from the file while
    the script and the modules it imports are unchanged, computed again when one of them
    changes, and a cache that cannot be written changes nothing."""
    import importlib
    import json
    import os
    import shutil

    from spica.tools import script_code_hash

    package = tmp_path / "fakepkg3"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "helper.py").write_text("K = 1\n")
    (package / "unused.py").write_text("U = 1\n")
    script = tmp_path / "rule.py"
    script.write_text("from fakepkg3.helper import K\nprint(K)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cache = tmp_path / ".snakemake" / "spica" / "code_hashes.json"

    plain = script_code_hash(script, "fakepkg3")
    assert script_code_hash(script, "fakepkg3", cache=cache) == plain
    key = f"fakepkg3:{(package).resolve()}:{script.resolve()}"
    entry = json.loads(cache.read_text())[key]
    assert sorted(Path(f).name for f in entry["files"]) == ["helper.py", "rule.py"]

    # while the files hold, the hash comes from the cache (a planted value proves it is read)
    cache.write_text(json.dumps({key: {**entry, "hash": "planted"}}))
    assert script_code_hash(script, "fakepkg3", cache=cache) == "planted"
    (package / "unused.py").write_text("U = 2\n")  # a module the script does not import
    assert script_code_hash(script, "fakepkg3", cache=cache) == "planted"

    # a changed module of the script: computed again, the same as without a cache
    (package / "helper.py").write_text("K = 2\n")
    os.utime(package / "helper.py", ns=(1, 1))
    fixed = script_code_hash(script, "fakepkg3", cache=cache)
    assert fixed == script_code_hash(script, "fakepkg3") != plain
    assert json.loads(cache.read_text())[key]["hash"] == fixed

    # the same package imported from elsewhere (another PYTHONPATH): its own entry
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(package, elsewhere / "fakepkg3")
    (elsewhere / "fakepkg3" / "helper.py").write_text("K = 3\n")
    monkeypatch.syspath_prepend(str(elsewhere))
    importlib.invalidate_caches()
    moved = script_code_hash(script, "fakepkg3", cache=cache)
    assert moved == script_code_hash(script, "fakepkg3") not in (plain, fixed)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    assert script_code_hash(script, "fakepkg3", cache=cache) == fixed

    # a cache that is not JSON, or cannot be written (a file where its folder should be)
    cache.write_text("{not json")
    assert script_code_hash(script, "fakepkg3", cache=cache) == fixed
    blocked = tmp_path / "blocked"
    blocked.write_text("")
    assert script_code_hash(script, "fakepkg3", cache=blocked / "code_hashes.json") == fixed
    assert [p.name for p in cache.parent.iterdir()] == ["code_hashes.json"]  # no temporary left


def test_spica_rules_hash_the_helpers_they_use():
    from spica.tools import code_files

    def names(module):
        return {p.name for p in code_files(module)}

    assert "headers.py" in names("spica.step1.defects")  # the FITS section parser of the masks
    assert "defects.py" in names("spica.astromatic.weightwatcher")  # the flag bits of the weight maps
    # the stacks do not depend on the QA plotting code: a plot fix reruns the thumbnails only
    assert "plots.py" not in names("spica.coaddition") and "plots.py" in names("spica.products.thumbnails")
