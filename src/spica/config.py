"""SPICA's configuration read outside Snakemake: the Snakefile's files, merge and schemas.

The workflow reads ``config/config.yaml`` and ``config/releases.yaml``, merges the
``--configfile`` overlays over them and validates the result
(``config/schemas/config.schema.yaml``, and ``releases.schema.yaml`` for the
``releases`` and ``planning`` blocks). The commands that run beside it (the
operation interface, data transfer, SkyWatcher) read the same configuration the
same way through :func:`load_config`, each turning :class:`ConfigError` into its own
named error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["CONFIG_DIR", "BASE_FILES", "ConfigError", "read_config_files", "load_config"]

#: The checkout's ``config/`` (editable install: src/spica -> repository).
CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
#: The files the Snakefile reads first (``configfile:``), in ``config/``.
BASE_FILES = ("config.yaml", "releases.yaml")


class ConfigError(ValueError):
    """A configuration file is missing, not YAML or not a mapping, or the merged
    configuration fails its schema."""


def read_config_files(files: Sequence[str | Path]) -> dict[str, Any]:
    """Read YAML files and deep-merge them in order (Snakemake's ``--configfile`` merge).

    Parameters
    ----------
    files
        The files, base first.

    Raises
    ------
    ConfigError
        A file is missing, unreadable, not YAML or not a mapping.
    """
    import yaml
    from snakemake.utils import update_config

    config: dict[str, Any] = {}
    for path in map(Path, files):
        if not path.is_file():
            raise ConfigError(f"configuration file not found: {path}")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as error:
            raise ConfigError(f"configuration {path}: {error}") from error
        if not isinstance(loaded, Mapping):
            raise ConfigError(f"configuration {path}: not a mapping")
        update_config(config, loaded)
    return config


def load_config(configfiles: Sequence[str | Path] = (), *, base: str | Path | None = None,
                validate: bool = True) -> dict[str, Any]:
    """The workflow's configuration: :data:`BASE_FILES` of ``base`` with ``configfiles``
    deep-merged over them, validated by the Snakefile's schemas.

    Parameters
    ----------
    configfiles
        Overlays, in order (``--configfile``).
    base
        The folder of the base files and ``schemas/`` (default :data:`CONFIG_DIR`).
    validate
        Check the schemas (defaults are not filled in: the schemas hold none).

    Raises
    ------
    ConfigError
        A file cannot be read, or the configuration fails a schema (the first error,
        with the path of the offending key).
    """
    folder = Path(base) if base is not None else CONFIG_DIR
    config = read_config_files([*(folder / name for name in BASE_FILES), *configfiles])
    if validate:
        _validate(config, folder / "schemas")
    return config


def _validate(config: Mapping[str, Any], schemas: Path) -> None:
    """The Snakefile's two validations of ``config`` (Snakemake's ``validate``, which
    resolves the schemas' references to each other), without filling defaults."""
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    checks = [("config.schema.yaml", dict(config)),
              ("releases.schema.yaml", {key: config[key] for key in ("releases", "planning") if key in config})]
    for name, part in checks:
        path = schemas / name
        if not path.is_file():  # a base folder without schemas (a test's)
            continue
        try:
            validate(part, str(path), set_default=False)
        except WorkflowError as error:
            raise ConfigError(_describe(error, name)) from error


def _describe(error: Exception, schema: str) -> str:
    """``configuration <key path>: <what>`` of a failed validation (the jsonschema error
    Snakemake wraps), else Snakemake's message."""
    import jsonschema

    for cause in (*error.args, error.__cause__, error.__context__):
        if isinstance(cause, jsonschema.ValidationError):
            where = "/".join(str(p) for p in cause.absolute_path) or "(top)"
            return f"configuration {where}: {cause.message} ({schema})"
    return f"invalid configuration ({schema}): {' '.join(str(error).split())[:400]}"
