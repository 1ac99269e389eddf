"""What the side-by-side benchmarks share: the configuration, the page, the report table."""

from __future__ import annotations

import statistics

from consent import Category, ConsentConfig

#: The site every benchmark protects: four categories, the usual trackers.
CONFIG = ConsentConfig(
    secret_key="bench-secret-key-0123456789abcdef",
    log="memory://",
    categories=[
        Category(key="necessary", required=True, cookies=["session", "csrftoken"]),
        Category(key="preferences", cookies=["theme"]),
        Category(key="analytics", cookies=["_ga", "_ga_*", "_gid"]),
        Category(key="marketing", cookies=["_fbp", "IDE"]),
    ],
)
#: A 20 KB article page.
PAGE_20K = (
    "<!doctype html><html lang=en><head><meta charset=utf-8><title>Article</title></head><body>"
    + "<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.</p>\n"
    * 235
    + "</body></html>"
)


def report(title: str, samples: dict[str, list[float]], baseline: str) -> None:
    """Print one markdown table; ``samples`` holds µs per request per round, interleaved."""
    base = samples[baseline]
    print(f"\n## {title}\n")
    print(
        f"| variant | median µs/request | overhead vs {baseline} (µs, median of rounds) | ratio |"
    )
    print("|---|---:|---:|---:|")
    for name, xs in samples.items():
        med = statistics.median(xs)
        # The median of per-round differences: a slow round slows every variant alike.
        diff = statistics.median(a - b for a, b in zip(xs, base, strict=True))
        print(f"| {name} | {med:.2f} | {diff:+.2f} | {med / statistics.median(base):.3f} |")
