"""In-process overhead of ConsentMiddleware against bare Starlette, side by side.

Run: ``.venv/bin/python bench/bench_middleware.py`` (or ``make bench``).

Time is the CPU time of this process (`time.process_time_ns`), so other
programs on a shared machine disturb the figures less. Each variant is an ASGI app called directly (no server, no sockets) with a
prebuilt scope; variants are interleaved round by round so that machine noise
hits them alike, and the figures are medians over rounds. Overheads are the
median of per-round differences against the bare app of the same scenario.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _common import CONFIG, PAGE_20K, report
from starlette.applications import Starlette
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from consent import ConsentMiddleware
from consent.state import ConsentState

App = Callable[[Any, Any, Any], Awaitable[None]]


async def small(request: Request) -> Response:
    return PlainTextResponse("ok")


async def four_cookies(request: Request) -> Response:
    r = PlainTextResponse("ok")
    r.set_cookie("session", "abc", httponly=True)
    r.set_cookie("_ga", "GA1.2.3")
    r.set_cookie("_fbp", "fb.1")
    r.set_cookie("theme", "dark")
    return r


async def page(request: Request) -> Response:
    return HTMLResponse(PAGE_20K)


def starlette() -> Starlette:
    return Starlette(
        routes=[Route("/", small), Route("/cookies", four_cookies), Route("/page", page)]
    )


class NoopMiddleware:
    def __init__(self, app: App) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class NoopBase(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next: Any) -> Response:
        return await call_next(request)  # type: ignore[no-any-return]


def consent_cookie(mw: ConsentMiddleware, *keys: str) -> bytes:
    state = ConsentState(granted=frozenset(keys) | mw.policy.required, decided=True, revision=1)
    return f"consent={mw.policy.codec.encode(state)}".encode()


def scope(path: str, cookie: bytes | None) -> dict[str, Any]:
    headers = [
        (b"host", b"example.com"),
        (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 Safari/537.36"),
        (b"accept", b"text/html,*/*"),
        (b"accept-language", b"en-GB,en;q=0.9"),
        (b"accept-encoding", b"gzip, br"),
    ]
    if cookie:
        headers.append((b"cookie", cookie + b"; session=abc; _ga=GA1.2.3"))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("example.com", 443),
    }


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: Any) -> None:
    pass


def fresh_scope(base: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``base`` whose header names and values are new bytes objects.

    A server parses every request into new objects, whose hashes are not cached
    yet, right before it calls the app: the benchmark does the same, for every
    variant alike, so the middleware cannot look up one cached cookie object again
    and again, nor read headers that went cold in memory.
    """
    return {
        **base,
        "headers": [(bytes(bytearray(k)), bytes(bytearray(v))) for k, v in base["headers"]],
    }


async def per_call_us(app: App, base: dict[str, Any], n: int) -> float:
    t0 = time.process_time_ns()
    for _ in range(n):
        await app(fresh_scope(base), _receive, _send)
    return (time.process_time_ns() - t0) / n / 1000


async def measure(
    variants: dict[str, tuple[App, dict[str, Any]]], rounds: int, n: int
) -> dict[str, list[float]]:
    for app, base in variants.values():  # warm caches (signature LRU, matcher cache, banner)
        await per_call_us(app, base, 200)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, (app, base) in variants.items():
            samples[name].append(await per_call_us(app, base, n))
    return samples


def main() -> int:
    parser = argparse.ArgumentParser()
    # Many short rounds: a round's variants run close together in time, so a burst
    # of load on a shared machine falls on the pair a difference is taken from.
    parser.add_argument("--rounds", type=int, default=61)
    parser.add_argument("-n", type=int, default=500)
    args = parser.parse_args()

    bare = starlette()
    consent = ConsentMiddleware(starlette(), config=CONFIG)
    noop = NoopMiddleware(starlette())
    basehttp = NoopBase(starlette())
    granted = consent_cookie(consent, "analytics", "preferences")

    async def run() -> None:
        s = await measure(
            {
                "bare Starlette": (bare, scope("/", granted)),
                "no-op pure ASGI wrapper": (noop, scope("/", granted)),
                "BaseHTTPMiddleware no-op": (basehttp, scope("/", granted)),
                "ConsentMiddleware (consented)": (consent, scope("/", granted)),
            },
            args.rounds,
            args.n,
        )
        report("Small non-HTML response, consented visitor", s, "bare Starlette")
        s = await measure(
            {
                "bare Starlette": (bare, scope("/cookies", granted)),
                "no-op pure ASGI wrapper": (noop, scope("/cookies", granted)),
                "BaseHTTPMiddleware no-op": (basehttp, scope("/cookies", granted)),
                "ConsentMiddleware (filters 4 Set-Cookie)": (consent, scope("/cookies", granted)),
            },
            args.rounds,
            args.n,
        )
        report("Response setting 4 cookies (1 blocked), consented visitor", s, "bare Starlette")
        s = await measure(
            {
                "bare Starlette": (bare, scope("/page", granted)),
                "bare Starlette, visitor without cookies": (bare, scope("/page", None)),
                "no-op pure ASGI wrapper": (noop, scope("/page", granted)),
                "BaseHTTPMiddleware no-op": (basehttp, scope("/page", granted)),
                "ConsentMiddleware (banner, undecided)": (consent, scope("/page", None)),
                "ConsentMiddleware (settings control, decided)": (consent, scope("/page", granted)),
            },
            args.rounds,
            max(args.n // 4, 200),
        )
        report(
            "20 KB HTML page",
            s,
            "bare Starlette",
            against={
                "ConsentMiddleware (banner, undecided)": "bare Starlette, visitor without cookies"
            },
        )

    asyncio.run(run())
    print(f"\nPython {sys.version.split()[0]}, rounds={args.rounds}, n={args.n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
