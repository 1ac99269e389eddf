"""In-process overhead of ConsentWSGIMiddleware against a bare Flask app, side by side.

Run: ``.venv/bin/python bench/bench_wsgi.py``

Time is the CPU time of this process (`time.process_time_ns`), so other
programs on a shared machine disturb the figures less. Each variant is a WSGI app
called directly (no server, no sockets) with a prebuilt environ; its body is
iterated and closed as a server would. Variants are interleaved round by round
so that machine noise hits them alike, and the figures are medians over rounds.
Overheads are the median of per-round differences against the bare app of the
same scenario.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from _common import CONFIG, PAGE_20K, report
from flask import Flask, Response

from consent.state import ConsentState
from consent.wsgi import ConsentWSGIMiddleware

WSGIApp = Callable[[dict[str, Any], Any], Iterable[bytes]]


def flask_app() -> Flask:
    app = Flask(__name__)

    @app.get("/")
    def small() -> Response:
        return Response("ok", mimetype="text/plain")

    @app.get("/cookies")
    def four_cookies() -> Response:
        r = Response("ok", mimetype="text/plain")
        r.set_cookie("session", "abc", httponly=True)
        r.set_cookie("_ga", "GA1.2.3")
        r.set_cookie("_fbp", "fb.1")
        r.set_cookie("theme", "dark")
        return r

    @app.get("/page")
    def page() -> Response:
        return Response(PAGE_20K, mimetype="text/html")

    return app


class NoopMiddleware:
    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return self.app(environ, start_response)


def consent_cookie(mw: ConsentWSGIMiddleware, *keys: str) -> str:
    state = ConsentState(granted=frozenset(keys) | mw.policy.required, decided=True, revision=1)
    return f"consent={mw.policy.codec.encode(state)}"


def environ(path: str, cookie: str | None) -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "",
        "PATH_INFO": path,
        "QUERY_STRING": "",
        "SERVER_NAME": "example.com",
        "SERVER_PORT": "443",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "example.com",
        "HTTP_USER_AGENT": "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0 Safari/537.36",
        "HTTP_ACCEPT": "text/html,*/*",
        "HTTP_ACCEPT_LANGUAGE": "en-GB,en;q=0.9",
        "HTTP_ACCEPT_ENCODING": "gzip, br",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    if cookie:
        env["HTTP_COOKIE"] = cookie + "; session=abc; _ga=GA1.2.3"
    return env


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return None


def per_call_us(app: WSGIApp, base: dict[str, Any], n: int) -> float:
    t0 = time.process_time_ns()
    for _ in range(n):
        body = app(dict(base), _start_response)
        for _chunk in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()
    return (time.process_time_ns() - t0) / n / 1000


def measure(
    variants: dict[str, tuple[WSGIApp, dict[str, Any]]], rounds: int, n: int
) -> dict[str, list[float]]:
    for app, base in variants.values():  # warm caches (signature, matcher, banner)
        per_call_us(app, base, 200)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, (app, base) in variants.items():
            samples[name].append(per_call_us(app, base, n))
    return samples


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("-n", type=int, default=2000)
    args = parser.parse_args()

    bare = flask_app().wsgi_app
    noop = NoopMiddleware(flask_app().wsgi_app)
    consent = ConsentWSGIMiddleware(flask_app().wsgi_app, config=CONFIG)
    granted = consent_cookie(consent, "analytics", "preferences")

    s = measure(
        {
            "bare Flask": (bare, environ("/", granted)),
            "no-op WSGI wrapper": (noop, environ("/", granted)),
            "ConsentWSGIMiddleware (consented)": (consent, environ("/", granted)),
        },
        args.rounds,
        args.n,
    )
    report("Small non-HTML response, consented visitor", s, "bare Flask")
    s = measure(
        {
            "bare Flask": (bare, environ("/cookies", granted)),
            "no-op WSGI wrapper": (noop, environ("/cookies", granted)),
            "ConsentWSGIMiddleware (filters 4 Set-Cookie)": (
                consent,
                environ("/cookies", granted),
            ),
        },
        args.rounds,
        args.n,
    )
    report("Response setting 4 cookies (1 blocked), consented visitor", s, "bare Flask")
    s = measure(
        {
            "bare Flask": (bare, environ("/page", granted)),
            "bare Flask, visitor without cookies": (bare, environ("/page", None)),
            "no-op WSGI wrapper": (noop, environ("/page", granted)),
            "ConsentWSGIMiddleware (banner, undecided)": (consent, environ("/page", None)),
            "ConsentWSGIMiddleware (settings control, decided)": (
                consent,
                environ("/page", granted),
            ),
        },
        args.rounds,
        max(args.n // 4, 200),
    )
    report(
        "20 KB HTML page",
        s,
        "bare Flask",
        against={
            "ConsentWSGIMiddleware (banner, undecided)": "bare Flask, visitor without cookies"
        },
    )
    print(f"\nPython {sys.version.split()[0]}, rounds={args.rounds}, n={args.n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
