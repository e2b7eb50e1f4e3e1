"""External tools: where the binaries are and which versions they are.

Debian and conda-forge name some AstrOmatic binaries differently
(``source-extractor`` vs ``sex``, ``SWarp`` vs ``swarp``, ``weightwatcher`` vs
``ww``). The candidates are configuration (``tools:``); this module resolves
them once so that rules never spell a binary name.

Each tool's version string reaches the rules that run it as a ``param``:
upgrading a tool therefore marks exactly its products as outdated.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Tool", "ToolNotFoundError", "resolve_tool", "resolve_tools", "code_files", "code_hash",
           "script_code_hash"]

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


def _module_path(name: str, top: Path) -> Path | None:
    """File of module ``name`` (``pkg.a.b``) under the top package folder, without importing."""
    parts = name.split(".")[1:]
    base = top.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@functools.lru_cache(maxsize=None)
def _parsed(path: Path, mtime_ns: int, size: int) -> tuple[bytes, ast.Module | None]:
    """A source file's bytes and syntax tree (None if it does not parse), once per
    version of the file in a process: a workflow hashes ~30 scripts whose imports
    overlap, and parsing them again for each cost every dry-run seconds."""
    data = path.read_bytes()
    try:
        return data, ast.parse(data, filename=str(path))
    except (SyntaxError, ValueError):
        return data, None


def _parse(path: Path) -> tuple[bytes, ast.Module | None]:
    """:func:`_parsed` of the current version of ``path``."""
    return _parsed(path, *_stat_key(path))


def _imported_modules(path: Path, module: str, package: str) -> set[str]:
    """Modules of ``package`` that the source at ``path`` (module ``module``) imports,
    at any depth (function-local imports included), absolute or relative."""
    found: set[str] = set()
    here = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = _parse(path)[1]
    if tree is None:
        raise SyntaxError(f"{path} does not parse")
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == package)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(here.split(".")[: len(here.split(".")) - node.level + 1])
                name = f"{base}.{node.module}" if node.module else base
            else:
                name = node.module or ""
            if name.split(".")[0] == package:
                # "from pkg import sub" names a submodule, "from pkg.mod import f" an attribute
                found.add(name)
                found.update(f"{name}.{a.name}" for a in node.names)
    return found


def _code_sources(modules: Iterable[str], *, whole_packages: bool = True) -> dict[str, Path]:
    """``{"spica/headers.py": path, ...}``: the files of :func:`code_files`, by their
    path relative to the folder holding the top package. With ``whole_packages``
    a package named in ``modules`` brings all its files, else its ``__init__``
    and what that imports (and names that are not modules are skipped)."""
    roots: dict[str, Path] = {}
    files: dict[str, Path] = {}
    todo: list[tuple[str, bool]] = [(name, whole_packages) for name in modules]
    while todo:
        name, whole_package = todo.pop()
        package = name.split(".")[0]
        if package not in roots:
            roots[package] = _package_root(package)
        top = roots[package]
        path = _module_path(name, top)
        if path is None:
            if whole_package:
                raise ModuleNotFoundError(name)
            continue  # an imported attribute (from pkg.mod import f), not a module
        own = sorted(path.parent.rglob("*.py")) if whole_package and path.name == "__init__.py" else [path]
        for source in own:
            relative = source.relative_to(top).with_suffix("")
            key = f"{package}/{source.relative_to(top).as_posix()}"
            if key in files:
                continue
            files[key] = source
            parts = [package, *relative.parts]
            own_name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            todo += [(m, False) for m in _imported_modules(source, own_name, package)]
    return dict(sorted(files.items()))


def code_files(*modules: str) -> list[Path]:
    """The source files behind ``modules``: each module's file (a package: all its
    files) and, transitively, every module of the same package they import.

    Raises
    ------
    ModuleNotFoundError
        A module that does not exist.
    """
    return sorted(_code_sources(modules).values())


def script_modules(script: str | Path, package: str = "spica") -> list[str]:
    """The modules (and imported names) of ``package`` that a script imports.

    This is what a rule's code hash must cover: Snakemake watches the script
    file itself, not what it imports.
    """
    return sorted(_imported_modules(Path(script), "__main__", package))


def _normalised_source(path: Path) -> bytes:
    """What of a module can change a product: its syntax tree without docstrings.

    Comments, docstrings, blank lines and formatting never reach a product, so
    a fix to them must not rerun one. A file that does not parse is hashed as
    its bytes (a rule using it fails anyway).
    """
    version = _stat_key(path)  # one stat: the tree and the bytes of the same version
    data, tree = _parsed(path, *version)
    if tree is None:
        return data
    return _normalised_tree(path, *version)


def _stat_key(path: Path) -> tuple[int, int]:
    """The version of a file: modification time (ns) and size."""
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=None)
def _normalised_tree(path: Path, mtime_ns: int, size: int) -> bytes:
    """:func:`_normalised_source` of a file that parses, once per version of it (parsed
    again: the tree of :func:`_parsed` is shared, this one is edited)."""
    tree = ast.parse(_parsed(path, mtime_ns, size)[0], filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, annotate_fields=False).encode()


def _digest(sources: Mapping[str, Path]) -> str:
    digest = hashlib.sha256()
    for name, path in sources.items():
        digest.update(name.encode())
        digest.update(_normalised_source(path))
    return digest.hexdigest()[:16]


def script_code_hash(script: str | Path, package: str = "spica", *, cache: str | Path | None = None) -> str:
    """Return the code hash of what a rule's script imports (see :func:`code_hash`).

    The modules come from the script's own ``import`` statements
    (:func:`script_modules`), followed through theirs, so a rule's hash can
    never miss a module its script uses, nor list one it does not.

    Parameters
    ----------
    script
        The script file.
    package
        The package whose modules are followed.
    cache
        A JSON file keeping each script's hash with the version (modification time
        in ns, size) of every file it was computed from: while none of them changed
        the hash is taken from there (one ``stat`` per file, as Python's own bytecode
        cache decides) instead of parsing them all again. Every Snakemake process
        of a run (the dry-run, each cluster job) hashed its rules' scripts anew: about
        1.3 s of CPU for the 19 scripts. Unreadable or unwritable: not used.
    """
    if cache is None:
        return _script_code_hash(Path(script), package)[0]
    # where the package is imported from is part of the key: another PYTHONPATH, another code
    cache, key = Path(cache), f"{package}:{_package_root(package).resolve()}:{Path(script).resolve()}"
    entries = _read_hash_cache(cache)
    entry = entries.get(key)
    if isinstance(entry, dict) and _versions_hold(entry.get("files")):
        return str(entry["hash"])
    digest, files = _script_code_hash(Path(script), package)
    entries = _read_hash_cache(cache)  # another process may have added entries meanwhile
    entries[key] = {"hash": digest, "files": {str(f.resolve()): list(_stat_key(f)) for f in files}}
    _write_hash_cache(cache, entries)
    return digest


def _package_root(package: str) -> Path:
    """The folder ``package`` is imported from (located without importing it)."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(package)
    return Path(spec.origin).parent


