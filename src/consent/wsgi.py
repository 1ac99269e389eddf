"""``ConsentWSGIMiddleware``: the same core under PEP 3333.

It wraps ``start_response`` and the body iterable: ``Set-Cookie`` headers are
filtered as the app calls ``start_response``; for HTML pages the real
``start_response`` is deferred to the first body chunk so the banner can be
injected with a correct ``Content-Length``. ``close()`` is always passed on.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication

from ._shell import Shell, log_unavailable
from .config import ConsentConfig
from .core.endpoint import (
    MAX_BODY,
    Decision,
    EndpointRequest,
    EndpointResponse,
    endpoint_subpath,
    error,
)
from .core.inject import (
    Edits,
    HTMLInjector,
    body_is_injectable,
    inject_page,
    plan_page,
    rewrite_planned,
)
from .core.response import RequestConsent
from .errors import ConsentError, LogUnavailable
from .log import LogEntry, LogStore, SyncLogStore, open_store

__all__ = ["ConsentWSGIMiddleware", "get_consent"]

ExcInfo = tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None]
Headers = list[tuple[bytes, bytes]]
# PEP 3333's types as typeshed spells them, so Flask's and Django's apps fit.
WSGIApp = WSGIApplication


def get_consent(environ: dict[str, Any]) -> Any:
    """The visitor's :class:`~consent.state.ConsentState` from a WSGI environ."""
    try:
        return environ["consent"]
    except KeyError:
        raise ConsentError(
            "no consent state in this request: is ConsentWSGIMiddleware installed around the app?"
        ) from None


def _environ_headers(environ: dict[str, Any]) -> Headers:
    headers: Headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").lower()
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            name = key.replace("_", "-").lower()
        else:
            continue
        if value:
            headers.append((name.encode("latin-1"), str(value).encode("latin-1", "replace")))
    return headers


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
        super().__init__(config, who="ConsentWSGIMiddleware")
        self.app = app
        self._store: SyncLogStore | None = SyncLogStore(store) if store is not None else None
        self._store_open = False
        self._lock = threading.Lock()

    # -- the consent log ---------------------------------------------------------------
    def get_store(self) -> SyncLogStore:
        with self._lock:
            if self._store is None:
                self._store = SyncLogStore(open_store(self.config.log))
            if not self._store_open:
                try:
                    self._store.open()
                except LogUnavailable:
                    raise
                except Exception as exc:
                    raise LogUnavailable(f"cannot open the consent log: {exc}") from exc
                self._store_open = True
            return self._store

    def close(self) -> None:
        """Close the consent log and its background thread."""
        with self._lock:
            if self._store is not None and self._store_open:
                self._store_open = False
                self._store.close()

    def record(self, decision: Decision) -> None:
        store = self.get_store()
        if decision.texts_hash not in self._texts_stored:
            store.put_texts_sync(decision.texts_hash, decision.texts_json, timeout=30)
            self._texts_stored.add(decision.texts_hash)
        for fields in decision.records:
            store.append_sync(LogEntry(**fields), timeout=30)

    # -- requests ----------------------------------------------------------------------
    def _read(self, environ: dict[str, Any]) -> RequestConsent:
        cookie = environ.get("HTTP_COOKIE")
        gpc_header: str | None = environ.get("HTTP_SEC_GPC")
        # A server joins repeated headers with commas: any "1" among them counts.
        gpc = (
            gpc_header is not None
            and self.config.gpc
            and "1" in (v.strip() for v in gpc_header.split(","))
        )
        rc = self.policy.read_header(cookie.encode("latin-1", "replace") if cookie else b"", gpc)
        environ["consent"] = rc.state
        return rc

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        rc = self._read(environ)
        path: str = environ.get("PATH_INFO", "") or ""
        sub = endpoint_subpath(path, self._prefix, self.config.gpc)
        if sub is not None:
            return self._serve_endpoint(environ, start_response, sub, rc)
        inject = self._inject and not (self._exclude and path.startswith(self._exclude))
        responder = _Responder(self, environ, rc, start_response, inject)
        app_iter = self.app(environ, responder.start_response)
        if responder.passthrough:
            return app_iter  # keeps wsgi.file_wrapper and friends intact
        return _Body(responder, app_iter)

    def _serve_endpoint(
        self, environ: dict[str, Any], start_response: StartResponse, sub: str, rc: RequestConsent
    ) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        remote = environ.get("REMOTE_ADDR")
        req = EndpointRequest(
            method=method,
            subpath=sub,
            headers=_environ_headers(environ),
            scheme=environ.get("wsgi.url_scheme", "http"),
            root_path=environ.get("SCRIPT_NAME", ""),
            client_ip=remote,
            query=environ.get("QUERY_STRING", "").encode("latin-1", "replace"),
        )
        out: EndpointResponse | Decision
        body = b""
        if method == "POST":
            raw_length = environ.get("CONTENT_LENGTH") or ""
            length = int(raw_length) if raw_length.strip().isdigit() else None
            if length is not None and length > MAX_BODY:
                return _respond(
                    start_response,
                    error(413, "too_large", f"the body is over {MAX_BODY} bytes"),
                    method,
                )
            stream = environ.get("wsgi.input")
            if stream is None:
                body = b""
            elif length is not None:
                body = stream.read(length)
            elif environ.get("wsgi.input_terminated"):
                # A chunked request the server ends with EOF: read one byte past the cap.
                body = stream.read(MAX_BODY + 1)
            else:
                # PEP 3333: without Content-Length the input need not end; reading
                # it would block until the client gives up. Treat it as empty.
                body = b""
        out = self.endpoint.handle(req, body, rc.state)
        if isinstance(out, Decision):
            try:
                self.record(out)
            except LogUnavailable as exc:
                out = log_unavailable(exc)
            else:
                out = out.response
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
    start_response(
        status, [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers]
    )
    return [b"" if method == "HEAD" else response.body]


