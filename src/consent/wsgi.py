"""``ConsentWSGIMiddleware``: the same core under PEP 3333.

It only translates: ``start_response`` and the body iterable become events of a
:class:`~consent.core.flow.ResponseFlow` (one per response), whose answers go to
the server's ``start_response`` and out of the body iterable; consent requests go
to :class:`~consent.core.endpoint.Endpoint`. What is WSGI's own stays here:
``str`` headers, ``exc_info``, the legacy ``write()``, ``close()``, ``wsgi.input``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from types import TracebackType
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication

from ._shell import Shell, environ_headers
from .config import ConsentConfig
from .core.endpoint import (
    MAX_BODY,
    Decision,
    EndpointRequest,
    EndpointResponse,
    declared_length,
    endpoint_subpath,
    too_large,
)
from .core.flow import HELD, PASS, ResponseFlow
from .errors import ConsentError
from .log import LogStore, LoopThread

__all__ = ["ConsentWSGIMiddleware", "get_consent"]

ExcInfo = tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None]
# PEP 3333's types as typeshed spells them, so Flask's and Django's apps fit.
WSGIApp = WSGIApplication
#: How long closing the consent log may take.
LOG_TIMEOUT = 30.0


def get_consent(environ: dict[str, Any]) -> Any:
    """The visitor's :class:`~consent.state.ConsentState` from a WSGI environ."""
    try:
        return environ["consent"]
    except KeyError:
        raise ConsentError(
            "no consent state in this request: is ConsentWSGIMiddleware installed around the app?"
        ) from None


class ConsentWSGIMiddleware(Shell):
    """The WSGI twin of :class:`consent.ConsentMiddleware`: same behaviour, same endpoint.

    ``app.wsgi_app = ConsentWSGIMiddleware(app.wsgi_app, config=...)``.
    """

    def __init__(
        self,
        app: WSGIApp,
        config: ConsentConfig | str | None = None,
        *,
        store: LogStore | None = None,
    ) -> None:
        super().__init__(config, who="ConsentWSGIMiddleware", store=store)
        self.app = app
        # The consent log's coroutines run here, for every worker thread.
        self._loop = LoopThread()

    def close(self) -> None:
        """Close the consent log and its background thread."""
        self._loop.run(self.log.close(), LOG_TIMEOUT)
        self._loop.stop()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        rc = self.read_environ(environ)
        path: str = environ.get("PATH_INFO", "") or ""
        sub = endpoint_subpath(path, self._prefix, self._gpc)
        if sub is not None:
            return self._serve_endpoint(environ, start_response, sub, rc.state)
        flow = ResponseFlow(
            self.pipeline,
            rc,
            environ.get("REQUEST_METHOD", "GET"),
            path,
            environ.get("QUERY_STRING", ""),
            environ.get("SCRIPT_NAME", ""),
            environ.get("HTTP_ACCEPT_LANGUAGE"),
        )
        responder = _Responder(flow, start_response)
        app_iter = self.app(environ, responder.start_response)
        if responder.started and flow.state == PASS:
            return app_iter  # nothing to do to the body: keeps wsgi.file_wrapper intact
        return _Body(responder, app_iter)

    def _serve_endpoint(
        self, environ: dict[str, Any], start_response: StartResponse, sub: str, state: Any
    ) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        req = EndpointRequest(
            method=method,
            subpath=sub,
            headers=environ_headers(environ),
            scheme=environ.get("wsgi.url_scheme", "http"),
            root_path=environ.get("SCRIPT_NAME", ""),
            client_ip=environ.get("REMOTE_ADDR"),
            query=environ.get("QUERY_STRING", "").encode("latin-1", "replace"),
        )
        body = b""
        if method == "POST":
            length = declared_length(environ.get("CONTENT_LENGTH"))
            if length is not None and length > MAX_BODY:
                return _respond(start_response, too_large(), method)
            stream = environ.get("wsgi.input")
            if stream is not None and length is not None:
                body = stream.read(length)
            elif stream is not None and environ.get("wsgi.input_terminated"):
                # A chunked request the server ends with EOF: read one byte past the cap.
                body = stream.read(MAX_BODY + 1)
            # Otherwise (PEP 3333) the input need not end without Content-Length:
            # reading it would block until the client gives up. It counts as empty.
        out = self.endpoint.handle(req, body, state)
        if isinstance(out, Decision):
            # No timeout of its own, as under ASGI: a request answered 503 while
            # its write could still commit would leave in the log a decision the
            # visitor was told was not applied. The stores bound their own waits.
            out = self._loop.run(self.log.settle(out))
        return _respond(start_response, out, method)


