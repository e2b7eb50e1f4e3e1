"""The operation interface with Django's test client on a synthetic survey."""

from __future__ import annotations

import csv
import io
import os
import re

import pandas as pd
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

PAGES = ["/", "/pending/", "/products/", "/images/", "/progress/", "/plots/seeing.png",
         "/exposure/800000/", "/grade/800000/", "/product/T0002/800003p_V0001/",
         "/files/step1/800000p/800000p_m_med.png"]


def _text(response) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def _csv(client, query="") -> pd.DataFrame:
    response = client.get(f"/images/?{query}&export=csv")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    return pd.read_csv(io.StringIO(_text(response)), dtype={"runid": str})


def test_every_page_needs_a_login(survey, client_for):
    client = client_for(None)
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.url.startswith("/accounts/login/"), url


def test_status_counts_by_role(survey, client_for):
    exposures = survey.exposures
    numbered = exposures[exposures["expnum"].notna()]
    staff = _text(client_for("staff1").get("/"))
    total = len(numbered)
    cfhtls = int(numbered["runid"].isin(["04AL01", "04AL02", "04AL03"]).sum())
    assert re.search(rf"<th>Images available</th><td class=\"num\">{total}</td>", staff)
    assert re.search(rf"<th>CFHTLS images</th><td class=\"num\">{cfhtls}</td><td class=\"num\">"
                     rf"{100 * cfhtls / total:.0f} %", staff)
    assert re.search(rf"<th>PI images</th><td class=\"num\">{total - cfhtls}</td>", staff)
    # one finished Deep stack and two image products: their exposures are "Spica" processed
    processed = {e for stem in survey.stems[:1] for e in survey.stack_lists[stem]}
    processed |= {e for stem in [s for s in survey.stems if not s.startswith("CFHTLS")][:2]
                  for e in survey.stack_lists[stem]}
    assert re.search(rf"<th>Spica</th><td class=\"num\">{len(processed)}</td>", staff)
    assert "04BF02" in staff and "RunId 2004" in staff
    member = _text(client_for("member").get("/"))
    assert re.search(rf"<th>Images available</th><td class=\"num\">{cfhtls}</td>", member)
    assert "04BF01" not in member and "04BF02" not in member
    pi1 = _text(client_for("pi1").get("/"))
    n_pi1 = int((numbered["runid"] == "04BF01").sum())
    assert re.search(rf"<th>Images available</th><td class=\"num\">{n_pi1}</td>", pi1)
    assert "04BF02" not in pi1 and "04AL01" not in pi1
    assert client_for("nobody").get("/").status_code == 200
    assert re.search(r"<th>Images available</th><td class=\"num\">0</td>", _text(client_for("nobody").get("/")))


def test_plots_are_png_and_differ_by_role(survey, client_for):
    staff = client_for("staff1").get("/plots/time_programme.png")
    pi1 = client_for("pi1").get("/plots/time_programme.png")
    assert staff.status_code == pi1.status_code == 200
    assert staff.content[:8] == pi1.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert staff.content != pi1.content
    assert client_for("staff1").get("/plots/nothing.png").status_code == 404


def test_search_paging_and_csv_export_match_the_registry(survey, client_for):
    client = client_for("staff1")
    exposures = survey.exposures
    page = _text(client.get("/images/"))
    assert f"10 images displayed ({len(exposures)} total)" in page
    last = _text(client.get("/images/?page=4"))
    assert f"{len(exposures) - 30} images displayed ({len(exposures)} total)" in last
    # a search: RunID and exposure time range
    query = "runid=04AL02&exptime_min=200&exptime_max=800"
    expected = exposures[(exposures["runid"] == "04AL02") & exposures["exptime"].between(200, 800)]
    assert f"({len(expected)} total)" in _text(client.get(f"/images/?{query}"))
    exported = _csv(client, query)
    assert sorted(exported["expnum"]) == sorted(expected["expnum"])
    merged = exported.merge(expected, on="expnum", suffixes=("", "_registry"))
    assert (merged["runid"] == merged["runid_registry"]).all()
    assert merged["exptime"].to_numpy() == pytest.approx(merged["exptime_registry"].to_numpy())
    # the whole result, all pages: every registry row
    everything = _csv(client)
    assert len(everything) == len(exposures)
    assert set(everything["processed_yn"]) == {"Y", "N"}
    # RA/Dec/date/SkyProbe ranges
    sub = exposures[exposures["ra_deg"].between(214.6, 215.0) & exposures["dec_deg"].between(52.4, 52.9)
                    & (exposures["skyprobe"] <= 1.5) & (exposures["date_obs"] >= "2004-05-01")]
    found = _csv(client, "ra_min=214.6&ra_max=215&dec_min=52.4&dec_max=52.9&skyprobe_max=1.5&date_min=2004-05-01")
    assert sorted(found["expnum"]) == sorted(sub["expnum"])
    assert len(_csv(client, "filename=800007p")) == 1
    assert list(_csv(client, "status=quarantined")["status"]) == ["quarantined"]


