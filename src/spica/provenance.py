"""Provenance of release products: command files and processing XML (seed 3.2.2, 3.4).

The seed delivers with every stack "a full machine-readable processing
commands in XML format" (non-default options in a ``COMMAND`` tag) and the
sequence of command lines that produced it, so that "any remote facility"
can reproduce it. Each rule that runs a tool records what it did as a
:class:`ToolRun` (``*.cmd``, JSON): the command line, the folder it ran in,
the files it staged there and the header keywords SPICA added afterwards.
:func:`write_provenance` turns the runs of one product into

* ``<product>_cmd.txt``, a POSIX shell script that rebuilds the product from
  its inputs alone: it writes the configuration files it needs (embedded),
  stages the inputs as the rules did, runs the tools and adds the keywords.
  Paths are relative to the folder it is run from (``$ROOT``, the folder that
  held ``results/`` and the inputs when SPICA ran);
* ``<product>.xml``: the steps, software versions, configuration files and
  every input with its size and SHA-256, and the non-default options.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["ToolRun", "CommandDelivery", "write_command", "read_command", "file_sha256", "render_script",
           "write_provenance"]


@dataclass
class ToolRun:
    """One tool run as a rebuild must repeat it.

    Attributes
    ----------
    command : list of str
        The argument vector (absolute paths, as run).
    cwd : str, optional
        The folder it ran in (absolute); ``None``: the workflow's folder.
    scratch : bool
        ``cwd`` was a temporary folder, made before and removed after.
    links : list of (str, str)
        ``(source, name)``: symbolic links made in ``cwd`` before the run.
    copies : list of (str, str)
        ``(source, name)``: files copied into ``cwd`` before the run.
    lists : list of (list of str, str)
        ``(paths, name)``: list files (one path a line) written in ``cwd``.
    headers : list of (str, list of (str, object, str))
        ``(fits file, cards)``: keywords written into the primary header of
        each product after the run.
    outputs : list of str
        Files the run writes (their folders are made first).
    """

    command: list[str]
    cwd: str | None = None
    scratch: bool = False
    links: list[tuple[str, str]] = field(default_factory=list)
    copies: list[tuple[str, str]] = field(default_factory=list)
    lists: list[tuple[list[str], str]] = field(default_factory=list)
    headers: list[tuple[str, list[tuple[str, object, str]]]] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)


def write_command(run: ToolRun | Sequence[str], path: str | Path) -> Path:
    """Record one tool run (or a bare argument vector) as JSON."""
    if not isinstance(run, ToolRun):
        run = ToolRun(command=[str(arg) for arg in run])
    path = Path(path)
    path.write_text(json.dumps(asdict(run), default=str) + "\n")
    return path


def read_command(path: str | Path) -> ToolRun:
    """Read a tool run recorded by :func:`write_command`."""
    data = json.loads(Path(path).read_text())
    if isinstance(data, list):  # a bare argument vector
        return ToolRun(command=[str(arg) for arg in data])
    return ToolRun(
        command=[str(arg) for arg in data["command"]],
        cwd=data.get("cwd"),
        scratch=bool(data.get("scratch", False)),
        links=[tuple(pair) for pair in data.get("links", [])],
        copies=[tuple(pair) for pair in data.get("copies", [])],
        lists=[(list(paths), name) for paths, name in data.get("lists", [])],
        headers=[(target, [tuple(card) for card in cards]) for target, cards in data.get("headers", [])],
        outputs=[str(path) for path in data.get("outputs", [])],
    )


def file_sha256(path: str | Path, *, chunk: int = 1 << 22) -> str:
    """Return the hex SHA-256 digest of a file.

    Parameters
    ----------
    path : str or Path
        The file.
    chunk : int, optional
        Bytes read at a time (the digest does not depend on it).

    Returns
    -------
    str
        64 lowercase hexadecimal digits.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class CommandDelivery:
    """The compressed path of a command file (seed 3.4): what it uncompresses and delivers.

    The script starts by writing each input that is absent but present as
    ``<input>.fz`` (RICE-compressed, as delivered) with funpack, and ends by
    compressing ``images`` (fpack: lossless for integers, ``quantize_level``
    for floats), then copying them and ``files`` into
    ``${SPICA_OUTGOING:-<outgoing>}/<folder>/`` (``<outgoing>`` relative to
    the folder the script runs from; the staging layout of
    :mod:`spica.transfer.staging`). The fpack/funpack commands come from
    :mod:`spica.transfer.fpack`, their one home.

    Attributes
    ----------
    inputs : list of str
        FITS inputs (absolute paths) to uncompress when they came compressed.
    images : list of str
        FITS images the script makes, compressed and copied.
    files : list of str
        Other products copied as they are (catalogues).
    outgoing : str
        The outgoing area, relative to the folder the script runs from.
    folder : str
        The delivery's folder inside it (``T0002/<stem>``).
    quantize_level : float
        fpack's ``-q`` for float images.
    """

    inputs: list[str]
    images: list[str]
    files: list[str]
    outgoing: str
    folder: str
    quantize_level: float

    def uncompress_lines(self, paths: _Paths) -> list[str]:
        from spica.transfer.fpack import uncompress_arguments

        lines = ["", "# inputs delivered RICE-compressed (<input>.fz): uncompressed beside them (funpack)"]
        for source in self.inputs:
            packed = str(source) + ".fz"
            command = " ".join(paths.word(w) for w in uncompress_arguments(packed, source))
            lines.append(f"[ -e {paths.word(source)} ] || [ ! -e {paths.word(packed)} ] || {command}")
        return lines

    def deliver_lines(self, paths: _Paths) -> list[str]:
        from spica.transfer.fpack import compress_arguments

        outgoing = shlex.quote(self.outgoing.rstrip("/"))
        if not self.outgoing.startswith("/"):
            outgoing = "$ROOT/" + outgoing
        lines = ["", "# the products, RICE-compressed (fpack), copied to the outgoing area",
                 f'OUTGOING="${{SPICA_OUTGOING:-{outgoing}}}"/{shlex.quote(self.folder)}',
                 'mkdir -p "$OUTGOING"']
        for image in self.images:
            packed = str(image) + ".fz"
            command = compress_arguments(image, packed, quantize_level=self.quantize_level)
            lines += [f"rm -f {paths.word(packed)}", " ".join(paths.word(w) for w in command),
                      f'cp {paths.word(packed)} "$OUTGOING"/']
        for name in self.files:
            lines.append(f'cp {paths.word(name)} "$OUTGOING"/')
        return lines


