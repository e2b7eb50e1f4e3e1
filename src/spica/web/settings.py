"""Django settings of the operation interface (``spica.web.settings``).

Everything site-specific comes from the SPICA configuration (``web:`` block,
:mod:`spica.web.config`): the database of the interface's own tables, the
secret key file (created with mode 0600 on first start) and the allowed hosts.
``SPICA_WEB_DEBUG=1`` (set by ``python -m spica.web serve`` without
``--production``) turns Django's debug mode on for the development server.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from spica.web.config import config_from_environment

SPICA = config_from_environment()
BASE_DIR = Path(__file__).resolve().parent


def _secret_key(path: Path) -> str:
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as stream:
            stream.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


def _database(spec: str) -> dict:
    if "://" not in spec:
        Path(spec).parent.mkdir(parents=True, exist_ok=True)
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": spec}
    from urllib.parse import unquote, urlsplit

    url = urlsplit(spec)
    if url.scheme == "sqlite":
        name = spec[len("sqlite:///"):]
        Path(name).parent.mkdir(parents=True, exist_ok=True)
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": name}
    if url.scheme.startswith("postgres"):
        return {"ENGINE": "django.db.backends.postgresql", "NAME": url.path.lstrip("/"),
                "USER": unquote(url.username or ""), "PASSWORD": unquote(url.password or ""),
                "HOST": unquote(url.hostname or ""), "PORT": str(url.port or "")}
    raise ValueError(f"web.database: unsupported database URL {spec!r} (SQLite path or URL, postgresql://)")


SECRET_KEY = _secret_key(SPICA.secret_key_file)
DEBUG = os.environ.get("SPICA_WEB_DEBUG") == "1"
ALLOWED_HOSTS = [*SPICA.allowed_hosts, "testserver"] if DEBUG or os.environ.get("SPICA_WEB_TESTING") \
    else list(SPICA.allowed_hosts)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "spica.web.apps.SpicaWebConfig",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
ROOT_URLCONF = "spica.web.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
        "spica.web.views.context",
    ]},
}]
WSGI_APPLICATION = "spica.web.wsgi.application"
DATABASES = {"default": _database(SPICA.database)}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
if os.environ.get("SPICA_WEB_TESTING"):  # Django's advice for test suites: a fast hasher
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher",
                        "django.contrib.auth.hashers.PBKDF2PasswordHasher"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "status"
LOGOUT_REDIRECT_URL = "login"
LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = str(SPICA.secret_key_file.parent / "static")  # collectstatic (--production) writes here
Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = True  # also serve the app's static files before collectstatic
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
LOGGING = {"version": 1, "disable_existing_loggers": False,
           "handlers": {"console": {"class": "logging.StreamHandler"}},
           "loggers": {"django.request": {"handlers": ["console"], "level": "ERROR"}}}