def test_a_pi_sees_nothing_of_another_pi(survey, client_for):
    exposures = survey.exposures
    own = exposures[exposures["runid"] == "04BF01"]["expnum"].tolist()
    other = exposures[exposures["runid"] == "04BF02"]["expnum"].tolist()
    client = client_for("pi1")
    exported = _csv(client)
    assert sorted(exported["expnum"]) == sorted(own)
    assert len(_csv(client, "runid=04BF02")) == 0
    for expnum in other[:2]:
        assert client.get(f"/exposure/{expnum}/").status_code == 404
        assert client.get(f"/files/step1/{expnum}p/{expnum}p_m_med.png").status_code == 404
        assert client.get(f"/files/step1/{expnum}p/{expnum}p.xml").status_code == 404
    stem_other = f"{other[0]}p_V0001"
    assert stem_other in survey.stems
    assert client.get(f"/product/T0002/{stem_other}/").status_code == 404
    assert client.get(f"/files/releases/T0002/{stem_other}/{stem_other}_m.png").status_code == 404
    # nowhere in the pages, the products list, the pending view, the status page
    for url in ["/", "/products/", "/pending/", "/images/?display=100"]:
        text = _text(client.get(url))
        assert not any(f"{e}p" in text for e in other), url
        assert "04BF02" not in text, url
    # own data: visible
    assert client.get(f"/exposure/{own[0]}/").status_code == 200
    assert client.get(f"/files/step1/{own[0]}p/{own[0]}p_m_med.png").status_code == 200
    # a Deep stack is CFHTLS data
    assert client.get(f"/product/T0002/{survey.stems[0]}/").status_code == 404
    assert client.get("/grade/800003/").status_code == 403


def test_a_cfhtls_member_sees_no_pi_trace_in_a_stack(survey, client_for):
    stem = survey.stems[0]
    pi_exposure = next(e for e in survey.astrometric_lists[stem] if e not in survey.stack_lists[stem])
    member = _text(client_for("member").get(f"/product/T0002/{stem}/"))
    staff = _text(client_for("staff1").get(f"/product/T0002/{stem}/"))
    assert f"{pi_exposure}p" in staff and "Astrometric_Files" in staff and "fgroups_1.png" in staff
    assert f"{pi_exposure}p" not in member and "04BF01" not in member
    assert "Astrometric_Files" not in member and "fgroups_1.png" not in member
    assert "Stacked_Files" in member
    client = client_for("member")
    assert client.get(f"/files/releases/T0002/{stem}/scamp/{stem}_fgroups_1.png").status_code == 404
    assert client.get(f"/files/releases/T0002/{stem}/{stem}_spica.xml").status_code == 404
    assert client.get(f"/files/releases/T0002/{stem}/{stem}_m.png").status_code == 200
    assert client.get(f"/exposure/{pi_exposure}/").status_code == 404
    assert client.get("/files/releases/T0002/T0002_plan.csv").status_code == 404
    assert client_for("staff1").get("/files/releases/T0002/T0002_plan.csv").status_code == 200


def test_exposure_and_product_pages(survey, client_for):
    client = client_for("staff1")
    row = survey.exposures.iloc[0]
    page = _text(client.get(f"/exposure/{row['expnum']}/"))
    assert f"{row['qa_fwhm_arcsec']:.4g}" in page  # the XML Field table
    assert f"{row['expnum']}p_fwhm_histo.png" in page
    assert f"/product/T0002/{survey.stems[0]}/" in page  # the products it entered
    product = _text(client.get(f"/product/T0002/{survey.stems[0]}/"))
    assert "Stacked_Files" in product and f"rebuilds {survey.stems[0]}" in product
    assert f"{survey.astrometric_lists[survey.stems[0]][0]:064x}" in product  # input checksum
    assert "<span id=\"state\">done</span>" in product
    assert f"{survey.stems[0]}_comptness.png" in product.split('id="qualityfits-out"')[1]
    pending = _text(client.get("/pending/"))
    assert f"Pending processes ({len(survey.stems) - 3})" in pending
    assert survey.stems[1].removesuffix("_T0002") in pending and survey.stems[0].removesuffix("_T0002") not in pending
    # status -> products -> product: two clicks
    status = _text(client.get("/"))
    assert "/products/?release=T0002" in status
    assert f"/product/T0002/{survey.stems[0]}/" in _text(client.get("/products/?release=T0002"))


