"""Run: ``.venv/bin/uvicorn examples.django.asgi:application``"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

from consent.contrib.django import wrap_asgi

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django.settings")

application = wrap_asgi(get_asgi_application())
