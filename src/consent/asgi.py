"""``ConsentMiddleware``: the ASGI shell around the sans-IO core.

It only translates: ASGI messages become events of a
:class:`~consent.core.flow.ResponseFlow` (one per response) and what the flow
answers becomes messages again; consent requests go to
:class:`~consent.core.endpoint.Endpoint`. Besides that it knows only what is
ASGI's own: lifespan, websocket ``accept`` headers, the request body stream.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, MutableMapping
from typing import Any, cast

from ._shell import Shell
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
from .core.kernels import read_request
from .errors import ConsentError
from .log import LogStore
from .state import ConsentState

__all__ = ["ConsentMiddleware", "get_consent"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


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
        super().__init__(config, who="ConsentMiddleware", store=store)
        self.app = app
        self._endpoint_paths = (self._prefix, "/.well-known/gpc.json")
        self._endpoint_chars = frozenset(p[1:2] for p in self._endpoint_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            cookie, gpc, language = read_request(scope["headers"], self._gpc)
            rc = self.policy.read_header(cookie, gpc)
            scope["consent"] = rc.state
            path = route_path(scope) if scope.get("root_path") else scope["path"]
            # A one-character slice is a cached string: cheaper than startswith().
            if path[1:2] in self._endpoint_chars and path.startswith(self._endpoint_paths):
                sub = endpoint_subpath(path, self._prefix, self._gpc)
                if sub is not None:
                    await self._serve_endpoint(scope, receive, send, sub, rc.state)
                    return
            flow = _Flow(
                self.pipeline,
                rc,
                scope["method"],
                path,
                scope.get("query_string", b""),
                scope.get("root_path", ""),
                language,
            )
            flow.inner = send
            flow.held = None
            await self.app(scope, receive, flow.send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        cookie, gpc, _ = read_request(scope["headers"], self._gpc)
        state = self.policy.read_header(cookie, gpc).state
        scope["consent"] = state

        async def send_filtered(message: Message) -> None:
            if message["type"] == "websocket.accept" and message.get("headers"):
                headers, blocked = self.policy.filter_headers(list(message["headers"]), state)
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

    async def aclose(self) -> None:
        """Close the consent log (called on lifespan shutdown)."""
        await self.log.close()

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
            out = await self.log.settle(out)
        await _send_response(send, out, method)


class _Flow(ResponseFlow):
    """A response flow with the ASGI ``send`` the app gets: messages in, messages out."""

    __slots__ = ("held", "inner")
    #: The server's send.
    inner: Send
    #: The start message, while the flow holds it.
    held: Message | None

    def send(self, message: Message) -> Awaitable[None]:
        # Not a coroutine function: most messages need nothing changed, and then
        # the server's own awaitable is handed back as it is.
        kind = message["type"]
        if kind == "http.response.body":
            if self.state == PASS:
                return self.inner(message)
            chunk = message.get("body", b"")
            start, out = self.body(chunk, message.get("more_body", False))
            if out is not chunk:
                message = {**message, "body": out}
            if start is None:
                # Still held (an empty chunk, nothing to send yet) or streaming.
                return _NOTHING if self.state == HELD else self.inner(message)
        elif kind == "http.response.start":
            headers = message.get("headers", ())
            out_headers = self.start(message["status"], headers, message.get("trailers", False))
            if out_headers is None:
                self.held = message
                return _NOTHING
            if out_headers is not headers:
                message = {**message, "headers": out_headers}
            return self.inner(message)
        else:
            # Anything else (pathsend, trailers, early hints, debug, unknown types) is
            # forwarded as it is and in order; a held start goes out first, unchanged.
            start = self.flush()
            if start is None:
                return self.inner(message)
        assert self.held is not None
        first, self.held = {**self.held, "headers": start}, None
        return _send_both(self.inner, first, message)


async def _send_both(send: Send, first: Message, second: Message) -> None:
    await send(first)
    await send(second)


async def _read_body(req: EndpointRequest, receive: Receive) -> bytes | EndpointResponse | None:
    length = declared_length(req.header(b"content-length"))
    if length is not None and length > MAX_BODY:
        return too_large()
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
            return too_large()
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send_response(send: Send, response: EndpointResponse, method: str) -> None:
    await send(
        {"type": "http.response.start", "status": response.status, "headers": response.headers}
    )
    await send({"type": "http.response.body", "body": b"" if method == "HEAD" else response.body})


class _Nothing:
    """An awaitable that is already done: what ``send`` returns for a held start."""

    __slots__ = ()

    def __await__(self) -> Generator[None, None, None]:
        # An exhausted iterator, the same one every time: awaiting it makes no
        # generator object (what a ``yield`` here would cost).
        return _EXHAUSTED


_EXHAUSTED = cast("Generator[None, None, None]", iter(()))
_NOTHING = _Nothing()
