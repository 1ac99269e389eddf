"""The compiled request path of ConsentMiddleware sends what the Python one sends.

``ConsentMiddleware`` hands the usual request to ``consent.core._speedups.Gate``
(its send wrapper is a ``Relay``) and everything else to the Python code in
``__call__``, which defines the behaviour. These tests run the same requests
through a middleware with the compiled gate and one without (``_gate = None``)
and compare every message sent, the scope's consent and the blocked-cookie
counts. Without the compiled module they skip with a message;
``CONSENT_REQUIRE_SPEEDUPS=1`` (set in CI) makes that a failure.
"""

from __future__ import annotations

import gc
import os
import types
from collections.abc import MutableMapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent import ConsentMiddleware
from consent.core import response
from consent.state import ConsentState

from .conftest import make_config
from .harness import make_scope

Message = MutableMapping[str, Any]

PAGE = b"<!doctype html><html><head><title>t</title></head><body><h1>Hi</h1></body></html>"


def _require_compiled() -> None:
    if response.speedups is not None:
        return
    if os.environ.get("CONSENT_PURE_PYTHON"):
        pytest.skip("CONSENT_PURE_PYTHON is set: the middleware runs its Python code only")
    why = "consent.core._speedups is not built (install with a C compiler)"
    if os.environ.get("CONSENT_REQUIRE_SPEEDUPS") == "1":
        pytest.fail(f"{why}; CONSENT_REQUIRE_SPEEDUPS=1")
    pytest.skip(f"{why}: the compiled request path is not there to compare")


@pytest.fixture(autouse=True)
def _compiled_only() -> None:
    _require_compiled()


