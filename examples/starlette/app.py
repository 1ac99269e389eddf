"""A small Starlette site behind ConsentMiddleware.

Run: ``.venv/bin/uvicorn examples.starlette.app:app`` and open http://127.0.0.1:8000
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates

from consent import Category, ConsentConfig, ConsentMiddleware
from consent.contrib.starlette import install_jinja

SECRET = os.environ.get("CONSENT_SECRET_KEY", "example-only-secret-change-me-0123456789")

templates = install_jinja(Jinja2Templates(directory=Path(__file__).parent / "templates"))


async def home(request: Request) -> Response:
    request.session["visits"] = request.session.get("visits", 0) + 1
    response = templates.TemplateResponse(
        request, "index.html", {"visits": request.session["visits"]}
    )
    # Set on every visit; ConsentMiddleware drops them until the visitor agrees.
    response.set_cookie("_ga", "GA1.1.1234567890", max_age=2 * 365 * 86400)
    response.set_cookie("_fbp", "fb.1.1234567890", max_age=90 * 86400)
    return response


def create_app(log: str = "sqlite:///example-consent.db") -> Starlette:
    config = ConsentConfig(
        secret_key=SECRET,
        log=log,
        controller="Example Shop Ltd",
        categories=[
            # Starlette's SessionMiddleware cookie is strictly necessary.
            Category(key="necessary", required=True, cookies=["session"]),
            Category(key="analytics", cookies=["_ga", "_ga_*"]),
            Category(key="marketing", cookies=["_fbp"]),
        ],
    )
    return Starlette(
        routes=[Route("/", home)],
        middleware=[
            Middleware(ConsentMiddleware, config=config),  # outermost: sees every cookie
            Middleware(SessionMiddleware, secret_key=SECRET),
        ],
    )


app = create_app()
