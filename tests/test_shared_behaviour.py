"""One behaviour suite, run on the ASGI middleware and on its WSGI twin.

Both shells wrap the same app (built from one route table, once as raw ASGI and
once as raw PEP 3333), are driven by their usual test client (Starlette's
TestClient, Werkzeug's Client) and must give the same answers.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.testclient import TestClient
from werkzeug.test import Client

from consent import ConsentMiddleware, ConsentState
from consent.wsgi import ConsentWSGIMiddleware

from .conftest import make_config
from .test_endpoint import RecordingStore

HTML = b"<!doctype html><html><head><title>t</title></head><body><h1>Hello</h1></body></html>"
COOKIES = [
    ("set-cookie", "session=s1; HttpOnly; Path=/"),
    ("set-cookie", "_ga=GA1.1; Max-Age=63072000; Path=/"),
    ("Set-Cookie", "_fbp=fb.1; Path=/"),
    ("set-cookie", "mystery=1; Path=/"),
]
FORM = {"content-type": "application/x-www-form-urlencoded"}
JSON = {"content-type": "application/json"}

# path -> (status, headers, body): the one app both shells wrap.
ROUTES: dict[str, tuple[int, list[tuple[str, str]], bytes]] = {
    "/": (200, [("content-type", "text/plain"), *COOKIES], b"ok"),
    "/page": (200, [("content-type", "text/html; charset=utf-8"), *COOKIES], HTML),
    "/gzip": (
        200,
        [("content-type", "text/html"), ("content-encoding", "gzip"), *COOKIES],
        gzip.compress(HTML, mtime=0),
    ),
    "/empty": (204, [("content-type", "text/html"), *COOKIES], b""),
    "/plain": (200, [("content-type", "text/plain")], b"plain"),
    "/cached": (
        200,
        [
            ("content-type", "text/html; charset=utf-8"),
            ("cache-control", "public, max-age=60, s-maxage=600"),
            ("etag", '"v1"'),
            ("accept-ranges", "bytes"),
            ("vary", "Accept-Encoding"),
        ],
        HTML,
    ),
    "/cached-cookies": (
        200,
        [("content-type", "application/json"), ("cache-control", "public, max-age=60"), *COOKIES],
        b"{}",
    ),
    "/not-modified": (304, [("etag", '"v1"'), ("cache-control", "public, max-age=60")], b""),
    "/spaced": (200, [("content-type", " text/html"), *COOKIES], HTML),
}


def _route(path: str) -> tuple[int, list[tuple[str, str]], bytes]:
    status, headers, body = ROUTES[path]
    if status not in (204, 304):
        headers = [*headers, ("content-length", str(len(body)))]
    return status, headers, body


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    status, headers, body = _route(scope["path"])
    raw = [(k.encode(), v.encode()) for k, v in headers]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    status, headers, body = _route(environ["PATH_INFO"])
    start_response(f"{status} X", headers)
    return [body] if body else []


@dataclass
class Resp:
    status: int
    headers: list[tuple[str, str]]
    #: The body exactly as it left the middleware (never decompressed).
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)

    def cookies(self) -> list[str]:
        return [v for k, v in self.headers if k.lower() == "set-cookie"]

    @property
    def kept(self) -> list[str]:
        """Names of cookies set with a value (deletions left out)."""
        return [c.split("=", 1)[0] for c in self.cookies() if "Max-Age=0" not in c]

    @property
    def deleted(self) -> set[str]:
        return {c.split("=", 1)[0] for c in self.cookies() if "Max-Age=0" in c}

    @property
    def consent_cookie(self) -> str | None:
        for c in self.cookies():
            if c.startswith("consent="):
                return c.split(";", 1)[0]
        return None


class Shell:
    """A middleware around the shared app, plus a way to send it one request."""

    name: str
    mw: ConsentMiddleware | ConsentWSGIMiddleware

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> Resp:
        raise NotImplementedError

    def cookie_for(self, *keys: str) -> str:
        policy = self.mw.policy
        state = ConsentState(
            granted=frozenset(keys) | policy.required,
            decided=True,
            revision=self.mw.config.revision,
        )
        return f"consent={policy.codec.encode(state)}"


class ASGIShell(Shell):
    name = "asgi"

    def __init__(self, store: RecordingStore) -> None:
        self.mw = ConsentMiddleware(asgi_app, config=make_config(), store=store)  # type: ignore[arg-type]

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> Resp:
        # A client per request: no cookie jar carries state between requests.
        client = TestClient(self.mw)
        with client.stream(
            method, path, headers=headers, content=body, follow_redirects=False
        ) as r:
            raw = b"".join(r.iter_raw())
            return Resp(r.status_code, [(k, v) for k, v in r.headers.multi_items()], raw)


class WSGIShell(Shell):
    name = "wsgi"

    def __init__(self, store: RecordingStore) -> None:
        self.mw = ConsentWSGIMiddleware(wsgi_app, config=make_config(), store=store)  # type: ignore[arg-type]

    def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> Resp:
        client = Client(self.mw, use_cookies=False)
        r = client.open(path, method=method, headers=headers or {}, data=body)
        try:
            return Resp(r.status_code, r.headers.to_wsgi_list(), r.get_data())
        finally:
            r.close()


@pytest.fixture
def store() -> RecordingStore:
    return RecordingStore()


@pytest.fixture(params=[ASGIShell, WSGIShell], ids=["asgi", "wsgi"])
def shell(request: pytest.FixtureRequest, store: RecordingStore) -> Iterable[Shell]:
    factory: Callable[[RecordingStore], Shell] = request.param
    s = factory(store)
    yield s
    if isinstance(s.mw, ConsentWSGIMiddleware):
        s.mw.close()


def banner_shown(body: bytes) -> bool:
    """The banner is on the page (a decided visitor's page has only the settings control)."""
    return b"data-consent-banner" in body


# -- cookies ---------------------------------------------------------------------------


def test_undecided_visitor_only_gets_necessary_cookies(shell: Shell) -> None:
    r = shell.request("GET", "/")
    assert r.status == 200 and r.body == b"ok"
    assert r.kept == ["session"]


def test_granted_categories_pass_in_order(shell: Shell) -> None:
    r = shell.request("GET", "/", {"cookie": shell.cookie_for("analytics")})
    assert r.kept == ["session", "_ga"]
    r = shell.request("GET", "/", {"cookie": shell.cookie_for("analytics", "marketing")})
    assert r.kept == ["session", "_ga", "_fbp"]


def test_tampered_consent_cookie_means_undecided(shell: Shell) -> None:
    tampered = shell.cookie_for("analytics").replace("analytics", "marketing")
    r = shell.request("GET", "/", {"cookie": tampered})
    assert r.kept == ["session"]


def test_refused_cookies_sent_by_the_browser_are_expired(shell: Shell) -> None:
    r = shell.request("GET", "/", {"cookie": "_ga=GA1; session=1; _fbp=x"})
    assert r.deleted == {"_ga", "_fbp"}
    assert any("Domain=.example.com" in c for c in r.cookies())  # the rule's domain variant


# -- the banner ------------------------------------------------------------------------


def test_banner_injected_with_a_correct_content_length(shell: Shell) -> None:
    r = shell.request("GET", "/page")
    assert banner_shown(r.body) and r.body.endswith(b"</body></html>")
    assert int(r.header("content-length") or -1) == len(r.body)
    assert "cookie" in (r.header("vary") or "").lower()
    assert r.kept == ["session"]


def test_form_post_redirects_sets_consent_and_the_next_page_has_no_banner(
    shell: Shell, store: RecordingStore
) -> None:
    r = shell.request("POST", "/_consent", FORM, b"action=accept_all&next=%2Fpage")
    assert r.status == 303 and r.header("location") == "/page"
    cookie = r.consent_cookie
    assert cookie is not None and [e.action for e in store.entries] == ["accept_all"]
    page = shell.request("GET", "/page", {"cookie": cookie})
    assert not banner_shown(page.body)
    assert b"data-consent-open" in page.body
    assert int(page.header("content-length") or -1) == len(page.body)
    assert page.kept == ["session", "_ga", "_fbp"]


def test_json_post_answers_the_new_state(shell: Shell) -> None:
    r = shell.request("POST", "/_consent", JSON, b'{"action":"save","categories":["analytics"]}')
    assert r.status == 200 and r.consent_cookie is not None
    state = json.loads(r.body)
    assert state["decided"] is True and state["granted"] == ["analytics", "necessary"]


def test_cross_site_post_is_refused(shell: Shell, store: RecordingStore) -> None:
    r = shell.request(
        "POST", "/_consent", {**FORM, "sec-fetch-site": "cross-site"}, b"action=accept_all"
    )
    assert r.status == 403 and json.loads(r.body)["error"] == "cross_site"
    assert r.cookies() == [] and store.entries == []


def test_bad_json_is_a_400(shell: Shell) -> None:
    r = shell.request("POST", "/_consent", JSON, b"{nope")
    assert r.status == 400 and "malformed JSON" in json.loads(r.body)["detail"]
    assert r.cookies() == []


def test_get_answers_the_current_state(shell: Shell) -> None:
    r = shell.request("GET", "/_consent")
    assert r.status == 200 and json.loads(r.body)["decided"] is False
    r = shell.request("GET", "/_consent", {"cookie": shell.cookie_for("marketing")})
    assert json.loads(r.body)["granted"] == ["marketing", "necessary"]


def test_banner_fragment_for_the_settings_control(shell: Shell) -> None:
    cookie = shell.cookie_for("analytics")
    r = shell.request("GET", "/_consent/banner?next=%2Fpage%3Fa%3D1", {"cookie": cookie})
    assert r.status == 200 and r.header("content-type") == "text/html; charset=utf-8"
    assert int(r.header("content-length") or -1) == len(r.body)
    assert banner_shown(r.body) and b'name="next" value="/page?a=1"' in r.body
    assert b'value="analytics" aria-describedby="cc-d-analytics" checked>' in r.body
    assert shell.request("POST", "/_consent/banner", FORM, b"action=accept_all").status == 405


def test_gpc_json_resource(shell: Shell) -> None:
    r = shell.request("GET", "/.well-known/gpc.json")
    assert r.status == 200 and r.header("content-type") == "application/json"
    assert json.loads(r.body)["gpc"] is True


def test_log_down_is_a_503_without_a_cookie_and_pages_still_work(
    shell: Shell, store: RecordingStore
) -> None:
    store.down = True
    r = shell.request("POST", "/_consent", FORM, b"action=accept_all")
    assert r.status == 503 and r.header("retry-after") == "5"
    assert r.cookies() == [] and store.entries == []
    assert shell.request("GET", "/page").status == 200
    store.down = False
    r = shell.request("POST", "/_consent", FORM, b"action=accept_all")
    assert r.status == 303 and r.consent_cookie is not None


# -- responses left alone ----------------------------------------------------------------


def test_head_announces_the_length_validators_and_vary_of_get(shell: Shell) -> None:
    get = shell.request("GET", "/page")
    head = shell.request("HEAD", "/page")
    # The body an app sends for HEAD is the server's to drop: never injected.
    assert head.status == 200 and not banner_shown(head.body)
    assert head.header("content-length") == get.header("content-length") == str(len(get.body))
    for name in ("vary", "cache-control", "etag", "accept-ranges"):
        assert head.header(name) == get.header(name), name
    assert head.kept == ["session"]


def test_204_gets_no_body_and_no_content_length(shell: Shell) -> None:
    r = shell.request("GET", "/empty")
    assert r.status == 204 and r.body == b"" and r.header("content-length") is None
    assert r.kept == ["session"]


def test_gzipped_html_is_byte_identical_but_filtered(shell: Shell) -> None:
    r = shell.request("GET", "/gzip")
    assert r.body == ROUTES["/gzip"][2]
    assert r.header("content-length") == str(len(r.body))
    assert gzip.decompress(r.body) == HTML
    assert r.kept == ["session"]


# -- what the response semantics promise, the same on both shells ------------------------


def test_an_injected_page_is_private_and_varies_on_what_its_bytes_depend_on(shell: Shell) -> None:
    r = shell.request("GET", "/cached")
    assert banner_shown(r.body)
    cache = [d.strip() for d in (r.header("cache-control") or "").split(",")]
    assert "private" in cache and "max-age=60" in cache
    assert "public" not in cache and not any(d.startswith("s-maxage") for d in cache)
    vary = {v.strip().lower() for v in (r.header("vary") or "").split(",")}
    assert vary == {"accept-encoding", "cookie", "accept-language", "sec-gpc"}
    assert r.header("etag") == 'W/"v1"'
    # Ranges of the app's bytes are no ranges of these.
    assert r.header("accept-ranges") is None
    assert int(r.header("content-length") or -1) == len(r.body)


def test_a_response_whose_cookies_were_filtered_is_private(shell: Shell) -> None:
    r = shell.request("GET", "/cached-cookies")
    assert r.kept == ["session"]
    assert r.header("cache-control") == "private, max-age=60"
    assert "cookie" in (r.header("vary") or "").lower()


def test_a_response_with_deletions_appended_is_private(shell: Shell) -> None:
    r = shell.request("GET", "/plain", {"cookie": "_ga=1"})
    assert r.deleted == {"_ga"}
    assert r.header("cache-control") == "private" and r.header("vary") == "Cookie"


def test_a_response_left_alone_gets_no_cache_headers(shell: Shell) -> None:
    r = shell.request("GET", "/plain")
    assert r.body == b"plain"
    assert r.header("cache-control") is None and r.header("vary") is None


def test_a_304_carries_the_weak_etag_of_the_injected_200(shell: Shell) -> None:
    r = shell.request("GET", "/not-modified")
    assert r.status == 304 and r.body == b""
    assert r.header("etag") == 'W/"v1"'
    assert r.header("cache-control") == "public, max-age=60"  # nothing else changed


def test_a_content_type_with_leading_space_is_still_html(shell: Shell) -> None:
    r = shell.request("GET", "/spaced")
    assert banner_shown(r.body) and int(r.header("content-length") or -1) == len(r.body)


@pytest.mark.parametrize(
    ("value", "gpc"), [("1", True), ("1, 1", True), (" 1 ", True), ("0", False), ("11", False)]
)
def test_sec_gpc_is_read_alike(shell: Shell, value: str, gpc: bool) -> None:
    r = shell.request("GET", "/_consent", {"sec-gpc": value})
    assert json.loads(r.body)["gpc"] is gpc


def test_deletions_are_capped_per_response_and_all_go_out_in_turn(shell: Shell) -> None:
    names = [f"ads_{i}" for i in range(100)]
    cookie = "; ".join(f"{n}=1" for n in names)
    limit = shell.mw.config.deletions_per_response
    seen: set[str] = set()
    for _ in range(40):
        r = shell.request("GET", "/plain", {"cookie": cookie})
        assert 0 < len(r.cookies()) <= limit
        seen |= r.deleted
    assert seen == set(names)
