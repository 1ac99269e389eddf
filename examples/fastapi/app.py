"""A small FastAPI site behind ConsentMiddleware.

Run: ``.venv/bin/uvicorn examples.fastapi.app:app`` and open http://127.0.0.1:8000
"""

from __future__ import annotations

import os

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.middleware.sessions import SessionMiddleware

from consent import Category, ConsentConfig, ConsentMiddleware
from consent.contrib.fastapi import Consent, require_consent

SECRET = os.environ.get("CONSENT_SECRET_KEY", "example-only-secret-change-me-0123456789")

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Example shop</title></head>
<body>
<h1>Welcome to the example shop</h1>
<p>Visit number {visits} (counted in the session cookie).</p>
<p>Analytics allowed: {analytics}.</p>
<script type="text/plain" data-consent="analytics">console.log("analytics loaded");</script>
</body>
</html>
"""


def create_app(log: str = "sqlite:///example-consent.db") -> FastAPI:
    config = ConsentConfig(
        secret_key=SECRET,
        log=log,
        controller="Example Shop Ltd",
        categories=[
            Category(key="necessary", required=True, cookies=["session"]),
            Category(key="analytics", cookies=["_ga", "_ga_*"]),
            Category(key="marketing", cookies=["_fbp"]),
        ],
    )
    app = FastAPI()

    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request, consent: Consent) -> HTMLResponse:
        visits = request.session["visits"] = request.session.get("visits", 0) + 1
        response = HTMLResponse(
            PAGE.format(visits=visits, analytics="yes" if consent.allows("analytics") else "no")
        )
        # Set on every visit; ConsentMiddleware drops them until the visitor agrees.
        response.set_cookie("_ga", "GA1.1.1234567890", max_age=2 * 365 * 86400)
        response.set_cookie("_fbp", "fb.1.1234567890", max_age=90 * 86400)
        return response

    @app.get("/api/stats", dependencies=[require_consent("analytics")])
    async def stats() -> dict[str, int]:
        return {"page_views": 42}

    # The last middleware added is the outermost: ConsentMiddleware sees every cookie.
    app.add_middleware(SessionMiddleware, secret_key=SECRET)
    app.add_middleware(ConsentMiddleware, config=config)
    return app


app = create_app()