# ------------------------------------------------------------------ script
_TOKEN = "\x00{}\x00"


class _Paths:
    """Rewrites absolute paths as ``${ROOT}/…``, ``${WORK}/…`` or ``${CONFIG}/<name>``."""

    def __init__(self, root: Path, configs: Sequence[str | Path]) -> None:
        self.variables: list[tuple[str, str]] = [
            (str(Path(c).resolve()), "${CONFIG}/" + Path(c).name) for c in configs
        ]
        self.root = str(root.resolve())

    def word(self, arg: str, work: str | None = None) -> str:
        """One shell word, double-quoted where it holds a variable."""
        pairs = list(self.variables)
        if work:
            pairs.append((work.rstrip("/"), "${WORK}"))
        pairs.append((self.root, "${ROOT}"))
        pairs.sort(key=lambda pair: -len(pair[0]))  # longest prefix first
        tokens: list[str] = []
        text = str(arg)
        for prefix, variable in pairs:
            pattern = re.escape(prefix) + r"(?=$|[/,\s])"
            if re.search(pattern, text):
                tokens.append(variable)
                text = re.sub(pattern, lambda _m, n=len(tokens) - 1: _TOKEN.format(n), text)
        if not tokens:
            return shlex.quote(text)
        escaped = re.sub(r'([\\"$`])', r"\\\1", text)
        for index, variable in enumerate(tokens):
            escaped = escaped.replace(_TOKEN.format(index), variable)
        return f'"{escaped}"'


def _heredoc(target: str, text: str) -> list[str]:
    marker = "SPICA_EOF"
    while marker in text:
        marker += "_"
    return [f"cat > {target} <<'{marker}'", text.rstrip("\n"), marker]


