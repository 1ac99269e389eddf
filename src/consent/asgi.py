"""``ConsentMiddleware``: the ASGI shell around the sans-IO core.

It only translates ASGI messages to and from :mod:`consent.core`; the logic
lives there. The middleware object holds configuration and what is derived from
it; each response gets its own small :class:`_Responder`.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Generator, MutableMapping, Sequence
from typing import Any, cast

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
    html_codec,
    inject_page,
    plan_page,
    rewrite_planned,
)
from .core.response import RequestConsent, read_request, speedups
from .errors import ConsentError, LogUnavailable
from .log import LogEntry, LogStore, open_store
from .state import ConsentState

_time = time.time
# (cookie, gpc, accept_language) from the request headers: compiled when built;
# the compiled one answers None for header shapes it leaves to the Python one.
_read_request: Callable[[Any, bool], tuple[bytes, bool, bytes | None] | None] = (
    speedups.read_request if speedups is not None else read_request
)

__all__ = ["ConsentMiddleware", "get_consent"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]


def get_consent(request_or_scope: Any) -> ConsentState:
    """The visitor's :class:`ConsentState` from a request object or an ASGI scope.

    Raises :class:`~consent.errors.ConsentError` when the middleware is not installed.
    """
    scope = getattr(request_or_scope, "scope", request_or_scope)
    try:
        state = scope["consent"]
    except (KeyError, TypeError):
        raise ConsentError(
            "no consent state in this request: is ConsentMiddleware installed around the app?"
        ) from None
    if not isinstance(state, ConsentState):
        raise ConsentError("scope['consent'] is not a ConsentState")
    return state


def route_path(scope: Scope) -> str:
    """The path below ``root_path`` (uvicorn >= 0.26 puts root_path into ``path``)."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if not root or not path.startswith(root):
        return path
    if path == root:
        return ""
    if path[len(root)] == "/":
        return path[len(root) :]
    return path


