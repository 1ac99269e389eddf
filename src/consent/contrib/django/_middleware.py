"""``consent.contrib.django.ConsentMiddleware``: the core as a Django middleware.

It only translates: the ``HttpRequest`` gives the consent state and the endpoint's
requests, the ``HttpResponse`` (``headers`` plus the ``cookies`` jar) becomes the
events of one :class:`~consent.core.flow.ResponseFlow`, whose answers are written
back into it before Django sends anything.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Container, Iterable, Iterator, Sequence
from contextlib import suppress
from http.cookies import CookieError, Morsel, SimpleCookie
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async

from ..._shell import Shell, environ_headers
from ...core.endpoint import (
    MAX_BODY,
    Decision,
    EndpointRequest,
    EndpointResponse,
    declared_length,
    endpoint_subpath,
    too_large,
)
from ...core.flow import ResponseFlow
from ...log import LogStore, LoopThread
from ...wsgi import LOG_TIMEOUT

__all__ = ["ConsentMiddleware"]

Headers = Sequence[tuple[bytes, bytes]]


class ConsentMiddleware:
    """The consent middleware for ``settings.MIDDLEWARE``, sync and async.

    Put it first in ``MIDDLEWARE`` (only GZip before it), so that it sees every
    cookie the project sets. The configuration is ``settings.CONSENT`` (see
    :func:`~consent.contrib.django.settings_config`); ``consent_state(request)``
    gives the visitor's state in views. A subclass may set :attr:`store` to a
    :class:`~consent.log.LogStore` to use instead of the URL of the configuration.
    """

    sync_capable = True
    async_capable = True
    #: A log store to use instead of ``settings.CONSENT["log"]``.
    store: LogStore | None = None

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        from . import settings_config

        self.get_response = get_response
        self.shell = Shell(settings_config(), who="ConsentMiddleware", store=self.store)
        # The consent log's coroutines run on one loop, for sync and async requests alike.
        self._loop = LoopThread()
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def close(self) -> None:
        """Close the consent log and its background thread."""
        self._loop.run(self.shell.log.close(), LOG_TIMEOUT)
        self._loop.stop()

    def __call__(self, request: Any) -> Any:
        if iscoroutinefunction(self):
            return self.__acall__(request)
        flow, endpoint = self._begin(request)
        if endpoint is not None:
            return _http_response(self._answer(request, endpoint))
        response = self.get_response(request)
        out = self._start(flow, response)
        if out is None and response.streaming:
            if response.is_async:
                # Its chunks can only be read in the server's loop: the start goes unchanged.
                _write_start(response, flow.flush())
            else:
                _stream_sync(flow, response)
        return response

    async def __acall__(self, request: Any) -> Any:
        flow, endpoint = self._begin(request)
        if endpoint is not None:
            answer = await sync_to_async(self._answer, thread_sensitive=False)(request, endpoint)
            return _http_response(answer)
        response = await self.get_response(request)
        out = self._start(flow, response)
        if out is None and response.streaming:
            if response.is_async:
                await _stream_async(flow, response)
            else:
                await sync_to_async(_stream_sync)(flow, response)
        return response

    def _begin(self, request: Any) -> tuple[ResponseFlow, str | None]:
        """The request's consent state into ``request.META``; its flow, or its endpoint sub-path."""
        shell, meta = self.shell, request.META
        rc = shell.read_environ(meta)
        path: str = request.path_info
        flow = ResponseFlow(
            shell.pipeline,
            rc,
            request.method or "GET",
            path,
            meta.get("QUERY_STRING", ""),
            meta.get("SCRIPT_NAME", "") or "",
            meta.get("HTTP_ACCEPT_LANGUAGE"),
        )
        return flow, endpoint_subpath(path, shell._prefix, shell._gpc)

    def _answer(self, request: Any, sub: str) -> EndpointResponse:
        """The endpoint's answer, its decision recorded (blocking: run in a thread when async)."""
        meta = request.META
        method = (request.method or "GET").upper()
        req = EndpointRequest(
            method=method,
            subpath=sub,
            headers=environ_headers(meta),
            scheme=request.scheme,
            root_path=meta.get("SCRIPT_NAME", "") or "",
            client_ip=meta.get("REMOTE_ADDR"),
            query=meta.get("QUERY_STRING", "").encode("latin-1", "replace"),
        )
        body = b""
        if method == "POST":
            length = declared_length(meta.get("CONTENT_LENGTH"))
            if length is not None and length > MAX_BODY:
                return too_large()
            # Django's stream ends where Content-Length says (or is empty without one).
            body = request.read(MAX_BODY + 1)
        out = self.shell.endpoint.handle(req, body, meta["consent"])
        if isinstance(out, Decision):
            out = self._loop.run(self.shell.log.settle(out))
        return out

    def _start(self, flow: ResponseFlow, response: Any) -> Headers | None:
        """The response's start through the flow; a whole page's body too."""
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.items()]
        raw += [
            (b"Set-Cookie", m.OutputString().encode("latin-1")) for m in response.cookies.values()
        ]
        out = flow.start(response.status_code, raw)
        if out is None and not response.streaming:
            out, response.content = flow.body(response.content, False)
        if out is not None and out is not raw:
            _write_start(response, out)
        return out


