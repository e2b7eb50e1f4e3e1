"""Forms validating every query parameter (a bad value is a 400, never a 500)."""

from __future__ import annotations

from django import forms
from django.core.validators import RegexValidator

from spica.registry import GRADES
from spica.release.selection import SURVEY_COMPONENTS
from spica.skywatcher import PROJECTIONS, STATUSES

__all__ = ["SearchForm", "GradeForm", "ReleaseForm", "SkyWatcherForm", "STATUS_CHOICES", "PAGE_SIZES"]

PAGE_SIZES = (10, 25, 50, 100)
STATUS_CHOICES = [
    ("", "any"), ("ok", "accepted"), ("quarantined", "quarantined"), ("input_qa", "input QA done"),
    ("processed", "SPICA processed"), ("not_processed", "not processed"), ("output_qa", "output QA done"),
    ("sent", "sent out"), ("ungraded", "provisional grade only"),
]
_TEXT = RegexValidator(r"^[A-Za-z0-9_.+\- ]*$", "letters, digits, space and _ . + - only")


def _text(label: str, max_length: int = 40) -> forms.CharField:
    return forms.CharField(label=label, required=False, max_length=max_length, validators=[_TEXT],
                           strip=True)


def _number(label: str, low: float, high: float) -> forms.FloatField:
    return forms.FloatField(label=label, required=False, min_value=low, max_value=high)


class SearchForm(forms.Form):
    """The image-by-image summary's search (seed 6.2): every field optional."""

    filename = _text("Filename")
    runid = _text("RunID", 16)
    filter = _text("Filter", 16)
    object = _text("Object / Field")
    node = _text("Node", 32)
    grade = forms.ChoiceField(label="Grade", required=False, choices=[("", "any")] + [(g, g) for g in GRADES])
    status = forms.ChoiceField(label="Status", required=False, choices=STATUS_CHOICES)
    ra_min = _number("RA min (deg)", 0, 360)
    ra_max = _number("RA max (deg)", 0, 360)
    dec_min = _number("Dec min (deg)", -90, 90)
    dec_max = _number("Dec max (deg)", -90, 90)
    date_min = forms.DateField(label="DateObs min", required=False)
    date_max = forms.DateField(label="DateObs max", required=False)
    exptime_min = _number("Exp. time min (s)", 0, 1e6)
    exptime_max = _number("Exp. time max (s)", 0, 1e6)
    skyprobe_min = _number("SkyProbe min", -1e3, 1e3)
    skyprobe_max = _number("SkyProbe max", -1e3, 1e3)
    display = forms.TypedChoiceField(label="Display", required=False, coerce=int, empty_value=PAGE_SIZES[0],
                                     choices=[(n, n) for n in PAGE_SIZES])
    page = forms.IntegerField(label="Page", required=False, min_value=1, max_value=10**6)


class GradeForm(forms.Form):
    """A grade and its comment."""

    grade = forms.ChoiceField(choices=[(g, g) for g in GRADES], widget=forms.RadioSelect)
    comment = forms.CharField(required=False, max_length=500,
                              widget=forms.TextInput(attrs={"size": 60, "autocomplete": "off"}))


class ReleaseForm(forms.Form):
    """A release name (``T0002``)."""

    release = forms.RegexField(regex=r"^T\d{4}$", required=False, max_length=5)


_LIST = RegexValidator(r"^[A-Za-z0-9_.+\-, ]*$", "letters, digits, comma, space and _ . + - only")