def test_grading_writes_the_grades_csv_and_history(survey, client_for, grades_csv):
    from spica.registry import read_grades
    from spica.web.data import clear_cache

    GRADES = grades_csv

    client = client_for("staff1")
    page = client.get("/grade/800006/")
    assert page.status_code == 200 and "800006p_fwhm_histo.png" in _text(page)
    response = client.post("/grade/800006/", {"grade": "C", "comment": "guiding  jump", "then": "next"})
    assert response.status_code == 302 and response.url == "/grade/800007/"
    grades = read_grades(GRADES).set_index("expnum")
    assert grades.loc[800006, "grade"] == "C"
    assert grades.loc[800006, "comment"] == "guiding jump"
    assert grades.loc[800006, "graded_by"] == "staff1"
    assert grades.loc[800001, "grade"] == "B"  # the other rows kept
    client.post("/grade/800006/", {"grade": "A", "comment": "fine after all"})
    clear_cache()
    page = _text(client.get("/exposure/800006/"))
    assert re.search(r'<td id="grade">A', page)
    history = re.findall(r"<td>([A-D])</td><td>([A-D]?)</td><td>staff1</td>", page)
    assert history[:2] == [("A", "C"), ("C", "")]
    assert client.post("/grade/800006/", {"grade": "E"}).status_code == 400
    assert client_for("member").post("/grade/800006/", {"grade": "A"}).status_code == 403
    assert read_grades(GRADES).set_index("expnum").loc[800006, "grade"] == "A"


def _grade_many(args):
    from spica.web.grades import save_grade

    path, start = args
    for expnum in range(start, start + 15):
        save_grade(path, expnum=expnum, grade="B", comment=f"process {start}", graded_by=f"g{start}")
    return start


def test_two_graders_saving_at_once_lose_nothing(tmp_path):
    import multiprocessing

    from spica.registry import read_grades

    path = tmp_path / "grades.csv"
    path.write_text("expnum,grade,comment,graded_by,date\n1,A,first,YM,2004-01-01\n")
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool.map(_grade_many, [(path, 100), (path, 200)])
    grades = read_grades(path)
    assert sorted(grades["expnum"]) == [1, *range(100, 115), *range(200, 215)]
    assert set(grades[grades["expnum"] >= 200]["graded_by"]) == {"g200"}
    with open(path) as stream:
        assert next(csv.reader(stream)) == ["expnum", "grade", "comment", "graded_by", "date"]


def test_file_serving_stays_in_the_results_tree(survey, client_for, tmp_path, results_dir):
    RESULTS = results_dir
    client = client_for("staff1")
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    folder = RESULTS / "step1" / "800000p"
    (folder / "800000p_escape.png").unlink(missing_ok=True)
    (folder / "800000p_escape.png").symlink_to(secret)
    (folder / "800000p_pi.png").unlink(missing_ok=True)
    (folder / "800000p_pi.png").symlink_to(RESULTS / "step1" / "800003p" / "800003p_m_med.png")
    for url in ["/files/../conftest.py", "/files/step1/../../x", "/files/%2e%2e/%2e%2e/etc/passwd",
                "/files//etc/passwd", "/files/step1/800000p/..%2f..%2f..%2fetc/passwd",
                "/files/step1/800000p/800000p_escape.png", "/files/step1/800000p/a\\..\\b"]:
        response = client.get(url)
        assert response.status_code in (400, 404), url
        assert b"top secret" not in response.content and b"root:" not in response.content
    assert client.get("/files/step1/800000p/800000p_escape.png").status_code == 400
    # a link inside the tree is judged by where it points: the member may not read a PI file through it
    assert client_for("member").get("/files/step1/800000p/800000p_pi.png").status_code == 404
    assert client_for("member").get("/files/step1/800000p/800000p_m_med.png").status_code == 200
    assert client.get("/files/registry.sqlite").status_code == 200
    assert client_for("member").get("/files/registry.sqlite").status_code == 404