def _app(script: list[Message]) -> Any:
    """An ASGI app that sends copies of ``script``, in order."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        for message in script:
            if message.get("type") == "raise":
                raise RuntimeError("the app failed")
            copy = dict(message)
            if "headers" in copy:
                copy["headers"] = list(copy["headers"])
            await send(copy)

    return app


def _pair(script: list[Message], **config: Any) -> tuple[ConsentMiddleware, ConsentMiddleware]:
    fast = ConsentMiddleware(_app(script), config=make_config(**config))
    slow = ConsentMiddleware(_app(script), config=make_config(**config))
    assert fast._gate is not None
    slow._gate = None
    return fast, slow


async def _run(mw: ConsentMiddleware, scope: dict[str, Any]) -> tuple[list[Any], Any]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = dict(scope)
    await mw(scope, receive, send)
    out = []
    for m in sent:
        m = dict(m)
        if "headers" in m:
            m["headers"] = [(bytes(k), bytes(v)) for k, v in m["headers"]]
        out.append(m)
    return out, scope.get("consent")


def _cookie(mw: ConsentMiddleware, granted: tuple[str, ...] | None) -> bytes | None:
    if granted is None:
        return None
    state = ConsentState(granted=frozenset(granted) | mw.policy.required, decided=True, revision=1)
    return f"consent={mw.policy.codec.encode(state)}".encode()


def _visitor(mw: ConsentMiddleware) -> dict[str, Any]:
    """The scope of a GET / from a visitor who granted analytics."""
    cookie = _cookie(mw, ("analytics",))
    assert cookie is not None
    return make_scope("GET", "/", [(b"cookie", cookie)])


async def _compare(
    script: list[Message],
    *,
    granted: tuple[str, ...] | None = ("analytics",),
    extra_cookies: bytes = b"_ga=1; _fbp=2",
    method: str = "GET",
    path: str = "/",
    root_path: str = "",
    query: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    rounds: int = 2,
    **config: Any,
) -> list[Any]:
    fast, slow = _pair(script, **config)
    request_headers = list(headers or [])
    cookie = _cookie(fast, granted)
    parts = [p for p in (cookie, extra_cookies) if p]
    if parts:
        request_headers.append((b"cookie", b"; ".join(parts)))
    scope = make_scope(method, path, request_headers, query=query, root_path=root_path)
    results = []
    # The first request reads the cookie in Python on both (the gate's cache is
    # empty); the later ones take the compiled path where it applies.
    for _ in range(rounds):
        got_fast = await _run(fast, scope)
        got_slow = await _run(slow, scope)
        assert got_fast == got_slow
        results.append(got_fast)
    assert fast.blocked.counts == slow.blocked.counts
    return results


def start(
    status: int = 200, headers: list[tuple[bytes, bytes]] | None = None, **kw: Any
) -> Message:
    return {"type": "http.response.start", "status": status, "headers": headers or [], **kw}


def body(data: bytes = b"", more: bool | None = None) -> Message:
    m: Message = {"type": "http.response.body", "body": data}
    if more is not None:
        m["more_body"] = more
    return m


HTML_TYPE = (b"content-type", b"text/html; charset=utf-8")
COOKIES = [
    (b"set-cookie", b"session=abc; Path=/; HttpOnly"),
    (b"set-cookie", b"_ga=GA1.2.3; Path=/"),
    (b"Set-Cookie", b"_fbp=fb.1; Path=/"),
    (b"set-cookie", b"mystery=1"),
    (b"set-cookie", b"_fbp=; Max-Age=0; Path=/"),
]

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_the_compiled_path_is_taken_for_a_usual_request() -> None:
    fast, _ = _pair([start(headers=[HTML_TYPE]), body(PAGE)])
    scope = _visitor(fast)
    relay = fast._gate.begin(dict(scope), None)
    assert relay is None  # not read yet: the Python code reads and caches it
    await _run(fast, scope)
    relay = fast._gate.begin(dict(scope), None)
    assert type(relay).__name__ == "Relay"


async def test_the_compiled_path_reads_the_snippet_memo() -> None:
    fast, _ = _pair([start(headers=[HTML_TYPE]), body(PAGE)])
    calls: list[object] = []
    real = fast.snippets.get

    def counting(*args: Any) -> tuple[bytes, bytes]:
        calls.append(args)
        return real(*args)

    fast.snippets.get = counting  # type: ignore[method-assign]
    fast._gate = fast._make_gate()
    for granted in [None, ("analytics",)]:
        calls.clear()
        cookie = _cookie(fast, granted) if granted else b"other=1"
        assert cookie is not None
        scope = make_scope("GET", "/", [(b"cookie", cookie), (b"accept-language", b"fr")])
        pages = [(await _run(fast, scope))[0][1]["body"] for _ in range(3)]
        assert pages[0] == pages[1] == pages[2] != PAGE
        # The first request reads the cookie in Python, which fills the memo;
        # the compiled path then finds the snippets there.
        assert len(calls) == 1


async def test_plain_response_with_cookies() -> None:
    script = [start(headers=[(b"content-type", b"text/plain"), *COOKIES]), body(b"ok")]
    for granted in [None, (), ("analytics",), ("analytics", "marketing", "preferences")]:
        results = await _compare(script, granted=granted)
        names = [
            v.split(b"=")[0] for k, v in results[-1][0][0]["headers"] if k.lower() == b"set-cookie"
        ]
        assert b"session" in names


async def test_usual_page_gets_the_banner_or_the_settings_control() -> None:
    script = [start(headers=[HTML_TYPE, (b"content-length", b"%d" % len(PAGE))]), body(PAGE)]
    for granted in [None, ("analytics",)]:
        results = await _compare(script, granted=granted)
        messages, _ = results[-1]
        assert len(messages) == 2
        assert len(messages[1]["body"]) > len(PAGE)


@pytest.mark.parametrize(
    "script",
    [
        # streamed page, empty first chunk, byte-order mark, more_body given as 0
        [start(headers=[HTML_TYPE]), body(PAGE[:30], more=True), body(PAGE[30:])],
        [start(headers=[HTML_TYPE]), body(b"", more=True), body(PAGE)],
        [start(headers=[HTML_TYPE]), body(b"\xff\xfe<\x00h\x00")],
        [start(headers=[HTML_TYPE]), {"type": "http.response.body", "body": PAGE, "more_body": 0}],
        # another message before the body, a body that is not bytes
        [start(headers=[HTML_TYPE]), {"type": "http.response.debug"}, body(PAGE)],
        [start(headers=[HTML_TYPE]), {"type": "http.response.body", "body": bytearray(PAGE)}],
        [start(headers=[HTML_TYPE]), {"type": "http.response.pathsend", "path": "/x"}],
        # starts the C code leaves to Python
        [start(headers=[HTML_TYPE], trailers=True), body(PAGE), {"type": "http.response.trailers"}],
        [start(headers=[HTML_TYPE, (b"content-encoding", b"gzip")]), body(b"\x1f\x8b")],
        [
            start(headers=[HTML_TYPE, (b"content-security-policy", b"script-src 'nonce-abc'")]),
            body(PAGE),
        ],
        [start(headers=[HTML_TYPE, (b"vary", b"Accept"), (b"etag", b'"x"')]), body(PAGE)],
        [
            start(headers=[HTML_TYPE, (b"content-length", b"12"), (b"content-length", b"12")]),
            body(PAGE),
        ],
        [start(headers=[(b"content-type", b"text/html; charset=utf-16")]), body(PAGE)],
        [start(headers=[(b"content-type", b"text/html; charset=nonsense")]), body(PAGE)],
        [start(404, headers=[HTML_TYPE]), body(PAGE)],
        [start(headers=[HTML_TYPE, *COOKIES]), body(PAGE)],
        [start(headers=[HTML_TYPE, (b"content-length", b" 80 ")]), body(PAGE)],
        [start(headers=[HTML_TYPE]), body(b"<p>no closing tag")],
        [start(headers=[HTML_TYPE]), body(PAGE), {"type": "http.response.debug"}],
        [start(headers=[(b"content-type", b"text/plain")]), body(b"a", more=True), body(b"b")],
        [start(headers=((b"content-type", b"text/plain"), (b"set-cookie", b"_ga=1")))],
        [start()],
        [{"type": "http.response.debug"}, start(headers=[HTML_TYPE]), body(PAGE)],
    ],
)
async def test_odd_responses(script: list[Message]) -> None:
    for granted in [None, ("analytics",)]:
        await _compare(script, granted=granted)


@pytest.mark.parametrize(
    "request_kw",
    [
        {"method": "HEAD"},
        {"method": "POST"},
        {"path": "/admin/x"},
        {"root_path": "/app"},
        {"path": "/_consent/x"},
        {"path": "/.well-known/other"},
        {"query": b"consent_lang=de"},
        {"query": b"a=1"},
        {"headers": [(b"sec-gpc", b"1")]},
        {"headers": [(b"accept-language", b"de-DE,de;q=0.9")]},
        {"extra_cookies": b""},
    ],
)
async def test_odd_requests(request_kw: dict[str, Any]) -> None:
    script = [start(headers=[HTML_TYPE, *COOKIES]), body(PAGE)]
    for granted in [None, ("analytics",)]:
        await _compare(script, granted=granted, exclude_paths=["/admin"], **request_kw)


async def test_no_injection_configured() -> None:
    script = [start(headers=[HTML_TYPE, *COOKIES]), body(PAGE)]
    results = await _compare(script, inject=False)
    assert results[-1][0][1]["body"] == PAGE


async def test_a_non_dict_message_is_handled_as_a_mapping() -> None:
    class Mapping(dict[str, Any]):
        pass

    script: list[Message] = [
        Mapping(start(headers=[(b"content-type", b"text/plain"), *COOKIES])),
        body(b"ok"),
    ]
    await _compare(script)


@pytest.mark.parametrize(
    "script",
    [
        [start(headers=[HTML_TYPE]), {"type": "raise"}],
        [start(headers=[HTML_TYPE]), body(PAGE[:20], more=True), {"type": "raise"}],
        [start(headers=[(b"content-type", b"text/plain"), *COOKIES]), {"type": "raise"}],
        [start(10**30, headers=[HTML_TYPE]), body(PAGE)],
    ],
)
async def test_an_app_that_fails_or_sends_a_huge_status_is_handled_alike(
    script: list[Message],
) -> None:
    fast, slow = _pair(script)
    scope = _visitor(fast)
    for _ in range(2):  # the second request takes the compiled path
        outcomes = []
        for mw in (fast, slow):
            sent: list[Message] = []

            async def send(message: Message, sent: list[Message] = sent) -> None:
                sent.append(message)

            try:
                await mw(dict(scope), None, send)
                error = None
            except RuntimeError as exc:
                error = str(exc)
            outcomes.append((error, sent))
        assert outcomes[0] == outcomes[1]


async def test_a_message_without_type_raises_on_both() -> None:
    fast, slow = _pair([{"status": 200}])
    scope = _visitor(fast)
    for mw in (fast, slow, fast):
        with pytest.raises(KeyError):
            await _run(mw, scope)


header_pool = [
    HTML_TYPE,
    (b"content-type", b"text/plain"),
    (b"Content-Type", b"TEXT/HTML"),
    (b"content-length", b"80"),
    (b"vary", b"Accept-Encoding"),
    (b"etag", b'"abc"'),
    (b"content-encoding", b"identity"),
    (b"content-security-policy", b"script-src 'nonce-r4nd0m'"),
    (b"content-disposition", b"attachment"),
    *COOKIES,
    (b"set-cookie", b"theme=dark; Max-Age=100; Expires=Thu, 01 Jan 1970 00:00:00 GMT"),
    (b"set-cookie", b"ads_123=1"),
    (b"x-other", b"1"),
]

scripts = st.builds(
    lambda status, hdrs, chunks, trailers, debug: [
        *([{"type": "http.response.debug"}] if debug else []),
        start(status, hdrs, **({"trailers": True} if trailers else {})),
        *[body(c, more=i < len(chunks) - 1) for i, c in enumerate(chunks)],
    ],
    st.sampled_from([200, 200, 200, 201, 204, 404]),
    st.lists(st.sampled_from(header_pool), max_size=7),
    st.lists(st.sampled_from([PAGE, PAGE[:40], PAGE[40:], b"", b"\xfe\xff\x00<"]), max_size=3),
    st.booleans(),
    st.booleans(),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    script=scripts,
    granted=st.sampled_from([None, (), ("analytics",), ("marketing", "preferences")]),
    method=st.sampled_from(["GET", "GET", "HEAD", "POST"]),
    path=st.sampled_from(["/", "/page", "/admin/a", "/_consent"]),
    gpc=st.booleans(),
)
def test_any_response_is_sent_alike(
    script: list[Message], granted: tuple[str, ...] | None, method: str, path: str, gpc: bool
) -> None:
    import anyio

    anyio.run(
        lambda: _compare(
            script,
            granted=granted,
            method=method,
            path=path,
            headers=[(b"sec-gpc", b"1")] if gpc else None,
            exclude_paths=["/admin"],
        )
    )


Visit = tuple[tuple[str, ...] | None, bytes | None, str, bytes, bytes, bool]


async def _serve_alike(sequence: list[Visit]) -> None:
    """Serve ``sequence`` twice through one compiled and one Python middleware:
    (granted, Accept-Language, path, Content-Type, query, mounted) per page. The
    app may move the scope below a root_path, as a Starlette Mount does."""
    ctype, mounted = [b""], [False]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if mounted[0]:
            scope["root_path"] = "/shop"
        await send(start(headers=[(b"content-type", ctype[0])]))
        await send(body(PAGE))

    fast = ConsentMiddleware(app, config=make_config())
    slow = ConsentMiddleware(app, config=make_config())
    slow._gate = None
    cookies: dict[tuple[str, ...] | None, bytes | None] = {}  # one visitor per state
    for granted, language, path, content_type, query, mount in sequence * 2:
        ctype[0], mounted[0] = content_type, mount
        headers = [(b"accept-language", language)] if language else []
        cookie = cookies.setdefault(granted, _cookie(fast, granted))
        if cookie:
            headers.append((b"cookie", cookie))
        scope = make_scope("GET", path, headers, query=query)
        assert await _run(fast, scope) == await _run(slow, scope)


BASE: Visit = (None, b"fr", "/", b"text/html; charset=utf-8", b"", False)


@pytest.mark.parametrize(
    "other",
    [
        (("analytics",), *BASE[1:]),  # another visitor state
        (None, b"de", *BASE[2:]),  # another language
        (None, None, *BASE[2:]),  # no Accept-Language
        (*BASE[:2], "/a", *BASE[3:]),  # another path: the banner's return URL
        (*BASE[:3], b"text/html; charset=latin-1", *BASE[4:]),  # another charset
        (*BASE[:4], b"lang=de", False),  # a query
        (*BASE[:5], True),  # below a root_path
    ],
)
async def test_a_page_unlike_the_last_gets_its_own_snippets(other: Visit) -> None:
    """The compiled path remembers the last page's snippets: a page that differs
    from it in any input of the snippets must not get them."""
    await _serve_alike([BASE, other, BASE, other])


async def test_a_decided_visitor_gets_the_same_snippets_on_any_path() -> None:
    decided: Visit = (("analytics",), *BASE[1:])
    await _serve_alike([decided, (("analytics",), b"fr", "/a", *BASE[3:]), decided])


visits = st.tuples(
    st.sampled_from([None, (), ("analytics",), ("marketing", "preferences")]),
    st.sampled_from([None, b"fr", b"de-DE,de;q=0.9", b"fr"]),
    st.sampled_from(["/", "/a", "/b"]),
    st.sampled_from([b"text/html; charset=utf-8", b"text/html", b"text/html; charset=latin-1"]),
    st.sampled_from([b"", b"lang=de"]),
    st.booleans(),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sequence=st.lists(visits, min_size=2, max_size=12))
def test_pages_in_any_order_get_their_own_snippets(sequence: list[Visit]) -> None:
    import anyio

    anyio.run(_serve_alike, sequence)


async def test_an_expired_reading_is_read_again_in_python() -> None:
    script = [start(headers=[(b"content-type", b"text/plain"), *COOKIES]), body(b"ok")]
    fast, _ = _pair(script)
    scope = _visitor(fast)
    await _run(fast, scope)
    ((key, rc),) = fast.policy.readings.items()
    fast.policy.readings[key] = response.RequestConsent(rc.state, rc.expire, rc.expired_names, 0.0)
    assert fast._gate.begin(dict(scope), None) is None
    await _run(fast, scope)  # read again: valid again
    assert fast._gate.begin(dict(scope), None) is not None
    # A time that is not a float is compared as Python compares it.
    ((key, rc),) = fast.policy.readings.items()
    for until, fresh in [(0, False), (2**62, True)]:
        fast.policy.readings[key] = response.RequestConsent(
            rc.state,
            rc.expire,
            rc.expired_names,
            until,  # type: ignore[arg-type]
        )
        assert (fast._gate.begin(dict(scope), None) is not None) is fresh
    # A reading of another type is read by its attributes.
    reading = types.SimpleNamespace(state=rc.state, expire=(), valid_until=2.0**62)
    fast.policy.readings[key] = reading  # type: ignore[assignment]
    scope_copy = dict(scope)
    assert fast._gate.begin(scope_copy, None) is not None
    assert scope_copy["consent"] is rc.state


async def test_a_relay_in_a_reference_cycle_is_collected() -> None:
    freed: list[bool] = []

    class Marker:
        def __del__(self) -> None:
            freed.append(True)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        scope["send"] = send  # scope -> relay -> scope
        scope["marker"] = Marker()
        await send(start(headers=[(b"content-type", b"text/plain")]))
        await send(body(b"ok"))

    mw = ConsentMiddleware(app, config=make_config())
    scope = _visitor(mw)
    await _run(mw, scope)  # read in Python
    gc.collect()
    freed.clear()
    gc.disable()
    try:
        await _run(mw, scope)  # the relay
        assert freed == []  # kept alive by the cycle
        gc.collect()
        assert freed == [True]  # which the collector can break
    finally:
        gc.enable()


def _gate(like: Any, **changes: Any) -> Any:
    """A Gate of the same type as ``like``, made by hand: no readings, no page."""
    arguments: dict[str, Any] = {
        "tables": (),
        "readings": {},
        "readings_gpc": {},
        "gpc": False,
        "clock": None,
        "skip": "",
        "exclude": (),
        "page": None,
    }
    return type(like)(**{**arguments, **changes})


_SCOPE_CHANGING_CLOCK = """
import asyncio, sys
sys.path.insert(0, {root!r})
from tests.test_asgi_compiled import PAGE, _run, start, body
from tests.conftest import make_config
from tests.harness import make_scope
from consent import ConsentMiddleware

