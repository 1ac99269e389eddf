"""A small Starlette site wrapped in the real ``ConsentMiddleware``, for the e2e tests.

Run by uvicorn in a subprocess (``tests/browser_support.serve``). Environment:

- ``E2E_CONSENT_LOG``: path of the SQLite consent log the tests inspect;
- ``E2E_LAYOUT``: the default banner layout (``bar``); ``?layout=box|modal`` on any
  URL picks another, so one server covers every layout. Each layout has its own
  middleware over the same site and the same log file. ``GET /_consent/banner``
  (the settings layer consent.js fetches) follows the layout of the page in its
  ``next`` parameter.

Every page sets ``session`` (necessary), ``_gid`` (analytics) and ``_fbp``
(marketing) on the server, HttpOnly, so only the middleware can keep them out of
the browser. The pages carry a gated analytics script that sets ``_ga`` from
JavaScript, a gated marketing iframe and a footer "Cookie settings" link.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from consent import Category, ConsentConfig, ConsentMiddleware
from consent.config import CookieRule, Theme

SECRET = "e2e-test-secret-0123456789abcdef"
LAYOUTS = ("bar", "box", "modal")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - E2E shop</title>
<script type="text/plain" data-consent="analytics">window.__analytics = true; document.cookie = "_ga=GA1.1; path=/"</script>
</head>
<body>
<header><nav aria-label="Main"><a href="/">Home</a> <a href="/other">Other page</a></nav></header>
<main>
<h1>{title}</h1>
<p>Some content with <a href="/other?from=link">a link</a>.</p>
<iframe data-consent="marketing" data-src="/embed" title="Embedded video" width="300" height="150"></iframe>
</main>
<footer><p><a href="/_consent/policy" data-consent-open>Cookie settings</a></p></footer>
</body>
</html>
"""

EMBED = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Player</title></head>
<body><p>An embedded player.</p></body></html>
"""


def page(title: str) -> Callable[[Request], Awaitable[HTMLResponse]]:
    async def endpoint(request: Request) -> HTMLResponse:
        response = HTMLResponse(PAGE.format(title=title))
        response.set_cookie("session", "s3ss10n", httponly=True, samesite="lax")
        response.set_cookie("_gid", "GA1.2.42", max_age=86_400, httponly=True)
        response.set_cookie("_fbp", "fb.1.42", max_age=7_776_000, httponly=True)
        return response

    return endpoint


async def embed(request: Request) -> HTMLResponse:
    return HTMLResponse(EMBED)


site = Starlette(
    routes=[
        Route("/", page("Home")),
        Route("/other", page("Other page")),
        Route("/embed", embed),
    ]
)


def make_config(layout: str) -> ConsentConfig:
    return ConsentConfig(
        secret_key=SECRET,  # type: ignore[arg-type]
        controller="E2E Shop Ltd",
        categories=[
            Category(
                key="necessary",
                required=True,
                justification="Needed for the site to work",
                cookies=[CookieRule(name="session", provider="E2E Shop", purpose="Sign-in")],
            ),
            Category(key="preferences", cookies=[CookieRule(name="theme")]),
            Category(
                key="analytics",
                cookies=[CookieRule(name="_ga"), CookieRule(name="_ga_*"), CookieRule(name="_gid")],
            ),
            Category(key="marketing", cookies=[CookieRule(name="_fbp")]),
        ],
        log=f"sqlite:///{os.environ['E2E_CONSENT_LOG']}",
        exclude_paths=["/embed"],
        theme=Theme(layout=layout),  # type: ignore[arg-type]
    )


class LayoutSwitch:
    """One real ``ConsentMiddleware`` per layout around the same site; ``?layout=`` picks."""

    def __init__(self, default: str) -> None:
        self.default = default
        self.apps = {
            layout: ConsentMiddleware(site, config=make_config(layout)) for layout in LAYOUTS
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if "next" in query:  # /_consent/banner?next=/page?layout=modal
            query = parse_qs(urlsplit(query["next"][0]).query)
        layout = query.get("layout", [self.default])[0]
        await self.apps.get(layout, self.apps[self.default])(scope, receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for mw in self.apps.values():
                    await mw.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


app = LayoutSwitch(os.environ.get("E2E_LAYOUT", "bar"))
