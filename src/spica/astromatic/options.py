"""AstrOmatic configuration files and command-line options."""

from __future__ import annotations

from pathlib import Path

__all__ = ["astromatic_setting", "read_param_file"]


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
