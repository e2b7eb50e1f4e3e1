"""The one reader of AstrOmatic XML reports (SExtractor, PSFEx, SCAMP, WeightWatcher).

The tools write VOTable-like XML that astropy's VOTable parser does not always
accept (PSFEx's is not valid VOTable), so it is read with
:mod:`xml.etree.ElementTree`, namespaces ignored. Every ``TABLE`` is kept in
document order with its ``FIELD`` definitions and its rows, and every
``PARAM`` with its value; cells and values are typed from their ``datatype``
and ``arraysize`` by :func:`convert`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["INTEGER_TYPES", "NUMERIC_TYPES", "convert", "Table", "Document", "parse_xml", "read_xml", "read_table_rows"]

#: VOTable datatypes read as ``int``.
INTEGER_TYPES = ("int", "short", "long", "unsignedByte")

#: VOTable datatypes read as numbers (the others ``float``).
NUMERIC_TYPES = (*INTEGER_TYPES, "float", "double")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def convert(text: str | None, datatype: str = "char", arraysize: str | None = None) -> Any:
    """Type the text of a ``TD`` or a ``PARAM`` value.

    Parameters
    ----------
    text : str or None
        The text (surrounding blanks are dropped).
    datatype : str
        The VOTable ``datatype``: ``char`` (and any unknown type) gives the
        text, ``boolean`` ``T``/``F`` values, :data:`NUMERIC_TYPES` numbers
        (``int`` for :data:`INTEGER_TYPES`; a word that is not a number is NaN).
    arraysize : str, optional
        With an ``arraysize`` other than ``1``, a list of the blank-separated
        values (booleans and numbers); else the first one, or NaN (numbers) /
        None (booleans) for an empty text.

    Returns
    -------
    object
    """
    text = (text or "").strip()
    numeric = datatype in NUMERIC_TYPES
    if datatype != "boolean" and not numeric:
        return text
    if datatype == "boolean":
        values: list[Any] = [word.upper().startswith("T") for word in text.split()]
    else:
        cast = int if datatype in INTEGER_TYPES else float
        values = []
        for word in text.split():
            try:
                values.append(cast(word))
            except ValueError:
                values.append(float("nan"))
    if arraysize and arraysize != "1":
        return values
    return values[0] if values else (float("nan") if numeric else None)


def _typed_params(element: ET.Element, *, children_only: bool) -> dict[str, Any]:
    """PARAMs of ``element`` (its children, or every one below it): name -> typed value.

    With ``children_only`` a repeated name keeps the last value, else the first.
    """
    out: dict[str, Any] = {}
    for param in element if children_only else element.iter():
        if _local(param.tag) != "PARAM":
            continue
        name = param.get("name", "")
        if children_only or name not in out:
            out[name] = convert(param.get("value"), param.get("datatype", "char"), param.get("arraysize"))
    return out


@dataclass
class Table:
    """One ``TABLE`` of an AstrOmatic XML report.

    Attributes
    ----------
    name, id : str or None
        Its ``name`` and ``ID`` attributes.
    fields : list of dict
        The attributes of each ``FIELD`` (``name``, ``datatype``, ``arraysize``...).
    rows : list of dict
        One dict per ``TR``: field name -> typed cell (:func:`convert`); a row
        with fewer cells than fields has fewer keys.
    params : dict
        The table's own ``PARAM``s (name -> typed value).
    """

    name: str | None
    id: str | None
    fields: list[dict[str, str]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """The field names (``col<i>`` for a field without one)."""
        return [f.get("name", f"col{i}") for i, f in enumerate(self.fields)]

    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame, one column per field in field order."""
        return pd.DataFrame(self.rows, columns=self.names)


def _table(element: ET.Element) -> Table:
    fields = [dict(f.attrib) for f in element if _local(f.tag) == "FIELD"]
    table = Table(name=element.get("name"), id=element.get("ID"), fields=fields,
                  params=_typed_params(element, children_only=True))
    names = table.names
    for tr in element.iter():
        if _local(tr.tag) != "TR":
            continue
        tds = [td for td in tr if _local(td.tag) == "TD"]
        table.rows.append({
            name: convert(td.text, f.get("datatype", "char"), f.get("arraysize"))
            for name, f, td in zip(names, fields, tds)
        })
    return table


@dataclass
class Document:
    """The content of one AstrOmatic XML report.

    Attributes
    ----------
    tables : list of Table
        Every ``TABLE``, in document order.
    params : dict
        Every ``PARAM`` of the document (tables' included): name -> typed
        value, the first of a repeated name.
    resources : dict
        ``RESOURCE`` ``ID`` -> its own ``PARAM``s (name -> typed value); a
        repeated ``ID`` keeps the last resource.
    """

    tables: list[Table] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)

    def table(self, name: str) -> Table | None:
        """The first table whose ``name`` or ``ID`` is ``name``, or None."""
        for table in self.tables:
            if name in (table.name, table.id):
                return table
        return None


def parse_xml(root: ET.Element) -> Document:
    """Read the tables and PARAMs under ``root`` (see :class:`Document`)."""
    doc = Document(params=_typed_params(root, children_only=False))
    for element in root.iter():
        tag = _local(element.tag)
        if tag == "TABLE":
            doc.tables.append(_table(element))
        elif tag == "RESOURCE" and element.get("ID") is not None:
            doc.resources[element.get("ID")] = _typed_params(element, children_only=True)
    return doc


def read_xml(path: str | Path) -> Document:
    """Read an AstrOmatic XML report (see :class:`Document`).

    Raises
    ------
    xml.etree.ElementTree.ParseError
        If the file is not well-formed XML.
    """
    return parse_xml(ET.parse(path).getroot())


def read_table_rows(path: str | Path | None, name: str) -> list[dict[str, Any]]:
    """Rows of the table ``name`` (its ``name`` or ``ID``) of an AstrOmatic XML report.

    A missing or malformed file, or a missing table, gives ``[]`` (quality
    assessment goes on without the report).

    Returns
    -------
    list of dict
        :attr:`Table.rows`.
    """
    if path is None or not Path(path).is_file():
        return []
    try:
        table = read_xml(path).table(name)
    except ET.ParseError:
        return []
    return table.rows if table is not None else []
