"""Admin pages of the interface's own tables."""

from django.contrib import admin

from spica.web.models import GradeRecord, Programme


@admin.register(Programme)
class ProgrammeAdmin(admin.ModelAdmin):
    list_display = ("user", "runid")


@admin.register(GradeRecord)
class GradeRecordAdmin(admin.ModelAdmin):
    list_display = ("expnum", "grade", "graded_by", "date", "previous")
    list_filter = ("grade",)
