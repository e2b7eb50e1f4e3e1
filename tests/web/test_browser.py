"""The operation interface in a real browser (selenium + Debian's chromium).

The server is the production one (``python -m spica.web serve --production``:
gunicorn and whitenoise), started on a free port with the test configuration
and stopped at the end. Screenshots of every page go to
``test-artifacts/web/`` (git-ignored) for inspection when a test fails.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "web"
CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = "/usr/bin/chromedriver"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(survey):
    """The interface served by gunicorn on a free port (stopped after the module)."""
    port = _free_port()
    log = open(ARTIFACTS.parent / "server.log", "w") if ARTIFACTS.parent.mkdir(parents=True, exist_ok=True) \
        is None else None
    process = subprocess.Popen(
        [sys.executable, "-m", "spica.web", "serve", "--production", "--port", str(port), "--workers", "1"],
        env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{url}/accounts/login/", timeout=1)
                break
            except OSError:
                if process.poll() is not None:
                    raise RuntimeError(f"server exited: see {ARTIFACTS.parent / 'server.log'}") from None
                time.sleep(0.1)
        else:
            raise RuntimeError("server did not start in 30 s")
        yield url
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=20)
        log.close()


@pytest.fixture(scope="module")
def browser():
    """A headless chromium driven by selenium (skipped when chromium or chromedriver is absent)."""
    if CHROMIUM is None or not Path(CHROMEDRIVER).exists():
        pytest.skip("chromium / chromium-driver not installed (apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(5)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


def _shot(driver, name: str) -> None:
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def _follow(driver, element) -> None:
    """Click ``element`` and wait for the page it loads: until then the old page's
    elements are still found, and go stale under the test's feet."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    old = driver.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(driver, 30).until(expected_conditions.staleness_of(old))


def _login(driver, url: str, name: str, password: str) -> None:
    from selenium.webdriver.common.by import By

    driver.delete_all_cookies()
    driver.get(f"{url}/accounts/login/")
    driver.find_element(By.NAME, "username").send_keys(name)
    driver.find_element(By.NAME, "password").send_keys(password)
    _follow(driver, driver.find_element(By.ID, "login-go"))
    assert driver.find_element(By.TAG_NAME, "h1").text == "Survey status"


def _fetch(driver, url: str) -> str:
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in driver.get_cookies())
    request = urllib.request.Request(url, headers={"Cookie": cookies})
    with urllib.request.urlopen(request, timeout=20) as response:
        return response.read().decode()


