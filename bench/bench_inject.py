"""Cost of the sans-IO HTML injection for one 20 KB page, without any server.

Run: ``.venv/bin/python bench/bench_inject.py`` (``--rounds N`` for more samples).

Each figure is the median over many rounds (``time.perf_counter_ns``) of handling
one whole response: ``plan_injection`` + ``rewrite_headers`` + one ``HTMLInjector``
fed the page in 1 chunk (as Starlette's HTMLResponse sends it) or in 8 chunks (a
streamed template). "injector" times the ``HTMLInjector`` part alone; "copy" is a
plain ``bytes`` concatenation of the page, the floor any injection pays.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable

from consent.core.inject import HTMLInjector, plan_injection, rewrite_headers

HEAD = b'<script>window.dataLayer=window.dataLayer||[];gtag("consent","default",{})</script>'
BANNER = (
    b'<div data-consent-banner><form method="post" action="/_consent">'
    + b"x" * 1500
    + b"</form></div>"
)
PAGE = (
    b'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Article</title>'
    b'<link rel="stylesheet" href="/static/site.css"></head><body><main>'
    + b"<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.</p>\n"
    * 230
    + b'</main><script src="/static/app.js"></script></body></html>\n'
)
HEADERS = [
    (b"content-type", b"text/html; charset=utf-8"),
    (b"content-length", str(len(PAGE)).encode()),
    (b"set-cookie", b"session=abc; HttpOnly"),
]


def chunks_of(page: bytes, n: int) -> list[bytes]:
    size = -(-len(page) // n)
    return [page[i : i + size] for i in range(0, len(page), size)]


def whole_response(chunks: list[bytes]) -> Callable[[], object]:
    last = chunks[-1]
    rest = chunks[:-1]

    def run() -> object:
        codec = plan_injection("GET", 200, HEADERS)
        assert codec is not None
        inj = HTMLInjector(BANNER, head=HEAD)
        rewrite_headers(HEADERS, inj.added)
        for c in rest:
            inj.feed(c)
        return inj.finish(last)

    return run


def injector_only(chunks: list[bytes]) -> Callable[[], object]:
    def run() -> object:
        inj = HTMLInjector(BANNER, head=HEAD)
        out = [inj.feed(c) for c in chunks]
        out.append(inj.finish())
        return out

    return run


def median_us(fn: Callable[[], object], rounds: int) -> float:
    for _ in range(200):
        fn()
    samples = []
    gc.disable()
    try:
        for _ in range(rounds):
            t0 = time.perf_counter_ns()
            fn()
            samples.append(time.perf_counter_ns() - t0)
    finally:
        gc.enable()
    return statistics.median(samples) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20000)
    args = parser.parse_args()

    one, eight = [PAGE], chunks_of(PAGE, 8)
    expected = len(PAGE) + len(HEAD) + len(BANNER)
    for chunks in (one, eight):
        inj = HTMLInjector(BANNER, head=HEAD)
        out = b"".join([inj.feed(c) for c in chunks]) + inj.finish()
        assert len(out) == expected and BANNER + b"</body>" in out and b"<head>" + HEAD in out
    print(f"page {len(PAGE)} bytes, head {len(HEAD)}, banner {len(BANNER)}; median µs per page")
    rows = [
        ("copy (floor)", lambda: PAGE + BANNER),
        ("injector, 1 chunk", injector_only(one)),
        ("injector, 8 chunks", injector_only(eight)),
        ("plan+headers+injector, 1 chunk", whole_response(one)),
        ("plan+headers+injector, 8 chunks", whole_response(eight)),
    ]
    for name, fn in rows:
        print(f"  {name:34} {median_us(fn, args.rounds):7.2f}")


if __name__ == "__main__":
    main()
