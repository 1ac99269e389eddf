"""Instructions per request, counted by valgrind: a measure the machine's load cannot move.

Run: ``.venv/bin/python bench/bench_instructions.py`` (needs ``valgrind``; Debian
package ``valgrind``). Takes a few minutes.

Timing on a shared machine swings by a factor of two from one minute to the next.
callgrind counts the instructions a run executes instead, which repeats to a
fraction of a percent. For each scenario and variant, a child process runs the
same setup and warm-up with 0 and with N requests; the difference divided by N is
the cost of one request. The overhead is then also given in microseconds at the
speed this machine showed for bare Starlette in the timed benchmark
(``bench/bench_middleware.py``), so both views can be compared.

``--wsgi`` counts the WSGI twin around Flask instead (``bench/bench_wsgi.py``'s apps).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
SCENARIOS = {
    "small": ("/", True),
    "cookies": ("/cookies", True),
    "page-undecided": ("/page", False),
    "page-decided": ("/page", True),
}
VARIANTS = ["bare", "noop", "basehttp", "consent"]


def child(variant: str, scenario: str, n: int) -> None:
    sys.path.insert(0, HERE)
    import bench_middleware as b

    from consent import ConsentMiddleware

    consent = ConsentMiddleware(b.starlette(), config=b.CONFIG)
    apps: dict[str, Any] = {
        "bare": b.starlette(),
        "noop": b.NoopMiddleware(b.starlette()),
        "basehttp": b.NoopBase(b.starlette()),
        "consent": consent,
    }
    if variant.startswith("exp:"):  # an experiment: exp:MODULE_PATH:CLASS
        import importlib.util

        _, file, cls = variant.split(":")
        spec = importlib.util.spec_from_file_location("exp", file)
        assert spec and spec.loader
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        apps[variant] = getattr(mod, cls)(b.starlette(), config=b.CONFIG)
    app = apps[variant]
    path, decided = SCENARIOS[scenario]
    scope = b.scope(
        path, b.consent_cookie(consent, "analytics", "preferences") if decided else None
    )

    async def run() -> None:
        for _ in range(300):  # the same warm-up in every run
            await app(b.fresh_scope(scope), b._receive, b._send)
        # A collection of the whole heap costs millions of instructions and falls
        # in one run and not in another: counted without the collector. Making
        # each request's scope is counted too, alike for every variant.
        gc.collect()
        gc.disable()
        for _ in range(n):
            await app(b.fresh_scope(scope), b._receive, b._send)

    asyncio.run(run())


def wsgi_child(variant: str, scenario: str, n: int) -> None:
    """The same for the WSGI twin around Flask (``--wsgi``)."""
    sys.path.insert(0, HERE)
    import bench_wsgi as w

    from consent.wsgi import ConsentWSGIMiddleware

    consent = ConsentWSGIMiddleware(w.flask_app(), config=w.CONFIG)
    apps: dict[str, Any] = {
        "bare": w.flask_app(),
        "noop": w.NoopMiddleware(w.flask_app()),
        "consent": consent,
    }
    path, decided = SCENARIOS[scenario]
    environ = w.environ(
        path, w.consent_cookie(consent, "analytics", "preferences") if decided else None
    )
    w.per_call_us(apps[variant], environ, 300)  # the same warm-up in every run
    gc.collect()
    gc.disable()
    if n:
        w.per_call_us(apps[variant], environ, n)


def instructions(variant: str, scenario: str, n: int, wsgi: bool = False) -> int:
    env = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            __file__,
            "--child",
            variant,
            scenario,
            str(n),
            *(["--wsgi"] if wsgi else []),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    m = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    if not m:
        raise RuntimeError(f"no instruction count in valgrind's output:\n{done.stderr[-2000:]}")
    return int(m.group(1))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=300, help="requests counted per run")
    parser.add_argument(
        "--variants",
        nargs="*",
        default=["noop", "consent"],
        help=f"besides bare Starlette, any of {VARIANTS} (BaseHTTPMiddleware is slow to count)",
    )
    parser.add_argument(
        "--scenarios", nargs="*", default=list(SCENARIOS), help=f"any of {list(SCENARIOS)}"
    )
    parser.add_argument("--child", nargs=3, metavar=("VARIANT", "SCENARIO", "N"))
    parser.add_argument(
        "--wsgi",
        action="store_true",
        help="count ConsentWSGIMiddleware around Flask (variants bare, noop, consent)",
    )
    parser.add_argument(
        "--us-per-minstr", type=float, default=None, help="µs per million instructions"
    )
    args = parser.parse_args()
    if args.child:
        run = wsgi_child if args.wsgi else child
        run(args.child[0], args.child[1], int(args.child[2]))
        return 0
    print("| scenario | variant | instructions/request | overhead vs bare |")
    print("|---|---|---:|---:|")
    for scenario in args.scenarios:
        per: dict[str, float] = {}
        for variant in ["bare", *(v for v in args.variants if v != "bare")]:
            if variant != "bare" and variant not in args.variants:
                continue
            # The two runs side by side: one per core on a two-core machine.
            with ThreadPoolExecutor(2) as pool:
                first = pool.submit(instructions, variant, scenario, 0, args.wsgi)
                second = pool.submit(instructions, variant, scenario, args.n, args.wsgi)
                base, full = first.result(), second.result()
            per[variant] = (full - base) / args.n
            extra = per[variant] - per["bare"]
            scale = f" (≈ {extra * args.us_per_minstr / 1e6:.2f} µs)" if args.us_per_minstr else ""
            print(
                f"| {scenario} | {variant} | {per[variant]:,.0f} | {extra:+,.0f}{scale} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