def _stream_sync(flow: ResponseFlow, response: Any) -> None:
    # The start is held until the first chunk decides the snippets, and Django sends
    # the headers only once the middleware returns: read ahead up to that chunk.
    chunks: Iterator[bytes] = iter(response.streaming_content)
    ahead: list[bytes] = []
    start: Headers | None = None
    for chunk in chunks:
        start, out = flow.body(chunk, True)
        ahead.append(out)
        if start is not None:
            break
    else:
        start, out = flow.body(b"", False)
        ahead.append(out)
    assert start is not None
    _write_start(response, start)

    def rest() -> Iterator[bytes]:
        yield from ahead
        for chunk in chunks:
            yield flow.body(chunk, True)[1]
        yield flow.body(b"", False)[1]

    response.streaming_content = rest()


async def _stream_async(flow: ResponseFlow, response: Any) -> None:
    # As _stream_sync, for an async iterator.
    chunks: AsyncIterator[bytes] = aiter(response.streaming_content)
    ahead: list[bytes] = []
    start: Headers | None = None
    async for chunk in chunks:
        start, out = flow.body(chunk, True)
        ahead.append(out)
        if start is not None:
            break
    else:
        start, out = flow.body(b"", False)
        ahead.append(out)
    assert start is not None
    _write_start(response, start)

    async def rest() -> AsyncIterator[bytes]:
        for out in ahead:
            yield out
        async for chunk in chunks:
            yield flow.body(chunk, True)[1]
        yield flow.body(b"", False)[1]

    response.streaming_content = rest()


def _write_start(response: Any, headers: Headers | None) -> None:
    """Makes ``response``'s headers and cookie jar say ``headers``."""
    if headers is None:
        return
    kept: dict[str, tuple[str, str]] = {}
    cookies: list[str] = []
    for k, v in headers:
        name, value = k.decode("latin-1"), v.decode("latin-1")
        if name.lower() == "set-cookie":
            cookies.append(value)
        else:
            kept[name.lower()] = (name, value)
    for name in list(response.headers):
        if name.lower() not in kept:
            del response.headers[name]
    for name, value in kept.values():
        if response.headers.get(name) != value:
            response.headers[name] = value
    old = {m.OutputString(): (key, m) for key, m in response.cookies.items()}
    response.cookies = _jar(cookies, old)


def _jar(values: Iterable[str], old: dict[str, tuple[str, Morsel[str]]]) -> SimpleCookie:
    """A cookie jar sending exactly ``values``, with the morsels of ``old`` that match."""
    jar = SimpleCookie()
    for value in values:
        key, morsel = old.get(value) or _raw_morsel(value)
        n = 1
        while key in jar:  # a name may come twice (deletions for two domains)
            key, n = f"{morsel.key}\x00{n}", n + 1
        dict.__setitem__(jar, key, morsel)
    return jar


class _RawMorsel(Morsel[str]):
    """A ``Set-Cookie`` value sent byte for byte: ``SimpleCookie`` would re-quote it,
    drop attributes it does not know, or refuse it. Changing it makes it a Morsel again."""

    _raw: str | None = None

    def OutputString(self, attrs: Container[str] | None = None) -> str:
        return self._raw if self._raw is not None else super().OutputString(attrs)

    def set(self, key: str, val: str, coded_val: str) -> None:
        self._raw = None
        super().set(key, val, coded_val)

    def __setitem__(self, key: str, value: Any) -> None:
        self._raw = None
        super().__setitem__(key, value)


def _raw_morsel(value: str) -> tuple[str, _RawMorsel]:
    name, _, rest = value.partition("=")
    name, cookie_value = name.strip(), rest.split(";", 1)[0].strip()
    morsel = _RawMorsel()
    parsed = SimpleCookie()
    with suppress(CookieError):  # it skips what it cannot read, mostly without raising
        parsed.load(value)
    if name in parsed:
        # Its attributes, readable as usual (``response.cookies[name]["max-age"]``).
        for attr, attr_value in parsed[name].items():
            if attr_value:
                morsel[attr] = attr_value
    # Not Morsel.set(): it refuses names a browser accepts, and the value stays raw.
    object.__setattr__(morsel, "_key", name)
    object.__setattr__(morsel, "_value", cookie_value)
    object.__setattr__(morsel, "_coded_value", cookie_value)
    morsel._raw = value
    return name, morsel


def _http_response(answer: EndpointResponse) -> Any:
    from django.http import HttpResponse

    response = HttpResponse(answer.body, status=answer.status)
    _write_start(response, answer.headers)
    return response
