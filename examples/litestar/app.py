"""A small Litestar site behind ConsentMiddleware.

Run: ``.venv/bin/uvicorn examples.litestar.app:app`` and open http://127.0.0.1:8000
"""

from __future__ import annotations

import os
from typing import Any

from litestar import Litestar, MediaType, Request, Response, get
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import Cookie
from litestar.middleware.session.server_side import ServerSideSessionConfig

from consent import Category, ConsentConfig, ConsentMiddleware
from consent.contrib.litestar import Consent, consent_app, provide_consent

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


@get("/", media_type=MediaType.HTML)
async def home(request: Request[Any, Any, Any], consent: Consent) -> Response[str]:
    visits = request.session.get("visits", 0) + 1
    request.set_session({"visits": visits})
    page = PAGE.format(visits=visits, analytics="yes" if consent.allows("analytics") else "no")
    # Set on every visit; ConsentMiddleware drops them until the visitor agrees.
    return Response(
        page,
        media_type=MediaType.HTML,
        cookies=[
            Cookie(key="_ga", value="GA1.1.1234567890", max_age=2 * 365 * 86400),
            Cookie(key="_fbp", value="fb.1.1234567890", max_age=90 * 86400),
        ],
    )


def create_app(log: str = "sqlite:///example-consent.db") -> ConsentMiddleware:
    config = ConsentConfig(
        secret_key=SECRET,
        log=log,
        controller="Example Shop Ltd",
        categories=[
            # Litestar's session and CSRF cookies are strictly necessary.
            Category(key="necessary", required=True, cookies=["session", "csrftoken"]),
            Category(key="analytics", cookies=["_ga", "_ga_*"]),
            Category(key="marketing", cookies=["_fbp"]),
        ],
    )
    # Sessions kept in Litestar's memory store; the cookie holds only their id.
    session = ServerSideSessionConfig()
    app = Litestar(
        route_handlers=[home],
        middleware=[session.middleware],
        csrf_config=CSRFConfig(secret=SECRET),
        dependencies={"consent": provide_consent},
    )
    # Wraps the whole application, so /_consent and every page pass through it.
    return consent_app(app, config)


app = create_app()