_REASONS = {
    200: "OK",
    303: "See Other",
    304: "Not Modified",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    503: "Service Unavailable",
}


def _respond(start_response: StartResponse, response: EndpointResponse, method: str) -> list[bytes]:
    status = f"{response.status} {_REASONS.get(response.status, 'Unknown')}"
    start_response(status, _str_headers(response.headers))
    return [b"" if method == "HEAD" else response.body]


class _Responder:
    """The WSGI side of one response: ``start_response`` and body chunks to the flow."""

    __slots__ = ("exc_info", "flow", "real_start", "started", "status", "write")

    def __init__(self, flow: ResponseFlow, start_response: StartResponse) -> None:
        self.flow = flow
        self.real_start = start_response
        #: True once the server's start_response was called.
        self.started = False
        self.status = ""
        self.exc_info: ExcInfo | None = None
        self.write: Callable[[bytes], object] | None = None

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Callable[[bytes], object]:
        if exc_info is not None and exc_info[0] is None:
            exc_info = None
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        code = int(status[:3]) if status[:3].isdigit() else 0
        out = self.flow.start(code, raw)
        if out is None and exc_info is not None and self.started:
            # An error page replacing a response already handed to the server: only
            # the server knows whether the headers went out. It re-raises if they
            # did (PEP 3333), else it takes these, sent without snippets.
            out = self.flow.flush()
        if out is None:
            # Held until the first body chunk, which decides the snippets.
            self.status, self.exc_info = status, exc_info
            return self._write
        self.started = True
        self.write = self.real_start(status, headers if out is raw else _str_headers(out), exc_info)
        return self.write

    def body(self, chunk: bytes, more: bool) -> bytes | None:
        """What to pass on for one chunk of the app's body; ``None`` while the start is held."""
        start, out = self.flow.body(chunk, more)
        if start is not None:
            self.started = True
            self.write = self.real_start(self.status, _str_headers(start), self.exc_info)
        elif self.flow.state == HELD:
            return None
        return out

    def _write(self, data: bytes) -> None:
        # The legacy write() callable: the data goes out through the same flow.
        out = self.body(data, True)
        if out and self.write is not None:
            self.write(out)


class _Body:
    """The app's body iterable, passed through a :class:`_Responder`.

    A class rather than a generator: a server may call ``close()`` before
    iterating at all (client gone, error), and an unstarted generator's ``close()``
    would never reach the app's.
    """

    __slots__ = ("_app_iter", "_done", "_it", "_responder")

    def __init__(self, responder: _Responder, app_iter: Iterable[bytes]) -> None:
        self._responder = responder
        self._app_iter = app_iter
        self._it: Iterator[bytes] | None = None
        self._done = False

    def __iter__(self) -> _Body:
        return self

    def __next__(self) -> bytes:
        if self._done:
            raise StopIteration
        responder = self._responder
        if self._it is None:
            app_iter = self._app_iter
            if type(app_iter) in (list, tuple) and len(app_iter) == 1:  # type: ignore[arg-type]
                # Most frameworks hand over a page as a one-item list: its last chunk.
                self._done = True
                return responder.body(app_iter[0], False) or b""  # type: ignore[index]
            self._it = iter(app_iter)
        while True:
            try:
                chunk = next(self._it)
            except StopIteration:
                self._done = True
                tail = responder.body(b"", False)
                if tail:
                    return tail
                raise
            out = responder.body(chunk, True)
            # Every chunk of the app yields one (maybe empty) chunk, so a stream is
            # never held up (PEP 3333), except while the start is still held: a
            # server may not receive body bytes before start_response.
            if out is not None:
                return out

    def close(self) -> None:
        close = getattr(self._app_iter, "close", None)
        if close is not None:
            close()


def _str_headers(headers: Sequence[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]