BAD_VALUES = ["-1", "1e309", "nan", "inf", "99999999999999999999999", "abc", "' OR 1=1 --",
              "<script>alert(1)</script>", "%00", "\x00", "../../etc/passwd", "2004-13-45", "a" * 5000,
              "1;DROP TABLE exposures", "${7*7}", "{{7*7}}", " ", "0x10", "—"]


def test_fuzz_every_query_parameter(survey, client_for):
    from spica.web.forms import SearchForm

    client = client_for("staff1")
    fields = list(SearchForm.base_fields) + ["export"]
    for field in fields:
        for value in BAD_VALUES:
            response = client.get("/images/", {field: value})
            assert response.status_code in (200, 400), (field, value, response.status_code)
            text = _text(response)
            assert "Traceback" not in text and "<script>alert" not in text
    for url in ["/pending/", "/products/"]:
        for value in BAD_VALUES:
            assert client.get(url, {"release": value}).status_code in (200, 400), (url, value)
    for path in ["/exposure/99999999999999999999/", "/exposure/0/", "/product/T0002/x/",
                 "/product/T9999/CFHTLS_D_r_000000+000000_T9999/", "/grade/99999999999/",
                 "/plots/x.png", "/files/", "/files/step1/nothing"]:
        assert client.get(path).status_code in (400, 404), path
    for value in BAD_VALUES:
        response = client.post("/grade/800010/", {"grade": value, "comment": value})
        assert response.status_code == 400, value


def test_in_progress_page(survey, client_for, monkeypatch):
    import dataclasses
    import sys
    import types

    from django.conf import settings
    from django.test import override_settings

    client = client_for("member")
    if "spica.monitor" not in sys.modules:
        try:
            import spica.monitor  # noqa: F401
        except ImportError:
            assert "monitoring not configured" in _text(client.get("/progress/"))
    stem = survey.stems[0]
    fake = types.ModuleType("spica.monitor")
    fake.in_progress = lambda url: [
        {"product": stem, "host": "node1", "current": "SWarp",
         "steps": [{"label": "SCAMP", "rule": "calibrate", "state": "done"},
                   {"label": "SWarp", "rule": "coadd", "state": "running"},
                   {"label": "catalogue", "rule": "catalogue", "state": "pending"}]},
        {"product": "800003p_V0001", "host": "node2", "current": "SCAMP",
         "steps": [{"label": "SCAMP", "rule": "calibrate", "state": "running"}]},
        {"product": "800004p", "host": "node2", "current": None, "steps": []},
    ]
    monkeypatch.setitem(sys.modules, "spica.monitor", fake)
    with override_settings(SPICA=dataclasses.replace(settings.SPICA, monitor_url="sqlite:///events.sqlite")):
        page = _text(client.get("/progress/"))
        assert f"<h2>{stem} <small>node1</small>" in page
        assert re.search(r'<li class="running current" title="coadd">SWarp', page)
        assert '<meta http-equiv="refresh"' in page
        assert "800003p" not in page and "800004p" not in page  # PI products hidden from a member
        staff = _text(client_for("staff1").get("/progress/"))
        assert "800003p_V0001" in staff and "800004p" in staff


def test_adduser_refuses_bad_input(survey):
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="needs at least one --runid"):
        call_command("adduser", "x1", "--role", "pi", "--password-env", "SPICA_TEST_PW")
    with pytest.raises(CommandError, match="not a CFHT RUNID"):
        call_command("adduser", "x1", "--role", "pi", "--runid", "DROP", "--password-env", "SPICA_TEST_PW")
    with pytest.raises(CommandError, match="PI users only"):
        call_command("adduser", "x1", "--role", "staff", "--runid", "04BF01", "--password-env", "SPICA_TEST_PW")


def test_config_overlays_merge_like_snakemake(tmp_path):
    from spica.web.config import load_config

    overlay = tmp_path / "o.yaml"
    overlay.write_text("results: elsewhere\nsurvey: {runid_programs: {L09: W}}\n")
    config = load_config([overlay], directory=tmp_path)
    assert config.results == tmp_path / "elsewhere"
    assert config.runid_programs == {"L09": "W"} or "L09" in config.runid_programs
    assert config.registry_url == f"sqlite:///{tmp_path}/results/registry.sqlite"
    assert config.allowed_hosts == ["localhost", "127.0.0.1"]


