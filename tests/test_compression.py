"""Compression and the banner, in the orders docs/deployment.md shows.

GZip outside ``ConsentMiddleware`` compresses the page with its banner; GZip inside
hands the middleware compressed bytes, which pass as they are (no banner) while
their refused cookies are still dropped. Bodies are read raw, never decoded by
the client.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from consent import ConsentMiddleware

from .conftest import make_config

MINIMUM_SIZE = 500
CONTENT = b"<p>Today's news, in a page long enough to be compressed.</p>" * 20
PAGE = b"<!doctype html><html><head><title>News</title></head><body>" + CONTENT + b"</body></html>"


async def home(request: Request) -> Response:
    response = HTMLResponse(PAGE)
    response.set_cookie("session", "s1")  # necessary: always kept
    response.set_cookie("_ga", "GA1.1")  # analytics: refused until granted
    response.set_cookie("_fbp", "fb.1")  # marketing: refused until granted
    return response


def site() -> Starlette:
    return Starlette(routes=[Route("/", home)])


def fetch(app: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and the body exactly as it left the app (still compressed)."""
    client = TestClient(app)
    with client.stream("GET", "/", headers={"accept-encoding": "gzip"}) as r:
        return r.status_code, r.headers.multi_items(), b"".join(r.iter_raw())


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name), None)


def cookie_names(headers: list[tuple[str, str]]) -> list[str]:
    return [v.split("=", 1)[0] for k, v in headers if k.lower() == "set-cookie"]


def gzip_in_middleware_list() -> Any:
    # The first entry of middleware=[...] is the outermost.
    return Starlette(
        routes=[Route("/", home)],
        middleware=[
            Middleware(GZipMiddleware, minimum_size=MINIMUM_SIZE),
            Middleware(ConsentMiddleware, config=make_config()),
        ],
    )


def gzip_added_last() -> Any:
    app = site()
    app.add_middleware(ConsentMiddleware, config=make_config())
    app.add_middleware(GZipMiddleware, minimum_size=MINIMUM_SIZE)  # added last: outermost
    return app


def gzip_wrapped_around() -> Any:
    return GZipMiddleware(
        ConsentMiddleware(site(), config=make_config()), minimum_size=MINIMUM_SIZE
    )


def fastapi_gzip_added_last() -> Any:
    fastapi = pytest.importorskip("fastapi")
    app = fastapi.FastAPI()
    app.add_api_route("/", home)
    app.add_middleware(ConsentMiddleware, config=make_config())
    app.add_middleware(GZipMiddleware, minimum_size=MINIMUM_SIZE)
    return app


@pytest.mark.parametrize(
    "build",
    [gzip_in_middleware_list, gzip_added_last, gzip_wrapped_around, fastapi_gzip_added_last],
)
def test_gzip_outside_compresses_the_page_with_its_banner(build: Callable[[], Any]) -> None:
    status, headers, raw = fetch(build())
    assert status == 200
    assert header(headers, "content-encoding") == "gzip"
    assert header(headers, "content-length") == str(len(raw))
    page = gzip.decompress(raw)
    assert page.count(b"data-consent-banner") == 1
    assert CONTENT in page and page.endswith(b"</body></html>")
    assert cookie_names(headers) == ["session"]
    vary = {v.strip().lower() for v in (header(headers, "vary") or "").split(",")}
    assert {"accept-encoding", "cookie"} <= vary


def test_gzip_inside_passes_the_page_byte_identical_but_filters_its_cookies() -> None:
    _, _, bare = fetch(GZipMiddleware(site(), minimum_size=MINIMUM_SIZE))
    app = ConsentMiddleware(GZipMiddleware(site(), minimum_size=MINIMUM_SIZE), config=make_config())
    status, headers, raw = fetch(app)
    assert status == 200
    assert header(headers, "content-encoding") == "gzip"
    assert raw == bare
    assert header(headers, "content-length") == str(len(raw))
    assert gzip.decompress(raw) == PAGE  # no banner
    assert cookie_names(headers) == ["session"]
    assert (header(headers, "cache-control") or "").startswith("private")
