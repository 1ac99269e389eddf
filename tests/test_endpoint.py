"""The consent endpoint through the middleware: decisions, errors, GPC, the log."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from consent import ConsentMiddleware
from consent.errors import LogUnavailable
from consent.state import ConsentState

from .conftest import make_config
from .harness import Result, call

pytestmark = pytest.mark.anyio

FORM = (b"content-type", b"application/x-www-form-urlencoded")
JSON = (b"content-type", b"application/json")
HTML = b"<html><head></head><body><p>page</p></body></html>"


class RecordingStore:
    """A LogStore that keeps what it was given, and can be switched off."""

    def __init__(self) -> None:
        self.entries: list[Any] = []
        self.texts: dict[str, str] = {}
        self.down = False
        self.opened = 0

    async def open(self) -> None:
        if self.down:
            raise LogUnavailable("store is down")
        self.opened += 1

    async def close(self) -> None:
        pass

    async def append(self, entry: Any) -> Any:
        if self.down:
            raise LogUnavailable("store is down")
        self.entries.append(entry)
        return entry

    async def append_many(self, entries: list[Any]) -> list[Any]:
        if self.down:
            raise LogUnavailable("store is down")
        self.entries.extend(entries)
        return list(entries)

    async def put_texts(self, texts_hash: str, texts_json: str) -> None:
        if self.down:
            raise LogUnavailable("store is down")
        self.texts[texts_hash] = texts_json


async def page(scope: Any, receive: Any, send: Any) -> None:
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/html")]}
    )
    await send({"type": "http.response.body", "body": HTML})


@pytest.fixture
def store() -> RecordingStore:
    return RecordingStore()


@pytest.fixture
def app(store: RecordingStore) -> ConsentMiddleware:
    return ConsentMiddleware(page, config=make_config(), store=store)  # type: ignore[arg-type]


def consent_value(r: Result) -> str:
    return r.set_cookies["consent"].split(";")[0].split("=", 1)[1]


def state_of(app: ConsentMiddleware, r: Result) -> ConsentState:
    state = app.policy.codec.decode(consent_value(r))
    assert state is not None
    return state


async def post(
    app: ConsentMiddleware, body: bytes, *headers: tuple[bytes, bytes], **kw: Any
) -> Result:
    return await call(app, "POST", "/_consent", [*headers], body=body, **kw)


def assert_error(r: Result, status: int, text: str) -> None:
    assert r.status == status, r.body
    assert r.header("content-type") == "application/json"
    payload = json.loads(r.body)
    assert text in payload["detail"], payload
    assert r.header_values("set-cookie") == []


# -- decisions --------------------------------------------------------------------------


async def test_form_accept_all_redirects_back_and_sets_the_cookie(
    app: ConsentMiddleware, store: RecordingStore
) -> None:
    r = await post(app, b"action=accept_all&next=%2Farticle%3Fid%3D3", FORM)
    assert r.status == 303 and r.header("location") == "/article?id=3"
    cookie = r.set_cookies["consent"]
    assert "Path=/" in cookie and "SameSite=Lax" in cookie and "HttpOnly" not in cookie
    assert "Secure" not in cookie  # plain http here
    assert state_of(app, r).granted == {"necessary", "preferences", "analytics", "marketing"}
    [entry] = store.entries
    assert entry.action == "accept_all" and entry.source == "banner"
    assert entry.granted == ("analytics", "marketing", "preferences") and entry.denied == ()
    assert entry.texts_hash in store.texts and entry.ip is None


async def test_secure_cookie_over_https(app: ConsentMiddleware) -> None:
    r = await post(app, b"action=reject_all", FORM, scheme="https")
    assert "Secure" in r.set_cookies["consent"]


async def test_json_save_grants_exactly_the_chosen(
    app: ConsentMiddleware, store: RecordingStore
) -> None:
    r = await post(app, b'{"action":"save","categories":["analytics"]}', JSON)
    assert r.status == 200
    body = json.loads(r.body)
    assert body["granted"] == ["analytics", "necessary"] and body["decided"] is True
    assert state_of(app, r).granted == {"necessary", "analytics"}
    assert (
        store.entries[0].denied == ("marketing", "preferences") and store.entries[0].source == "api"
    )


async def test_form_save_with_repeated_categories(app: ConsentMiddleware) -> None:
    r = await post(app, b"action=save&categories=analytics&categories=preferences", FORM)
    assert state_of(app, r).granted == {"necessary", "analytics", "preferences"}


async def test_reject_all_and_then_the_next_page_has_no_banner(app: ConsentMiddleware) -> None:
    r = await post(app, b"action=reject_all", FORM)
    assert state_of(app, r).granted == {"necessary"}
    cookie = (b"cookie", f"consent={consent_value(r)}".encode())
    for _ in range(3):
        page_r = await call(app, headers=[cookie])
        assert b"data-consent-banner" not in page_r.body and b"<template" not in page_r.body
        assert b"data-consent-open" in page_r.body  # the settings control stays on every page


async def test_withdraw_expires_cookies_and_keeps_the_consent_id(
    app: ConsentMiddleware, store: RecordingStore
) -> None:
    r1 = await post(app, b"action=accept_all", FORM)
    cid = state_of(app, r1).consent_id
    cookie = f"consent={consent_value(r1)}; _ga=GA1; _fbp=x; session=1"
    r2 = await post(app, b"action=withdraw", FORM, (b"cookie", cookie.encode()))
    assert state_of(app, r2).granted == {"necessary"}
    assert state_of(app, r2).consent_id == cid
    deleted = {v.split("=")[0] for v in r2.header_values("set-cookie") if "Max-Age=0" in v}
    assert deleted == {"_ga", "_fbp"}
    assert [e.action for e in store.entries] == ["accept_all", "withdraw"]
    assert store.entries[1].consent_id == cid


async def test_get_returns_the_state(app: ConsentMiddleware) -> None:
    r = await call(app, "GET", "/_consent")
    assert r.status == 200 and json.loads(r.body)["decided"] is False
    assert r.header("cache-control") == "no-store"
    r = await call(app, "HEAD", "/_consent")
    assert r.status == 200 and r.body == b""


async def test_truncated_ip_only_when_enabled(store: RecordingStore) -> None:
    app = ConsentMiddleware(page, config=make_config(log_ip=True), store=store)  # type: ignore[arg-type]
    await post(app, b"action=reject_all", FORM)
    assert store.entries[0].ip == "203.0.113.0"


# -- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ([(b"sec-fetch-site", b"cross-site")], "Sec-Fetch-Site"),
        ([(b"sec-fetch-site", b"same-site")], "Sec-Fetch-Site"),
        ([(b"origin", b"https://evil.example")], "is not this site"),
        ([(b"origin", b"null")], "is not this site"),
    ],
)
async def test_cross_site_posts_are_refused(
    app: ConsentMiddleware, store: RecordingStore, headers: Any, why: str
) -> None:
    r = await post(app, b"action=accept_all", FORM, *headers)
    assert_error(r, 403, why)
    assert store.entries == []


async def test_same_origin_post_is_accepted(app: ConsentMiddleware) -> None:
    r = await post(
        app,
        b"action=accept_all",
        FORM,
        (b"origin", b"http://testserver"),
        (b"sec-fetch-site", b"same-origin"),
    )
    assert r.status == 303


@pytest.mark.parametrize(
    ("body", "headers", "status", "why"),
    [
        (b"{nope", [JSON], 400, "malformed JSON"),
        (b"[1,2]", [JSON], 400, "must be an object"),
        (b'{"action":"maybe"}', [JSON], 400, "'action' must be one of"),
        (b'{"action":"save","categories":"analytics"}', [JSON], 400, "list of category keys"),
        (b"[" * 5000, [JSON], 400, "nested deeper than"),
        (b'{"action":"save","action":"withdraw"}', [JSON], 400, "repeated"),
        (b'{"action":"save","categories":[1]}', [JSON], 400, "list of category keys"),
        (b"action=save&categories=spying", [FORM], 400, "unknown categories"),
        (b"action=save&categories=x%0D%0ASet-Cookie:%20a=b", [FORM], 400, "unknown categories"),
        (b"action=accept_all&action=reject_all", [FORM], 400, "repeated"),
        (b"categories=analytics", [FORM], 400, "'action' must be one of"),
        (b"action=accept_all&source=robot", [FORM], 400, "'source' must be one of"),
        (b"\xff\xfe", [FORM], 400, "UTF-8"),
        (b"action=accept_all", [(b"content-type", b"text/plain")], 415, "content type"),
        (b"action=accept_all", [], 415, "content type"),
        (b"a" * 17000, [FORM], 413, "over 16384 bytes"),
    ],
)
async def test_bad_input_is_a_clear_error_and_sets_no_cookie(
    app: ConsentMiddleware, store: RecordingStore, body: bytes, headers: Any, status: int, why: str
) -> None:
    r = await post(app, body, *headers)
    assert_error(r, status, why)
    assert store.entries == []


async def test_oversized_body_announced_by_content_length(app: ConsentMiddleware) -> None:
    r = await post(app, b"x", FORM, (b"content-length", b"999999"))
    assert_error(r, 413, "over")


async def test_oversized_body_in_chunks(app: ConsentMiddleware) -> None:
    r = await call(app, "POST", "/_consent", [FORM], body=[b"a" * 9000, b"a" * 9000])
    assert_error(r, 413, "over")


@pytest.mark.parametrize(
    "nxt",
    [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:alert(1)",
        "/a\r\nb",
        "/a\\b",
    ],
)
async def test_no_open_redirect(app: ConsentMiddleware, nxt: str) -> None:
    from urllib.parse import quote

    r = await post(app, f"action=reject_all&next={quote(nxt)}".encode(), FORM)
    assert r.status == 303 and r.header("location") == "/"


async def test_redirect_honours_root_path(app: ConsentMiddleware) -> None:
    r = await call(app, "POST", "/_consent", [FORM], body=b"action=reject_all", root_path="/sub")
    assert r.header("location") == "/sub/"


async def test_other_methods_and_paths(app: ConsentMiddleware) -> None:
    r = await call(app, "PUT", "/_consent")
    assert r.status == 405 and "POST" in (r.header("allow") or "")
    r = await call(app, "GET", "/_consent/nothing")
    assert r.status == 404
    r = await call(app, "GET", "/_consentx")
    assert b"page" in r.body  # not the endpoint: the app's own page


# -- the log --------------------------------------------------------------------------------


async def test_log_down_answers_503_sets_no_cookie_pages_still_served_then_recovers(
    app: ConsentMiddleware, store: RecordingStore
) -> None:
    store.down = True
    r = await post(app, b"action=accept_all", FORM)
    assert_error(r, 503, "could not be recorded")
    page_r = await call(app)
    assert page_r.status == 200 and b"page" in page_r.body
    store.down = False
    r = await post(app, b"action=accept_all", FORM)
    assert r.status == 303 and "consent" in r.set_cookies
    assert len(store.entries) == 1


async def test_texts_are_stored_once(app: ConsentMiddleware, store: RecordingStore) -> None:
    for _ in range(3):
        await post(app, b"action=reject_all", FORM)
    assert len(store.texts) == 1 and len(store.entries) == 3
    assert json.loads(next(iter(store.texts.values())))


# -- GPC ------------------------------------------------------------------------------------


async def test_gpc_json_resource(app: ConsentMiddleware) -> None:
    r = await call(app, "GET", "/.well-known/gpc.json")
    payload = json.loads(r.body)
    assert r.status == 200 and r.header("content-type") == "application/json"
    assert payload["gpc"] is True and len(payload["lastUpdate"]) == 10


async def test_gpc_overrides_accept_all_and_is_recorded(
    app: ConsentMiddleware, store: RecordingStore
) -> None:
    r = await post(app, b'{"action":"accept_all","source":"banner"}', JSON, (b"sec-gpc", b"1"))
    assert "marketing" not in json.loads(r.body)["granted"]
    assert [(e.action, e.source) for e in store.entries] == [
        ("accept_all", "banner"),
        ("gpc", "gpc"),
    ]
    assert "marketing" in store.entries[1].denied and "marketing" in store.entries[0].granted


@pytest.mark.parametrize(
    ("value", "on"), [(b"1", True), (b" 1 ", True), (b"0", False), (b"true", False), (b"", False)]
)
async def test_only_gpc_value_1_counts(app: ConsentMiddleware, value: bytes, on: bool) -> None:
    r = await call(app, "GET", "/_consent", [(b"sec-gpc", value)])
    assert json.loads(r.body)["gpc"] is on


async def test_any_duplicate_gpc_1_wins(app: ConsentMiddleware) -> None:
    r = await call(app, "GET", "/_consent", [(b"sec-gpc", b"0"), (b"sec-gpc", b"1")])
    assert json.loads(r.body)["gpc"] is True


# -- assets ---------------------------------------------------------------------------------


async def test_policy_page_and_static_assets(app: ConsentMiddleware) -> None:
    r = await call(app, "GET", "/_consent/policy")
    assert (
        r.status == 200
        and b"_ga" in r.body
        and r.header(
            "content-type",
        ).startswith("text/html")
    )  # type: ignore[union-attr]
    r = await call(app, "GET", "/_consent/static/consent.js")
    assert r.status == 200 and "immutable" in (r.header("cache-control") or "")
    etag = r.header("etag")
    assert etag
    r = await call(app, "GET", "/_consent/static/consent.js", [(b"if-none-match", etag.encode())])
    assert r.status == 304 and r.body == b""
    r = await call(app, "GET", "/_consent/static/../../etc/passwd")
    assert r.status == 404


# -- the settings layer consent.js fetches ----------------------------------------------------


async def test_decided_page_carries_only_a_small_settings_control(app: ConsentMiddleware) -> None:
    r = await post(app, b"action=save&categories=analytics", FORM)
    cookie = (b"cookie", f"consent={consent_value(r)}".encode())
    undecided = await call(app)
    decided = await call(app, headers=[cookie])

    def injected(body: bytes) -> int:  # before </body>; the head's gtag script apart
        return len(body.partition(b"<p>page</p>")[2].partition(b"</body>")[0])

    assert 0 < injected(decided.body) < 1024 < injected(undecided.body)
    assert b"data-consent-open" in decided.body and b"data-consent-banner" not in decided.body


async def test_banner_fragment_has_the_form_with_the_visitors_grants_checked(
    app: ConsentMiddleware,
) -> None:
    r = await post(app, b"action=save&categories=analytics", FORM)
    cookie = (b"cookie", f"consent={consent_value(r)}".encode())
    r = await call(
        app, "GET", "/_consent/banner", [cookie], query=b"next=%2Fshop%3Fp%3D2", root_path="/sub"
    )
    assert r.status == 200
    assert r.header("content-type") == "text/html; charset=utf-8"
    assert r.header("cache-control") == "private, no-cache"
    assert r.header("vary") == "Cookie, Accept-Language, Sec-GPC"
    assert r.header_values("set-cookie") == []
    html = r.body.decode()
    assert html.startswith("<div") and "data-consent-banner" in html and "<script" not in html
    assert '<form class="cc-form" method="post" action="/sub/_consent">' in html
    assert '<input type="hidden" name="next" value="/shop?p=2">' in html
    checked = re.findall(r'name="categories" value="(\w+)"[^>]*?\bchecked\b', html)
    assert sorted(checked) == ["analytics", "necessary"]
    assert 'value="withdraw">' in html  # a decided visitor may withdraw: not hidden


async def test_banner_fragment_for_an_undecided_visitor_and_in_their_language(
    app: ConsentMiddleware,
) -> None:
    r = await call(app, "GET", "/_consent/banner", [(b"accept-language", b"de-AT,en;q=0.5")])
    html = r.body.decode()
    assert r.status == 200 and 'lang="de"' in html
    assert re.findall(r'value="(\w+)"[^>]*?\bchecked\b', html) == ["necessary"]
    assert '<input type="hidden" name="next" value="/">' in html
    r = await call(app, "HEAD", "/_consent/banner")
    assert r.status == 200 and r.body == b""


async def test_banner_fragment_refuses_post(app: ConsentMiddleware) -> None:
    r = await call(app, "POST", "/_consent/banner", [FORM], body=b"action=accept_all")
    assert_error(r, 405, "use GET")
    assert r.header("allow") == "GET, HEAD"
