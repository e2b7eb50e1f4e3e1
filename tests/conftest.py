"""Shared test fixtures: locations of the real reference data and the tools."""

import shutil
from collections.abc import Callable, Iterable
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


# The demo's small survey, simulated once per test session and copied where asked.
_SMALL_SURVEY: dict[str, Path] = {}


def _remove_tree(folder: Path) -> None:
    """Remove a tree of read-only files and folders (the simulator's raw inputs)."""
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(folder, ignore_errors=True)


def small_survey(destination: Path, *, keep: Iterable[int] | None = None) -> dict:
    """Write the demo's small survey (``spica.demo.simulate_survey(small=True)``) into
    ``destination`` and return the demo configuration.

    The survey is seeded (same configuration, same bytes), so it is simulated once per
    test session, in a scratch folder, and copied: a dozen fixtures need it and each
    simulation costs seconds. The copies keep the simulator's read-only files.

    Parameters
    ----------
    destination
        The folder that receives ``demo/`` (the ``inputs:`` paths of config.yaml).
    keep
        Odometers to keep incoming; the others' files are removed and the grades and
        observing metadata CSVs keep only the rows of ``keep`` (a table row of an
        exposure the survey does not hold is warned about by the registry).
    """
    import atexit
    import tempfile

    import pandas as pd
    import yaml

    from spica import paths
    from spica.demo import simulate_survey

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    if "root" not in _SMALL_SURVEY:
        root = Path(tempfile.mkdtemp(prefix="spica-small-survey-"))
        atexit.register(_remove_tree, root)
        simulate_survey(config, root, small=True)
        _SMALL_SURVEY["root"] = root
    destination.mkdir(parents=True, exist_ok=True)
    shutil.copytree(_SMALL_SURVEY["root"] / "demo", destination / "demo", dirs_exist_ok=True)
    if keep is not None:
        keep = {int(expnum) for expnum in keep}
        incoming = destination / config["inputs"]["exposures"]
        incoming.chmod(0o755)
        for exposure in incoming.iterdir():
            if paths.parse_exposure_filename(exposure.name) not in keep:
                exposure.unlink()
        for key in ("grades", "metadata"):
            table = destination / config["inputs"][key]
            table.chmod(0o644)
            frame = pd.read_csv(table, dtype=str, keep_default_na=False)
            frame[frame["expnum"].astype(int).isin(keep)].to_csv(table, index=False)
    return config
