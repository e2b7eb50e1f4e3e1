"""The SkyWatcher page of the operation interface (issue 15, "Two modes" -> "Web").

Django's test client on the synthetic survey (tests/web/conftest.py): the form
selects exactly the registry rows the command line's selection gives, bad
values are a 400, the map is a PNG of the page's size and "save as PDF" a PDF
that poppler renders, and a PI's exposures never reach another user's list,
count or drawn outlines. One headless-browser test submits a selection.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess

import pandas as pd
import pytest

from spica.skywatcher import Criteria, select_exposures, survey_state
from tests.web.test_browser import ARTIFACTS, _follow, _login, _shot, browser, server  # noqa: F401 (fixtures)


@pytest.fixture
def drawn(monkeypatch):
    """Records the selection every map request passes to ``draw_map`` (the cache emptied first)."""
    from django.core.cache import cache

    from spica.web import views

    cache.clear()
    calls = []
    original = views.draw_map

    def spy(selection, options, **kwargs):
        figure = original(selection, options, **kwargs)
        kwargs["drawn_expnums"] = set(figure.axes[0].skywatcher_outlines["expnum"].astype(int))
        calls.append((selection.copy(), options, kwargs))
        return figure

    monkeypatch.setattr(views, "draw_map", spy)
    return calls


def _listed(html: str) -> list[int]:
    table = html.split('id="sky-list"', 1)[1]
    return [int(e) for e in re.findall(r'<a href="/exposure/(\d+)/">\1p</a>', table)]


def _count(html: str) -> int:
    return int(re.search(r'id="sky-count">(\d+) images selected', html)[1])


def _registry(survey) -> pd.DataFrame:
    """The synthetic registry annotated as the command line annotates it."""
    from django.conf import settings

    return survey_state(survey.exposures, settings.SPICA.raw["survey"],
                        {survey.release: sorted({e for m in survey.stack_lists.values() for e in m})})


def test_form_selects_the_command_lines_rows_and_links_them(client_for, survey):
    client = client_for("staff1")
    expected = select_exposures(_registry(survey), Criteria(runids=["04AL01", "L03"], filters=["r", "i"],
                                                            date_start="2004-03-01", date_end="2004-10-01"))
    response = client.get("/skywatcher/", {"runid": "04AL01, L03", "filter": "r,i", "date_start": "2004-03-01",
                                           "date_end": "2004-10-01"})
    assert response.status_code == 200
    html = response.content.decode()
    assert len(expected) >= 4
    assert _listed(html) == sorted(int(e) for e in expected["expnum"])
    assert _count(html) == len(expected)
    # components, a sky box and statuses: the same rows as select_exposures
    expected = select_exposures(_registry(survey), Criteria(components=["D", "W"], box=(214.5, 215.0, 52.3, 52.7),
                                                            statuses=["release"]))
    html = client.get("/skywatcher/?component=D&component=W&ra_min=214.5&ra_max=215&dec_min=52.3&dec_max=52.7"
                      "&status=release").content.decode()
    assert _listed(html) == sorted(int(e) for e in expected["expnum"]) and len(expected) >= 1
    # a cone
    expected = select_exposures(_registry(survey), Criteria(cone=(214.9, 52.6, 0.25)))
    html = client.get("/skywatcher/?cone_ra=214.9&cone_dec=52.6&cone_radius=0.25").content.decode()
    assert _listed(html) == sorted(int(e) for e in expected["expnum"])
    # the map and the PDF link carry the same query; each exposure links to its QualityFITS-in page
    assert 'src="/skywatcher/map.png?cone_ra=214.9&amp;cone_dec=52.6&amp;cone_radius=0.25"' in html
    assert 'href="/skywatcher/map.pdf?cone_ra=214.9' in html
    first = _listed(html)[0]
    page = client.get(f"/exposure/{first}/")
    assert page.status_code == 200 and f"Exposure {first}p" in page.content.decode()
    assert 'id="nav-skywatcher"' in html


@pytest.mark.parametrize("query", [
    "ra_min=abc", "ra_min=400&ra_max=10&dec_min=0&dec_max=10", "ra_min=10", "ra_min=1&ra_max=2&dec_min=5&dec_max=4",
    "cone_ra=10&cone_dec=5", "projection=XYZ", "fov=10", "fov=-1&centre_ra=1&centre_dec=2", "centre_dec=95",
    "status=bogus", "status=sent", "component=Q", "date_start=2004-13-01", "date_start=2004-05-01&date_end=2004-04-01",
    "runid=<script>", "outline=pixel", "color_by=grade", "centring=elsewhere", "filter=" + "r" * 200,
])
def test_bad_values_are_a_400(client_for, survey, query):
    client = client_for("staff1")
    for path in ("/skywatcher/", "/skywatcher/map.png", "/skywatcher/map.pdf"):
        response = client.get(f"{path}?{query}")
        assert response.status_code == 400, (path, query)
        assert b"Invalid" in response.content


def test_map_png_and_pdf(client_for, survey, drawn, tmp_path):
    client = client_for("staff1")
    query = "filter=r&centring=selection&projection=MOL&outline=field&products=on"
    png = client.get(f"/skywatcher/map.png?{query}")
    assert png.status_code == 200 and png["Content-Type"] == "image/png"
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png.content[16:24]) == (1200, 675)
    selection, options, kwargs = drawn[0]
    assert sorted(selection["expnum"].astype(int)) == sorted(
        int(e) for e in survey.exposures.loc[survey.exposures["band"] == "r", "expnum"])
    # centred on the selection (synthetic pointings: RA 214.5-215.5, Dec 52.3-53.1), zoomed, Mollweide
    assert options.projection == "MOL" and options.outline == "field"
    assert options.centre[0] == pytest.approx(215.0, abs=0.5) and options.centre[1] == pytest.approx(52.7, abs=0.5)
    assert 1.3 < options.fov_deg < 8
    assert kwargs["products"] is not None and len(kwargs["products"]) == len(survey.stems)
    again = client.get(f"/skywatcher/map.png?{query}")
    assert again.content == png.content and len(drawn) == 1  # the same query comes from the cache
    pdf = client.get(f"/skywatcher/map.pdf?{query}")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf["Content-Disposition"] == 'attachment; filename="skywatcher.pdf"'
    assert pdf.content.startswith(b"%PDF")
    assert len(drawn) == 2 and sorted(drawn[1][0]["expnum"]) == sorted(selection["expnum"])
    assert client.get(f"/skywatcher/map.gif?{query}").status_code == 404
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) not installed")
    (tmp_path / "map.pdf").write_bytes(pdf.content)
    subprocess.run(["pdftoppm", "-png", "-r", "20", str(tmp_path / "map.pdf"), str(tmp_path / "page")], check=True)
    page = next(tmp_path.glob("page*.png")).read_bytes()
    assert struct.unpack(">II", page[16:24]) == (240, 135)  # 12 x 6.75 in at 20 dpi


@pytest.mark.parametrize("user, runids", [("pi2", {"04BF02"}), ("member", {"04AL01", "04AL02", "04AL03"}),
                                          ("pi1", {"04BF01"})])
def test_a_pis_exposures_never_reach_another_user(client_for, survey, drawn, user, runids):
    client = client_for(user)
    exposures = survey.exposures
    own = exposures[exposures["runid"].isin(runids) & exposures["expnum"].notna()]
    html = client.get("/skywatcher/?products=on").content.decode()
    assert _listed(html) == sorted(int(e) for e in own["expnum"]) and _count(html) == len(own)
    others = set(exposures.loc[~exposures["runid"].isin(runids), "expnum"].astype(int))
    assert others and not others & set(_listed(html))
    assert client.get("/skywatcher/map.png?products=on&outline=ccd&centring=selection").status_code == 200
    selection, options, kwargs = drawn[-1]
    assert set(selection["expnum"].astype(int)) == set(own["expnum"].astype(int))
    # the outlines drawn on the map: the user's exposures, every one of them
    assert kwargs["drawn_expnums"] == set(own["expnum"].astype(int))
    # the release products drawn are those made of the user's exposures only
    products = kwargs["products"] if kwargs["products"] is not None else pd.DataFrame(columns=["release", "stem"])
    for release, stem in zip(products["release"], products["stem"]):
        assert set(survey.stack_lists[stem]) <= set(own["expnum"].astype(int)), stem
    # selecting another programme explicitly gives nothing
    other = "04BF01" if user != "pi1" else "04BF02"
    html = client.get(f"/skywatcher/?runid={other}").content.decode()
    assert _count(html) == 0 and _listed(html) == []
    assert client.get("/skywatcher/", follow=False).status_code == 200
    assert client_for(None).get("/skywatcher/map.png").status_code in (302, 401, 403)


def test_skywatcher_page_in_the_browser(server, browser, survey, password):  # noqa: F811
    """Open the page, select r-band Deep images centred on them, see the map and the list."""
    import time

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = browser
    _login(driver, server, "staff1", password)
    _follow(driver, driver.find_element(By.ID, "nav-skywatcher"))
    assert driver.find_element(By.TAG_NAME, "h1").text == "SkyWatcher"
    driver.find_element(By.NAME, "filter").send_keys("r")
    driver.find_element(By.CSS_SELECTOR, 'input[name="component"][value="D"]').click()
    Select(driver.find_element(By.NAME, "centring")).select_by_value("selection")
    Select(driver.find_element(By.NAME, "projection")).select_by_value("SFL")
    _follow(driver, driver.find_element(By.ID, "sky-go"))
    expected = survey.exposures[(survey.exposures["runid"] == "04AL01") & (survey.exposures["band"] == "r")]
    assert driver.find_element(By.ID, "sky-count").text.startswith(f"{len(expected)} images selected (SFL,")
    links = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "#sky-list td a")]
    assert links == [f"{e}p" for e in sorted(expected["expnum"])]
    width = 0
    for _ in range(100):  # the map is drawn by the server after the page: wait for it
        width = driver.execute_script("var i = document.getElementById('sky-map');"
                                      "return i.complete ? i.naturalWidth : 0;")
        if width:
            break
        time.sleep(0.1)
    assert width == 1200
    assert driver.find_element(By.ID, "sky-pdf").get_attribute("href").split("?", 1)[1] == \
        driver.current_url.split("?", 1)[1]
    _shot(driver, "10_skywatcher")
    assert (ARTIFACTS / "10_skywatcher.png").stat().st_size > 10_000
