"""AstrOmatic configuration files and command-line options.

Every ``-KEY value`` pair SPICA puts on an AstrOmatic command line is made by
:func:`option_arguments` (values by :func:`format_value`), whatever the tool.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["KEYWORD", "CONFIG_FOLDER", "CONFIG_FILES", "format_value", "option_arguments", "astromatic_setting",
           "read_param_file", "config_file", "config_checksum", "config_paths"]

#: The AstrOmatic configuration files' folder, relative to the workflow's root.
CONFIG_FOLDER = Path("config") / "astromatic"

#: The AstrOmatic configuration files (:data:`CONFIG_FOLDER`), key -> file name: the
#: rules' ``configs`` params, and the configuration files a release product's provenance lists.
CONFIG_FILES = {
    "step1_ww": "step1.ww",
    "step1_sex": "step1.sex",
    "step1_param": "step1.param",
    "step1_psfex": "step1.psfex",
    "scamp": "scamp.scamp",
    "stack_swarp": "stack.swarp",
    "chi2_swarp": "chi2.swarp",
    "release_sex": "release.sex",
    "release_param": "release.param",
    "conv": "gauss_3.0_5x5.conv",
    "nnw": "default.nnw",
    "qfo_sex": "qualityfits_out.sex",
    "qfo_param": "qualityfits_out.param",
    "qfo_psfex": "qualityfits_out.psfex",
}

#: What an AstrOmatic configuration keyword looks like (``DETECT_THRESH``).
KEYWORD = re.compile(r"^[A-Z][A-Z0-9_]*$")


def format_value(value: Any) -> str:
    """Format one option value as AstrOmatic tools read it.

    Parameters
    ----------
    value : object
        A boolean, a list or tuple of values, or anything else.

    Returns
    -------
    str
        ``Y``/``N`` for a boolean, a comma-separated list (items formatted
        the same way) for a list or tuple, else ``str(value)``.
    """
    if isinstance(value, bool):
        return "Y" if value else "N"
    if isinstance(value, (list, tuple)):
        return ",".join(format_value(item) for item in value)
    return str(value)


def option_arguments(options: Mapping[str, Any], *, fixed: Collection[str] = frozenset()) -> list[str]:
    """Return ``["-KEY", "value", ...]`` for ``options``, in the mapping's order.

    Parameters
    ----------
    options : mapping
        Configuration keyword -> value (formatted by :func:`format_value`).
    fixed : collection of str
        Keywords the caller sets itself (file names, per-run values): they may
        not come in ``options``.

    Returns
    -------
    list of str

    Raises
    ------
    ValueError
        A key that is not an AstrOmatic keyword (:data:`KEYWORD`) or is in ``fixed``.
    """
    args: list[str] = []
    for key, value in options.items():
        if not isinstance(key, str) or not KEYWORD.match(key):
            raise ValueError(f"not an AstrOmatic keyword: {key!r}")
        if key in fixed:
            raise ValueError(f"{key} is set by SPICA itself, not an override")
        args += [f"-{key}", format_value(value)]
    return args


def astromatic_setting(path: str | Path, key: str, default: str | None = None) -> str | None:
    """The value of ``key`` in an AstrOmatic configuration file (``KEY value # comment``),
    or ``default`` when the file does not set it (the tool's own default applies)."""
    for line in Path(path).read_text().splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 2 and words[0] == key:
            return words[1]
    return default


def read_param_file(path: str | Path) -> list[str]:
    """Return the parameters of a SExtractor ``.param`` file (comments dropped).

    ``MAG_APER(2)`` stays one entry, as the seed counts it.
    """
    names = []
    for line in Path(path).read_text().splitlines():
        text = line.split("#", 1)[0].strip()
        if text:
            names.append(text.split()[0])
    return names



def config_file(key: str, root: str | Path) -> Path:
    """Path of the configuration file ``key`` (:data:`CONFIG_FILES`) of the workflow in ``root``."""
    return Path(root) / CONFIG_FOLDER / CONFIG_FILES[key]


def config_checksum(path: str | Path) -> str:
    """SHA-1 of a configuration file's content."""
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


def config_paths(configs: Iterable[str], scriptdir: str | Path) -> dict[str, str]:
    """The paths of the configuration files of a rule's ``configs`` param.

    Parameters
    ----------
    configs : iterable of str
        Keys of :data:`CONFIG_FILES`: a rule's ``configs`` param, key -> SHA-1 of the
        file (what a job reads, as the param that reruns it when one of them is edited;
        ``astromatic_configs`` in ``rules/common.smk``), or a list of keys. Their paths
        are not in the params, so that the workflow's folder is not: a moved checkout
        reruns nothing.
    scriptdir : str or Path
        The folder of the rule's script (``snakemake.scriptdir``): the workflow's
        ``scripts/``, beside its ``config/``.

    Returns
    -------
    dict
        key -> path.
    """
    root = Path(scriptdir).parent
    return {key: str(config_file(key, root)) for key in configs}
