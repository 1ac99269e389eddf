"""A strict raw-ASGI harness: calls an app with a real-looking scope and checks
the messages it sends the way a strict server would.

Starlette's TestClient tolerates a body on 204, knows no pathsend and hides the
message order, so the middleware's own behaviour is checked here instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Message = MutableMapping[str, Any]
App = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


class ProtocolError(AssertionError):
    """The app broke a rule a strict ASGI server enforces."""


@dataclass
class Result:
    messages: list[Message] = field(default_factory=list)

    @property
    def start(self) -> Message:
        return next(m for m in self.messages if m["type"] == "http.response.start")

    @property
    def status(self) -> int:
        return int(self.start["status"])

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return [(bytes(k), bytes(v)) for k, v in self.start.get("headers", [])]

    def header(self, name: str) -> str | None:
        for k, v in self.headers:
            if k.lower() == name.encode():
                return v.decode("latin-1")
        return None

    def header_values(self, name: str) -> list[str]:
        return [v.decode("latin-1") for k, v in self.headers if k.lower() == name.encode()]

    @property
    def set_cookie_names(self) -> list[str]:
        return [v.split("=", 1)[0] for v in self.header_values("set-cookie")]

    @property
    def set_cookies(self) -> dict[str, str]:
        return {v.split("=", 1)[0]: v for v in self.header_values("set-cookie")}

    @property
    def kept_cookie_names(self) -> list[str]:
        """Names of cookies set with a value (deletions left out)."""
        return [
            v.split("=", 1)[0] for v in self.header_values("set-cookie") if "Max-Age=0" not in v
        ]

    @property
    def body(self) -> bytes:
        return b"".join(
            m.get("body", b"") for m in self.messages if m["type"] == "http.response.body"
        )

    @property
    def types(self) -> list[str]:
        return [m["type"] for m in self.messages]


def make_scope(
    method: str = "GET",
    path: str = "/",
    headers: Iterable[tuple[bytes | str, bytes | str]] = (),
    *,
    query: bytes = b"",
    root_path: str = "",
    scheme: str = "http",
    kind: str = "http",
    extensions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    hdrs = [
        (
            k.lower() if isinstance(k, bytes) else k.lower().encode(),
            v if isinstance(v, bytes) else v.encode(),
        )
        for k, v in headers
    ]
    if not any(k == b"host" for k, _ in hdrs):
        hdrs.insert(0, (b"host", b"testserver"))
    return {
        "type": kind,
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": method,
        "scheme": scheme,
        "path": root_path + path,
        "raw_path": (root_path + path).encode(),
        "root_path": root_path,
        "query_string": query,
        "headers": hdrs,
        "client": ("203.0.113.77", 50000),
        "server": ("testserver", 80),
        "extensions": extensions or {},
        "state": {},
    }


async def call(
    app: App,
    method: str = "GET",
    path: str = "/",
    headers: Iterable[tuple[bytes | str, bytes | str]] = (),
    *,
    body: bytes | Sequence[bytes] = b"",
    strict: bool = True,
    **scope_kw: Any,
) -> Result:
    """Run one HTTP request through ``app`` and check the response protocol."""
    scope = make_scope(method, path, headers, **scope_kw)
    chunks = [body] if isinstance(body, bytes) else list(body)
    incoming: list[Message] = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    result = Result()

    async def receive() -> Message:
        if incoming:
            return incoming.pop(0)
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        result.messages.append(message)

    await app(scope, receive, send)
    if strict:
        check(result, method)
    return result


def check(result: Result, method: str = "GET") -> None:
    """The rules a strict server (h11, uvicorn) enforces on one response."""
    starts = [i for i, m in enumerate(result.messages) if m["type"] == "http.response.start"]
    if len(starts) != 1:
        raise ProtocolError(f"http.response.start sent {len(starts)} times: {result.types}")
    s = starts[0]
    before = [m["type"] for m in result.messages[:s]]
    if any(t != "http.response.debug" for t in before):
        raise ProtocolError(f"messages before start: {before}")
    start = result.messages[s]
    for k, v in start.get("headers", []):
        if not isinstance(k, bytes) or not isinstance(v, bytes):
            raise ProtocolError(f"header not bytes: {k!r}: {v!r}")
        if any(c in v for c in b"\r\n\x00"):
            raise ProtocolError(f"control character in header value {k!r}: {v!r}")
    after = result.messages[s + 1 :]
    ended = False
    trailers_expected = bool(start.get("trailers", False))
    for m in after:
        t = m["type"]
        if t == "http.response.body":
            if ended:
                raise ProtocolError("body after the final body message")
            if not m.get("more_body", False):
                ended = True
        elif t == "http.response.trailers":
            if not ended or not trailers_expected:
                raise ProtocolError("trailers out of place")
        elif t in ("http.response.pathsend", "http.response.zerocopysend"):
            ended = True
    status = int(start["status"])
    length = result.header("content-length")
    if status in (204, 304) or status < 200:
        if result.body:
            raise ProtocolError(f"a {status} response must have no body")
        return
    if method == "HEAD":
        return  # servers drop a HEAD body themselves; Content-Length describes the GET
    if (
        length is not None
        and ended
        and "http.response.pathsend" not in result.types
        and int(length) != len(result.body)
    ):
        raise ProtocolError(f"Content-Length {length} but body has {len(result.body)} bytes")
    if trailers_expected and length is not None:
        raise ProtocolError("Content-Length with trailers")