def test_in_progress_page_reads_the_job_events(survey, client_for, tmp_path):
    """With the real spica.monitor: job events written as its logger plugin writes them."""
    import dataclasses
    import socket
    import uuid

    from django.conf import settings
    from django.test import override_settings

    store = pytest.importorskip("spica.monitor.store")
    url = f"sqlite:///{tmp_path}/events.sqlite"
    engine = store.engine_for(url)
    stem, run = survey.stems[0], str(uuid.uuid4())
    host = socket.gethostname()
    columns = ("job_id", "rule", "product", "product_kind", "pid", "status", "slurm_job_id", "wildcards")
    store.write_events(engine, [{**dict.fromkeys(columns), **row} for row in [
        {"run_id": run, "kind": "run_started", "host": host, "pid": os.getpid()},
        {"run_id": run, "kind": "job_started", "job_id": 1, "rule": "solve_astrometry", "product": stem,
         "product_kind": "stack", "host": host, "status": "running"},
        {"run_id": run, "kind": "job_finished", "job_id": 1, "rule": "solve_astrometry", "product": stem,
         "product_kind": "stack", "host": host, "status": "done"},
        {"run_id": run, "kind": "job_started", "job_id": 2, "rule": "coadd_stack", "product": stem,
         "product_kind": "stack", "host": host, "status": "running"},
        {"run_id": run, "kind": "job_started", "job_id": 3, "rule": "reduce_exposure", "product": "800003p",
         "product_kind": "exposure", "host": host, "status": "running"},
    ]])
    engine.dispose()
    from spica.monitor import in_progress

    expected = {entry["product"]: entry for entry in in_progress(url)}
    assert set(expected) == {stem, "800003p"}
    current = expected[stem]["current"]
    with override_settings(SPICA=dataclasses.replace(settings.SPICA, monitor_url=url)):
        page = _text(client_for("member").get("/progress/"))
        assert f"<h2>{stem} <small>{host}</small>" in page
        assert re.search(rf'<li class="running current" title="coadd_stack">{re.escape(current)}', page)
        assert "800003p" not in page  # a PI exposure, hidden from a CFHTLS member
        assert "800003p" in _text(client_for("pi1").get("/progress/"))


def test_sent_and_arrival_columns_come_from_the_transfer_records(survey, client_for, results_dir):
    import shutil

    from spica.web.data import clear_cache

    transfer = pytest.importorskip("spica.transfer.state")
    try:
        with transfer.connect(results_dir) as connection:
            connection.execute("INSERT INTO arrivals (file, expnum, arrived) VALUES (?, ?, ?)",
                               ("800002p.fits", 800002, "2004-12-07T13:14:48Z"))
            connection.execute("INSERT INTO deliveries (delivery, area, kind, product, release, status) "
                               "VALUES ('step1/800002p', 'outgoing', 'step1', '800002p', 'step1', 'sent')")
            connection.execute("INSERT INTO files (delivery, file, product, release, sent_at) VALUES "
                               "('step1/800002p', '800002p_weight.fits.fz', '800002p', 'step1', '2005-01-15')")
        clear_cache()  # the finished-products lookup is kept 2 s with its snapshot
        exported = _csv(client_for("staff1")).set_index("expnum")
        assert exported.loc[800002, "sent_yn"] == "Y" and exported.loc[800002, "arrived"] == "2004-12-07T13:14:48Z"
        assert (exported.drop(800002)["sent_yn"] == "N").all()
        assert re.search(r'<th>Sent out</th><td class="num">1</td>', _text(client_for("staff1").get("/")))
        assert re.search(r'<th>Sent out</th><td class="num">0</td>', _text(client_for("pi1").get("/")))
        # step 1 rerun after a fix: its new delivery (not sent yet) supersedes the sent one
        with transfer.connect(results_dir) as connection:
            connection.execute("UPDATE deliveries SET superseded_by = 'step1/800002p_v2' "
                               "WHERE delivery = 'step1/800002p'")
            connection.execute("INSERT INTO deliveries (delivery, area, kind, product, release, status) "
                               "VALUES ('step1/800002p_v2', 'outgoing', 'step1', '800002p', 'step1', 'staged')")
            connection.execute("INSERT INTO files (delivery, file, product, release) VALUES "
                               "('step1/800002p_v2', '800002p_weight.fits.fz', '800002p', 'step1')")
        clear_cache()
        assert _csv(client_for("staff1")).set_index("expnum").loc[800002, "sent_yn"] == "N"
    finally:
        shutil.rmtree(results_dir / "transfer", ignore_errors=True)
        clear_cache()
