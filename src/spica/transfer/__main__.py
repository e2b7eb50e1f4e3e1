"""Command line: ``python -m spica.transfer`` (``bin/spica watch`` / ``bin/spica transfer``).

Exit codes: 0 done; 1 bad configuration or input; 3 staging paused over the
quota; 4 a delivery not (fully) sent or verified; 5 step 1 failed after
arrivals (retried on the next poll).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

__all__ = ["main", "EXIT_CONFIG", "EXIT_QUOTA", "EXIT_TRANSFER", "EXIT_STEP1"]

EXIT_CONFIG, EXIT_QUOTA, EXIT_TRANSFER, EXIT_STEP1 = 1, 3, 4, 5


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spica-transfer", description=__doc__.splitlines()[0])
    parser.add_argument("--configfile", action="append", default=[], metavar="YAML",
                        help="an overlay deep-merged over config/config.yaml (as snakemake --configfile); "
                             "repeat for several")
    parser.add_argument("--directory", default=".", help="the workflow's folder (relative config paths)")
    commands = parser.add_subparsers(dest="command", required=True)
    watch = commands.add_parser("watch", help="take complete incoming files, run step 1")
    watch.add_argument("--once", action="store_true", help="poll once and exit (cron)")
    watch.add_argument("--interval", type=float, default=None, help="seconds between polls (transfer.poll_seconds)")
    commands.add_parser("stage", help="stage step 1 and graded release products (compressed, manifests)")
    push = commands.add_parser("push", help="send staged deliveries, verify at the destination, purge")
    push.add_argument("--attempts", type=int, default=2, help="transfer-and-verify rounds per delivery")
    push.add_argument("--no-purge", action="store_true", help="keep verified files in staging")
    commands.add_parser("verify", help="check every sent file at the destination again")
    commands.add_parser("purge", help="remove verified files from staging")
    commands.add_parser("status", help="deliveries and files sent")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; return the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[spica transfer] %(message)s", stream=sys.stderr)
    from spica.transfer.settings import TransferConfigError, TransferSettings, load_config

    try:
        settings = TransferSettings.from_config(load_config(args.configfile), root=Path(args.directory))
    except TransferConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "watch":
        from spica.transfer.incoming import watch

        try:
            result = watch(settings, once=args.once, interval=args.interval)
        except KeyboardInterrupt:  # the way to stop a watcher: its state is on disk
            print("watcher stopped", file=sys.stderr)
            return 0
        print(f"taken: {len(result.taken)} {' '.join(result.taken)}; waiting: {len(result.waiting)}; "
              f"refused: {len(result.refused)}; step 1: {result.step1 or 'not run'}")
        return EXIT_STEP1 if result.step1 == "failed" else 0
    if args.command == "stage":
        from spica.transfer.staging import StagingError, stage

        try:
            result = stage(settings)
        except StagingError as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_CONFIG
        print(f"staged: {len(result.staged)} deliveries" + "".join(f"\n  {d}" for d in result.staged))
        for old, new in result.superseded.items():
            print(f"superseded: {old} by {new} (kept)")
        if result.paused:
            print(result.paused, file=sys.stderr)
            return EXIT_QUOTA
        return 0
    if args.command in ("push", "verify", "purge"):
        from spica.transfer import delivery

        if args.command == "push":
            result = delivery.push(settings, attempts=args.attempts, purge_sent=not args.no_purge)
        else:
            result = getattr(delivery, args.command)(settings)
        print(f"{args.command}: {len(result.sent)} deliveries complete, {result.verified} files verified, "
              f"{result.purged} purged from staging, {len(result.failed)} not complete")
        for name, why in result.failed.items():
            print(f"  {name}: {why}", file=sys.stderr)
        return EXIT_TRANSFER if result.failed else 0
    from spica.transfer.state import deliveries, sent_files

    table = deliveries(settings)
    files = sent_files(settings)
    print(table[["delivery", "area", "status", "release_date", "superseded_by"]].fillna("").to_string(index=False)
          if len(table) else "no delivery staged yet")
    print(f"files: {int(files['sent'].sum())} sent of {len(files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
