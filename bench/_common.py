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


def report(
    title: str,
    samples: dict[str, list[float]],
    baseline: str,
    against: dict[str, str] | None = None,
) -> None:
    """Print one markdown table; ``samples`` holds µs per request per round, interleaved.

    Each variant is compared with ``baseline``, or with the variant ``against``
    names for it: the bare app serving the same request (a visitor without a
    cookie sends one header fewer, which the server and the app read too).
    """
    against = against or {}
    print(f"\n## {title}\n")
    print(
        f"| variant | median µs/request | overhead vs {baseline} (µs, median of rounds) | ratio |"
    )
    print("|---|---:|---:|---:|")
    for name, xs in samples.items():
        base = samples[against.get(name, baseline)]
        med = statistics.median(xs)
        # The median of per-round differences: a slow round slows every variant alike.
        diff = statistics.median(a - b for a, b in zip(xs, base, strict=True))
        note = f" (vs {against[name]})" if name in against else ""
        print(f"| {name}{note} | {med:.2f} | {diff:+.2f} | {med / statistics.median(base):.3f} |")
