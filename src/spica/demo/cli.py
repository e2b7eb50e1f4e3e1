"""``spica-demo``: generate the built-in demo survey.

``spica-demo --config config/config.yaml [OVERLAY ...] [--outdir DIR] [--small] [--force]``

The configuration files are read and deep-merged in order as Snakemake merges
``--configfile`` overlays (:func:`spica.config.read_config_files`): the full-size
survey is ``--config config/config.yaml config/demo-fullsize.yaml``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jsonschema
import yaml

from spica.config import ConfigError, read_config_files
from spica.demo.generate import demo_settings, output_paths, simulate_survey

__all__ = ["validate_demo", "main"]

_SCHEMA = Path(__file__).resolve().parents[3] / "config" / "schemas" / "demo.schema.yaml"


def validate_demo(config: dict, schema_path: str | Path | None = None) -> None:
    """Validate the ``demo:`` section against ``config/schemas/demo.schema.yaml``.

    Raises
    ------
    jsonschema.ValidationError
        If the section does not follow the schema.
    """
    path = Path(schema_path) if schema_path else _SCHEMA
    if not path.exists():  # installed without the source tree: nothing to check against
        return
    schema = yaml.safe_load(path.read_text())
    jsonschema.validate(config.get("demo") or {}, schema)


def main(argv: list[str] | None = None) -> int:
    """Console entry point."""
    ap = argparse.ArgumentParser(prog="spica-demo", description=__doc__.splitlines()[0])
    ap.add_argument("--config", nargs="+", default=["config/config.yaml"], metavar="FILE",
                    help="SPICA configuration (YAML), then overlays merged over it in order")
    ap.add_argument("--outdir", default=None, help="root for the relative inputs: paths (default: cwd)")
    ap.add_argument("--small", action="store_true", help="tiny survey for the end-to-end test")
    ap.add_argument("--force", action="store_true", help="regenerate even if up to date")
    args = ap.parse_args(argv)
    try:
        config = read_config_files(args.config)
        validate_demo(config)
    except ConfigError as error:  # a file missing, not YAML or not a mapping
        print(f"spica-demo: {error}", file=sys.stderr)
        return 2
    except jsonschema.ValidationError as error:  # the demo: block, key by key
        where = "/".join(["demo", *map(str, error.absolute_path)])
        print(f"spica-demo: {where}: {error.message}", file=sys.stderr)
        return 2
    t0 = time.time()
    manifest = simulate_survey(config, Path(args.outdir) if args.outdir else None, small=args.small, force=args.force)
    paths = output_paths(config, Path(args.outdir) if args.outdir else None)
    n_exp = len(manifest.exposures)
    print(
        f"spica-demo: {n_exp} exposures, {len(manifest.files)} files "
        f"(seed {demo_settings(config)['seed']}) in {time.time() - t0:.1f} s; "
        f"manifest {paths['truth'] / 'manifest.json'}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
