"""Provenance of release products: command files and processing XML (seed 3.2.2, 3.4).

The seed delivers with every stack "a full machine-readable processing
commands in XML format" (non-default options in a ``COMMAND`` tag) and the
sequence of command lines that produced it, so that "any remote facility"
can reproduce it. Here each rule that runs a tool writes the exact command it
ran (``*.cmd``, one JSON list per run) and :func:`write_provenance` assembles
them with the checksums of every input file and the software versions.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["write_command", "read_command", "file_sha256", "write_provenance"]


def write_command(command: Sequence[str], path: str | Path) -> Path:
    """Record one command line (argument vector) as JSON."""
    path = Path(path)
    path.write_text(json.dumps([str(arg) for arg in command]) + "\n")
    return path


def read_command(path: str | Path) -> list[str]:
    """Read a command line recorded by :func:`write_command`."""
    return json.loads(Path(path).read_text())


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_provenance(
    *,
    product: str,
    release: str,
    steps: Sequence[tuple[str, str | Path]],
    inputs: Mapping[str, Sequence[str | Path]],
    configs: Sequence[str | Path],
    software: Mapping[str, str],
    options: Mapping[str, Mapping[str, object]],
    cmd_out: str | Path,
    xml_out: str | Path,
) -> None:
    """Write ``<product>_cmd.txt`` (a shell script) and ``<product>.xml``.

    Parameters
    ----------
    product
        Product stem, e.g. ``CFHTLS_D_r_141927+524056_T0002``.
    steps
        ``(name, command file)`` in execution order (calibration, co-addition,
        chi-squared, catalogue ...).
    inputs
        Kind -> files read (exposures, weight maps, heads, reference catalogue ...);
        each is listed with its size and SHA-256.
    configs
        Configuration files used; listed with their checksums.
    software
        Tool / package -> version.
    options
        Step -> options given on top of the configuration files (the seed's
        ``COMMAND`` tag of non-default options).
    """
    lines = [
        "#!/bin/sh",
        f"# Commands that produced {product} (release {release}), in order.",
        "# Written by SPICA from the commands its rules ran; run from the results' parent folder.",
        "set -e",
    ]
    root = ET.Element("SPICA", product=product, release=release)
    commands = ET.SubElement(root, "COMMANDS")
    for name, path in steps:
        command = read_command(path)
        lines += ["", f"# {name}", " ".join(shlex.quote(arg) for arg in command)]
        ET.SubElement(commands, "STEP", name=name).text = " ".join(command)
    soft = ET.SubElement(root, "SOFTWARE")
    for name, version in sorted(software.items()):
        ET.SubElement(soft, "PACKAGE", name=name, version=str(version))
    conf = ET.SubElement(root, "CONFIGURATION")
    for path in configs:
        ET.SubElement(conf, "FILE", name=str(path), sha256=file_sha256(path))
    command_tag = ET.SubElement(root, "COMMAND")  # non-default options (seed 3.2.2)
    for step, values in options.items():
        element = ET.SubElement(command_tag, "STEP", name=step)
        for key, value in sorted(values.items()):
            ET.SubElement(element, "OPTION", name=str(key), value=str(value))
    files = ET.SubElement(root, "INPUTS")
    for kind, paths in inputs.items():
        for path in paths:
            ET.SubElement(files, "FILE", kind=kind, name=str(path),
                          size=str(Path(path).stat().st_size), sha256=file_sha256(path))
    ET.indent(root)
    Path(xml_out).write_text(ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n")
    Path(cmd_out).write_text("\n".join(lines) + "\n")
