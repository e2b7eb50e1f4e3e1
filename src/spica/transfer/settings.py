"""The ``transfer:`` block of the configuration, resolved once for the transfer commands."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["REPO", "DEFAULT_CONFIGS", "TransferConfigError", "TransferSettings", "load_config", "split_remote"]

#: The checkout holding the Snakefile and config/ (editable install: src/spica/transfer -> repo).
REPO = Path(__file__).resolve().parents[3]
#: The configuration files read when none is given (as the Snakefile does).
DEFAULT_CONFIGS = (REPO / "config" / "config.yaml",)


class TransferConfigError(ValueError):
    """The configuration is missing, unreadable or fails its schema."""


def load_config(configfiles: Sequence[str | Path] = ()) -> dict:
    """The workflow's configuration (``config/config.yaml`` and ``releases.yaml``, then
    ``configfiles`` deep-merged over them, validated: :func:`spica.config.load_config`),
    with ``_configfiles``: ``config/config.yaml`` and the overlays (what the transfer
    commands give Snakemake as ``--configfile``).

    Raises
    ------
    TransferConfigError
        A file is missing or not YAML, or the merged configuration fails the schemas.
    """
    from spica.config import ConfigError
    from spica.config import load_config as load_workflow_config

    try:
        config = load_workflow_config(configfiles)
    except ConfigError as error:
        raise TransferConfigError(str(error)) from error
    files = [DEFAULT_CONFIGS[0], *[Path(f) for f in configfiles if Path(f).resolve() != DEFAULT_CONFIGS[0]]]
    config["_configfiles"] = [str(Path(f).resolve()) for f in files]
    return config


def split_remote(destination: str) -> tuple[str | None, str]:
    """``[user@]host:path`` (rsync's remote syntax: a colon before any slash) -> (host, path);
    a local path -> (None, path).

    Raises
    ------
    TransferConfigError
        For an rsync daemon destination (``host::module``, ``rsync://``), which
        no remote shell reaches to verify the copies.
    """
    head = destination.split("/", 1)[0]
    if destination.startswith("rsync://") or "::" in head:
        raise TransferConfigError(f"configuration transfer/destination: {destination!r} is an rsync daemon "
                                  "module: use host:path (reached through transfer.remote_shell) or a local path")
    if ":" in head:
        host, path = destination.split(":", 1)
        if not host or not path:
            raise TransferConfigError(f"configuration transfer/destination: {destination!r}: host:path needs both")
        return host, path
    return None, destination


@dataclass(frozen=True)
class TransferSettings:
    """Everything the transfer commands read from the configuration, paths resolved.

    Relative paths of the configuration are taken from ``root`` (the folder the
    workflow runs in, as for Snakemake). See ``config/config.yaml`` ``transfer:``
    for the meaning of each setting.
    """

    root: Path
    results: Path
    exposures: Path
    registry_url: str
    runid_programs: Mapping[str, str]
    incoming: Path
    settle_seconds: float
    checksum_suffix: str | None
    poll_seconds: float
    step1_command: tuple[str, ...]
    outgoing: Path
    pi_outgoing: Path
    quota_bytes: int
    command: tuple[str, ...]
    destination: Path  # the folder (on destination_host when set: a path there, not resolved here)
    quantize_level: float
    product_grades: Path
    step1_products: tuple[str, ...]
    release_products: tuple[str, ...]
    configfiles: tuple[str, ...] = field(default=())
    destination_host: str | None = None  # [user@]host of a host:path destination
    remote_shell: tuple[str, ...] = ("ssh",)  # reaches destination_host (rsync -e, the remote checksum)
    remote_checksum: tuple[str, ...] = ("sha256sum", "--")  # run there with the files appended

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, root: str | Path = ".") -> TransferSettings:
        """Build the settings from a loaded configuration (:func:`load_config`)."""
        root = Path(root).resolve()
        t = config["transfer"]

        def here(value: str) -> Path:
            return (root / value).resolve()

        url = config["registry"]["url"]
        host, folder = split_remote(str(t["destination"]))
        if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            url = "sqlite:///" + str(root / url[len("sqlite:///"):])
        return cls(
            root=root, results=here(config["results"]), exposures=here(config["inputs"]["exposures"]),
            registry_url=url, runid_programs=dict(config["survey"]["runid_programs"]),
            incoming=here(t["incoming"]), settle_seconds=float(t["settle_seconds"]),
            checksum_suffix=t["checksum_suffix"], poll_seconds=float(t["poll_seconds"]),
            step1_command=tuple(t["step1_command"]), outgoing=here(t["outgoing"]),
            pi_outgoing=here(t["pi_outgoing"]), quota_bytes=int(t["quota_bytes"]),
            command=tuple(t["command"]), destination=here(folder) if host is None else Path(folder),
            quantize_level=float(t["quantize_level"]), product_grades=here(config["inputs"]["product_grades"]),
            step1_products=tuple(t["step1_products"]), release_products=tuple(t["release_products"]),
            configfiles=tuple(config.get("_configfiles", [str(DEFAULT_CONFIGS[0])])),
            destination_host=host, remote_shell=tuple(t["remote_shell"]),
            remote_checksum=tuple(t["remote_checksum"]),
        )

    def step1_argv(self) -> list[str]:
        """The step 1 command with ``{python}``, ``{snakefile}`` and ``{configfiles}`` filled in
        (``{configfiles}`` alone in a word becomes one word per configuration file)."""
        argv: list[str] = []
        for word in self.step1_command:
            if word == "{configfiles}":
                argv += list(self.configfiles)
            else:
                argv.append(word.format(python=sys.executable, snakefile=REPO / "Snakefile"))
        return argv
