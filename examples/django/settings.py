"""Settings of the Django example (a one-app project, no database needed)."""

from __future__ import annotations

import os
from pathlib import Path

SECRET = os.environ.get("CONSENT_SECRET_KEY", "example-only-secret-change-me-0123456789")

DEBUG = True
SECRET_KEY = "django-insecure-example-only-" + SECRET
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
ROOT_URLCONF = "examples.django.urls"
INSTALLED_APPS = ["consent.contrib.django"]  # {% load consent %}
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
# Signed-cookie sessions: the example needs no database.
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [Path(__file__).parent / "templates"],
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "consent.contrib.django.context_processors.consent",
            ]
        },
    }
]

# The same keys as a consent.toml file.
CONSENT = {
    "secret_key": SECRET,
    "log": os.environ.get("CONSENT_LOG", "sqlite:///example-consent.db"),
    "controller": "Example Shop Ltd",
    "categories": [
        # Django's session and CSRF cookies are strictly necessary.
        {"key": "necessary", "required": True, "cookies": ["sessionid", "csrftoken"]},
        {"key": "analytics", "cookies": ["_ga", "_ga_*"]},
        {"key": "marketing", "cookies": ["_fbp"]},
    ],
}
