"""``spica-demo``: generate the built-in demo survey.

``spica-demo --config config/config.yaml [--outdir DIR] [--small] [--force]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jsonschema
import yaml

from spica.demo.generate import demo_settings, output_paths, simulate_survey

__all__ = ["load_config", "validate_demo", "main"]

_SCHEMA = Path(__file__).resolve().parents[3] / "config" / "schemas" / "demo.schema.yaml"


def load_config(path: str | Path) -> dict:
    """Read a YAML configuration file."""
    with open(path) as fh:
        return yaml.safe_load(fh)


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
    ap.add_argument("--config", default="config/config.yaml", help="SPICA configuration (YAML)")
    ap.add_argument("--outdir", default=None, help="root for the relative inputs: paths (default: cwd)")
    ap.add_argument("--small", action="store_true", help="tiny survey for the end-to-end test")
    ap.add_argument("--force", action="store_true", help="regenerate even if up to date")
    args = ap.parse_args(argv)
    config = load_config(args.config)
    validate_demo(config)
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