def render_script(
    product: str,
    release: str,
    steps: Sequence[tuple[str, ToolRun]],
    configs: Sequence[str | Path],
    root: str | Path,
    *,
    delivery: CommandDelivery | None = None,
) -> str:
    """The shell script that repeats ``steps`` (see the module docstring).

    Parameters
    ----------
    product, release
        For the comments.
    steps
        ``(name, run)`` in execution order.
    configs
        Configuration files the runs read: embedded in the script.
    root
        The folder the rules ran from: paths under it become ``${ROOT}/…``.
    delivery
        The compressed path (seed 3.4): inputs to uncompress first, products
        to compress and copy to the outgoing area last. None: neither.
    """
    paths = _Paths(Path(root), configs)
    lines = [
        "#!/bin/sh",
        f"# Rebuilds {product} (release {release}) from its inputs (see {product}.xml for",
        "# their checksums and the software versions). Run it from the folder that holds the",
        "# inputs at the paths below (results/step1/..., the raw exposures, the reference",
        "# catalogue); the products are written under results/ there. Needs the AstrOmatic",
        "# tools on PATH and Python with astropy ($PYTHON, default python3).",
        "set -e",
        'ROOT=$(pwd)',
        'CONFIG=$(mktemp -d)',
        "trap 'rm -rf \"$CONFIG\"' EXIT",
        "",
        "# configuration files",
    ]
    for config in configs:
        lines += _heredoc(f'"${{CONFIG}}/{Path(config).name}"', Path(config).read_text())
    if delivery is not None:
        lines += delivery.uncompress_lines(paths)
    for name, run in steps:
        work = run.cwd if run.scratch else None
        lines += ["", f"# {name}"]
        folders = sorted({str(Path(output).parent) for output in run.outputs} - {run.cwd})
        if folders:
            lines.append("mkdir -p " + " ".join(paths.word(folder) for folder in folders))
        if run.scratch:
            lines += ['WORK=$(mktemp -d)', 'cd "$WORK"']
        elif run.cwd:
            folder = paths.word(run.cwd)
            lines += [f"mkdir -p {folder}", f"cd {folder}"]
        for source, target in run.links:
            lines.append(f"ln -s {paths.word(source, work)} {shlex.quote(target)}")
        for source, target in run.copies:
            lines.append(f"cp {paths.word(source, work)} {shlex.quote(target)}")
        for files, target in run.lists:
            words = " ".join(paths.word(f, work) for f in files)
            lines.append(f"printf '%s\\n' {words} > {shlex.quote(target)}")
        binary = Path(run.command[0]).name  # resolved from PATH (versions in the XML)
        lines.append(" ".join([shlex.quote(binary)] + [paths.word(a, work) for a in run.command[1:]]))
        if run.cwd:
            lines.append('cd "$ROOT"')
        if run.scratch:
            lines.append('rm -rf "$WORK"')
        for target, cards in run.headers:
            lines += [
                f"# keywords SPICA adds to {Path(target).name} (astropy)",
                f"SPICA_TARGET={paths.word(target)} \"${{PYTHON:-python3}}\" - <<'SPICA_EOF'",
                "import json, os",
                "from astropy.io import fits",
                f"cards = json.loads({json.dumps(json.dumps(cards, default=str))})",
                'with fits.open(os.environ["SPICA_TARGET"], mode="update") as hdul:',
                "    for key, value, comment in cards:",
                "        hdul[0].header[key] = (value, comment)",
                "SPICA_EOF",
            ]
    if delivery is not None:
        lines += delivery.deliver_lines(paths)
    return "\n".join(lines) + "\n"


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
    root: str | Path = ".",
    delivery: CommandDelivery | None = None,
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
        Kind -> files read (exposures, weight maps, catalogues, reference
        catalogue ...); each is listed with its size and SHA-256.
    configs
        Configuration files used; listed with their checksums and embedded in
        the script.
    software
        Tool / package -> version.
    options
        Step -> options given on top of the configuration files (the seed's
        ``COMMAND`` tag of non-default options).
    cmd_out, xml_out
        The two files to write.
    root
        The folder the rules ran from (paths in the script are relative to it).
    delivery
        The compressed path (:class:`CommandDelivery`): uncompress inputs first,
        compress and copy the products to the outgoing area last.
    """
    runs = [(name, read_command(path)) for name, path in steps]
    root = Path(root).resolve()
    top = ET.Element("SPICA", product=product, release=release)
    commands = ET.SubElement(top, "COMMANDS")
    for name, run in runs:
        ET.SubElement(commands, "STEP", name=name).text = " ".join(run.command)
    soft = ET.SubElement(top, "SOFTWARE")
    for name, version in sorted(software.items()):
        ET.SubElement(soft, "PACKAGE", name=name, version=str(version))
    conf = ET.SubElement(top, "CONFIGURATION")
    for path in configs:
        ET.SubElement(conf, "FILE", name=Path(path).name, sha256=file_sha256(path))
    command_tag = ET.SubElement(top, "COMMAND")  # non-default options (seed 3.2.2)
    for step, values in options.items():
        element = ET.SubElement(command_tag, "STEP", name=step)
        for key, value in sorted(values.items()):
            ET.SubElement(element, "OPTION", name=str(key), value=str(value))
    files = ET.SubElement(top, "INPUTS")
    for kind, paths in inputs.items():
        for path in paths:
            resolved = Path(path).resolve()
            name = resolved.relative_to(root) if resolved.is_relative_to(root) else resolved
            ET.SubElement(files, "FILE", kind=kind, name=str(name),
                          size=str(resolved.stat().st_size), sha256=file_sha256(resolved))
    ET.indent(top)
    Path(xml_out).write_text(ET.tostring(top, encoding="unicode", xml_declaration=True) + "\n")
    Path(cmd_out).write_text(render_script(product, release, runs, configs, root, delivery=delivery))