class _Responder:
    """One response on its way out of the WSGI app."""

    __slots__ = (
        "environ",
        "inject",
        "injector",
        "mw",
        "passthrough",
        "pending",
        "rc",
        "real_start",
        "started",
        "write",
    )

    def __init__(
        self,
        mw: ConsentWSGIMiddleware,
        environ: dict[str, Any],
        rc: RequestConsent,
        start_response: StartResponse,
        inject: bool,
    ) -> None:
        self.mw = mw
        self.environ = environ
        self.rc = rc
        self.real_start = start_response
        self.inject = inject
        #: True once the server's start_response was called.
        self.started = False
        #: True once start_response was forwarded with nothing left to do to the body.
        self.passthrough = False
        self.pending: tuple[str, Headers, tuple[str, str | None, Edits], ExcInfo | None] | None = (
            None
        )
        self.injector: HTMLInjector | None = None
        self.write: Callable[[bytes], object] | None = None

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Callable[[bytes], object]:
        if exc_info is None and not self.rc.expire and _untouched(headers):
            # The common case: no cookie to filter, no page to inject. Forwarded
            # as it is, without converting the headers to bytes and back.
            self.pending = None
            self.started = True
            self.passthrough = True
            self.write = self.real_start(status, headers)
            return self.write
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        # Blocked names are counted by the policy.
        filtered, _ = self.mw.policy.filter_headers(raw, self.rc.state, self.rc.expire)
        if exc_info is not None and exc_info[0] is None:
            exc_info = None
        if exc_info is not None and self.started:
            # An error page replacing a response already handed to the server. Only
            # the server knows whether the headers went out: it re-raises if they
            # did (PEP 3333), else it takes these headers, sent as they are.
            self.injector = None
            self.write = self.real_start(status, _str_headers(filtered), exc_info)
            return self.write
        method: str = self.environ.get("REQUEST_METHOD", "GET")
        code = int(status.split(" ", 1)[0]) if status[:3].isdigit() else 0
        plan = plan_page(method, code, filtered) if self.inject else None
        if plan is not None:
            # Deferred to the first body chunk: a UTF-16/32 byte-order mark there
            # means the page cannot take the snippet.
            self.pending = (status, filtered, plan, exc_info)
            return self._write
        self.pending = None  # an error page replacing a deferred one
        self.started = True
        self.passthrough = True
        self.write = self.real_start(status, _str_headers(filtered), exc_info)
        return self.write

    def _write(self, data: bytes) -> None:
        # The legacy write() callable: the data goes out through the same path.
        out = self.process(data)
        if out and self.write is not None:
            self.write(out)

    def _flush_start(self, first: bytes) -> tuple[bytes, bytes] | None:
        """Send the deferred start; the ``(head, body)`` snippets if the page takes them."""
        assert self.pending is not None
        status, headers, plan, exc_info = self.pending
        self.pending = None
        snippets = None
        if first and body_is_injectable(first):
            snippets = self._snippets(plan)
            added = len(snippets[0]) + len(snippets[1])
            headers = rewrite_planned(headers, plan[2], added)
        self.started = True
        self.write = self.real_start(status, _str_headers(headers), exc_info)
        return snippets

    def process(self, chunk: bytes) -> bytes | None:
        """What to pass on for one chunk of the app's body; ``None`` while still deferred."""
        if self.pending is not None:
            if not chunk:
                return None
            whole = self._is_whole(chunk)
            snippets = self._flush_start(chunk)
            if snippets is not None:
                head, body = snippets
                if whole:
                    # The usual page, handed over as an iterator (Flask, Django):
                    # its first chunk is all its Content-Length announced, so the
                    # snippets are placed in one step, as for a one-item list.
                    return inject_page(chunk, body, head, self.mw._window)
                self.injector = HTMLInjector(body, head=head, window=self.mw._window)
        if self.injector is not None:
            return self.injector.feed(chunk)
        return chunk

    def _is_whole(self, chunk: bytes) -> bool:
        """Whether ``chunk`` is the whole body the deferred start's Content-Length announces.

        Anything the app sends after it would go beyond its own Content-Length; it is
        passed on unchanged, as the app sent it.
        """
        assert self.pending is not None
        _, headers, plan, _ = self.pending
        edits = plan[2]
        if edits is None or edits[0] < 0:
            return False
        declared = headers[edits[0]][1]
        return declared.isdigit() and int(declared) == len(chunk)

    def last(self, chunk: bytes) -> bytes:
        """The body's one and only chunk: the snippets placed in a single step."""
        if self.pending is not None:
            snippets = self._flush_start(chunk)
            if snippets is not None:
                return inject_page(chunk, snippets[1], snippets[0], self.mw._window)
        if self.injector is not None:
            return self.injector.finish(chunk)
        return chunk

    def finish(self) -> bytes:
        """What is left once the app's body has ended."""
        if self.pending is not None:
            self._flush_start(b"")  # an empty body: nothing to inject into
        if self.injector is not None:
            return self.injector.finish()
        return b""

    def _snippets(self, plan: tuple[str, str | None, Edits]) -> tuple[bytes, bytes]:
        env = self.environ
        return self.mw.snippets.get(  # by position: a keyword call costs more per page
            self.rc.state,
            plan[0],  # charset
            plan[1],  # nonce
            env.get("HTTP_ACCEPT_LANGUAGE"),
            env.get("QUERY_STRING", ""),
            env.get("SCRIPT_NAME", ""),
            env.get("PATH_INFO", ""),
        )


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
                # Most frameworks hand over a page as a one-item list: no streaming needed.
                self._done = True
                return responder.last(app_iter[0])  # type: ignore[index]
            self._it = iter(app_iter)
        while True:
            try:
                chunk = next(self._it)
            except StopIteration:
                self._done = True
                tail = responder.finish()
                if tail:
                    return tail
                raise
            out = responder.process(chunk)
            # Every chunk of the app yields one (maybe empty) chunk, so a stream is
            # never held up (PEP 3333), except while the start is still deferred:
            # a server may not receive body bytes before start_response.
            if out is not None:
                return out

    def close(self) -> None:
        close = getattr(self._app_iter, "close", None)
        if close is not None:
            close()


def _untouched(headers: list[tuple[str, str]]) -> bool:
    """No Set-Cookie and no HTML Content-Type: a cheap pass over the app's headers."""
    for k, v in headers:
        if len(k) == 10 and k.lower() == "set-cookie":
            return False
        if len(k) == 12 and k.lower() == "content-type" and "htm" in v.lower():
            return False
    return True


def _str_headers(headers: Headers) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers]
