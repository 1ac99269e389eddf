"""Run with any WSGI server, e.g. ``.venv/bin/python -m examples.django.wsgi``."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

from consent.contrib.django import wrap_wsgi

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django.settings")

application = wrap_wsgi(get_wsgi_application())

if __name__ == "__main__":
    from wsgiref.simple_server import make_server

    port = int(os.environ.get("PORT", "8000"))
    print(f"Serving on http://127.0.0.1:{port}", flush=True)
    make_server("127.0.0.1", port, application).serve_forever()
