"""Screenshots of the operation interface for the README (``docs/screenshots/``).

Run on a finished survey with a configuration overlay whose ``web:`` block and
``inputs.grades`` point to a scratch folder (the script creates a staff user
there and grades nothing)::

    .venv/bin/python -m tests.web.screenshots --config scratch.yaml --directory SURVEY --out docs/screenshots

It starts ``python -m spica.web serve`` on a free port, drives Debian's
chromium through the pages and stops both.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.web.test_browser import _login


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", action="append", required=True)
    parser.add_argument("--directory", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args(argv)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    common = [arg for c in args.config for arg in ("--config", c)] + ["--directory", args.directory]
    env = {**os.environ, "SPICA_SHOT_PW": "screenshot-password-2004"}
    subprocess.run([sys.executable, "-m", "spica.web", "migrate", *common], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "spica.web", "adduser", "astronomer", "--role", "staff",
                    "--password-env", "SPICA_SHOT_PW", *common], check=True, env=env)
    server = subprocess.Popen([sys.executable, "-m", "spica.web", "serve", "--port", str(args.port), *common],
                              env=env, start_new_session=True)
    url = f"http://127.0.0.1:{args.port}"
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)
    driver = None
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{url}/accounts/login/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        _login(driver, url, "astronomer", env["SPICA_SHOT_PW"])
        args.out.mkdir(parents=True, exist_ok=True)
        pages = [("status", "/"), ("pending", "/pending/"), ("images", "/images/"), ("products", "/products/")]
        for name, path in pages:
            driver.get(url + path)
            driver.save_screenshot(str(args.out / f"{name}.png"))
        driver.get(url + "/images/")
        first = driver.find_elements(By.CSS_SELECTOR, "#images tr td a")[0].get_attribute("href")
        expnum = first.rstrip("/").rsplit("/", 1)[-1]
        driver.get(first)
        driver.save_screenshot(str(args.out / "exposure.png"))
        driver.get(f"{url}/grade/{expnum}/")
        driver.save_screenshot(str(args.out / "grade.png"))
        driver.get(url + "/products/")
        links = driver.find_elements(By.XPATH, '//table[@id="products"]//tr[td[@class="done"]]/td/a') \
            or driver.find_elements(By.CSS_SELECTOR, "#products td a")
        if links:
            driver.get(links[0].get_attribute("href"))
            driver.save_screenshot(str(args.out / "product.png"))
        # SkyWatcher: every image centred on the selection with the release products, map loaded
        driver.set_window_size(1280, 1500)
        driver.get(url + "/skywatcher/?centring=selection&products=on")
        for _ in range(300):
            if driver.execute_script("var i = document.getElementById('sky-map');"
                                     "return i.complete && i.naturalWidth > 0;"):
                break
            time.sleep(0.1)
        driver.save_screenshot(str(args.out / "skywatcher.png"))
        print(f"screenshots in {args.out}: {sorted(p.name for p in args.out.glob('*.png'))}")
    finally:
        if driver is not None:
            driver.quit()
        os.killpg(server.pid, 15)
        server.wait(timeout=20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
