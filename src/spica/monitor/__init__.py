"""Job events of workflow runs and the in-progress view (seed 3.2.1, issue 13).

Snakemake's logger plugin ``spica`` (``--logger spica``, set in the workflow
profile) records when each job starts, is submitted to SLURM, finishes or
fails, into the database of config key ``monitor.url``
(:mod:`spica.monitor.store`, written by :mod:`spica.monitor.recorder`). The
operation interface reads it with :func:`in_progress`: each product with a
running job, the ordered steps that make it and the current one
(:mod:`spica.monitor.progress`).

Examples
--------
>>> from spica.monitor import in_progress
>>> in_progress("sqlite:///results/logs/events.sqlite")  # doctest: +SKIP
[{'product': 'CFHTLS_D_r_141927+524056_T0002', 'host': 'node1',
  'steps': [{'label': 'Scamp running', 'rule': 'solve_astrometry', 'state': 'done'},
            {'label': 'Running swarp', 'rule': 'coadd_stack', 'state': 'running'},
            ...], 'current': 'Running swarp'}]
"""

from spica.monitor.progress import STEPS, Step, product_steps, products_of, progress
from spica.monitor.recorder import EventRecorder, monitor_config
from spica.monitor.store import (EVENTS, MonitorError, in_progress, read_events, run_progress,
                                 runs)

__all__ = [
    "in_progress",
    "run_progress",
    "read_events",
    "runs",
    "MonitorError",
    "EVENTS",
    "EventRecorder",
    "monitor_config",
    "STEPS",
    "Step",
    "products_of",
    "product_steps",
    "progress",
]
