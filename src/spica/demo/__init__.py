"""The SPICA demo survey: a seeded, deterministic CFHT MegaPrime / Elixir simulator.

``simulate_survey(config, outdir, small=...)`` writes Elixir-like ``p``
exposures, the flats and masks they name, observing metadata, partial human
grades, a FITS-LDAC reference catalogue and the truth beside them, following
``spec/INPUTS.md`` exactly.
"""

from spica.demo.generate import (
    DEFAULTS,
    Manifest,
    demo_settings,
    output_paths,
    simulate_survey,
)
from spica.demo.survey import PlannedExposure, plan_survey

__all__ = [
    "DEFAULTS",
    "Manifest",
    "PlannedExposure",
    "demo_settings",
    "output_paths",
    "plan_survey",
    "simulate_survey",
]
