"""Whole requests through both shells and both kernel sets: the same bytes out.

A bounded differential fuzz. Hypothesis draws a request (method, cookies, GPC,
language) and a response (status, a jumble of headers, a body cut at random
points); the response goes through the ASGI middleware and the WSGI twin, each
with the compiled kernels (when built) and with the pure twins, and the four
answers must be the same: status, every header in order, the body's bytes.

A longer run: ``CONSENT_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest
tests/test_differential.py``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import consent._shell
import consent.asgi
import consent.core.flow
import consent.wsgi
from consent import ConsentMiddleware
from consent.core import _kernels_py, inject, kernels
from consent.state import ConsentState
from consent.wsgi import ConsentWSGIMiddleware

from .conftest import make_config

EXAMPLES = int(os.environ.get("CONSENT_FUZZ_EXAMPLES", "150"))
Header = tuple[bytes, bytes]
Answer = tuple[int, list[Header], bytes]

CONFIG = make_config()
# What the apps below answer: set by each example before it sends its request.
RESPONSE: list[tuple[int, list[Header], list[bytes]]] = []


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    status, headers, chunks = RESPONSE[-1]
    await send({"type": "http.response.start", "status": status, "headers": list(headers)})
    for i, chunk in enumerate(chunks):
        more = i < len(chunks) - 1
        await send({"type": "http.response.body", "body": chunk, "more_body": more})
    if not chunks:
        await send({"type": "http.response.body"})


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    status, headers, chunks = RESPONSE[-1]
    start_response(f"{status} X", [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers])
    return list(chunks)


ASGI = ConsentMiddleware(asgi_app, config=CONFIG)  # type: ignore[arg-type]
WSGI = ConsentWSGIMiddleware(wsgi_app, config=CONFIG)  # type: ignore[arg-type]
LOOP = asyncio.new_event_loop()


@contextmanager
def pure_kernels() -> Iterator[None]:
    """The pure twins wherever the shells and the flow hold a kernel."""
    with ExitStack() as stack:
        for target, value in [
            ("consent.core.flow.header_kinds", _kernels_py.header_kinds),
            ("consent.core.flow.inject_page", inject.inject_page),
            ("consent.core.response.header_kinds", _kernels_py.header_kinds),
            ("consent.asgi.read_request", _kernels_py.read_request),
            ("consent._shell.sec_gpc", _kernels_py.sec_gpc),
        ]:
            stack.enter_context(mock.patch(target, value))
        yield


def consent_cookie(keys: frozenset[str]) -> str:
    policy = ASGI.policy
    state = ConsentState(granted=keys | policy.required, decided=True, revision=1)
    return f"consent={policy.codec.encode(state)}"


NAMES = [b"content-type", b"Content-Type", b"content-length", b"Vary", b"etag", b"ETag"]
NAMES += [b"cache-control", b"Content-Encoding", b"content-range", b"Accept-Ranges"]
NAMES += [b"content-security-policy", b"x-other", b"CDN-Cache-Control", b"Content-Disposition"]
VALUES = [
    b"text/html; charset=utf-8",
    b" text/html",
    b"text/plain",
    b"application/xhtml+xml",
    b"text/html; charset=utf-16",
    b"gzip",
    b"identity",
    b"public, max-age=60, s-maxage=600",
    b"private",
    b'"v1"',
    b'W/"v2"',
    b"Accept-Encoding",
    b"*",
    b"bytes",
    b"script-src 'nonce-abc'",
    b"attachment; filename=x",
    b"12",
    b"",
]
COOKIES = [b"session", b"_ga", b"_ga_X1", b"_fbp", b"ads_7", b"mystery", b"consent", b"theme"]
ATTRS = [
    b"",
    b"; Path=/",
    b"; Max-Age=0",
    b"; Max-Age=+0",
    b"; Expires=Thu, 01 Jan 1970 00:00:00 GMT",
]
FRAGMENTS = [b"<html>", b"<head>", b"<HEAD lang=x>", b"<!-- c -->", b"<p>hi</p>", b"</body>"]
FRAGMENTS += [b"</BODY>", b"</html>", b"\xff\xfe", b"'", b"text " * 20]


@st.composite
def responses(draw: st.DrawFn) -> tuple[int, list[Header], list[bytes]]:
    status = draw(st.sampled_from([200, 200, 200, 204, 304, 404, 206]))
    headers = draw(st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(VALUES)), max_size=6))
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from(COOKIES))
        attrs = draw(st.sampled_from(ATTRS))
        headers.insert(
            draw(st.integers(0, len(headers))),
            (draw(st.sampled_from([b"set-cookie", b"Set-Cookie"])), name + b"=1" + attrs),
        )
    body = b"" if status in (204, 304) else b"".join(draw(st.lists(st.sampled_from(FRAGMENTS))))
    if draw(st.booleans()) and status not in (204, 304):
        headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
        headers.append((b"content-length", b"%d" % len(body)))
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=3)))
    chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    return status, headers, chunks


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    headers: dict[str, str] = {}
    parts = []
    if draw(st.booleans()):
        keys = draw(st.frozensets(st.sampled_from(["preferences", "analytics", "marketing"])))
        parts.append(consent_cookie(keys))
    parts += [f"{n.decode()}=x" for n in draw(st.lists(st.sampled_from(COOKIES), max_size=3))]
    if parts:
        headers["cookie"] = "; ".join(parts)
    if draw(st.booleans()):
        headers["sec-gpc"] = draw(st.sampled_from(["1", "1, 1", "0"]))
    if draw(st.booleans()):
        headers["accept-language"] = draw(st.sampled_from(["de", "fr-CA, en;q=0.5", "xx"]))
    return draw(st.sampled_from(["GET", "GET", "HEAD", "POST"])), headers


def through_asgi(method: str, request: dict[str, str]) -> Answer:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.request"}

    scope = {
        "type": "http",
        "method": method,
        "path": "/page",
        "root_path": "",
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in request.items()],
    }
    LOOP.run_until_complete(ASGI(scope, receive, send))  # type: ignore[arg-type]
    assert sent[0]["type"] == "http.response.start"
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return sent[0]["status"], [tuple(h) for h in sent[0]["headers"]], body  # type: ignore[misc]


def through_wsgi(method: str, request: dict[str, str]) -> Answer:
    got: list[Any] = []

    def start_response(status_line: str, out: list[tuple[str, str]], exc: Any = None) -> Any:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in out]
        got.append((int(status_line[:3]), headers))
        return lambda data: None

    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": "/page",
        "QUERY_STRING": "",
        "SCRIPT_NAME": "",
        "wsgi.url_scheme": "http",
        **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in request.items()},
    }
    body = b"".join(WSGI(environ, start_response))
    return got[0][0], got[0][1], body


@settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow])
@given(requests(), responses())
def test_both_shells_and_both_kernel_sets_answer_alike(
    request: tuple[str, dict[str, str]], response: tuple[int, list[Header], list[bytes]]
) -> None:
    method, req_headers = request
    RESPONSE.append(response)
    answers = {}
    for kernel_set in ("compiled", "pure"):
        if kernel_set == "compiled" and not kernels.COMPILED:
            continue
        with pure_kernels() if kernel_set == "pure" else ExitStack():
            answers["asgi", kernel_set] = through_asgi(method, req_headers)
            answers["wsgi", kernel_set] = through_wsgi(method, req_headers)
    first = answers["asgi", "pure"]
    for key, answer in answers.items():
        assert answer == first, key
    # And what the flow promises holds for the answer itself: a body it changed
    # is announced with its own length (or none).
    _, out_headers, body = first
    if body != b"".join(response[2]):
        lengths = [v for k, v in out_headers if k.lower() == b"content-length"]
        assert lengths in ([], [b"%d" % len(body)])


def test_the_fuzz_patches_every_kernel_the_shells_hold() -> None:
    """If a shell or the flow imports a kernel under a new name, the pure run above
    would silently use the compiled one: every kernel name they hold is patched."""
    held = {
        name
        for module in (consent.asgi, consent._shell, consent.core.flow, consent.core.response)
        for name in ("header_kinds", "read_request", "sec_gpc", "inject_page")
        if hasattr(module, name)
    }
    assert held == {"header_kinds", "read_request", "sec_gpc", "inject_page"}
    with pure_kernels():
        assert consent.core.flow.inject_page is inject.inject_page
        assert consent.asgi.read_request is _kernels_py.read_request
