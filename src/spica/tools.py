"""External tools: where the binaries are and which versions they are.

Debian and conda-forge name some AstrOmatic binaries differently
(``source-extractor`` vs ``sex``, ``SWarp`` vs ``swarp``, ``weightwatcher`` vs
``ww``). The candidates are configuration (``tools:``); this module resolves
them once so that rules never spell a binary name.

Each tool's version string reaches the rules that run it as a ``param``:
upgrading a tool therefore marks exactly its products as outdated.
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Tool", "ToolNotFoundError", "resolve_tool", "resolve_tools", "code_hash"]

_VERSION_RE = re.compile(r"version\s+([0-9][0-9A-Za-z.\-]*)", re.IGNORECASE)


class ToolNotFoundError(RuntimeError):
    """None of a tool's candidate binaries is on PATH."""


@dataclass(frozen=True)
class Tool:
    """A resolved external binary."""

    name: str
    path: str
    version: str

    def __str__(self) -> str:
        return self.path


def _probe_version(path: str) -> str:
    try:
        proc = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    match = _VERSION_RE.search(proc.stdout + proc.stderr)
    return match.group(1) if match else "unknown"


def resolve_tool(name: str, candidates: Iterable[str]) -> Tool:
    """Return the first of ``candidates`` found on PATH, with its version.

    Raises
    ------
    ToolNotFoundError
        If no candidate is on PATH.
    """
    candidates = list(candidates)
    for candidate in candidates:
        path = shutil.which(candidate)
        if path:
            return Tool(name=name, path=path, version=_probe_version(path))
    raise ToolNotFoundError(
        f"{name}: none of {candidates} on PATH; run `bin/spica install` "
        "(Debian packages) or use `--use-conda`"
    )


def resolve_tools(candidates: Mapping[str, Iterable[str]]) -> dict[str, Tool | None]:
    """Resolve every configured tool; missing ones map to None (checked by the rules)."""
    tools: dict[str, Tool | None] = {}
    for name, names in candidates.items():
        try:
            tools[name] = resolve_tool(name, names)
        except ToolNotFoundError:
            tools[name] = None
    return tools


def code_hash(*modules: str) -> str:
    """Return a short hash of the source of the given ``spica`` modules.

    Snakemake watches a script's own file only, not the modules it imports;
    passing this hash as a ``param`` makes a code change rerun the products
    that depend on it, and only those.
    """
    digest = hashlib.sha256()
    for module_name in sorted(modules):
        spec = importlib.util.find_spec(module_name)  # locate without importing
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(module_name)
        root = Path(spec.origin)
        files = sorted(root.parent.rglob("*.py")) if root.name == "__init__.py" else [root]
        for path in files:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
