"""Cost of the sans-IO HTML injection for one 20 KB page, without any server.

Run: ``.venv/bin/python bench/bench_inject.py`` (``--rounds N`` for more samples).

Each figure is the median over many rounds (``time.perf_counter_ns``). "flow" rows
handle one whole response the way both shells do, through a
:class:`~consent.core.flow.ResponseFlow` (start, then the body in 1 chunk, as
Starlette's HTMLResponse sends it, or in 8 chunks, a streamed template), with the
snippets from the memo. "injector" rows time the ``HTMLInjector`` alone;
``inject_page`` is the kernel a page in one piece takes (compiled unless
``CONSENT_PURE_PYTHON=1``); "copy" is a plain ``bytes`` concatenation of the page,
the floor any injection pays.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from collections.abc import Callable

from _common import CONFIG

from consent._shell import Shell
from consent.core.flow import ResponseFlow
from consent.core.inject import HTMLInjector
from consent.core.kernels import inject_page
from consent.core.response import RequestConsent

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


SHELL = Shell(CONFIG, who="bench")
VISITOR: RequestConsent = SHELL.policy.read_header(b"")


def through_flow(chunks: list[bytes]) -> Callable[[], object]:
    """One response through a ResponseFlow, as the shells drive it."""
    last = chunks[-1]
    rest = chunks[:-1]

    def run() -> object:
        flow = ResponseFlow(SHELL.pipeline, VISITOR, "GET", "/", b"", "", b"en")
        assert flow.start(200, HEADERS) is None
        out = [flow.body(c, True)[1] for c in rest]
        out.append(flow.body(last, False)[1])
        return out

    return run


def injector_only(chunks: list[bytes]) -> Callable[[], object]:
    """The way a shell drives it: every chunk but the last to feed(), the last to finish()."""
    last = chunks[-1]
    rest = chunks[:-1]

    def run() -> object:
        inj = HTMLInjector(BANNER, head=HEAD)
        out = [inj.feed(c) for c in rest]
        out.append(inj.finish(last))
        return out

    return run


def injector_fed(chunks: list[bytes]) -> Callable[[], object]:
    """Every chunk to feed(), then a bare finish()."""

    def run() -> object:
        inj = HTMLInjector(BANNER, head=HEAD)
        out = [inj.feed(c) for c in chunks]
        out.append(inj.finish())
        return out

    return run


def medians_us(fns: list[Callable[[], object]], rounds: int) -> list[float]:
    """Median µs per call of each function; they run interleaved, round by round,
    so that noise from the rest of the machine hits them alike."""
    for fn in fns:
        for _ in range(200):
            fn()
    samples: list[list[int]] = [[] for _ in fns]
    clock = time.perf_counter_ns
    gc.disable()
    try:
        for _ in range(rounds):
            for fn, out in zip(fns, samples, strict=True):
                t0 = clock()
                fn()
                out.append(clock() - t0)
    finally:
        gc.enable()
    return [statistics.median(s) / 1000 for s in samples]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20000)
    args = parser.parse_args()

    one, eight = [PAGE], chunks_of(PAGE, 8)
    expected = len(PAGE) + len(HEAD) + len(BANNER)
    assert inject_page(PAGE, BANNER, HEAD) == HTMLInjector(BANNER, head=HEAD).finish(PAGE)
    for chunks in (one, eight):
        inj = HTMLInjector(BANNER, head=HEAD)
        out = b"".join([inj.feed(c) for c in chunks]) + inj.finish()
        assert len(out) == expected and BANNER + b"</body>" in out and b"<head>" + HEAD in out
    print(f"page {len(PAGE)} bytes, head {len(HEAD)}, banner {len(BANNER)}; median µs per page")
    rows = [
        ("copy (floor)", lambda: PAGE + BANNER),
        ("inject_page(page)", lambda: inject_page(PAGE, BANNER, HEAD)),
        ("injector, 1 chunk: finish(page)", injector_only(one)),
        ("injector, 1 chunk: feed + finish", injector_fed(one)),
        ("injector, 8 chunks", injector_only(eight)),
        ("flow, 1 chunk", through_flow(one)),
        ("flow, 8 chunks", through_flow(eight)),
    ]
    figures = medians_us([fn for _, fn in rows], args.rounds)
    for (name, _), us in zip(rows, figures, strict=True):
        print(f"  {name:40} {us:7.2f}")


if __name__ == "__main__":
    main()
