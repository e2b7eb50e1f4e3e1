"""The SPICA configuration as the operation interface sees it.

The interface reads the workflow's own configuration: ``config/config.yaml``
and ``config/releases.yaml``, then every overlay given with ``--config``
deep-merged over them, as Snakemake merges ``--configfile`` files
(:func:`snakemake.utils.update_config`). Relative paths are relative to the
working directory (``--directory``, the folder Snakemake runs in).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["REPO", "WebConfig", "load_config", "config_from_environment", "CONFIG_ENV", "DIRECTORY_ENV"]

#: The repository holding ``config/`` (the package is installed editable from it).
REPO = Path(__file__).resolve().parents[3]
#: Environment variables through which ``python -m spica.web`` hands its
#: ``--config`` files (os.pathsep-separated) and ``--directory`` to the settings.
CONFIG_ENV = "SPICA_WEB_CONFIG"
DIRECTORY_ENV = "SPICA_WEB_DIRECTORY"


@dataclass(frozen=True)
class WebConfig:
    """What the interface needs from the configuration (paths resolved).

    Attributes
    ----------
    results : Path
        The results tree (every served file lies under it).
    registry_url : str
        SQLAlchemy URL of the registry (read only).
    grades : Path
        The graders' CSV the workflow reads (``inputs.grades``).
    database : str
        The interface's own database: a SQLite file path or a URL.
    secret_key_file : Path
    allowed_hosts : list of str
    runid_programs : dict
        RUNID program code -> survey component (CFHTLS programmes).
    releases : list of str
    monitor_url : str or None
        Where :mod:`spica.monitor` stores job events (``monitor.url``), if configured.
    raw : dict
        The merged configuration.
    """

    results: Path
    registry_url: str
    grades: Path
    database: str
    secret_key_file: Path
    allowed_hosts: list[str]
    runid_programs: dict[str, str]
    releases: list[str]
    monitor_url: str | None
    survey_name: str
    raw: dict = field(repr=False, default_factory=dict)


def _resolve(path: str | os.PathLike, directory: Path) -> Path:
    path = Path(path).expanduser()
    return path if path.is_absolute() else directory / path


def _resolve_url(url: str, directory: Path) -> str:
    """A relative ``sqlite:///path`` made absolute (other URLs unchanged)."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
        return prefix + str(_resolve(url[len(prefix):], directory))
    return url


def load_config(files: Sequence[str | os.PathLike] = (), *, directory: str | os.PathLike | None = None,
                base: Sequence[str | os.PathLike] | None = None) -> WebConfig:
    """Load and merge the configuration files into a :class:`WebConfig`.

    Parameters
    ----------
    files
        Overlays merged over the base files, in order (Snakemake's ``--configfile``).
    directory
        Working directory relative paths are resolved against (default: the current one).
    base
        Base files (default ``config/config.yaml`` and ``config/releases.yaml`` of the repository).

    Raises
    ------
    spica.config.ConfigError
        A configuration file is missing or not YAML (:func:`spica.config.read_config_files`).
    KeyError
        A key the interface needs is missing.
    """
    from spica.config import BASE_FILES, CONFIG_DIR, read_config_files

    directory = Path(directory or os.getcwd()).resolve()
    base = [CONFIG_DIR / name for name in BASE_FILES] if base is None else base
    merged = read_config_files([*base, *files])
    web: Mapping[str, Any] = merged["web"]
    database = str(web["database"])
    if "://" not in database:
        database = str(_resolve(database, directory))
    else:
        database = _resolve_url(database, directory)
    monitor = merged.get("monitor") or {}
    return WebConfig(
        results=_resolve(merged["results"], directory),
        registry_url=_resolve_url(str(merged["registry"]["url"]), directory),
        grades=_resolve(merged["inputs"]["grades"], directory),
        database=database,
        secret_key_file=_resolve(web["secret_key_file"], directory),
        allowed_hosts=[str(h) for h in web["allowed_hosts"]],
        runid_programs={str(k).upper(): str(v) for k, v in merged["survey"]["runid_programs"].items()},
        releases=sorted(merged.get("releases") or {}),
        monitor_url=_resolve_url(str(monitor["url"]), directory)
        if isinstance(monitor, Mapping) and monitor.get("url") else None,
        survey_name=str(merged["survey"].get("name", "SPICA")),
        raw=merged,
    )


def config_from_environment() -> WebConfig:
    """:func:`load_config` with the files and directory ``python -m spica.web`` was given."""
    files = [f for f in os.environ.get(CONFIG_ENV, "").split(os.pathsep) if f]
    return load_config(files, directory=os.environ.get(DIRECTORY_ENV) or None)