async def app(scope, receive, send):
    await send(start(headers=[(b"content-type", b"text/html")]))
    await send(body(PAGE))

mw = ConsentMiddleware(app, config=make_config(exclude_paths=["/admin"]))
asyncio.run(_run(mw, make_scope("GET", "/")))  # an undecided visitor's reading, cached
scope = make_scope("GET", "/")

def clock():
    scope["path"] = "/elsewhere"  # drops the scope's path while begin() reads it
    return 0.0

async def serve():
    sent = []

    async def send(message):
        sent.append(message)

    await mw(scope, None, send)
    return sent

mw._gate = mw._make_gate(clock=clock)
for _ in range(20):
    scope["path"] = "".join(["/shop"] * 3)  # a new string, held by the scope alone
    messages = asyncio.run(serve())
    assert scope["path"] == "/elsewhere"  # the clock ran
    assert b"/shop/shop/shop" in messages[1]["body"], messages[1]["body"]
print("ok")
"""


def test_a_clock_given_in_python_may_change_the_scope() -> None:
    """``Gate.begin`` holds the path it read: a clock or a reading given in Python
    runs Python code, which may replace the scope's path (and free the old one).
    Run under the debug allocator, where a freed object is overwritten."""
    import subprocess
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parent.parent)
    code = _SCOPE_CHANGING_CLOCK.format(root=root)
    env = {**os.environ, "PYTHONMALLOC": "debug"}
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-c", code], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


async def test_errors_in_the_compiled_path_propagate() -> None:
    fast, _ = _pair([start(headers=[(b"content-type", b"text/plain"), (b"set-cookie", b"new=1")])])
    scope = _visitor(fast)
    await _run(fast, scope)

    def broken(raw: bytes) -> str:
        raise RuntimeError("verdict failed")

    fast.policy._verdict = broken  # type: ignore[method-assign]
    tables = list(fast.policy._fast_tables(response.speedups))
    gate = _gate(
        fast._gate,
        tables=tuple(tables),
        readings=fast.policy.readings,
        readings_gpc=fast.policy.readings_gpc,
        gpc=True,
        clock=lambda: 0.0,
        skip="_.",
    )
    relay = gate.begin(dict(scope), None)
    assert relay is not None
    with pytest.raises(RuntimeError, match="verdict failed"):
        relay(start(headers=[(b"set-cookie", b"brand-new=1")]))
    with pytest.raises(TypeError, match="one message"):
        relay()
    with pytest.raises(TypeError, match="one message"):
        relay(1, 2)
    with pytest.raises(KeyError):
        relay({})  # no "type": as message["type"] raises in Python
    blank = type(fast._gate).__new__(type(fast._gate))
    with pytest.raises(TypeError, match="__init__"):
        blank.begin({}, None)
    with pytest.raises(TypeError):
        _gate(fast._gate)
    with pytest.raises(TypeError):
        _gate(fast._gate, tables=tuple(tables), exclude=(1,))
    with pytest.raises(TypeError):
        _gate(fast._gate, tables=tuple(tables), page=(1, 2))
