"""ConsentWSGIMiddleware under a strict PEP 3333 server: the WSGI-only behaviour.

The behaviour both shells share is in test_shared_behaviour.py.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask, make_response

from consent.errors import ConsentError
from consent.wsgi import ConsentWSGIMiddleware, get_consent

from .conftest import make_config

HTML = b"<!doctype html><html><head><title>t</title></head><body><h1>Hello</h1></body></html>"
COOKIES = [
    ("Set-Cookie", "session=s1; Path=/"),
    ("Set-Cookie", "_ga=GA1.1; Path=/"),
    ("set-cookie", "_fbp=fb.1; Path=/"),
]


class FileWrapper:
    """A ``wsgi.file_wrapper`` like the servers' own: iterable, closeable."""

    def __init__(self, filelike: Any, blksize: int = 8192) -> None:
        self.filelike = filelike
        self.blksize = blksize

    def __iter__(self) -> Iterator[bytes]:
        while data := self.filelike.read(self.blksize):
            yield data

    def close(self) -> None:
        self.filelike.close()


@dataclass
class Result:
    status: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    #: What the server got back from the app (to see file_wrapper passthrough).
    iterable: Any = None

    @property
    def body(self) -> bytes:
        return b"".join(self.chunks)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)

    @property
    def cookie_names(self) -> list[str]:
        return [v.split("=", 1)[0] for k, v in self.headers if k.lower() == "set-cookie"]


def environ(
    method: str = "GET",
    path: str = "/",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    **extra: Any,
) -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "203.0.113.7",
        "HTTP_HOST": "testserver",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": FileWrapper,
    }
    if body:
        env["CONTENT_LENGTH"] = str(len(body))
    for k, v in (headers or {}).items():
        key = k.upper().replace("-", "_")
        env[key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else "HTTP_" + key] = v
    env.update(extra)
    return env


def serve(app: Any, env: dict[str, Any] | None = None, **kw: Any) -> Result:
    """Run one request the way a strict PEP 3333 server does (wsgiref's rules)."""
    env = environ(**kw) if env is None else env
    result = Result()
    state = {"set": False, "sent": False}

    def write(data: bytes) -> None:
        assert isinstance(data, bytes)
        if not state["set"]:
            raise AssertionError("write() before start_response()")
        state["sent"] = True
        result.chunks.append(data)

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], None]:
        if exc_info:
            try:
                if state["sent"]:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif state["set"]:
            raise AssertionError("start_response() called twice without exc_info")
        for k, v in headers:
            assert isinstance(k, str) and isinstance(v, str), (k, v)
            assert "\r" not in v and "\n" not in v
        state["set"] = True
        result.status, result.headers = status, list(headers)
        return write

    iterable = app(env, start_response)
    result.iterable = iterable
    try:
        for data in iterable:
            # Headers go out with the first non-empty chunk (PEP 3333).
            if data or state["sent"]:
                write(data)
        if not state["set"]:
            raise AssertionError("the app never called start_response()")
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    length = result.header("content-length")
    if length is not None and env["REQUEST_METHOD"] != "HEAD":
        assert int(length) == len(result.body), (length, len(result.body))
    return result


def mw(app: Any, **kw: Any) -> ConsentWSGIMiddleware:
    return ConsentWSGIMiddleware(app, config=make_config(**kw))


class Closing:
    """An app iterable that records ``close()``, and may fail after some chunks."""

    def __init__(self, chunks: list[bytes], fail_after: int | None = None) -> None:
        self.chunks = chunks
        self.fail_after = fail_after
        self.closed = 0

    def __iter__(self) -> Iterator[bytes]:
        for i, c in enumerate(self.chunks):
            if i == self.fail_after:
                raise RuntimeError("boom")
            yield c

    def close(self) -> None:
        self.closed += 1


def returning(
    body: Iterable[bytes], ctype: str = "text/html", headers: list[tuple[str, str]] | None = None
) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        start_response("200 OK", [("Content-Type", ctype), *(headers or [])])
        return body

    return app


# -- close() ---------------------------------------------------------------------------


@pytest.mark.parametrize("ctype", ["text/html", "text/plain"])
def test_close_of_the_app_iterable_is_called(ctype: str) -> None:
    body = Closing([b"<html><body>x", b"</body></html>"])
    r = serve(mw(returning(body, ctype, COOKIES)))
    assert body.closed == 1
    assert r.cookie_names == ["session"]
    assert (b"data-consent-banner" in r.body) is (ctype == "text/html")


def test_close_is_called_when_the_app_iterable_fails() -> None:
    body = Closing([b"<html><body>x", b"more", b"</body></html>"], fail_after=2)
    with pytest.raises(RuntimeError, match="boom"):
        serve(mw(returning(body)))
    assert body.closed == 1


def test_close_is_called_when_the_server_closes_before_iterating() -> None:
    body = Closing([HTML])
    iterable = mw(returning(body))(environ(), lambda *a: lambda data: None)
    iterable.close()  # type: ignore[attr-defined]
    assert body.closed == 1


