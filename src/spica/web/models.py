"""The interface's own tables (never the registry, which the workflow rebuilds).

Roles are Django groups (:data:`ROLES`): ``staff`` sees everything and grades,
``cfhtls`` sees the CFHTLS programmes' data, ``pi`` sees the exposures of the
RUNIDs in its :class:`Programme` rows. A superuser is staff.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

__all__ = ["ROLES", "Programme", "GradeRecord"]

#: Role groups, in decreasing power.
ROLES = ("staff", "cfhtls", "pi")


class Programme(models.Model):
    """A RUNID (``04BF01``) whose exposures and products a PI user may see."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="programmes")
    runid = models.CharField(max_length=16)

    class Meta:
        unique_together = [("user", "runid")]
        ordering = ["user", "runid"]

    def __str__(self) -> str:
        return f"{self.user} {self.runid}"


class GradeRecord(models.Model):
    """One grade given in the interface (the grades CSV holds the latest one)."""

    expnum = models.BigIntegerField(db_index=True)
    grade = models.CharField(max_length=1)
    comment = models.TextField(blank=True)
    graded_by = models.CharField(max_length=150)
    date = models.DateTimeField()
    previous = models.CharField(max_length=1, blank=True)

    class Meta:
        ordering = ["-date", "-id"]

    def __str__(self) -> str:
        return f"{self.expnum}p {self.grade} by {self.graded_by}"
