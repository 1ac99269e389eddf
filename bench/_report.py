"""The table the side-by-side benchmarks print: medians, overheads and ratios."""

from __future__ import annotations

import statistics


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