def _split(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


class SkyWatcherForm(forms.Form):
    """The SkyWatcher page's query: the command line's selection and map options.

    Every field is optional; :meth:`criteria` and :meth:`map_options` give the
    :class:`spica.skywatcher.Criteria` and the map fields of
    :class:`spica.skywatcher.MapOptions` (``bin/spica skywatcher`` fills the
    same two from its flags). A sky box needs its four limits, a cone its
    three values, a zoom (field of view) a centre or ``centring=selection``.
    """

    runid = forms.CharField(label="RunID", required=False, max_length=200, validators=[_LIST], strip=True,
                            help_text="RUNIDs or programme codes, comma-separated")
    component = forms.MultipleChoiceField(label="Survey component", required=False,
                                          choices=[(c, c) for c in SURVEY_COMPONENTS],
                                          widget=forms.CheckboxSelectMultiple)
    filter = forms.CharField(label="Filter", required=False, max_length=100, validators=[_LIST], strip=True,
                             help_text="bands (u,g,r,i,z) or filter names (r.MP9601), comma-separated")
    ra_min = _number("Box RA min (deg)", 0, 360)
    ra_max = _number("Box RA max (deg)", 0, 360)
    dec_min = _number("Box Dec min (deg)", -90, 90)
    dec_max = _number("Box Dec max (deg)", -90, 90)
    cone_ra = _number("Cone RA (deg)", 0, 360)
    cone_dec = _number("Cone Dec (deg)", -90, 90)
    cone_radius = _number("Cone radius (deg)", 0, 180)
    date_start = forms.DateField(label="From date", required=False)
    date_end = forms.DateField(label="To date", required=False)
    status = forms.MultipleChoiceField(label="Processing status", required=False,
                                       choices=[(s, s) for s in STATUSES], widget=forms.CheckboxSelectMultiple)
    projection = forms.ChoiceField(label="Projection", required=False, initial="AIT",
                                   choices=[(k, f"{k} ({v})") for k, v in PROJECTIONS.items()])
    centring = forms.ChoiceField(label="Centre", required=False, initial="given",
                                 choices=[("given", "on the centre given (whole sky: its RA)"),
                                          ("selection", "on the selected images")])
    centre_ra = _number("Centre RA (deg)", 0, 360)
    centre_dec = _number("Centre Dec (deg)", -90, 90)
    fov = forms.FloatField(label="Field of view (deg)", required=False, min_value=0.001, max_value=180)
    outline = forms.ChoiceField(label="Outlines", required=False, initial="ccd",
                                choices=[("ccd", "each CCD"), ("field", "each exposure")])
    color_by = forms.ChoiceField(label="Colour by", required=False, initial="filter",
                                 choices=[("filter", "filter"), ("status", "status")])
    products = forms.BooleanField(label="Release products", required=False)

    def clean(self):
        data = super().clean()
        box = [data.get(k) for k in ("ra_min", "ra_max", "dec_min", "dec_max")]
        if any(v is not None for v in box):
            if any(v is None for v in box):
                raise forms.ValidationError("a sky box needs RA min, RA max, Dec min and Dec max")
            if box[2] > box[3]:
                raise forms.ValidationError("box: Dec min must not exceed Dec max")
        cone = [data.get(k) for k in ("cone_ra", "cone_dec", "cone_radius")]
        if any(v is not None for v in cone) and any(v is None for v in cone):
            raise forms.ValidationError("a cone needs its RA, Dec and radius")
        centre = [data.get("centre_ra"), data.get("centre_dec")]
        if data.get("fov") is not None and data.get("centring") != "selection" and None in centre:
            raise forms.ValidationError("a zoom (field of view) needs a centre RA and Dec, "
                                        "or centring on the selected images")
        if data.get("date_start") and data.get("date_end") and data["date_start"] > data["date_end"]:
            raise forms.ValidationError("the first date is after the last one")
        return data

    def criteria(self):
        """The :class:`spica.skywatcher.Criteria` of the (valid) form."""
        from spica.skywatcher import Criteria

        data = self.cleaned_data
        box = tuple(data[k] for k in ("ra_min", "ra_max", "dec_min", "dec_max")) \
            if data.get("ra_min") is not None else None
        cone = tuple(data[k] for k in ("cone_ra", "cone_dec", "cone_radius")) \
            if data.get("cone_ra") is not None else None
        return Criteria(runids=_split(data.get("runid") or ""), components=list(data.get("component") or []),
                        filters=_split(data.get("filter") or ""), box=box, cone=cone,
                        date_start=data.get("date_start"), date_end=data.get("date_end"),
                        statuses=list(data.get("status") or []))

    def map_fields(self) -> dict:
        """Projection, centre, field of view, outline and colouring of the (valid) form, as
        :class:`spica.skywatcher.MapOptions` keyword arguments (centre None: whole sky or
        ``centring`` on the selection, decided by the view)."""
        data = self.cleaned_data
        centre = (data["centre_ra"], data["centre_dec"]) \
            if data.get("centre_ra") is not None and data.get("centre_dec") is not None else None
        if centre is None and data.get("centre_ra") is not None:
            centre = (data["centre_ra"], 0.0)  # whole sky: only the central meridian
        return {"projection": data.get("projection") or "AIT", "centre": centre, "fov_deg": data.get("fov"),
                "outline": data.get("outline") or "ccd", "color_by": data.get("color_by") or "filter"}
