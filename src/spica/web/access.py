"""Who sees what: the one place where access to survey data is decided.

Every view, the CSV export, the counts, the plots, the thumbnails and the
file server go through :func:`visible`, which filters the registry rows and
the product stems for a user:

``staff`` (group ``staff``, or a superuser)
    every exposure (quarantined files included) and every product.
``cfhtls`` (group ``cfhtls``)
    the exposures whose RUNID belongs to a CFHTLS programme
    (``survey.runid_programs``), and the products made only of them.
``pi`` (group ``pi``)
    the exposures whose RUNID is one of the user's :class:`~spica.web.models.Programme`
    rows, and the products made only of them (their image-by-image products).

A product is visible when every exposure of its stack list is; what derives
from its astrometric list (SCAMP check plots and XML, delivered heads, the
astrometric table of its summary) only when every exposure of that list is
too (a CFHTLS stack calibrated with a PI exposure nearby shows no trace of it).
A user in no group sees nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd

from spica.paths import IMAGE_STEM_RE, STACK_STEM_RE
from spica.web.data import Survey

__all__ = ["Scope", "Visible", "UnsafePath", "scope_for", "visible", "safe_path", "ASTROMETRIC_KEYS"]

#: Product file suffixes that derive from the astrometric list.
ASTROMETRIC_KEYS = ("_astrom.list", "_scamp.xml", "_scamp_accept.xml", "_scamp.cmd", "_scamp_delivery.cmd",
                    "_spica.xml")
_STEM_RE = re.compile(f"(?:{STACK_STEM_RE}|{IMAGE_STEM_RE})")
_EXPOSURE_DIR_RE = re.compile(r"\d{6,7}p")
_RELEASE_RE = re.compile(r"T\d{4}")


@dataclass(frozen=True)
class Scope:
    """A user's role and programmes."""

    role: str  # "staff", "cfhtls", "pi" or "none"
    runids: frozenset[str] = frozenset()
    name: str = ""

    @property
    def staff(self) -> bool:
        """Whether the user sees everything and may grade."""
        return self.role == "staff"

    @property
    def key(self) -> str:
        """A cache key of what this scope sees."""
        return f"{self.role}:{','.join(sorted(self.runids))}"


def scope_for(user) -> Scope:
    """The :class:`Scope` of a Django user (role from its groups, RUNIDs from its programmes)."""
    if user is None or not user.is_authenticated or not user.is_active:
        return Scope("none")
    if user.is_superuser:
        return Scope("staff", name=user.get_username())
    groups = set(user.groups.values_list("name", flat=True))
    if "staff" in groups:
        return Scope("staff", name=user.get_username())
    if "cfhtls" in groups:
        return Scope("cfhtls", name=user.get_username())
    if "pi" in groups:
        runids = frozenset(r.strip().upper() for r in user.programmes.values_list("runid", flat=True))
        return Scope("pi", runids, name=user.get_username())
    return Scope("none", name=user.get_username())


@dataclass
class Visible:
    """What one scope sees of a :class:`~spica.web.data.Survey`.

    Attributes
    ----------
    exposures : DataFrame
        The visible registry rows.
    expnums : frozenset of int
    products : DataFrame
        The visible planned products.
    """

    scope: Scope
    survey: Survey
    exposures: pd.DataFrame
    expnums: frozenset[int]
    products: pd.DataFrame

    def sees_exposure(self, expnum: int) -> bool:
        """Whether exposure ``expnum`` is visible."""
        return int(expnum) in self.expnums

    def sees_product(self, release: str, stem: str) -> bool:
        """Whether product ``stem`` of ``release`` is visible."""
        products = self.products
        return bool(((products["release"] == release) & (products["stem"] == stem)).any())

    def sees_astrometry(self, release: str, stem: str) -> bool:
        """Whether the product's astrometric list (SCAMP plots, heads, astrometric table) is visible."""
        if self.scope.staff:
            return True
        members = self.survey.astrometric_lists.get((release, stem), frozenset())
        return self.sees_product(release, stem) and members <= self.expnums

    def may_read(self, relative: str) -> bool:
        """Whether the file at ``relative`` (a path inside the results tree) may be served.

        Step 1 files of a visible exposure; files of a visible product (those
        from its astrometric list only with :meth:`sees_astrometry`); anything
        else (plans, solutions, registry, logs) only to staff.
        """
        if self.scope.staff:
            return True
        parts = PurePosixPath(relative).parts
        if len(parts) == 3 and parts[0] == "step1" and _EXPOSURE_DIR_RE.fullmatch(parts[1]):
            return parts[2].startswith(parts[1]) and self.sees_exposure(int(parts[1][:-1]))
        if len(parts) >= 4 and parts[0] == "releases" and _RELEASE_RE.fullmatch(parts[1]) \
                and _STEM_RE.fullmatch(parts[2]):
            release, stem = parts[1], parts[2]
            if not self.sees_product(release, stem):
                return False
            inner = parts[3:]
            if inner[0] in ("scamp", f"{stem}_heads") or inner[-1].endswith(ASTROMETRIC_KEYS):
                return self.sees_astrometry(release, stem)
            return len(inner) == 1 and inner[0].startswith(stem)
        return False


def _exposure_mask(scope: Scope, exposures: pd.DataFrame) -> pd.Series:
    if scope.staff:
        return pd.Series(True, index=exposures.index)
    numbered = exposures["expnum"].notna()
    if scope.role == "cfhtls":
        return numbered & exposures["cfhtls"].astype(bool)
    if scope.role == "pi":
        return numbered & exposures["runid"].isin(scope.runids)
    return pd.Series(False, index=exposures.index)


def visible(scope: Scope, survey: Survey) -> Visible:
    """Filter the survey's exposures and products for ``scope`` (see the module docstring)."""
    exposures = survey.exposures[_exposure_mask(scope, survey.exposures)]
    expnums = frozenset(int(e) for e in exposures["expnum"].dropna())
    products = survey.products
    if not scope.staff:
        keep = [bool(members) and members <= expnums for members in
                (survey.stack_lists.get(key, frozenset())
                 for key in zip(products["release"], products["stem"]))]
        products = products[pd.Series(keep, index=products.index, dtype=bool)] if len(products) else products
    return Visible(scope=scope, survey=survey, exposures=exposures, expnums=expnums, products=products)


class UnsafePath(ValueError):
    """A requested path that is not a plain relative path inside the results tree."""


def safe_path(root: Path, relative: str) -> tuple[Path, str]:
    """Resolve ``relative`` inside ``root``, refusing anything that could escape it.

    Absolute paths, ``..`` components, backslashes, NUL and control characters
    are refused; the resolved path (symbolic links followed) must lie inside
    the resolved root.

    Returns
    -------
    (Path, str)
        The resolved file and its normalised relative path.

    Raises
    ------
    UnsafePath
        If the path is refused.
    """
    if not relative or len(relative) > 1024 or any(ord(c) < 32 or c in "\\\x7f" for c in relative):
        raise UnsafePath("invalid path")
    pure = PurePosixPath(relative)
    if pure.is_absolute() or any(part in ("..", ".", "") for part in relative.split("/")):
        raise UnsafePath("path must be relative, without '..'")
    base = root.resolve()
    target = (base / pure).resolve()
    if not target.is_relative_to(base):
        raise UnsafePath("path escapes the results tree")
    return target, target.relative_to(base).as_posix()
