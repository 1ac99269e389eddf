"""ConsentMiddleware under the strict harness: cookie blocking and the ASGI pitfalls."""

from __future__ import annotations

import contextvars
import gzip
import pathlib
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket

from consent import ConsentMiddleware, ConsentState, get_consent
from consent.errors import ConsentError
from consent.state import ConsentState as _State

from .conftest import make_config
from .harness import call

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Filtering and injection use no event-loop API: they run on both backends.

    (The consent log is asyncio-only; its tests stay on asyncio.)
    """
    return str(request.param)


HTML = b"<!doctype html><html><head><title>t</title></head><body><h1>Hello</h1></body></html>"


def raw_app(
    status: int = 200,
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes | list[bytes] = b"ok",
    ctype: bytes = b"text/plain",
    extra: list[dict[str, Any]] | None = None,
    start_extra: dict[str, Any] | None = None,
) -> Any:
    chunks = [body] if isinstance(body, bytes) else body

    async def app(scope: Any, receive: Any, send: Any) -> None:
        hdrs = [(b"content-type", ctype), *(headers or [])]
        if status not in (204, 304):
            hdrs.append((b"content-length", str(sum(map(len, chunks))).encode()))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": hdrs,
                **(start_extra or {}),
            }
        )
        if status in (204, 304):
            await send({"type": "http.response.body", "body": b""})
        else:
            for i, c in enumerate(chunks):
                await send(
                    {"type": "http.response.body", "body": c, "more_body": i < len(chunks) - 1}
                )
        for m in extra or []:
            await send(m)

    return app


COOKIES = [
    (b"set-cookie", b"session=s1; HttpOnly; Path=/"),
    (b"set-cookie", b"_ga=GA1.1; Max-Age=63072000; Path=/"),
    (b"Set-Cookie", b"_fbp=fb.1; Path=/"),
    (b"set-cookie", b"mystery=1; Path=/"),
]


def mw(app: Any, **kw: Any) -> ConsentMiddleware:
    return ConsentMiddleware(app, config=make_config(**kw))


def consent_cookie(m: ConsentMiddleware, *keys: str) -> tuple[bytes, bytes]:
    value = m.policy.codec.encode(
        _State(
            granted=frozenset(keys) | m.policy.required, decided=True, revision=m.config.revision
        )
    )
    return (b"cookie", f"{m.config.cookie_name}={value}".encode())


# -- the behaviour the issue names ------------------------------------------------------


def starlette_app() -> Starlette:
    async def home(request: Request) -> Response:
        r = PlainTextResponse("hi")
        r.set_cookie("session", "abc", httponly=True)
        r.set_cookie("_ga", "GA1.2.3")
        r.set_cookie("_fbp", "fb.1")
        r.set_cookie("mystery", "1")
        return r

    return Starlette(routes=[Route("/", home)])


def test_starlette_app_undecided_granted_and_tampered() -> None:
    app = mw(starlette_app())
    client = TestClient(app)
    r = client.get("/")
    assert [c.split("=")[0] for c in r.headers.get_list("set-cookie")] == ["session"]

    name, value = consent_cookie(app, "analytics")
    r = client.get("/", headers={name.decode(): value.decode()})
    assert [c.split("=")[0] for c in r.headers.get_list("set-cookie")] == ["session", "_ga"]

    tampered = value.replace(b"analytics", b"marketing")
    r = client.get("/", headers={"cookie": tampered.decode()})
    assert [c.split("=")[0] for c in r.headers.get_list("set-cookie")] == ["session"]


async def test_undecided_visitor_gets_only_necessary_cookies() -> None:
    r = await call(mw(raw_app(headers=COOKIES)))
    assert r.set_cookie_names == ["session"]


async def test_granted_categories_pass_in_order() -> None:
    m = mw(raw_app(headers=COOKIES))
    r = await call(m, headers=[consent_cookie(m, "analytics", "marketing")])
    assert r.set_cookie_names == ["session", "_ga", "_fbp"]
    assert (b"Set-Cookie", b"_fbp=fb.1; Path=/") in r.headers  # mixed case kept


async def test_unknown_cookies_can_be_allowed() -> None:
    r = await call(mw(raw_app(headers=COOKIES), unknown_cookies="allow"))
    assert r.set_cookie_names == ["session", "mystery"]


async def test_blocked_cookies_are_counted() -> None:
    m = mw(raw_app(headers=COOKIES))
    await call(m)
    await call(m)
    assert m.blocked.counts == {"_ga": 2, "_fbp": 2, "mystery": 2}


async def test_refused_cookies_sent_by_the_browser_are_expired() -> None:
    m = mw(raw_app())
    r = await call(m, headers=[(b"cookie", b"_ga=GA1; session=1; _fbp=x")])
    deleted = [v for v in r.header_values("set-cookie") if "Max-Age=0" in v]
    assert {d.split("=")[0] for d in deleted} == {"_ga", "_fbp"}
    assert any("Domain=.example.com" in d for d in deleted)  # the rule's domain variant too
    assert r.body == b"ok"


async def test_two_cookie_headers_and_a_malformed_pair_still_yield_the_state() -> None:
    seen: list[ConsentState] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(get_consent(scope))
        await raw_app()(scope, receive, send)

    m = mw(app)
    name, value = consent_cookie(m, "analytics")
    await call(m, headers=[(b"cookie", b"garbage;;=x; a"), (name, value), (b"cookie", b"_gid=1")])
    assert seen[0].decided and seen[0].allows("analytics")


async def test_scope_and_request_expose_the_state() -> None:
    async def page(request: Request) -> Response:
        state = get_consent(request)
        assert request.scope["consent"] is state
        return PlainTextResponse(f"{state.decided} {sorted(state.granted)}")

    m = mw(Starlette(routes=[Route("/", page)]))
    r = await call(m)
    assert r.body == b"False ['necessary']"


def test_get_consent_without_middleware_is_a_clear_error() -> None:
    with pytest.raises(ConsentError, match="is ConsentMiddleware installed"):
        get_consent({"type": "http"})


# -- pitfalls (STYLE.md) --------------------------------------------------------------------


def test_pitfall_1_no_base_http_middleware() -> None:
    src = pathlib.Path(__file__).parents[1] / "src" / "consent"
    for path in src.rglob("*.py"):
        assert "starlette.middleware.base" not in path.read_text(), path


VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


async def test_pitfall_1_contextvar_set_in_endpoint_reaches_outer_spy() -> None:
    async def endpoint(scope: Any, receive: Any, send: Any) -> None:
        VAR.set("from-endpoint")
        await raw_app()(scope, receive, send)

    inner = mw(endpoint)
    seen: list[str] = []

    async def spy(scope: Any, receive: Any, send: Any) -> None:
        await inner(scope, receive, send)
        seen.append(VAR.get())

    await call(spy)
    assert seen == ["from-endpoint"]


async def test_pitfall_3_gzipped_html_is_byte_identical_but_filtered() -> None:
    body = gzip.compress(HTML)
    app = raw_app(body=body, ctype=b"text/html", headers=[(b"content-encoding", b"gzip"), *COOKIES])
    r = await call(mw(app))
    assert r.body == body
    assert r.header("content-length") == str(len(body))
    assert r.set_cookie_names == ["session"]


async def test_pitfall_4_head_announces_what_get_sends_and_filters() -> None:
    m = mw(raw_app(body=HTML, ctype=b"text/html", headers=COOKIES))
    get = await call(m)
    head = await call(m, method="HEAD")
    # The body the app sends for HEAD is the server's to drop: left untouched.
    assert head.body == HTML
    assert head.header("content-length") == get.header("content-length") == str(len(get.body))
    assert head.header("vary") == get.header("vary")
    assert head.set_cookie_names == ["session"]


@pytest.mark.parametrize("status", [204, 304])
async def test_pitfall_5_no_body_statuses(status: int) -> None:
    r = await call(mw(raw_app(status=status, ctype=b"text/html", headers=COOKIES)))
    assert r.body == b"" and r.header("content-length") is None
    assert r.set_cookie_names == ["session"]


async def test_pitfall_6_range_response_untouched() -> None:
    part = HTML[:20]
    app = raw_app(
        status=206, body=part, ctype=b"text/html", headers=[(b"content-range", b"bytes 0-19/86")]
    )
    r = await call(mw(app), headers=[(b"range", b"bytes=0-19")])
    assert r.status == 206 and r.body == part and r.header("content-length") == "20"


async def test_pitfall_8_pathsend_forwarded_untouched() -> None:
    send_msg = {"type": "http.response.pathsend", "path": "/tmp/file.html"}

    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert "http.response.pathsend" in scope["extensions"]
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/html"), *COOKIES],
            }
        )
        await send(send_msg)

    r = await call(mw(app), extensions={"http.response.pathsend": {}})
    assert r.types == ["http.response.start", "http.response.pathsend"]
    assert r.messages[1] is send_msg
    assert r.set_cookie_names == ["session"]


async def test_pitfall_9_debug_trailers_sequence_complete_and_in_order() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.debug", "info": {"template": "x"}})
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain"), *COOKIES],
                "trailers": True,
            }
        )
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.body", "body": b"b"})
        await send(
            {
                "type": "http.response.trailers",
                "headers": [(b"x-checksum", b"1")],
                "more_trailers": False,
            }
        )

    r = await call(mw(app))
    assert r.types == [
        "http.response.debug",
        "http.response.start",
        "http.response.body",
        "http.response.body",
        "http.response.trailers",
    ]
    assert r.start["trailers"] is True and r.set_cookie_names == ["session"] and r.body == b"ab"


async def test_pitfall_9_early_hint_and_unknown_types_forwarded_in_order() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.early_hint", "links": [b"</style.css>; rel=preload"]})
        await send({"type": "http.response.body", "body": b"x"})
        await send({"type": "x.custom"})

    r = await call(mw(app), strict=False)
    assert r.types == [
        "http.response.start",
        "http.response.early_hint",
        "http.response.body",
        "x.custom",
    ]


def test_pitfall_10_lifespan_reaches_the_app() -> None:
    events: list[str] = []

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        events.append("startup")
        yield
        events.append("shutdown")

    app = mw(Starlette(lifespan=lifespan))
    with TestClient(app):
        assert events == ["startup"]
    assert events == ["startup", "shutdown"]


async def test_pitfall_10_websocket_echo_and_accept_headers_filtered() -> None:
    async def ws(websocket: WebSocket) -> None:
        assert not get_consent(websocket).decided
        await websocket.accept(headers=[(b"set-cookie", b"session=1"), (b"set-cookie", b"_fbp=2")])
        text = await websocket.receive_text()
        await websocket.send_text(text.upper())
        await websocket.close()

    from .harness import make_scope

    incoming = [
        {"type": "websocket.connect"},
        {"type": "websocket.receive", "text": "hello"},
        {"type": "websocket.disconnect", "code": 1000},
    ]
    sent: list[Any] = []

    async def receive() -> Any:
        return incoming.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    app = mw(Starlette(routes=[WebSocketRoute("/ws", ws)]))
    await app(make_scope(path="/ws", kind="websocket", scheme="ws"), receive, send)
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert [v for k, v in sent[0]["headers"] if k == b"set-cookie"] == [b"session=1"]
    assert sent[1]["text"] == "HELLO"


async def test_pitfall_13_streaming_response_passes_at_once() -> None:
    got_first = anyio.Event()
    sent: list[bytes] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        with anyio.fail_after(2):
            await got_first.wait()  # the client saw the first event before the second is sent
        await send({"type": "http.response.body", "body": b"data: 2\n\n", "more_body": False})

    m = mw(app)

    async def send(message: Any) -> None:
        if message["type"] == "http.response.body":
            sent.append(message["body"])
            got_first.set()

    from .harness import make_scope

    async def receive() -> dict[str, Any]:
        await anyio.sleep_forever()
        raise AssertionError

    await m(make_scope(), receive, send)
    assert sent == [b"data: 1\n\n", b"data: 2\n\n"]


async def test_pitfall_13_bare_final_body_message() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/html")],
            }
        )
        await send({"type": "http.response.body", "body": b"<html><body>x", "more_body": True})
        await send({"type": "http.response.body", "body": b"</body></html>", "more_body": True})
        await send({"type": "http.response.body"})  # Django ends like this

    r = await call(mw(app))
    assert r.body.endswith(b"</body></html>") and b"data-consent-banner" in r.body


async def test_pitfall_14_exception_after_start_propagates() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/html")],
            }
        )
        await send({"type": "http.response.body", "body": b"<html><body>part", "more_body": True})
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await call(mw(app), strict=False)


def test_pitfall_14_exception_before_start_gives_500() -> None:
    async def boom(request: Request) -> Response:
        raise RuntimeError("boom")

    app = mw(Starlette(routes=[Route("/", boom)]))
    assert TestClient(app, raise_server_exceptions=False).get("/").status_code == 500


async def test_pitfall_15_root_path_endpoint_and_banner_action() -> None:
    app = raw_app(body=HTML, ctype=b"text/html")
    m = mw(app)
    r = await call(m, path="/_consent", root_path="/sub")
    assert r.status == 200 and b'"decided":false' in r.body
    r = await call(m, path="/page", root_path="/sub")
    assert b'action="/sub/_consent"' in r.body


async def test_pitfall_16_vary_and_weak_etag_on_injected_pages() -> None:
    app = raw_app(body=HTML, ctype=b"text/html; charset=utf-8", headers=[(b"etag", b'"abc"')])
    r = await call(mw(app))
    assert b"data-consent-banner" in r.body
    assert "cookie" in (r.header("vary") or "").lower()
    assert r.header("etag") == 'W/"abc"'


async def test_pitfall_2_content_length_matches_after_injection() -> None:
    r = await call(mw(raw_app(body=[HTML[:30], HTML[30:]], ctype=b"text/html")))
    assert b"data-consent-banner" in r.body
    assert int(r.header("content-length") or -1) == len(r.body)


async def test_excluded_paths_get_no_banner_but_filtering() -> None:
    r = await call(
        mw(raw_app(body=HTML, ctype=b"text/html", headers=COOKIES), exclude_paths=["/admin"]),
        path="/admin/x",
    )
    assert r.body == HTML and r.set_cookie_names == ["session"]


async def test_other_scope_types_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    await mw(app)({"type": "custom"}, None, None)
    assert seen == ["custom"]


def test_config_is_required_and_may_be_a_toml_path(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConsentError, match=r"ConsentMiddleware needs config=ConsentConfig"):
        ConsentMiddleware(raw_app())
    path = tmp_path / "consent.toml"
    path.write_text(
        'secret_key = "0123456789abcdef0123"\nlog = "memory://"\n'
        '[[categories]]\nkey = "necessary"\nrequired = true\ncookies = ["session"]\n',
        encoding="utf-8",
    )
    m = ConsentMiddleware(raw_app(), config=str(path))
    assert m.config.required_keys == {"necessary"}


def test_pitfall_3_gzip_outermost_compresses_the_page_with_its_banner() -> None:
    from starlette.middleware.gzip import GZipMiddleware

    async def page(request: Request) -> Response:
        return HTMLResponse(HTML.decode())

    inner = mw(Starlette(routes=[Route("/", page)]))
    app = GZipMiddleware(inner, minimum_size=10)
    r = TestClient(app).get("/", headers={"accept-encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"
    assert b"data-consent-banner" in r.content  # httpx decompressed it
    assert int(r.headers["content-length"]) < len(r.content)
