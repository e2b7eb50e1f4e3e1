"""``python -m spica.web``: Django's manage.py for the interface, plus ``serve``.

Usage::

    python -m spica.web serve [--production] [--host H] [--port N] [--workers N]
                              [--config FILE ...] [--directory DIR]
    python -m spica.web adduser NAME --role staff|cfhtls|pi [--runid 04BF01 ...]
    python -m spica.web createsuperuser | migrate | ...   (any manage.py command)

``--config FILE`` (repeatable, anywhere on the line) merges configuration
overlays over ``config/config.yaml`` as Snakemake's ``--configfile`` does;
``--directory DIR`` is the folder relative paths start from (default: the
current one). ``serve`` applies the migrations of the interface's own
database first; ``--production`` serves with gunicorn and whitenoise (static
files collected under ``<results>/web/static``), without it Django's
development server runs.
"""

from __future__ import annotations

import argparse
import os
import sys

from spica.web.config import CONFIG_ENV, DIRECTORY_ENV

__all__ = ["main"]


def _take_global_options(argv: list[str]) -> list[str]:
    """Remove ``--config``/``--directory`` from ``argv`` and export them for the settings."""
    configs, rest, directory = [], [], None
    items = iter(argv)
    for item in items:
        if item in ("--config", "--configfile", "--directory"):
            value = next(items, None)
            if value is None:
                sys.exit(f"spica web: {item} needs a value")
        elif item.startswith(("--config=", "--configfile=", "--directory=")):
            item, value = item.split("=", 1)
        else:
            rest.append(item)
            continue
        if item == "--directory":
            directory = value
        else:
            configs.append(os.path.abspath(value))
    if configs:
        os.environ[CONFIG_ENV] = os.pathsep.join(configs)
    if directory:
        os.environ[DIRECTORY_ENV] = os.path.abspath(directory)
    return rest


def _serve(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="spica serve", description="Run the SPICA operation interface.")
    parser.add_argument("--production", action="store_true", help="gunicorn + whitenoise instead of the dev server")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (--production)")
    args = parser.parse_args(argv)
    if not args.production:
        os.environ.setdefault("SPICA_WEB_DEBUG", "1")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    from django.conf import settings

    print(f"SPICA operation interface: results {settings.SPICA.results}, registry {settings.SPICA.registry_url}, "
          f"grades {settings.SPICA.grades}", flush=True)
    if not args.production:
        call_command("runserver", f"{args.host}:{args.port}", use_reloader=False)
        return 0
    call_command("collectstatic", interactive=False, verbosity=0)
    gunicorn = [sys.executable, "-m", "gunicorn", "spica.web.wsgi:application", "--bind",
                f"{args.host}:{args.port}", "--workers", str(args.workers), "--access-logfile", "-"]
    os.execv(sys.executable, gunicorn)
    return 0  # pragma: no cover


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m spica.web``."""
    argv = _take_global_options(list(sys.argv[1:] if argv is None else argv))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spica.web.settings")
    if argv and argv[0] == "serve":
        return _serve(argv[1:])
    from django.core.management import execute_from_command_line

    execute_from_command_line(["spica web", *argv])
    return 0


if __name__ == "__main__":
    sys.exit(main())
