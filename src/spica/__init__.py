"""SPICA: the TERAPIX CFHTLS survey pipeline, rebuilt as a Snakemake workflow.

Domain logic lives in this package as functions on arrays, tables and headers;
``scripts/`` are thin Snakemake entry points that call them.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("spica")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"
