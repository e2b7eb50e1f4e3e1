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


@pytest.fixture(scope="session")
def postgres_cluster():
    """One throwaway PostgreSQL server for the whole session; call it for a fresh database URL.

    Debian's ``initdb``/``pg_ctl`` (package ``postgresql``) run as user
    ``postgres`` (the server refuses root), listening on a Unix socket in a
    scratch folder only (no TCP, fsync off). ``postgres_cluster(name)``
    creates database ``name`` and returns its ``postgresql://`` URL as a user
    writes it (psycopg 3 through :func:`spica.registry.open_database`). The
    server is stopped and its folder removed at the end of the session.
    Skipped when the binaries, the ``postgres`` user, root or ``runuser`` are
    missing.
    """
    import glob
    import os
    import pwd
    import subprocess
    import tempfile

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres user (Debian package postgresql)")
    if os.geteuid() != 0 or not shutil.which("runuser"):
        pytest.skip("root and runuser needed to start a scratch PostgreSQL server as user postgres")
    pytest.importorskip("psycopg")
    bindir = Path(found[-1]).parent
    base = Path(tempfile.mkdtemp(prefix="spica-pg-"))
    base.chmod(0o755)
    data, sock = base / "data", base / "sock"
    sock.mkdir()
    shutil.chown(base, "postgres")
    shutil.chown(sock, "postgres")
    port = "54329"

    def as_postgres(*command: str) -> None:
        run = subprocess.run(["runuser", "-u", "postgres", "--", *command], capture_output=True,
                             text=True, check=False, timeout=120)
        log = base / "log"
        assert run.returncode == 0, run.stderr + (log.read_text() if log.exists() else "")

    def new_database(name: str) -> str:
        as_postgres(str(bindir / "createdb"), "-h", str(sock), "-p", port, name)
        return f"postgresql://postgres@/{name}?host={sock}&port={port}"

    started = False
    try:
        as_postgres(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        as_postgres(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(base / "log"), "-w", "-o",
                    f"-c listen_addresses='' -k {sock} -p {port} -c fsync=off", "start")
        started = True
        yield new_database
    finally:
        if started:
            subprocess.run(["runuser", "-u", "postgres", "--", str(bindir / "pg_ctl"), "-D", str(data),
                            "-m", "immediate", "-w", "stop"], capture_output=True, check=False, timeout=60)
        shutil.rmtree(base, ignore_errors=True)
