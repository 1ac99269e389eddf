"""The two apps ``bench/bench_wire.py`` serves through uvicorn, selected by name.

``bare`` is a small Starlette site; ``consent`` is the same site wrapped in
:class:`ConsentMiddleware` with the benchmarks' configuration
(``_common.CONFIG``). Run from the repository root, e.g.::

    .venv/bin/python -m uvicorn --app-dir bench wire_app:consent

``GET /`` answers a small ``text/plain`` "ok"; ``GET /page`` the 20 KB HTML page.
"""

from __future__ import annotations

from _common import CONFIG, PAGE_20K
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from consent import ConsentMiddleware
from consent.state import ConsentState


async def small(request: Request) -> Response:
    return PlainTextResponse("ok")


async def page(request: Request) -> Response:
    return HTMLResponse(PAGE_20K)


def site() -> Starlette:
    return Starlette(routes=[Route("/", small), Route("/page", page)])


bare = site()
consent = ConsentMiddleware(site(), config=CONFIG)


def consent_cookie(*keys: str) -> str:
    """A decided visitor's signed ``consent=…`` cookie granting ``keys`` (and the required)."""
    state = ConsentState(
        granted=frozenset(keys) | consent.policy.required, decided=True, revision=1
    )
    return f"consent={consent.policy.codec.encode(state)}"
