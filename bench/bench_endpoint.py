"""Durable consent writes per second through the real endpoint and a real server.

Run: ``.venv/bin/python bench/bench_endpoint.py``
(``--postgres URL`` or ``CONSENT_TEST_POSTGRES_URL`` adds PostgreSQL;
``--rounds``, ``--posts``, ``--clients``, ``--workers`` change the sizes).

A uvicorn server (``--workers`` 1 and 2) runs the real ``ConsentMiddleware``
around a small Starlette site (``tests/log/endpoint_app.py``) on a fresh log.
``--clients`` concurrent keep-alive connections post ``--posts`` consents per
round to ``POST /_consent`` (half JSON, answered 200; half forms, answered
303). Every answer comes only after the consent's record was committed (SQLite
WAL with synchronous=FULL; PostgreSQL with synchronous_commit=on), so the
figure is *durable* consents per second. The client is a minimal asyncio
HTTP/1.1 client running on the same machine as the server, so it takes CPU the
server could otherwise use. After the rounds the log is checked: exactly the
posts answered are in it, and its chain verifies. Figures are medians over rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.log.endpoint_app import Server  # noqa: E402

from consent.log import open_store, redact_url  # noqa: E402

PG_ENV = "CONSENT_TEST_POSTGRES_URL"


def _request(content_type: str, body: bytes) -> bytes:
    return (
        b"POST /_consent HTTP/1.1\r\nhost: 127.0.0.1\r\nuser-agent: bench/1 Firefox/128.0\r\n"
        b"content-type: " + content_type.encode() + b"\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


REQUESTS = [
    (_request("application/json", json.dumps({"action": "accept_all"}).encode()), 200),
    (_request("application/x-www-form-urlencoded", b"action=save&categories=analytics"), 303),
]


async def _client(port: int, posts: int, k: int, statuses: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for j in range(posts):
            request, _ = REQUESTS[(k + j) % 2]
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            statuses.append(status)
    finally:
        writer.close()


async def one_round(port: int, posts: int, clients: int) -> tuple[float, list[int]]:
    """Consents answered per second, and the statuses."""
    statuses: list[int] = []
    per_client = [posts // clients + (1 if k < posts % clients else 0) for k in range(clients)]
    started = time.perf_counter()
    await asyncio.gather(*(_client(port, n, k, statuses) for k, n in enumerate(per_client)))
    elapsed = time.perf_counter() - started
    return len(statuses) / elapsed, statuses


async def check_log(url: str, expected: int) -> str:
    async with open_store(url, create=False) as store:
        result = await store.verify()
    if not result.ok or result.records != expected:
        raise SystemExit(f"log check FAILED: {result.records} records (expected {expected})")
    return f"{result.records} records, chain verifies"


def measure(url: str, workers: int, args: argparse.Namespace) -> tuple[float, list[float], str]:
    with Server(url, workers=workers) as server:
        answered = 0
        rates: list[float] = []
        for r in range(args.rounds + 1):  # round 0 warms up both workers and the store
            rate, statuses = asyncio.run(one_round(server.port, args.posts, args.clients))
            bad = [s for s in statuses if s not in (200, 303)]
            if bad:
                raise SystemExit(f"{len(bad)} posts answered {sorted(set(bad))}")
            answered += len(statuses)
            if r:
                rates.append(rate)
    check = asyncio.run(check_log(url, answered))
    return statistics.median(rates), rates, check


def drop_schema(base: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--postgres", default=os.environ.get(PG_ENV), metavar="URL")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--posts", type=int, default=3000, help="consents per round")
    ap.add_argument("--clients", type=int, default=64, help="concurrent connections")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()

    command = "python bench/bench_endpoint.py " + " ".join(redact_url(a) for a in sys.argv[1:])
    print(f"`{command.strip()}`  ")
    print(
        f"{os.cpu_count()} CPU(s), shared by the server workers and the client; "
        f"{args.clients} keep-alive clients, {args.posts} consents per round, "
        f"median of {args.rounds} rounds after one warm-up round.\n"
    )
    print("| log | workers | durable consents/s (median) | rounds | log check |")
    print("|---|--:|--:|---|---|")
    stores: list[tuple[str, str | None]] = [("SQLite", None)]
    if args.postgres:
        stores.append(("PostgreSQL", args.postgres))
    for name, pg in stores:
        for workers in args.workers:
            with tempfile.TemporaryDirectory() as tmp:
                schema = f"consent_bench_{os.getpid()}_{secrets.token_hex(3)}"
                if pg is None:
                    url = f"sqlite:///{tmp}/consent.db"
                else:
                    url = pg + ("&" if "?" in pg else "?") + f"schema={schema}"
                try:
                    median, rates, check = measure(url, workers, args)
                finally:
                    if pg is not None:
                        drop_schema(pg, schema)
            shown = ", ".join(f"{r:,.0f}" for r in rates)
            print(f"| {name} | {workers} | {median:,.0f} | {shown} | {check} |", flush=True)


if __name__ == "__main__":
    main()