def _script_code_hash(script: Path, package: str) -> tuple[str, list[Path]]:
    """:func:`script_code_hash` and the files it read (the script and its modules)."""
    sources = _code_sources(script_modules(script, package), whole_packages=False)
    return _digest(sources), [script, *sources.values()]


def _read_hash_cache(path: Path) -> dict:
    """The entries of a code hash cache file (empty if absent or unreadable)."""
    try:
        entries = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return entries if isinstance(entries, dict) else {}


def _versions_hold(files: object) -> bool:
    """Whether every file of a cache entry (path -> [mtime_ns, size]) is unchanged."""
    if not isinstance(files, dict) or not files:
        return False
    try:
        return all(list(_stat_key(Path(name))) == version for name, version in files.items())
    except OSError:  # a file gone
        return False


def _write_hash_cache(path: Path, entries: dict) -> None:
    """Write a code hash cache atomically (a temporary file renamed over it); a
    folder that cannot be written only means no cache."""
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(descriptor, "w") as handle:
            json.dump(entries, handle, sort_keys=True)
        os.replace(temporary, path)
        temporary = None
    except OSError:
        pass
    finally:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)


def code_hash(*modules: str) -> str:
    """Return a short hash of the source behind the given ``spica`` modules.

    Snakemake watches a script's own file only, not the modules it imports;
    passing this hash as a ``param`` makes a code change rerun the products
    that depend on it, and only those. Comments, docstrings and formatting
    are left out (the syntax tree is hashed), so editing them reruns nothing. The hash covers :func:`code_files`:
    the modules named and every ``spica`` module they import, so a fix in a
    shared helper (``spica.headers``) reruns every product made through it.
    """
    return _digest(_code_sources(modules))