def test_close_is_called_once_a_generator_app_is_done() -> None:
    closed: list[bool] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        try:
            start_response("200 OK", [("Content-Type", "text/html")])
            yield HTML
        finally:
            closed.append(True)

    r = serve(mw(app))
    assert closed == [True] and b"data-consent-banner" in r.body


# -- how apps start their response ----------------------------------------------------------


def test_generator_app_calling_start_response_lazily() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response(
            "200 OK",
            [("Content-Type", "text/html"), ("Content-Length", str(len(HTML))), *COOKIES],
        )
        yield HTML[:40]
        yield HTML[40:]

    r = serve(mw(app))
    assert r.status == "200 OK" and r.cookie_names == ["session"]
    assert b"data-consent-banner" in r.body
    assert int(r.header("content-length") or -1) == len(r.body)


def test_generator_app_yielding_empty_chunks_first() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/html")])
        yield b""
        yield b""
        yield HTML

    r = serve(mw(app))
    assert b"data-consent-banner" in r.body


def _generator_app(chunks: list[bytes], length: str | None) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        headers = [("Content-Type", "text/html")]
        if length is not None:
            headers.append(("Content-Length", length))
        start_response("200 OK", headers)
        yield from chunks

    return app


@pytest.mark.parametrize(
    ("chunks", "length"),
    [
        ([HTML], str(len(HTML))),  # Flask's and Django's usual page
        ([HTML, b""], str(len(HTML))),
        ([HTML[:40], HTML[40:]], str(len(HTML))),  # streamed
        ([HTML], f" {len(HTML)} "),  # an unusual spelling: streamed
        ([HTML], None),
    ],
)
def test_a_page_handed_over_as_an_iterator_gets_what_a_list_gets(
    chunks: list[bytes], length: str | None
) -> None:
    as_list = serve(mw(returning([HTML], headers=[("Content-Length", str(len(HTML)))])))
    r = serve(mw(_generator_app(chunks, length)))
    assert r.body == as_list.body
    assert r.body.count(b"data-consent-banner") == 1
    if length is not None:
        assert r.header("content-length") == str(len(r.body))


def test_a_whole_first_chunk_takes_the_snippets_in_one_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import consent.core.flow

    def no_streaming(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the streaming injector was used for a whole page")

    monkeypatch.setattr(consent.core.flow, "HTMLInjector", no_streaming)
    r = serve(mw(_generator_app([HTML], str(len(HTML)))))
    assert r.body.count(b"data-consent-banner") == 1
    with pytest.raises(AssertionError, match="streaming injector"):
        serve(mw(_generator_app([HTML[:40], HTML[40:]], str(len(HTML)))))


def test_bytes_beyond_the_apps_own_content_length_pass_unchanged() -> None:
    app = _generator_app([HTML, b"<!-- more -->"], str(len(HTML)))
    chunks = list(mw(app)(environ(), lambda status, headers, exc_info=None: None))
    assert chunks[0].count(b"data-consent-banner") == 1
    assert chunks[1:] == [b"<!-- more -->"]


def test_a_stream_is_not_held_back() -> None:
    seen: list[bytes] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/event-stream")])
        yield b"data: 1\n\n"
        assert seen == [b"data: 1\n\n"]  # the server had the first event already
        yield b"data: 2\n\n"

    def server_start(*args: Any) -> Callable[[bytes], None]:
        return seen.append

    for chunk in mw(app)(environ(), server_start):
        seen.append(chunk)
    assert seen == [b"data: 1\n\n", b"data: 2\n\n"]


def test_legacy_write_callable_gets_the_banner() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        write = start_response(
            "200 OK", [("Content-Type", "text/html"), ("Content-Length", str(len(HTML))), *COOKIES]
        )
        write(HTML[:30])
        write(HTML[30:60])
        return [HTML[60:]]

    r = serve(mw(app))
    assert r.body.startswith(HTML[:20]) and b"data-consent-banner" in r.body
    assert r.body.endswith(b"</body></html>") and r.cookie_names == ["session"]
    assert int(r.header("content-length") or -1) == len(r.body)


def test_legacy_write_callable_for_other_content() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        write = start_response("200 OK", [("Content-Type", "application/json"), *COOKIES])
        write(b'{"a":')
        return [b"1}"]

    r = serve(mw(app))
    assert r.body == b'{"a":1}' and r.cookie_names == ["session"]


# -- errors ---------------------------------------------------------------------------------


def test_exc_info_before_anything_was_sent_replaces_the_response() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain"), *COOKIES])
        try:
            raise ValueError("oops")
        except ValueError:
            start_response(
                "500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info()
            )
        return [b"error page"]

    r = serve(mw(app))
    assert r.status.startswith("500") and r.body == b"error page"


def test_exc_info_replacing_a_deferred_html_page() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html"), *COOKIES])
        try:
            raise ValueError("oops")
        except ValueError:
            start_response(
                "500 Internal Server Error",
                [("Content-Type", "text/html"), ("Set-Cookie", "_ga=1")],
                sys.exc_info(),
            )
        return [HTML]

    r = serve(mw(app))
    assert r.status.startswith("500") and r.body == HTML and r.cookie_names == []


@pytest.mark.parametrize("ctype", ["text/html", "text/plain"])
def test_exc_info_after_the_body_started_is_re_raised(ctype: str) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", ctype)])
        yield b"<html><body>part " * 10
        try:
            raise ValueError("late")
        except ValueError:
            start_response(
                "500 Internal Server Error", [("Content-Type", "text/plain")], sys.exc_info()
            )
        yield b"never"

    with pytest.raises(ValueError, match="late"):
        serve(mw(app))


def test_an_error_in_the_app_call_propagates() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise KeyError("nope")

    with pytest.raises(KeyError):
        serve(mw(app))


# -- the server's own objects -----------------------------------------------------------------


def test_file_wrapper_passes_through_for_non_html() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "application/pdf"), *COOKIES])
        return environ["wsgi.file_wrapper"](io.BytesIO(b"%PDF-1.7 ..."))

    r = serve(mw(app))
    assert isinstance(r.iterable, FileWrapper)  # the server may still use sendfile()
    assert r.body == b"%PDF-1.7 ..." and r.cookie_names == ["session"]


