"""The pages of the operation interface.

Every view reads the survey through :func:`_visible`, i.e.
:func:`spica.web.access.visible` for the logged-in user: pages, counts,
plots, CSV export, thumbnails and files all see the same filtered rows.
Login is required everywhere (``LoginRequiredMiddleware``).
"""

from __future__ import annotations

import csv
import math
import mimetypes
import os
import threading
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import (
    FileResponse,
    Http404,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from spica.paths import QA_PLOTS, STACK_THUMBNAILS, exposure_name, product_path, scamp_folder, step1_path
from spica.release.selection import SURVEY_COMPONENTS
from spica.sky import format_dec, format_dec_rounded, format_ra, format_ra_rounded
from spica.skywatcher import draw_map, render as render_map
from spica.web import access
from spica.web.data import survey
from spica.web.forms import PAGE_SIZES, GradeForm, ReleaseForm, SearchForm, SkyWatcherForm
from spica.web.grades import save_grade
from spica.web.models import GradeRecord
from spica.web.plots import PLOTS, render_plot

__all__ = ["context", "status", "plot", "pending", "products", "images", "exposure", "product", "grade",
           "files", "in_progress", "skywatcher", "skywatcher_map"]

#: Columns of the image-by-image summary and of its CSV export (seed 6.2).
SUMMARY_COLUMNS = [
    ("name", "Image"), ("object", "Object"), ("runid", "RunId"), ("filter", "Filter"),
    ("exptime", "Exp time (s)"), ("date_obs", "Date obs"), ("utc_obs", "Utc obs"), ("skyprobe", "Skyprobe"),
    ("arrived", "Arrival date"), ("ra", "RA"), ("dec", "Dec"), ("grade", "Grade"),
    ("input_qa_yn", "Input Quality Assessment"),
    ("processed_yn", "Spica processing"), ("output_qa_yn", "Output Quality Assessment"),
    ("sent_yn", "Sent out"), ("node", "Node"),
]
#: QualityFITS-in plots shown on an exposure's page and side by side when grading.
EXPOSURE_PLOTS = [key for key, suffix in QA_PLOTS.items() if suffix.endswith(".png")]
GRADING_PLOTS = ["fwhm_histo", "bkg_histo", "rhmag", "ell", "psf_m", "m_med", "wmm_med", "star_histo"]
THUMBNAIL = "m_med"


def context(request) -> dict:
    """Template context of every page: the user's role and the survey name."""
    scope = access.scope_for(getattr(request, "user", None))
    return {"scope": scope, "survey_name": settings.SPICA.survey_name}


def _visible(request) -> access.Visible:
    return access.visible(access.scope_for(request.user), survey(settings.SPICA))


def _bad_request(request, form) -> HttpResponse:
    errors = "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
    response = render(request, "spica_web/error.html", {"message": f"Invalid query: {errors}"}, status=400)
    return response


def _percent(count: int, total: int) -> str:
    return f"{100.0 * count / total:.0f} %" if total else "0 %"


def _counts(frame: pd.DataFrame, column: str, total: int, order=None) -> list[tuple[str, int, str]]:
    values = frame[column].value_counts()
    order = [k for k in (order or []) if k in values.index]
    keys = order + sorted(k for k in values.index if k not in order)
    return [(str(k) or "—", int(values[k]), _percent(int(values[k]), total)) for k in keys]


def _with_steps(visible: access.Visible) -> pd.DataFrame:
    """The visible exposures with their step columns (Y/N) as of now."""
    progress = visible.survey.progress()
    frame = visible.exposures.copy()
    frame["processed"] = progress.processed.loc[frame.index].to_numpy() if len(frame) else []
    frame["output_qa"] = progress.output_qa.loc[frame.index].to_numpy() if len(frame) else []
    frame["sent"] = progress.sent.loc[frame.index].to_numpy() if len(frame) else []
    frame["arrived"] = progress.arrived.loc[frame.index].to_numpy() if len(frame) else []
    for column in ("input_qa", "processed", "output_qa", "sent"):
        frame[f"{column}_yn"] = frame[column].map({True: "Y", False: "N"})
    return frame


def status(request):
    """Survey status: images available, steps done, counts by RunID/year, filter, node, stack type, grade."""
    visible = _visible(request)
    progress = visible.survey.progress()
    exposures = visible.exposures
    columns = ["status", "cfhtls", "input_qa", "runid", "year", "filter", "node", "component", "grade"]
    mask = exposures["expnum"].notna()
    numbered = exposures.loc[mask, columns].assign(processed=progress.processed[mask[mask].index].to_numpy(),
                                                   output_qa=progress.output_qa[mask[mask].index].to_numpy(),
                                                   sent=progress.sent[mask[mask].index].to_numpy())
    total = len(numbered)
    cfhtls = int(numbered["cfhtls"].sum())
    no_runid = int((numbered["runid"] == "").sum())  # files whose header could not be read
    pi = total - cfhtls - no_runid
    summary = [
        ("Images available", total, ""),
        ("CFHTLS images", cfhtls, _percent(cfhtls, total)),
        ("PI images", pi, _percent(pi, total)),
        *([("No RUNID (unreadable)", no_runid, _percent(no_runid, total))] if no_runid else []),
        ("Input quality assessment", int(numbered["input_qa"].sum()), _percent(int(numbered["input_qa"].sum()), total)),
        ("Spica", int(numbered["processed"].sum()), _percent(int(numbered["processed"].sum()), total)),
        ("Output quality assessment", int(numbered["output_qa"].sum()),
         _percent(int(numbered["output_qa"].sum()), total)),
        ("Sent out", int(numbered["sent"].sum()), _percent(int(numbered["sent"].sum()), total)),
    ]
    by_year = [(year, _counts(group, "runid", total))
               for year, group in numbered[numbered["year"] != ""].groupby("year", sort=True)]
    accepted = numbered[numbered["status"] == "ok"]
    tables = [
        ("Filter", _counts(accepted, "filter", total)),
        ("Node", _counts(accepted, "node", total)),
        ("Stack type", _counts(accepted, "component", total, list(SURVEY_COMPONENTS))),
        ("Grade", _counts(accepted, "grade", total, ["A", "B", "C", "D"])),
    ]
    products = visible.products
    releases = []
    for release, group in products.groupby("release"):
        done = sum((release, s) in progress.done for s in group["stem"])
        releases.append((release, len(group), done, len(group) - done))
    return render(request, "spica_web/status.html", {
        "summary": summary, "by_year": by_year, "tables": tables, "plots": PLOTS, "releases": releases,
        "quarantined": int((numbered["status"] != "ok").sum()), "errors": visible.survey.errors,
    })


def plot(request, name: str):
    """One status plot, PNG, of the visible exposures (cached per role and survey snapshot)."""
    if name not in PLOTS:
        raise Http404("no such plot")
    visible = _visible(request)
    key = f"plot:{name}:{visible.scope.key}:{id(visible.survey)}"
    data = cache.get(key)
    if data is None:
        data = render_plot(name, visible.exposures)
        cache.set(key, data, 300)
    return HttpResponse(data, content_type="image/png")


def _release(request, products: pd.DataFrame) -> tuple[str | None, HttpResponse | None]:
    form = ReleaseForm(request.GET)
    if not form.is_valid():
        return None, _bad_request(request, form)
    release = form.cleaned_data["release"] or (sorted(products["release"].unique())[-1] if len(products) else "")
    return release, None


def pending(request):
    """Pending processes of a release: the seed's table and its summary tables."""
    visible = _visible(request)
    release, error = _release(request, visible.products)
    if error:
        return error
    progress = visible.survey.progress()
    products = visible.products[visible.products["release"] == release]
    done = [(release, s) in progress.done for s in products["stem"]]
    left = products[pd.Series([not d for d in done], index=products.index, dtype=bool)].sort_values("name")
    rows = [{
        "name": r.name, "stem": r.stem, "mode": r.mode, "version": r.version, "survey": r.survey,
        "filter": r.filter, "ra": format_ra(float(r.ra), sep=(" h ", " m ")),
        "dec": format_dec(float(r.dec), sep=(" ° ", " ' ")), "node": r.node,
        "n_scamp": int(r.n_scamp), "n_swarp": int(r.n_swarp),
    } for r in left.itertuples(index=False)]

    def counts(column, order=None):
        values = left[column].astype(str).value_counts()
        keys = [k for k in (order or []) if k in values.index] + sorted(k for k in values.index
                                                                        if k not in (order or []))
        return [(k, int(values[k])) for k in keys]

    longest = left.sort_values(["n_swarp", "name"], ascending=[False, True]).head(10)
    return render(request, "spica_web/pending.html", {
        "release": release, "releases": sorted(visible.products["release"].unique()), "rows": rows,
        "by_survey": counts("survey", list(SURVEY_COMPONENTS)), "by_node": counts("node"),
        "by_filter": counts("filter"),
        "longest": [(r.name, r.stem, r.node, int(r.n_swarp)) for r in longest.itertuples(index=False)],
        "n_done": sum(done), "n_total": len(products),
    })


def products(request):
    """Every visible product of a release, done or pending, with a link to its page."""
    visible = _visible(request)
    release, error = _release(request, visible.products)
    if error:
        return error
    progress = visible.survey.progress()
    rows = visible.products[visible.products["release"] == release].sort_values("name")
    table = [{"name": r.name, "stem": r.stem, "mode": r.mode, "survey": r.survey, "filter": r.filter,
              "node": r.node, "n_swarp": int(r.n_swarp),
              "status": "done" if (release, r.stem) in progress.done else "pending"}
             for r in rows.itertuples(index=False)]
    return render(request, "spica_web/products.html", {
        "release": release, "releases": sorted(visible.products["release"].unique()), "rows": table})


def _search(frame: pd.DataFrame, data: dict) -> pd.DataFrame:
    def contains(column: str, value: str) -> pd.Series:
        return frame[column].astype(str).str.contains(value, case=False, regex=False)

    mask = pd.Series(True, index=frame.index)
    for field, column in (("filename", "file"), ("runid", "runid"), ("filter", "filter"), ("object", "object"),
                          ("node", "node")):
        if data.get(field):
            mask &= contains(column, data[field]) | (contains("name", data[field]) if field == "filename"
                                                     else False)
    for field, column in (("ra", "ra_deg"), ("dec", "dec_deg"), ("exptime", "exptime"), ("skyprobe", "skyprobe")):
        low, high = data.get(f"{field}_min"), data.get(f"{field}_max")
        if low is not None:
            mask &= frame[column] >= low
        if high is not None:
            mask &= frame[column] <= high
    if data.get("date_min"):
        mask &= frame["date"] >= pd.Timestamp(data["date_min"])
    if data.get("date_max"):
        mask &= frame["date"] <= pd.Timestamp(data["date_max"])
    if data.get("grade"):
        mask &= frame["grade"] == data["grade"]
    status = data.get("status")
    if status in ("ok", "quarantined"):
        mask &= (frame["status"] == "ok") if status == "ok" else (frame["status"] != "ok")
    elif status == "not_processed":
        mask &= (frame["status"] == "ok") & ~frame["processed"]
    elif status == "ungraded":
        mask &= frame["grade_provisional"].fillna(False).astype(bool)
    elif status:
        mask &= frame[status].astype(bool)
    return frame[mask]


def _display_rows(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["ra"] = [format_ra_rounded(v) if pd.notna(v) else "" for v in frame["ra_deg"]]
    frame["dec"] = [format_dec_rounded(v) if pd.notna(v) else "" for v in frame["dec_deg"]]
    return frame


def images(request):
    """The image-by-image summary: search, paging, CSV export of the whole result."""
    form = SearchForm(request.GET)
    if not form.is_valid():
        return _bad_request(request, form)
    data = form.cleaned_data
    export = request.GET.get("export")
    if export not in (None, "", "csv"):
        return HttpResponseBadRequest("export must be 'csv'")
    visible = _visible(request)
    frame = _search(_with_steps(visible), data)
    frame = frame.sort_values("expnum", na_position="last", kind="stable")
    if export == "csv":
        return _csv(frame)
    per_page = data.get("display") or PAGE_SIZES[0]
    total = len(frame)
    pages = max(1, math.ceil(total / per_page))
    page = min(data.get("page") or 1, pages)
    shown = _display_rows(frame.iloc[(page - 1) * per_page: page * per_page])
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("export", None)
    rows = []
    for record in shown.to_dict("records"):
        thumb = step1_path(settings.SPICA.results, int(record["expnum"]), THUMBNAIL) \
            if pd.notna(record["expnum"]) and record["status"] == "ok" else None
        rows.append({"record": record, "cells": [_blank(record.get(c, "")) for c, _ in SUMMARY_COLUMNS],
                     "thumb": _file_url(thumb) if thumb is not None and thumb.exists() else None})
    return render(request, "spica_web/images.html", {
        "form": form, "rows": rows, "headers": [h for _, h in SUMMARY_COLUMNS], "total": total,
        "shown": len(shown), "page": page, "pages": pages, "query": query.urlencode(),
    })


def _blank(value):
    """A table cell: missing values (None, NaN) empty."""
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _csv(frame: pd.DataFrame) -> StreamingHttpResponse:
    columns = ["expnum", "file", "status", "object", "runid", "filter", "exptime", "date_obs", "utc_obs",
               "skyprobe", "arrived", "ra_deg", "dec_deg", "airmass", "qa_fwhm_arcsec", "grade", "node",
               "input_qa_yn", "processed_yn", "output_qa_yn", "sent_yn"]

    class Echo:
        def write(self, value):
            return value

    writer = csv.writer(Echo())
    records = frame[columns].astype(object).where(frame[columns].notna(), "")

    def lines():
        yield writer.writerow(columns)
        for row in records.itertuples(index=False):
            yield writer.writerow([int(v) if isinstance(v, float) and c == "expnum" else v
                                   for c, v in zip(columns, row)])

    response = StreamingHttpResponse(lines(), content_type="text/csv")
    response["Content-Disposition"] = 'attachment; filename="spica_images.csv"'
    return response


def _file_url(path: Path | None) -> str | None:
    if path is None:
        return None
    relative = Path(path).resolve().relative_to(settings.SPICA.results.resolve()).as_posix()
    return reverse("files", args=[relative])


def _votable(path: Path) -> list[tuple[str, list[str], list[list[str]]]]:
    from astropy.io.votable import parse

    tables = []
    for table in parse(str(path)).iter_tables():
        astropy_table = table.to_table()
        names = [n for n in astropy_table.colnames if len(astropy_table[n].shape) <= 1]
        rows = [[_cell(row[n]) for n in names] for row in astropy_table]
        tables.append((table.name or table.ID or "", names, rows))
    return tables


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    try:
        import numpy as np

        if isinstance(value, np.floating):
            return "" if np.ma.is_masked(value) or not np.isfinite(value) else f"{float(value):.4g}"
    except ImportError:  # pragma: no cover
        pass
    return "" if value is None or str(value) == "--" else str(value)


def exposure(request, expnum: int):
    """One exposure: QualityFITS-in plots and XML table, grade and its history, its products."""
    visible = _visible(request)
    if expnum > 10**8 or not visible.sees_exposure(expnum):
        raise Http404("no such exposure")
    rows = visible.exposures[visible.exposures["expnum"] == expnum]
    record = {k: _blank(v) for k, v in _display_rows(rows).iloc[0].to_dict().items()}
    results = settings.SPICA.results
    plots = [(key, _file_url(step1_path(results, expnum, key)))
             for key in EXPOSURE_PLOTS if step1_path(results, expnum, key).exists()]
    xml = step1_path(results, expnum, "qa_xml")
    tables = _votable(xml) if xml.exists() else []
    members = visible.survey.members
    entered = members[members["expnum"] == expnum]
    products = [(r, s) for r, s in zip(entered["release"], entered["stem"]) if visible.sees_product(r, s)]
    history = GradeRecord.objects.filter(expnum=expnum)
    neighbours = _neighbours(visible, expnum)
    return render(request, "spica_web/exposure.html", {
        "e": record, "expnum": expnum, "name": exposure_name(expnum), "plots": plots, "tables": tables,
        "products": products, "history": history, "xml_url": _file_url(xml) if xml.exists() else None,
        **neighbours,
    })


def _neighbours(visible: access.Visible, expnum: int) -> dict:
    expnums = sorted(int(e) for e in visible.exposures.loc[visible.exposures["status"] == "ok", "expnum"].dropna())
    if expnum not in expnums:
        return {"previous": None, "next": None}
    index = expnums.index(expnum)
    return {"previous": expnums[index - 1] if index else None,
            "next": expnums[index + 1] if index + 1 < len(expnums) else None}


def product(request, release: str, stem: str):
    """One release product: summary tables, SCAMP check plots, thumbnails, provenance."""
    visible = _visible(request)
    if not visible.sees_product(release, stem):
        raise Http404("no such product")
    from spica.products.summary import read_product_summary

    row = visible.survey.product(release, stem)
    results = settings.SPICA.results
    astrometry = visible.sees_astrometry(release, stem)
    summary_path = product_path(results, release, stem, "summary")
    tables = []
    if summary_path.exists():
        for name, table in read_product_summary(summary_path).items():
            if name in ("Astrometric_Files", "Filters", "Astrometry", "Photometry", "SCAMP_Run",
                        "SCAMP_Instruments", "SCAMP_Photometric_Statistics") and not astrometry:
                continue
            names = [n for n in table.colnames if len(table[n].shape) <= 1]
            tables.append((name, names, [[_cell(r[n]) for n in names] for r in table]))
    thumbs = [(key, _file_url(product_path(results, release, stem, key))) for key in STACK_THUMBNAILS
              if product_path(results, release, stem, key).exists()]
    shown = {Path(url).name for _, url in thumbs}
    folder = product_path(results, release, stem, "image").parent
    quality = [(p.name.removeprefix(stem + "_").removesuffix(".png"), _file_url(p))
               for p in sorted(folder.glob(f"{stem}_*.png")) if p.name not in shown] if folder.is_dir() else []
    folder = scamp_folder(results, release, stem)
    checks = [(p.name, _file_url(p)) for p in sorted(folder.glob("*.png"))] if astrometry and folder.is_dir() else []
    cmd = product_path(results, release, stem, "cmd")
    provenance_xml = product_path(results, release, stem, "xml")
    inputs = _provenance_inputs(provenance_xml, visible) if provenance_xml.exists() else []
    stacked = sorted(visible.survey.stack_lists.get((release, stem), frozenset()))
    progress = visible.survey.progress()
    return render(request, "spica_web/product.html", {
        "release": release, "stem": stem, "p": row, "tables": tables, "thumbs": thumbs, "checks": checks, "quality": quality,
        "astrometry": astrometry, "cmd_text": cmd.read_text()[:200_000] if cmd.exists() else None,
        "cmd_url": _file_url(cmd) if cmd.exists() else None, "inputs": inputs, "stacked": stacked,
        "done": (release, stem) in progress.done,
        "image_url": _file_url(product_path(results, release, stem, "image"))
        if (release, stem) in progress.done else None,
    })


def _provenance_inputs(path: Path, visible: access.Visible) -> list[tuple[str, str, str, str]]:
    """The inputs of a product's provenance XML (kind, file, size, SHA-256), PI files hidden."""
    import re
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except ET.ParseError:
        return []
    rows = []
    for element in root.iter("FILE"):
        if element.get("kind") is None:
            continue
        name = element.get("name", "")
        match = re.search(r"(?<!\d)(\d{6,7})p", Path(name).name)
        if match and not visible.sees_exposure(int(match[1])):
            continue
        rows.append((element.get("kind", ""), name, element.get("size", ""), element.get("sha256", "")))
    return rows


@require_http_methods(["GET", "POST"])
def grade(request, expnum: int):
    """Grade an exposure (staff): QA plots side by side, A-D and a comment, next/previous by keyboard."""
    visible = _visible(request)
    if not visible.scope.staff:
        raise PermissionDenied("grading is for staff")
    if expnum > 10**8 or not visible.sees_exposure(expnum):
        raise Http404("no such exposure")
    neighbours = _neighbours(visible, expnum)
    if request.method == "POST":
        form = GradeForm(request.POST)
        if not form.is_valid():
            return _bad_request(request, form)
        now = datetime.now(timezone.utc)
        try:
            previous = save_grade(settings.SPICA.grades, expnum=expnum, grade=form.cleaned_data["grade"],
                                  comment=form.cleaned_data["comment"], graded_by=request.user.get_username(),
                                  date=now)
        except (ValueError, OSError) as error:
            return render(request, "spica_web/error.html", {"message": f"grade not saved: {error}"}, status=409)
        GradeRecord.objects.create(expnum=expnum, grade=form.cleaned_data["grade"],
                                   comment=form.cleaned_data["comment"], graded_by=request.user.get_username(),
                                   date=now, previous=previous or "")
        target = neighbours["next"] if request.POST.get("then") == "next" and neighbours["next"] else expnum
        return redirect("grade", expnum=target)
    record = visible.exposures[visible.exposures["expnum"] == expnum].iloc[0].to_dict()
    results = settings.SPICA.results
    plots = [(key, _file_url(step1_path(results, expnum, key)))
             for key in GRADING_PLOTS if step1_path(results, expnum, key).exists()]
    initial = {"grade": record["grade"] or None, "comment": "" if record.get("grade_provisional") is True
               else record.get("grade_comment", "")}
    return render(request, "spica_web/grade.html", {
        "e": record, "expnum": expnum, "name": exposure_name(expnum), "plots": plots,
        "form": GradeForm(initial=initial), "history": GradeRecord.objects.filter(expnum=expnum)[:20],
        **neighbours,
    })


def files(request, relative: str):
    """Serve a file of the results tree that the user may read (never outside it)."""
    try:
        path, normalised = access.safe_path(settings.SPICA.results, relative)
    except access.UnsafePath as error:
        return HttpResponseBadRequest(f"refused path: {error}")
    visible = _visible(request)
    if not visible.may_read(normalised):
        # the same answer whether the file exists or not: nothing leaks
        raise Http404("no such file")
    if not path.is_file():
        raise Http404("no such file")
    content_type, _ = mimetypes.guess_type(path.name)
    if path.suffix in (".cmd", ".list", ".csv", ".txt", ".head", ".json") or content_type is None:
        content_type = "text/plain"
    response = FileResponse(open(path, "rb"), content_type=content_type)
    if content_type not in ("image/png", "text/plain"):
        response["Content-Disposition"] = f'attachment; filename="{path.name}"'
    return response


def in_progress(request):
    """Products being made now, with their steps and the current one (spica.monitor)."""
    try:
        from spica.monitor import in_progress as monitor_in_progress
    except ImportError:
        monitor_in_progress = None
    url = settings.SPICA.monitor_url
    items, message = [], None
    if monitor_in_progress is None or not url:
        message = "monitoring not configured"
    else:
        try:
            items = monitor_in_progress(url)
        except Exception as error:  # noqa: BLE001 - shown on the page, never a 500
            message = f"monitor unavailable: {type(error).__name__}: {error}"
        visible = _visible(request)
        items = [item for item in items if _may_see_running(visible, str(item.get("product", "")))]
    return render(request, "spica_web/progress.html", {"items": items, "message": message, "refresh": 5})


def _may_see_running(visible: access.Visible, product_name: str) -> bool:
    """Whether a running product (stack stem, image stem or exposure) is visible to the user."""
    import re

    if visible.scope.staff:
        return True
    match = re.fullmatch(r"(\d{6,7})p", product_name)
    if match:
        return visible.sees_exposure(int(match[1]))
    match = re.fullmatch(r".*_(T\d{4})", product_name)
    release = match[1] if match else None
    products = visible.products
    if release:
        return visible.sees_product(release, product_name)
    return bool((products["stem"] == product_name).any())


# --------------------------------------------------------------------------
# SkyWatcher (seed 7): the selection form, the map (PNG, PDF), the selected images
# --------------------------------------------------------------------------

#: Size of the web map (pixels at :data:`SKY_DPI`; the PDF has the same size in inches).
SKY_SIZE = (1200, 675)
SKY_DPI = 100
#: Rows of the selected-images list shown on the page (the count is of all of them).
SKY_LISTED = 500
#: Seconds a rendered map is kept in the cache (per scope, survey snapshot and query).
SKY_CACHE_SECONDS = 120
_SKY_FORMATS = {"png": "image/png", "pdf": "application/pdf"}
_SKY_LOCK = threading.Lock()
_SKY_FRAME: dict[str, tuple[object, pd.DataFrame]] = {}
_FOOTPRINTS: dict[int, tuple[float, "np.ndarray"]] = {}


def _sky_frame(visible: access.Visible) -> pd.DataFrame:
    """The visible exposures annotated for SkyWatcher (:func:`spica.skywatcher.survey_state`).

    The whole survey is annotated once per snapshot (release membership from the plans'
    stack lists, ``sent`` from the transfer state as the command line does); the rows
    returned are only those :func:`spica.web.access.visible` lets the user see.
    """
    from spica.skywatcher import sent_exposures, survey_state

    snapshot = visible.survey
    with _SKY_LOCK:
        cached = _SKY_FRAME.get("frame")
        if cached is None or cached[0] is not snapshot:
            members = snapshot.members
            releases = {str(r): [int(e) for e in g["expnum"]] for r, g in members.groupby("release")} \
                if len(members) else {}
            frame = snapshot.exposures
            sent = sent_exposures(settings.SPICA.results)
            if sent is not None:
                frame = frame.assign(sent=frame["expnum"].astype("float").isin(sent).to_numpy())
            annotated = survey_state(frame, settings.SPICA.raw.get("survey") or {}, releases)
            _SKY_FRAME["frame"] = cached = (snapshot, annotated)
    return cached[1].loc[visible.exposures.index]


def _exposures_dir() -> Path | None:
    from spica.web.config import DIRECTORY_ENV

    folder = (settings.SPICA.raw.get("inputs") or {}).get("exposures")
    if not folder:
        return None
    folder = Path(folder)
    return folder if folder.is_absolute() else Path(os.environ.get(DIRECTORY_ENV) or os.getcwd()) / folder


def _footprints(expnums) -> tuple[pd.DataFrame, int]:
    """CCD footprints of ``expnums`` (:func:`spica.skywatcher.read_ccd_footprints`), kept in
    memory per exposure until its step 1 catalogue changes; and how many exposures have none."""
    import warnings

    import numpy as np

    from spica.skywatcher import FOOTPRINT_COLUMNS, read_ccd_footprints

    results = settings.SPICA.results
    wanted = sorted({int(e) for e in expnums})

    def stamp(expnum: int) -> float:
        try:
            return step1_path(results, expnum, "ldac").stat().st_mtime_ns
        except OSError:
            return -1.0

    stamps = {e: stamp(e) for e in wanted}
    with _SKY_LOCK:
        missing = [e for e in wanted if _FOOTPRINTS.get(e, (None,))[0] != stamps[e]]
    if missing:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an exposure without WCS: drawn as a field-sized square
            table = read_ccd_footprints(missing, results=results, exposures_dir=_exposures_dir())
        values = table[list(FOOTPRINT_COLUMNS)].to_numpy(float)
        by_expnum = {int(e): values[table["expnum"].to_numpy() == e] for e in table["expnum"].unique()}
        with _SKY_LOCK:
            for expnum in missing:
                _FOOTPRINTS[expnum] = (stamps[expnum], by_expnum.get(expnum, np.empty((0, len(FOOTPRINT_COLUMNS)))))
    with _SKY_LOCK:
        blocks = [_FOOTPRINTS[e][1] for e in wanted if e in _FOOTPRINTS]
    values = np.concatenate(blocks) if blocks else np.empty((0, len(FOOTPRINT_COLUMNS)))
    frame = pd.DataFrame(values, columns=list(FOOTPRINT_COLUMNS)).astype({"expnum": int, "ccd": int})
    return frame, len(wanted) - frame["expnum"].nunique()


def _selection_view(selected: pd.DataFrame, footprints: pd.DataFrame) -> tuple[tuple[float, float], float] | None:
    """Centre and field of view (deg across) framing the selected exposures' outlines, or None.

    The centre is the mean direction of the exposure centres; the field holds every CCD
    corner (a MegaCam field around exposures without recorded CCDs) with a 15 % margin.
    """
    import numpy as np

    from spica.skywatcher.drawing import MEGACAM_FIELD_DEG
    from spica.skywatcher.footprints import corners
    from spica.skywatcher.selection import _angular_distance

    ra = pd.to_numeric(selected["ra_deg"], errors="coerce").to_numpy(float)
    dec = pd.to_numeric(selected["dec_deg"], errors="coerce").to_numpy(float)
    good = np.isfinite(ra) & np.isfinite(dec)
    if not good.any():
        return None
    r, d = np.radians(ra[good]), np.radians(dec[good])
    x, y, z = (np.mean(np.cos(d) * np.cos(r)), np.mean(np.cos(d) * np.sin(r)), np.mean(np.sin(d)))
    centre = (float(np.degrees(np.arctan2(y, x)) % 360), float(np.degrees(np.arctan2(z, np.hypot(x, y)))))
    expnums = pd.to_numeric(selected["expnum"], errors="coerce").to_numpy(float)[good]
    with_ccds = np.isin(expnums, footprints["expnum"].to_numpy(float))
    radius = 0.0
    if (~with_ccds).any():
        radius = float(np.max(_angular_distance(ra[good][~with_ccds], dec[good][~with_ccds], *centre))) \
            + MEGACAM_FIELD_DEG / np.sqrt(2)
    if len(footprints):
        c_ra, c_dec = corners(footprints)
        radius = max(radius, float(np.nanmax(_angular_distance(c_ra, c_dec, *centre))))
    width, height = SKY_SIZE
    fov = max(2 * radius * 1.15, 0.02) * width / height  # the selection's circle fits the map's height
    return centre, float(min(fov, 180.0))


def _sky_query(request):
    """The validated form, the selected visible exposures and the map options, or an error response."""
    from spica.skywatcher import MapError, MapOptions, SelectionError, config_boxes, select_exposures

    form = SkyWatcherForm(request.GET)
    if not form.is_valid():
        return None, _bad_request(request, form)
    visible = _visible(request)
    try:
        selected = select_exposures(_sky_frame(visible), form.criteria())
    except SelectionError as error:
        return None, render(request, "spica_web/error.html", {"message": f"Invalid selection: {error}"},
                            status=400)
    fields = form.map_fields()
    if form.cleaned_data.get("centring") == "selection":
        numbered = pd.to_numeric(selected["expnum"], errors="coerce").dropna().astype(int)
        framing = _selection_view(selected, _footprints(numbered)[0])
        if framing is not None:
            fields["centre"] = framing[0]
            fields["fov_deg"] = fields["fov_deg"] or framing[1]
        elif fields["centre"] is None:
            fields["fov_deg"] = None  # nothing selected to centre on: the whole sky
    raw = settings.SPICA.raw
    sky = raw.get("skywatcher") or {}
    options = MapOptions(**fields, width_px=SKY_SIZE[0], height_px=SKY_SIZE[1], dpi=SKY_DPI,
                         background_color=sky.get("background_color", "white"),
                         grid_color=sky.get("grid_color", "#8c8c8c"),
                         filter_colors=sky.get("filter_colors") or MapOptions().filter_colors,
                         boxes=config_boxes(raw))
    try:
        options.check()
    except MapError as error:
        return None, render(request, "spica_web/error.html", {"message": f"Invalid map: {error}"}, status=400)
    return (form, visible, selected, options), None


def skywatcher(request):
    """SkyWatcher: the selection form, the map of the selected images and their list."""
    query, error = _sky_query(request)
    if error:
        return error
    form, visible, selected, options = query
    from spica.skywatcher import image_list

    listing = image_list(selected)
    shown = listing.head(SKY_LISTED)
    rows = [{"expnum": None if pd.isna(r["expnum"]) else int(r["expnum"]),
             "cells": [_blank(r.get(c)) for c in ("object", "runid", "survey", "filter", "date_obs", "exptime")],
             "ra": format_ra_rounded(r["ra_deg"]) if pd.notna(r.get("ra_deg")) else "",
             "dec": format_dec_rounded(r["dec_deg"]) if pd.notna(r.get("dec_deg")) else "",
             "grade": _blank(r.get("grade")), "progress": r.get("progress", ""), "releases": r.get("releases", "")}
            for r in shown.to_dict("records")]
    query = request.GET.urlencode()
    suffix = f"?{query}" if query else ""
    zoom = (f"{options.fov_deg:.3g} deg field centred on RA {options.centre[0]:.4f}, Dec {options.centre[1]:.4f}"
            if options.fov_deg else "whole sky")
    return render(request, "spica_web/skywatcher.html", {
        "form": form, "rows": rows, "total": len(listing), "listed": len(rows),
        "png_url": reverse("skywatcher_map", args=["png"]) + suffix,
        "pdf_url": reverse("skywatcher_map", args=["pdf"]) + suffix, "zoom": zoom,
        "projection": options.projection, "width": SKY_SIZE[0], "height": SKY_SIZE[1],
    })


def skywatcher_map(request, fmt: str):
    """The SkyWatcher map of the page's query as PNG (shown) or PDF ("save as PDF"), drawn from
    the exposures (and release products) the user may see only; cached per scope and query."""
    import hashlib

    if fmt not in _SKY_FORMATS:
        raise Http404("no such format")
    query, error = _sky_query(request)
    if error:
        return error
    form, visible, selected, options = query
    canonical = "&".join(f"{k}={v}" for k, values in sorted(request.GET.lists()) for v in sorted(values))
    key = "skywatcher:" + hashlib.sha256(
        f"{fmt}|{visible.scope.key}|{id(visible.survey)}|{canonical}".encode()).hexdigest()
    data = cache.get(key)
    if data is None:
        numbered = pd.to_numeric(selected["expnum"], errors="coerce").dropna().astype(int)
        footprints, _ = _footprints(numbered)
        products = None
        if form.cleaned_data.get("products") and len(visible.products):
            done = visible.survey.progress().done
            products = visible.products.assign(status=[
                "done" if (r, s) in done else "pending"
                for r, s in zip(visible.products["release"], visible.products["stem"])])
        from spica.skywatcher import FootprintError, MapError

        try:
            figure = draw_map(selected, options, footprints=footprints, products=products)
            data = render_map(figure, fmt)
        except (MapError, FootprintError) as error:
            return render(request, "spica_web/error.html", {"message": f"Invalid map: {error}"}, status=400)
        cache.set(key, data, SKY_CACHE_SECONDS)
    response = HttpResponse(data, content_type=_SKY_FORMATS[fmt])
    if fmt == "pdf":
        response["Content-Disposition"] = 'attachment; filename="skywatcher.pdf"'
    return response
