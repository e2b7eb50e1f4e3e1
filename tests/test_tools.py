"""Tool resolution and the code hash that drives reruns after a software fix."""

import sys

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
    (package / "algo.py").write_text("def f():\n    return 2\n")
    assert code_hash("fakepkg.algo") != before  # the fix reruns its products
    assert code_hash("fakepkg") != code_hash("fakepkg.algo")  # a package hashes all its modules
    assert "fakepkg.algo" not in sys.modules  # hashing never imports
