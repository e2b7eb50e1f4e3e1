"""Shared test fixtures: locations of the real reference data and the tools."""

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the repository, or skip."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real reference data absent: {SHARED_DATA} (see shared/data/README.md)")
    return SHARED_DATA


def require_binary(*names: str) -> str:
    """Return the first binary found on PATH, or skip the test."""
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip(f"none of {names} on PATH (run `bin/spica install`)")


def needs_tools(available: bool, reason: str) -> Callable[[Callable], Callable]:
    """Decorator for a test that runs AstrOmatic binaries: marked ``tools`` (so that
    ``-m "not tools"`` leaves it out) and skipped with ``reason`` unless ``available``."""

    def mark(test: Callable) -> Callable:
        return pytest.mark.tools(pytest.mark.skipif(not available, reason=reason)(test))

    return mark


# Release configurations shared by the selection and planning tests.
@pytest.fixture(scope="module")
def cfg() -> dict:
    """``releases`` and ``planning`` of config/releases.yaml."""
    from tests.release.test_selection import releases_config

    return releases_config()


@pytest.fixture(scope="module")
def demo_survey() -> dict:
    """``survey`` of the demo configuration."""
    from tests.release.test_selection import load_yaml

    return load_yaml("config.yaml")["survey"]


@pytest.fixture(scope="module")
def real_survey() -> dict:
    """``survey`` of the real CFHTLS configuration (cfhtls.yaml merged over config.yaml)."""
    from tests.release.test_selection import load_yaml

    return load_yaml("cfhtls.yaml")["survey"]
