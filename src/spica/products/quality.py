"""The QualityFITS-out figures of a release's products in the registry (``product_quality``).

Each product's ``_spica.xml`` carries its QualityFITS-out table (seeing, PSF
FWHM and elongation over the field, background, star and galaxy counts,
galaxy-count peak, masked fraction, 50 % and 80 % completeness magnitudes, the
automatic masks' fraction, the provisional grade with its reason and the team's
grade with its problem report).
:func:`load_product_quality` copies that one row of every planned product of a
release into the registry table ``product_quality`` (declared with the other
tables in :func:`spica.registry.schema`), keyed by release and product, the way
:func:`spica.registry.load_calibration` loads the SCAMP solutions: the release's
rows are replaced, so running it twice gives the same table, and
:func:`spica.registry.build_registry` (which rebuilds the step 1 tables only)
leaves it alone. The figures are read from ``_spica.xml``, not recomputed: the
registry holds what was delivered.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from spica.products.summary import read_product_summary
from spica.registry import conform, open_database, schema

__all__ = ["QUALITY_TABLE", "product_quality_rows", "load_product_quality", "read_product_quality"]

#: The registry table of the products' QualityFITS-out figures.
QUALITY_TABLE = "product_quality"

_KEYS = ("release", "product")


def product_quality_rows(release: str, summaries: Mapping[str, str | Path]) -> pd.DataFrame:
    """One row per product of ``summaries`` (product stem -> ``_spica.xml``): its
    ``QualityFITS_out`` figures (the registry table's columns; a product whose table
    has no row gives none; a null figure is NaN)."""
    columns = [c.name for c in schema().tables[QUALITY_TABLE].columns if c.name not in _KEYS]
    rows = []
    for product, path in sorted(summaries.items()):
        table = read_product_summary(path)["QualityFITS_out"]
        if not len(table):
            continue
        row: dict[str, object] = {"release": release, "product": product}
        for name in columns:
            if name not in table.colnames:
                continue
            if table[name].dtype.kind in "USO":  # the grades: text as delivered
                row[name] = str(table[name][0])
            elif table[name].dtype.kind == "b":
                row[name] = bool(table[name][0])
            else:
                row[name] = float(np.ma.filled(np.ma.asarray(table[name]).astype(float), np.nan)[0])
        rows.append(row)
    return conform(pd.DataFrame(rows, columns=[*_KEYS, *columns]), QUALITY_TABLE)


def load_product_quality(
    *, url: str, release: str, summaries: Mapping[str, str | Path], export_csv: str | Path
) -> int:
    """Load the QualityFITS-out figures of a release's products into the registry.

    Parameters
    ----------
    url : str
        The registry's database URL (``registry.url``).
    release : str
        ``T0002``: its rows of ``product_quality`` are replaced.
    summaries : mapping of str to path
        Every planned product's stem -> its ``_spica.xml``.
    export_csv : path
        Receives the release's rows (the rule's output).

    Returns
    -------
    int
        The number of rows written.
    """
    from sqlalchemy import delete

    frame = product_quality_rows(release, summaries)
    table = schema().tables[QUALITY_TABLE]
    engine = open_database(url)
    with engine.begin() as connection:
        schema().create_all(connection, tables=[table], checkfirst=True)
        connection.execute(delete(table).where(table.c.release == release))
        if len(frame):
            frame.to_sql(QUALITY_TABLE, connection, if_exists="append", index=False)
    engine.dispose()
    Path(export_csv).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(export_csv, index=False)
    return len(frame)


def read_product_quality(url: str, release: str | None = None) -> pd.DataFrame:
    """The ``product_quality`` rows of the registry (of one release if given), typed
    as the schema declares them; empty with its columns if none was loaded yet."""
    from sqlalchemy import inspect, select

    table = schema().tables[QUALITY_TABLE]
    engine = open_database(url)
    try:
        if not inspect(engine).has_table(QUALITY_TABLE):
            return conform(pd.DataFrame(columns=[c.name for c in table.columns]), QUALITY_TABLE)
        query = select(table) if release is None else select(table).where(table.c.release == release)
        with engine.connect() as connection:
            frame = pd.read_sql(query.order_by(table.c.release, table.c.product), connection)
    finally:
        engine.dispose()
    return conform(frame, QUALITY_TABLE)
