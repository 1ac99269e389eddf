"""A small Starlette site for the browser tests, run by uvicorn in a subprocess.

Pages get ``Banner.snippet`` before ``</body>`` and ``Banner.head_snippet`` after
``<head>``; ``/_consent/static/*``, ``/_consent/policy`` and ``/_consent/banner``
(the settings layer consent.js fetches for a decided visitor) come from the Banner;
``POST /_consent`` is a stand-in for the real endpoint: it answers the same JSON
(or a 303 for the no-JavaScript form) and keeps the choice in a plain cookie.
Query parameters pick the layout (``?layout=modal``) and ``?lang=``.
"""

from __future__ import annotations

import json
import time
from functools import cache
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from banner_helpers import make_config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from consent.banner import Banner
from consent.config import Theme
from consent.state import ConsentState

COOKIE = "fake_consent"
NONCE = "dGVzdG5vbmNl"
POSTS: list[dict[str, Any]] = []  # what the browser posted, for the tests to inspect
FRAGMENTS: list[str] = []  # the /_consent/banner URLs the browser fetched


@cache
def banner(layout: str) -> Banner:
    return Banner(make_config(theme=Theme(layout=layout)))  # type: ignore[arg-type]


def state_of(request: Request, b: Banner) -> ConsentState:
    required = b.config.required_keys
    gpc = request.headers.get("sec-gpc") == "1"
    raw = request.cookies.get(COOKIE)
    if raw is None:
        return ConsentState(granted=required, gpc=gpc)
    granted = frozenset(k for k in raw.split(".") if k in b.config.optional_keys) | required
    return ConsentState(
        granted=granted, decided=True, consent_id="A" * 22, revision=1,
        issued_at=1_700_000_000, source="banner", gpc=gpc,
    )  # fmt: skip


PAGE = """<!doctype html>
<html lang="en">
<head>{head}
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Test shop</title>
<script nonce="{nonce}">
  window.__events = [];
  document.addEventListener('consent:change', e => window.__events.push(e.detail));
</script>
<script type="text/plain" data-consent="analytics" nonce="{nonce}">window.__ran = true;</script>
<script type="text/plain" data-consent="analytics marketing">window.__both = true;</script>
<script type="text/plain" data-consent="analytics" data-type="module">window.__module = typeof import.meta;</script>
</head>
<body>
<header><nav aria-label="Main"><a href="/page">Home</a> <a href="/page?p=2">Products</a></nav></header>
<main>
<h1>Welcome to the test shop</h1>
<p>Some content with <a href="/page?p=3">a link</a> and a <button type="button">button</button>.</p>
{filler}
<iframe data-consent="marketing" data-src="/frame" title="Embedded video" width="300" height="150"></iframe>
</main>
<footer><p>Footer</p></footer>
</body>
</html>"""


async def page(request: Request) -> HTMLResponse:
    layout = request.query_params.get("layout", "bar")
    b = banner(layout)
    state = state_of(request, b)
    locale = b.negotiate(request.headers.get("accept-language"), request.query_params.get("lang"))
    next_url = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    filler = "".join(
        f"<p>Paragraph {i} of the page.</p>"
        for i in range(int(request.query_params.get("long", "0")))
    )
    html = PAGE.format(head=b.head_snippet(state, nonce=NONCE), nonce=NONCE, filler=filler)
    html = html.replace(
        "</body>",
        b.snippet(state, locale, prefix="/_consent", next_url=next_url, nonce=NONCE) + "</body>",
    )
    csp = f"script-src 'nonce-{NONCE}'; style-src 'nonce-{NONCE}'; object-src 'none'"
    return HTMLResponse(html, headers={"content-security-policy": csp})


async def static(request: Request) -> Response:
    found = banner("bar").static(request.path_params["name"])
    if found is None:
        return Response(status_code=404)
    body, ctype, etag = found
    return Response(
        body,
        media_type=ctype,
        headers={"etag": etag, "cache-control": "public, max-age=31536000, immutable"},
    )


async def policy(request: Request) -> HTMLResponse:
    b = banner("bar")
    return HTMLResponse(
        b.policy_page(
            state_of(request, b),
            b.negotiate(request.headers.get("accept-language")),
            prefix="/_consent",
        )
    )


async def fragment(request: Request) -> HTMLResponse:
    """Like the real ``GET /_consent/banner``; the layout is the one of the page in ``next``."""
    FRAGMENTS.append(request.url.path + "?" + request.url.query)
    nxt = request.query_params.get("next") or "/page"
    query = dict(parse_qsl(urlsplit(nxt).query))
    b = banner(query.get("layout", "bar"))
    html = b.banner_fragment(
        state_of(request, b),
        b.negotiate(request.headers.get("accept-language"), query.get("lang")),
        prefix="/_consent",
        next_url=nxt,
    )
    return HTMLResponse(
        html, headers={"cache-control": "private, no-cache", "vary": "Cookie, Accept-Language"}
    )


async def endpoint(request: Request) -> Response:
    b = banner("bar")
    is_json = request.headers.get("content-type", "").startswith("application/json")
    if is_json:
        data = json.loads(await request.body())
    else:
        # No python-multipart here: the banner's form is plain urlencoded.
        pairs = parse_qsl((await request.body()).decode(), keep_blank_values=True)
        data = {k: v for k, v in pairs if k != "categories"}
        data["categories"] = [v for k, v in pairs if k == "categories"]
    POSTS.append({"json": is_json, **data})
    action = data.get("action")
    optional = set(b.config.optional_keys)
    if action == "accept_all":
        chosen = optional
    elif action == "save":
        chosen = optional & set(data.get("categories") or [])
    else:
        chosen = set()
    granted = sorted(chosen | b.config.required_keys)
    body = {
        "decided": True, "consent_id": "A" * 22, "granted": granted, "revision": 1,
        "issued_at": int(time.time()), "source": data.get("source", "api"), "gpc": False,
    }  # fmt: skip
    response: Response
    if is_json:
        response = JSONResponse(body)
    else:
        response = RedirectResponse(str(data.get("next") or "/page"), status_code=303)
    response.set_cookie(COOKIE, ".".join(sorted(chosen)) or "none", samesite="lax")
    return response


async def posts(request: Request) -> JSONResponse:
    if request.method == "DELETE":
        POSTS.clear()
    return JSONResponse(POSTS)


async def fragments(request: Request) -> JSONResponse:
    if request.method == "DELETE":
        FRAGMENTS.clear()
    return JSONResponse(FRAGMENTS)


async def frame(request: Request) -> HTMLResponse:
    return HTMLResponse("<!doctype html><html lang='en'><title>Frame</title><p>Embedded</p></html>")


app = Starlette(
    routes=[
        Route("/page", page),
        Route("/frame", frame),
        Route("/_consent", endpoint, methods=["POST"]),
        Route("/_consent/policy", policy),
        Route("/_consent/banner", fragment),
        Route("/_consent/static/{name}", static),
        Route("/_test/posts", posts, methods=["GET", "DELETE"]),
        Route("/_test/fragments", fragments, methods=["GET", "DELETE"]),
    ]
)
