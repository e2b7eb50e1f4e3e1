"""Fixtures of the operation interface's tests: a synthetic survey and a configured Django.

The interface reads its configuration when Django starts (``spica.web.settings``),
so this conftest builds, once per session and before Django is set up, a
temporary folder with a configuration overlay (results tree, registry, grades
CSV and the interface's own database inside it), the synthetic survey
(:func:`spica.web.synthetic.build_survey`) and the users of each role. The
folder is removed at the end of the session.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

PASSWORD = "Spica-test-pw-2004"
ROOT = Path(tempfile.mkdtemp(prefix="spica-web-test-"))
RESULTS = ROOT / "results"
GRADES = ROOT / "grades.csv"
OVERLAY = ROOT / "web-test.yaml"
OVERLAY.write_text(f"""\
results: {RESULTS}
registry: {{url: "sqlite:///{RESULTS}/registry.sqlite"}}
inputs: {{grades: {GRADES}}}
web: {{database: {ROOT}/web/web.sqlite, secret_key_file: {ROOT}/web/secret_key, allowed_hosts: [localhost, 127.0.0.1]}}
""")
os.environ["SPICA_WEB_CONFIG"] = str(OVERLAY)
os.environ["SPICA_WEB_DIRECTORY"] = str(ROOT)
os.environ["SPICA_WEB_TESTING"] = "1"
os.environ["DJANGO_SETTINGS_MODULE"] = "spica.web.settings"

#: Users of the tests: name -> (role, RUNIDs).
USERS = {
    "staff1": ("staff", []),
    "member": ("cfhtls", []),
    "pi1": ("pi", ["04BF01"]),
    "pi2": ("pi", ["04BF02"]),
    "nobody": (None, []),
}


@pytest.fixture(scope="session")
def survey():
    """The synthetic survey, the interface's database migrated and the users created."""
    import django
    from django.core.management import call_command

    from spica.web.synthetic import build_survey

    built = build_survey(RESULTS)
    GRADES.write_text("expnum,grade,comment,graded_by,date\n800001,B,seen,YM,2004-05-01\n")
    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    os.environ["SPICA_TEST_PW"] = PASSWORD
    from django.contrib.auth import get_user_model

    for name, (role, runids) in USERS.items():
        if role is None:
            get_user_model().objects.get_or_create(username=name)[0].set_password(PASSWORD)
            user = get_user_model().objects.get(username=name)
            user.set_password(PASSWORD)
            user.save()
            continue
        args = [name, "--role", role, "--password-env", "SPICA_TEST_PW"]
        for runid in runids:
            args += ["--runid", runid]
        call_command("adduser", *args, verbosity=0)
    return built


@pytest.fixture
def client_for(survey):
    """``client_for(name)``: a Django test client logged in as user ``name``."""
    from django.test import Client

    def make(name: str | None) -> Client:
        client = Client()
        if name:
            assert client.login(username=name, password=PASSWORD)
        return client

    return make


def pytest_unconfigure(config):
    shutil.rmtree(ROOT, ignore_errors=True)


@pytest.fixture
def grades_csv(survey) -> Path:
    """The grades CSV the interface writes (``inputs.grades`` of the test configuration)."""
    return GRADES


@pytest.fixture
def results_dir(survey) -> Path:
    """The synthetic results tree."""
    return RESULTS


@pytest.fixture
def password() -> str:
    """The password of every test user."""
    return PASSWORD
