"""Run every benchmark, one after the other, and print their tables.

``make bench`` (or ``.venv/bin/python bench/run.py``). The consent-log benchmark
also measures PostgreSQL when ``CONSENT_TEST_POSTGRES_URL`` is set. Figures go
into docs/benchmarks.md with the command that produced them; on a shared
machine quote medians and ratios.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).parent
BENCHES = [
    ("ASGI middleware vs bare Starlette", ["bench_middleware.py"]),
    ("WSGI twin vs bare Flask", ["bench_wsgi.py"]),
    ("HTML injector", ["bench_inject.py"]),
    ("Banner snippet", ["bench_banner.py"]),
    ("Consent log", ["bench_log.py"]),
    ("Consent endpoint through uvicorn (durable writes)", ["bench_endpoint.py"]),
]


def main() -> int:
    failed = 0
    for title, argv in BENCHES:
        print(f"\n# {title}\n", flush=True)
        done = subprocess.run([sys.executable, str(HERE / argv[0]), *argv[1:]])
        failed += done.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