def test_file_wrapper_with_html_is_injected_and_closed() -> None:
    f = io.BytesIO(HTML)

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "text/html")])
        return environ["wsgi.file_wrapper"](f, 16)

    r = serve(mw(app))
    assert b"data-consent-banner" in r.body and f.closed


def test_script_name_is_the_root_path() -> None:
    m = mw(returning([HTML]))
    r = serve(m, environ("GET", "/page", SCRIPT_NAME="/sub"))
    assert b'action="/sub/_consent"' in r.body
    assert b'value="/sub/page"' in r.body  # where the form sends the visitor back
    r = serve(m, environ("GET", "/_consent", SCRIPT_NAME="/sub"))
    assert json.loads(r.body)["decided"] is False
    r = serve(
        m,
        environ(
            "POST",
            "/_consent",
            {"content-type": "application/x-www-form-urlencoded"},
            b"action=reject_all",
            SCRIPT_NAME="/sub",
        ),
    )
    assert r.status.startswith("303") and r.header("location") == "/sub/"


def test_post_without_content_length_does_not_read_an_endless_input() -> None:
    class Endless(io.RawIOBase):
        def read(self, size: int = -1) -> bytes:
            raise AssertionError("read an input with no Content-Length")

    env = environ("POST", "/_consent", {"content-type": "application/x-www-form-urlencoded"})
    env["wsgi.input"] = Endless()
    r = serve(mw(returning([HTML])), env)
    assert r.status.startswith("400")


def test_chunked_post_with_input_terminated_is_read() -> None:
    env = environ(
        "POST",
        "/_consent",
        {"content-type": "application/x-www-form-urlencoded"},
        **{"wsgi.input_terminated": True},
    )
    env["wsgi.input"] = io.BytesIO(b"action=accept_all")
    r = serve(mw(returning([HTML])), env)
    assert r.status.startswith("303") and "consent" in r.cookie_names


def test_sec_gpc_header_opts_out_of_marketing() -> None:
    r = serve(mw(returning([HTML])), environ("GET", "/_consent", {"sec-gpc": "0, 1"}))
    assert json.loads(r.body)["gpc"] is True


# -- the state in the app ---------------------------------------------------------------------


def test_get_consent_reads_the_environ() -> None:
    seen: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        seen.append(get_consent(environ))
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    serve(mw(app))
    assert seen[0].decided is False and seen[0].allows("necessary")
    with pytest.raises(ConsentError, match="ConsentWSGIMiddleware installed"):
        get_consent({})


def test_flask_app_wrapped_by_hand() -> None:
    app = Flask(__name__)

    @app.get("/")
    def home() -> Any:
        resp = make_response("<html><body>hi</body></html>")
        resp.set_cookie("session", "1")
        resp.set_cookie("_ga", "2")
        return resp

    app.wsgi_app = mw(app.wsgi_app)  # type: ignore[method-assign]
    r = app.test_client().get("/")
    assert [c.split("=")[0] for c in r.headers.getlist("Set-Cookie")] == ["session"]
    assert b"data-consent-banner" in r.data


def test_a_response_with_nothing_to_change_is_forwarded_as_given() -> None:
    given = [("Content-Type", "application/json"), ("X-Thing", "1")]
    seen: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", given)
        return [b"{}"]

    def server_start(status: str, headers: Any, exc_info: Any = None) -> Any:
        seen.append(headers)
        return lambda data: None

    mw(app)(environ(), server_start)
    assert seen == [given] and seen[0] is given
    # A cookie the visitor refused, sent back by the browser, still gets its deletion.
    r = serve(mw(app), environ(headers={"cookie": "_fbp=1"}))
    assert r.cookie_names == ["_fbp"] and "Max-Age=0" in (r.header("set-cookie") or "")