def test_staff_searches_pages_exports_and_grades(server, browser, survey, grades_csv, password):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    driver = browser
    driver.get(server)
    assert "/accounts/login/" in driver.current_url  # a login first
    _shot(driver, "00_login")
    _login(driver, server, "staff1", password)
    total = len(survey.exposures)
    assert driver.find_element(By.ID, "summary").text.startswith(f"Automatic image mode\nImages available {total}")
    _shot(driver, "01_status")
    # search: RunID 04AL02, 10 a page, then the next page
    _follow(driver, driver.find_element(By.ID, "nav-images"))
    driver.find_element(By.NAME, "runid").send_keys("04AL02")
    Select(driver.find_element(By.NAME, "display")).select_by_value("10")
    _follow(driver, driver.find_element(By.ID, "search-go"))
    expected = survey.exposures[survey.exposures["runid"] == "04AL02"].sort_values("expnum")
    assert driver.find_element(By.ID, "count").text.startswith(f"{min(10, len(expected))} images displayed "
                                                                f"({len(expected)} total)")
    _shot(driver, "02_search")
    rows = driver.find_elements(By.CSS_SELECTOR, "#images tr")[1:]
    assert [r.find_elements(By.TAG_NAME, "td")[1].text for r in rows] == \
        [f"{e}p" for e in expected["expnum"][:10]]
    if len(expected) > 10:
        _follow(driver, driver.find_element(By.ID, "next-page"))
        second = driver.find_elements(By.CSS_SELECTOR, "#images tr")[1:]
        assert second[0].find_elements(By.TAG_NAME, "td")[1].text == f"{expected['expnum'].iloc[10]}p"
    # export the whole result: the registry's rows
    href = driver.find_element(By.ID, "export").get_attribute("href")
    exported = pd.read_csv(io.StringIO(_fetch(driver, href)), dtype={"runid": str})
    assert list(exported["expnum"]) == list(expected["expnum"])
    assert exported["exptime"].to_numpy() == pytest.approx(expected["exptime"].to_numpy())
    # an exposure's page
    _follow(driver, driver.find_elements(By.CSS_SELECTOR, "#images tr td a")[0])
    assert driver.find_element(By.TAG_NAME, "h1").text.startswith("Exposure ")
    assert driver.find_elements(By.CSS_SELECTOR, ".plots img")
    _shot(driver, "03_exposure")
    # a stack's page: status -> products -> product (two clicks)
    _follow(driver, driver.find_element(By.ID, "nav-status"))
    _follow(driver, driver.find_element(By.CSS_SELECTOR, "#releases a"))
    _follow(driver, driver.find_element(By.LINK_TEXT, survey.stems[0]))
    assert driver.find_element(By.TAG_NAME, "h1").text == survey.stems[0]
    assert "Stacked_Files" in driver.page_source
    _shot(driver, "04_product")
    driver.get(f"{server}/pending/")
    _shot(driver, "05_pending")
    driver.get(f"{server}/progress/")
    _shot(driver, "06_progress")
    # grade 800016 with the keyboard: b, / (comment), text, Enter (save and next)
    driver.get(f"{server}/grade/800016/")
    keys = ActionChains(driver)  # keys to the page as typed, without clicking anything
    keys.send_keys("b").send_keys("/").send_keys("halo near CCD 3").perform()
    assert driver.find_element(By.CSS_SELECTOR, 'input[name="grade"][value="B"]').is_selected()
    _shot(driver, "07_grade")
    ActionChains(driver).send_keys(Keys.ENTER).perform()
    for _ in range(50):
        if driver.current_url.endswith("/grade/800017/"):
            break
        time.sleep(0.1)
    from spica.registry import read_grades

    assert driver.current_url.endswith("/grade/800017/"), grades_csv.read_text()

    row = read_grades(grades_csv).set_index("expnum").loc[800016]
    assert (row["grade"], row["comment"], row["graded_by"]) == ("B", "halo near CCD 3", "staff1")
    ActionChains(driver).send_keys("p").perform()  # back to the previous one
    for _ in range(50):
        if driver.current_url.endswith("/grade/800016/"):
            break
        time.sleep(0.1)
    assert driver.find_element(By.ID, "current-grade").text == "B"


def test_a_pi_cannot_see_another_pis_exposure(server, browser, survey, password):
    from selenium.webdriver.common.by import By

    driver = browser
    _login(driver, server, "pi1", password)
    other = int(survey.exposures[survey.exposures["runid"] == "04BF02"]["expnum"].iloc[0])
    own = int(survey.exposures[survey.exposures["runid"] == "04BF01"]["expnum"].iloc[0])
    driver.get(f"{server}/exposure/{other}/")
    assert "Not Found" in driver.page_source and f"{other}p" not in driver.find_element(By.TAG_NAME, "body").text
    _shot(driver, "08_pi_other_exposure")
    driver.get(f"{server}/images/?display=100")
    shown = [r.find_elements(By.TAG_NAME, "td")[1].text for r in driver.find_elements(By.CSS_SELECTOR, "#images tr")[1:]]
    assert f"{own}p" in shown and f"{other}p" not in shown
    assert all(e.endswith("p") for e in shown)
    _shot(driver, "09_pi_images")
    driver.get(f"{server}/exposure/{own}/")
    assert driver.find_element(By.TAG_NAME, "h1").text == f"Exposure {own}p"
