#!/usr/bin/env python
"""Latency of the operation interface on a survey-sized registry (issue 13 target: 300 ms median).

Builds a synthetic survey (:func:`spica.web.synthetic.build_survey`) of
10,000 exposures and 2,000 planned products in a temporary folder, starts
Django on it (the interface's own database there too) and times, with
Django's test client, the survey status page and an image search (RunID,
exposure time range, second page), for a staff user and a PI user. Prints
the median of the warm requests (the first, which reads the registry,
apart) and its ratio to the target::

    .venv/bin/python bench/web.py [--exposures 10000] [--products 2000] [--repeat 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 0.300


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exposures", type=int, default=10_000)
    parser.add_argument("--products", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="spica-web-bench-"))
    try:
        results = root / "results"
        overlay = root / "bench.yaml"
        overlay.write_text(
            f"results: {results}\nregistry: {{url: 'sqlite:///{results}/registry.sqlite'}}\n"
            f"inputs: {{grades: {root}/grades.csv}}\n"
            f"web: {{database: {root}/web/web.sqlite, secret_key_file: {root}/web/secret_key, "
            "allowed_hosts: [localhost]}\n")
        os.environ.update(SPICA_WEB_CONFIG=str(overlay), SPICA_WEB_DIRECTORY=str(root), SPICA_WEB_TESTING="1",
                          DJANGO_SETTINGS_MODULE="spica.web.settings")
        from spica.web.synthetic import build_survey

        start = time.perf_counter()
        survey = build_survey(results, n_exposures=args.exposures, n_products=args.products, files=False)
        print(f"synthetic survey: {len(survey.exposures)} exposures, {len(survey.stems)} products "
              f"({time.perf_counter() - start:.1f} s to build)")
        import django
        from django.core.management import call_command

        django.setup()
        call_command("migrate", interactive=False, verbosity=0)
        os.environ["SPICA_BENCH_PW"] = "bench-password-2004"
        call_command("adduser", "staff", "--role", "staff", "--password-env", "SPICA_BENCH_PW", verbosity=0)
        call_command("adduser", "pi", "--role", "pi", "--runid", "04BF01", "--password-env", "SPICA_BENCH_PW",
                     verbosity=0)
        from django.test import Client

        pages = {"status": "/", "search": "/images/?runid=04AL02&exptime_min=100&exptime_max=800&page=2"}
        worst = 0.0
        for user in ("staff", "pi"):
            client = Client()
            assert client.login(username=user, password="bench-password-2004")
            for name, url in pages.items():
                times = []
                for _ in range(args.repeat + 1):
                    start = time.perf_counter()
                    response = client.get(url)
                    times.append(time.perf_counter() - start)
                    if response.status_code != 200:
                        print(f"{user} {name}: HTTP {response.status_code}", file=sys.stderr)
                        return 1
                median = statistics.median(times[1:])
                worst = max(worst, median / TARGET_S)
                print(f"{user:5s} {name:6s}: first {times[0] * 1000:7.1f} ms, median {median * 1000:7.1f} ms "
                      f"-> ratio to the 300 ms target {median / TARGET_S:.2f}")
        print(f"worst ratio {worst:.2f} ({'within' if worst <= 1 else 'over'} target)")
        return 0
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
