"""Cost of ``Banner.snippet`` / ``head_snippet`` per page for an already-cached key.

Run: ``.venv/bin/python bench/bench_banner.py`` (``--rounds N`` for more samples).

The banner is rendered once per (locale, decided, granted, gpc, prefix); a page
then only pays for a dict lookup and filling in the escaped page URL and the CSP
nonce. Each figure is the median over rounds of the mean time of a tight loop of
calls (``time.perf_counter_ns``), with the best round beside it (the least disturbed
by other processes); the target is at most 1 µs per call.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Callable

from consent.banner import Banner
from consent.config import Category, ConsentConfig, CookieRule
from consent.state import ConsentState

LOOP = 20_000


def make_banner() -> Banner:
    return Banner(
        ConsentConfig(
            secret_key="bench-secret-key-0123456789abcdef",
            controller="Example Shop GmbH",
            privacy_policy_url="https://example.com/privacy",
            categories=[
                Category(key="necessary", required=True, cookies=["session", "csrftoken"]),
                Category(key="preferences", cookies=["theme", "lang"]),
                Category(
                    key="analytics",
                    cookies=[CookieRule(name="_ga", provider="Google", third_party=True), "_gid"],
                ),
                Category(key="marketing", cookies=["_fbp", "IDE"]),
            ],
        )
    )


def per_call_ns(fn: Callable[[], object], rounds: int) -> tuple[float, float]:
    fn()  # fill the cache: we measure the steady state
    samples = []
    gc.disable()
    try:
        for _ in range(rounds):
            t0 = time.perf_counter_ns()
            for _ in range(LOOP):
                fn()
            samples.append((time.perf_counter_ns() - t0) / LOOP)
    finally:
        gc.enable()
    return min(samples), statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    b = make_banner()
    undecided = ConsentState(granted=frozenset({"necessary"}))
    decided = ConsentState(
        granted=frozenset({"necessary", "analytics"}),
        decided=True,
        consent_id="A" * 22,
        revision=1,
        issued_at=1_700_000_000,
        source="banner",
    )
    url = "/shop/products?page=2&sort=price"
    cases: list[tuple[str, Callable[[], object]]] = [
        ("snippet, undecided, en", lambda: b.snippet(undecided, "en", prefix="/_consent", next_url=url)),
        ("snippet, decided, en", lambda: b.snippet(decided, "en", prefix="/_consent", next_url=url)),
        ("snippet, undecided, el (UCS-2 text)", lambda: b.snippet(undecided, "el", prefix="/_consent", next_url=url)),
        ("snippet, undecided, en, with nonce", lambda: b.snippet(undecided, "en", prefix="/_consent", next_url=url, nonce="r4nd0mN0nce+/=")),
        ("snippet, decided, en, with nonce", lambda: b.snippet(decided, "en", prefix="/_consent", next_url=url, nonce="r4nd0mN0nce+/=")),
        ("head_snippet, decided, with nonce", lambda: b.head_snippet(decided, nonce="r4nd0mN0nce+/=")),
        ("negotiate, cached header", lambda: b.negotiate("de-AT,de;q=0.9,en;q=0.8")),
    ]  # fmt: skip
    # The floor on this machine: copying a string of the snippet's size once.
    a, z = "x" * 2000, "y" * 2000
    cases.append(("floor: one 4000-char str join", lambda: "".join((a, url, z))))
    print(f"Python {sys.version.split()[0]}, {args.rounds} rounds x {LOOP} calls")
    width = max(len(name) for name, _ in cases)
    for name, fn in cases:
        size = len(str(fn()))
        best, median = per_call_ns(fn, args.rounds)
        print(
            f"{name:<{width}}  best {best / 1000:.3f}  median {median / 1000:.3f} µs  ({size} chars)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
