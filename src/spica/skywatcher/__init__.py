"""SkyWatcher: the survey's exposures and products on the celestial sphere (seed section 7).

Two layers, like an astropy package:

* selection (:mod:`spica.skywatcher.selection`, pure): registry rows ->
  selected rows, by RunID, survey component, filter, sky box or cone, date
  range and processing status;
* drawing (:mod:`spica.skywatcher.drawing`): outlines per CCD (from the WCS
  recorded for it, :mod:`spica.skywatcher.footprints`) or per field, release
  products, contour boxes, galactic plane, grid, a VOTable overlay and the SFD
  E(B-V) background on a FITS-WCS map (AIT, PAR, MOL, SFL, CAR, CEA) drawn with
  astropy's WCSAxes.

The command line (:mod:`spica.skywatcher.cli`) and a web view call the same
four functions::

    frame = survey_state(exposures, config["survey"], release_lists(results, releases))
    selected = select_exposures(frame, Criteria(filters=["r"], components=["D"]))
    figure = draw_map(selected, MapOptions(projection="MOL"), footprints=...)
    data = render(figure, "pdf")

:func:`load_survey` does the reading for a configuration (registry, release
lists, footprints).
"""

from spica.skywatcher.drawing import (
    FORMATS,
    PROJECTIONS,
    STATUS_COLORS,
    MapError,
    MapOptions,
    draw_map,
    map_wcs,
    read_catalogue_positions,
    render,
)
from spica.skywatcher.footprints import (
    FOOTPRINT_COLUMNS,
    FootprintError,
    field_footprints,
    read_ccd_footprints,
    square_footprints,
)
from spica.skywatcher.selection import (
    STATUSES,
    Criteria,
    SelectionError,
    read_registry,
    release_lists,
    select_exposures,
    survey_state,
)
from spica.skywatcher.survey import (
    LIST_COLUMNS,
    Survey,
    config_boxes,
    image_list,
    load_config,
    load_survey,
    release_products,
    sent_exposures,
)

__all__ = [
    "FOOTPRINT_COLUMNS", "FORMATS", "LIST_COLUMNS", "PROJECTIONS", "STATUSES", "STATUS_COLORS",
    "Criteria", "FootprintError", "MapError", "MapOptions", "SelectionError", "Survey",
    "config_boxes", "draw_map", "image_list", "field_footprints", "load_config", "load_survey", "map_wcs",
    "read_ccd_footprints", "read_catalogue_positions", "read_registry", "release_lists",
    "release_products", "render", "select_exposures", "sent_exposures", "square_footprints",
    "survey_state",
]