class ConsentMiddleware(Shell):
    """Blocks cookies the visitor has not granted, injects the banner, serves the endpoint.

    ``app = ConsentMiddleware(app, config=ConsentConfig(...))`` or, in Starlette,
    ``app.add_middleware(ConsentMiddleware, config=...)``. ``config`` may also be a
    path to a TOML file. ``store`` replaces the log named by ``config.log``.
    """

    def __init__(
        self,
        app: ASGIApp,
        config: ConsentConfig | str | None = None,
        *,
        store: LogStore | None = None,
    ) -> None:
        super().__init__(config, who="ConsentMiddleware")
        self.app = app
        self._store = store
        self._store_open = False
        self._store_lock: asyncio.Lock | None = None
        self._cache = self.policy.readings
        self._gpc_cache = self.policy.readings_gpc
        self._endpoint_paths = (self._prefix, "/.well-known/gpc.json")
        self._endpoint_chars = frozenset(p[1:2] for p in self._endpoint_paths)
        self._filter_head = self.policy.fast_filter_head
        #: The compiled twin of the usual request in __call__ (None in pure Python).
        self._gate: Any = self._make_gate()

    def _make_gate(self, clock: Callable[[], float] | None = None) -> Any:
        """The compiled ``Gate`` for this middleware, or None without the compiled twins.

        ``clock`` replaces the system clock (tests); None reads it in C, as
        ``time.time()`` does.
        """
        tables = self.policy.fast_tables
        if speedups is None or tables is None or "" in self._endpoint_chars:
            return None
        page = None
        if self._inject:
            page = (
                functools.partial(_Responder, self),
                html_codec,
                self.snippets.get,
                rewrite_planned,
                inject_page,
                _send_both,
                speedups.DONE,  # what _NOTHING is, without a Python call per await
                self._window,
                self.snippets._memo,  # read with the key PageSnippets.get documents
            )
        return speedups.Gate(
            tables=tables,
            readings=self._cache,
            readings_gpc=self._gpc_cache,
            gpc=self._gpc,
            clock=clock,
            skip="".join(sorted(self._endpoint_chars)),
            exclude=self._exclude,
            page=page,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            gate = self._gate
            if gate is not None:
                # The usual request, in C: what the code below does, for a visitor
                # whose reading is cached, on a path that is not the endpoint's.
                relay = gate.begin(scope, send)
                if relay is not None:
                    await self.app(scope, receive, relay)
                    return
            # The request is read inline: this is the hot path of a pure-Python build.
            got = _read_request(scope["headers"], self._gpc)
            if got is None:
                got = read_request(scope["headers"], self._gpc)
            cookie, gpc, language = got
            # The policy's cache answers most requests; on a miss (or once the
            # cached reading expires) the policy reads and verifies the cookie.
            rc = (self._gpc_cache if gpc else self._cache).get(cookie)
            if rc is None or _time() >= rc.valid_until:
                rc = self.policy.read_header(cookie, gpc)
            scope["consent"] = rc.state
            path = route_path(scope) if scope.get("root_path") else scope["path"]
            # A one-character slice is a cached string: cheaper than startswith().
            if path[1:2] in self._endpoint_chars and path.startswith(self._endpoint_paths):
                sub = endpoint_subpath(path, self._prefix, self._gpc)
                if sub is not None:
                    await self._serve_endpoint(scope, receive, send, sub, rc.state)
                    return
            await self.app(scope, receive, self._send_wrapper(scope, send, rc, path, language))
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    def _send_wrapper(
        self, scope: Scope, send: Send, rc: RequestConsent, path: str, language: bytes | None
    ) -> Send:
        """The send wrapper of one request, on the Python path.

        A function of its own, not a closure inside ``__call__``: the variables a
        closure reads are cells, which Python makes on every call of the function
        that holds them, so ``__call__`` would pay for them on the compiled path too.
        """
        responder: _Responder | None = None

        def send_wrapper(message: Message) -> Awaitable[None]:
            # Not a coroutine function: most responses need nothing changed, and
            # then the inner send's own awaitable is handed back as it is. A
            # _Responder is built only for a page that may get the banner.
            nonlocal responder
            if responder is not None:
                return responder.send(message)
            if message["type"] == "http.response.start":
                original = message.get("headers", ())
                # Blocked names are counted by the policy (self.blocked).
                headers, _, html = self._filter_head(original, rc.state, rc.expire)
                if html and self._inject and not (self._exclude and path.startswith(self._exclude)):
                    responder = _Responder(self, scope, rc, send, path, language)
                    return responder.start(message, headers)
                if headers is not original:
                    return send({**message, "headers": headers})
            return send(message)

        return send_wrapper

    def _read(self, scope: Scope) -> RequestConsent:
        cookie, gpc, _ = read_request(scope["headers"], self._gpc)
        rc = self.policy.read_header(cookie, gpc)
        scope["consent"] = rc.state
        return rc

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        rc = self._read(scope)

        async def send_filtered(message: Message) -> None:
            if message["type"] == "websocket.accept" and message.get("headers"):
                headers, blocked = self.policy.filter_headers(list(message["headers"]), rc.state)
                if blocked:  # counted by the policy
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_filtered)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_lifespan(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                await self.aclose()
            await send(message)

        await self.app(scope, receive, send_lifespan)

    # -- the consent log ---------------------------------------------------------------
    async def get_store(self) -> LogStore:
        """The consent log, opened on first use (and reopened after a failure)."""
        if self._store is not None and self._store_open:
            return self._store
        if self._store_lock is None:
            self._store_lock = asyncio.Lock()
        async with self._store_lock:
            if self._store is None:
                self._store = open_store(self.config.log)
            if not self._store_open:
                try:
                    await self._store.open()
                except LogUnavailable:
                    raise
                except Exception as exc:
                    raise LogUnavailable(f"cannot open the consent log: {exc}") from exc
                self._store_open = True
        return self._store

    async def aclose(self) -> None:
        """Close the consent log (called on lifespan shutdown)."""
        if self._store is not None and self._store_open:
            self._store_open = False
            await self._store.close()

    async def record(self, decision: Decision) -> None:
        """Write ``decision`` durably; raises :class:`LogUnavailable`."""
        store = await self.get_store()
        if decision.texts_hash not in self._texts_stored:
            await store.put_texts(decision.texts_hash, decision.texts_json)
            self._texts_stored.add(decision.texts_hash)
        for fields in decision.records:
            await store.append(LogEntry(**fields))

    # -- the endpoint --------------------------------------------------------------------
    async def _serve_endpoint(
        self, scope: Scope, receive: Receive, send: Send, sub: str, state: ConsentState
    ) -> None:
        method: str = scope["method"]
        client = scope.get("client")
        req = EndpointRequest(
            method=method,
            subpath=sub,
            headers=scope["headers"],
            scheme=scope.get("scheme", "http"),
            root_path=scope.get("root_path", ""),
            client_ip=client[0] if client else None,
            query=scope.get("query_string", b""),
        )
        body = b""
        if method == "POST":
            read = await _read_body(req, receive)
            if read is None:
                return  # the client went away
            if isinstance(read, EndpointResponse):
                await _send_response(send, read, method)
                return
            body = read
        out = self.endpoint.handle(req, body, state)
        if isinstance(out, Decision):
            try:
                await self.record(out)
            except LogUnavailable as exc:
                out = log_unavailable(exc)
            else:
                out = out.response
        await _send_response(send, out, method)


async def _read_body(req: EndpointRequest, receive: Receive) -> bytes | EndpointResponse | None:
    length = req.header(b"content-length")
    if length is not None and length.strip().isdigit() and int(length) > MAX_BODY:
        return error(413, "too_large", f"the body is over {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        if message["type"] != "http.request":  # pragma: no cover - not sent by servers
            continue
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return error(413, "too_large", f"the body is over {MAX_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send_response(send: Send, response: EndpointResponse, method: str) -> None:
    await send(
        {"type": "http.response.start", "status": response.status, "headers": response.headers}
    )
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else response.body})


class _Nothing:
    """An awaitable that is already done: what ``send`` returns for a held message."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        # An exhausted iterator, the same one every time: awaiting it makes no
        # generator object (what a ``yield`` here would cost on every page).
        return _EXHAUSTED


_EXHAUSTED = cast("Generator[None, None, None]", iter(()))
_NOTHING = _Nothing()


async def _send_both(send: Send, first: Message, second: Message) -> None:
    await send(first)
    await send(second)


class _Responder:
    """One HTML response on its way out: holds its start back and injects the banner.

    Its cookies were filtered already, by the send wrapper that made it.
    """

    __slots__ = ("_injector", "_language", "_mw", "_path", "_pending", "_rc", "_scope", "_send")

    def __init__(
        self,
        mw: ConsentMiddleware,
        scope: Scope,
        rc: RequestConsent,
        send: Send,
        path: str,
        language: bytes | None,
    ) -> None:
        self._language = language  # the Accept-Language header, if any
        self._mw = mw
        self._scope = scope
        self._rc = rc
        self._send = send
        self._path = path
        self._pending: (
            tuple[Message, Sequence[tuple[bytes, bytes]], tuple[str, str | None, Edits]] | None
        )
        self._pending = None
        self._injector: HTMLInjector | None = None

    def hold(
        self,
        message: Message,
        headers: Sequence[tuple[bytes, bytes]],
        plan: tuple[str, str | None, Edits],
    ) -> None:
        """Take a start held back already, as :meth:`start` holds one (used by the C twin)."""
        self._pending = (message, headers, plan)

    def send(self, message: Message) -> Awaitable[None]:
        kind = message["type"]
        if kind == "http.response.body":
            if self._pending is None and self._injector is None:
                return self._send(message)
            return self._body(message)
        return self._other(message)

    def start(self, message: Message, headers: Sequence[tuple[bytes, bytes]]) -> Awaitable[None]:
        """Take the start message, whose cookies are filtered already (``headers``)."""
        plan = plan_page(self._scope["method"], message["status"], headers)
        if plan is not None:
            # Held back until the first body chunk: a UTF-16/32 byte-order mark
            # there means the page cannot take an ASCII-compatible snippet.
            self._pending = (message, headers, plan)
            return _NOTHING
        if headers is not message.get("headers", ()):
            message = {**message, "headers": headers}
        return self._send(message)

    async def _body(self, message: Message) -> None:
        if self._pending is not None:
            start, headers, plan = self._pending
            self._pending = None
            body = message.get("body", b"")
            more = message.get("more_body", False)
            if (body or more) and body_is_injectable(body):
                head, snippet = self._snippets(plan)
                window = self._mw._window
                headers = rewrite_planned(
                    headers,
                    plan[2],
                    len(head) + len(snippet),
                    trailers=start.get("trailers", False),
                )
                await self._send({**start, "headers": headers})
                if not more:  # the usual page: the whole body in one message
                    await self._send({**message, "body": inject_page(body, snippet, head, window)})
                    return
                self._injector = HTMLInjector(snippet, head=head, window=window)
            else:
                await self._send({**start, "headers": headers})
        if self._injector is not None:
            body = message.get("body", b"")
            if message.get("more_body", False):
                out = self._injector.feed(body)
            else:
                out = self._injector.finish(body)
            await self._send({**message, "body": out})
        else:
            await self._send(message)

    async def _other(self, message: Message) -> None:
        # Anything else (pathsend, trailers, early hints, debug, unknown types) is
        # forwarded as it is and in order; a held-back start goes out first.
        if self._pending is not None:
            start, headers, _ = self._pending
            self._pending = None
            await self._send({**start, "headers": headers})
        await self._send(message)

    def _snippets(self, plan: tuple[str, str | None, Edits]) -> tuple[bytes, bytes]:
        scope = self._scope
        return self._mw.snippets.get(
            self._rc.state,
            plan[0],
            plan[1],
            self._language,
            scope.get("query_string", b""),
            scope.get("root_path", ""),
            self._path,
        )
