"""Consent log throughput: durable appends per second, and verify time.

Run: ``.venv/bin/python bench/bench_log.py``
(``--postgres URL`` or ``CONSENT_TEST_POSTGRES_URL`` adds PostgreSQL;
``--rounds``, ``--appends``, ``--writers``, ``--verify-records`` change the sizes).

Appends: ``--writers`` concurrent tasks share ``--appends`` appends on a fresh
log; every append returns only after its transaction committed (SQLite WAL with
synchronous=FULL; PostgreSQL with its default synchronous_commit=on), so the
figure is *durable* appends per second, group commit included. One writer alone
is shown too: that is the cost of one commit. Verify: a log of
``--verify-records`` records is written once (in bulk, outside the store, to
save time) and ``store.verify()`` is timed. Figures are medians over rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import secrets
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from consent.log import COLUMNS, GENESIS, LogEntry, open_store, seal

BASE = datetime(2024, 1, 1, tzinfo=UTC)


def entry(i: int) -> LogEntry:
    return LogEntry(
        time=BASE + timedelta(seconds=i),
        consent_id=f"{i:022d}",
        action="save",
        source="banner",
        granted=("analytics", "necessary"),
        denied=("marketing",),
        revision=3,
        texts_hash="ab" * 32,
        locale="en",
        browser="firefox",
        ip="203.0.113.0",
    )


async def appends_per_second(url: str, total: int, writers: int) -> float:
    async with open_store(url) as store:
        await store.append(entry(0))  # schema and connections warm
        per_writer = total // writers

        async def writer(w: int) -> None:
            for i in range(per_writer):
                await store.append(entry(w * per_writer + i))

        started = time.perf_counter()
        await asyncio.gather(*(writer(w) for w in range(writers)))
        elapsed = time.perf_counter() - started
        result = await store.verify()
        assert result.ok and result.records == per_writer * writers + 1
    return per_writer * writers / elapsed


async def verify_seconds(url: str) -> tuple[float, int]:
    async with open_store(url) as store:
        started = time.perf_counter()
        result = await store.verify()
        elapsed = time.perf_counter() - started
    assert result.ok, result.broken
    return elapsed, result.records


def bulk_rows(n: int, chunk: int = 50_000) -> list[list[tuple[object, ...]]]:
    out, seq, prev = [], 0, GENESIS
    for start in range(0, n, chunk):
        rows = seal([entry(i) for i in range(start, min(n, start + chunk))], seq, prev, "bench:1")
        seq, prev = rows[-1][0], rows[-1][14]
        out.append(rows)
    return out  # type: ignore[return-value]


async def build_sqlite(url: str, chunks: list[list[tuple[object, ...]]]) -> None:
    async with open_store(url):
        pass
    conn = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    conn.execute("BEGIN")
    for rows in chunks:
        conn.executemany(
            f"INSERT INTO consent_log ({', '.join(COLUMNS)}) VALUES "
            f"({', '.join('?' * len(COLUMNS))})",
            rows,
        )
    conn.execute("COMMIT")
    conn.close()


async def build_postgres(
    url: str, base: str, schema: str, chunks: list[list[tuple[object, ...]]]
) -> None:
    import psycopg

    async with open_store(url):
        pass
    async with await psycopg.AsyncConnection.connect(base) as conn:
        async with (
            conn.cursor() as cur,
            cur.copy(f'COPY "{schema}".consent_log ({", ".join(COLUMNS)}) FROM STDIN') as copy,
        ):
            for rows in chunks:
                for row in rows:
                    await copy.write_row(row)
        await conn.commit()


def drop_schema(base: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def median_of(rounds: int, fn: Callable[[], float]) -> tuple[float, list[float]]:
    samples = [fn() for _ in range(rounds)]
    return statistics.median(samples), samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--appends", type=int, default=5000)
    parser.add_argument("--writers", type=int, default=100, help="concurrent appending tasks")
    parser.add_argument("--verify-records", type=int, default=1_000_000)
    parser.add_argument("--postgres", default=os.environ.get("CONSENT_TEST_POSTGRES_URL"))
    parser.add_argument(
        "--dir", default=None, help="where the SQLite files go (default: a temp dir)"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        counter = iter(range(1_000_000))

        def sqlite_url() -> str:
            return f"sqlite:///{Path(tmp).resolve() / f'bench-{next(counter)}.db'}"

        print(f"durable appends/s, {args.appends} appends, median of {args.rounds} rounds")
        for writers in (args.writers, 1):
            n = args.appends if writers > 1 else max(200, args.appends // 20)
            med, samples = median_of(
                args.rounds,
                lambda w=writers, n=n: asyncio.run(appends_per_second(sqlite_url(), n, w)),
            )
            print(
                f"  sqlite     {writers:4d} writer(s): {med:9.0f}/s   {[round(s) for s in samples]}"
            )
        pg_runs: list[str] = []
        if args.postgres:
            for writers in (args.writers, 1):
                n = args.appends if writers > 1 else max(200, args.appends // 20)

                def pg_round(w: int = writers, n: int = n) -> float:
                    schema = f"consent_bench_{secrets.token_hex(4)}"
                    pg_runs.append(schema)
                    url = f"{args.postgres}{'&' if '?' in args.postgres else '?'}schema={schema}"
                    try:
                        return asyncio.run(appends_per_second(url, n, w))
                    finally:
                        drop_schema(args.postgres, schema)

                med, samples = median_of(args.rounds, pg_round)
                print(
                    f"  postgresql {writers:4d} writer(s): {med:9.0f}/s   {[round(s) for s in samples]}"
                )
        else:
            print("  postgresql: skipped (no --postgres URL or CONSENT_TEST_POSTGRES_URL)")

        n = args.verify_records
        print(f"verify {n} records, median of {args.rounds} rounds")
        chunks = bulk_rows(n)
        url = sqlite_url()
        asyncio.run(build_sqlite(url, chunks))
        schema = f"consent_bench_{secrets.token_hex(4)}"
        purl = ""
        if args.postgres:
            purl = f"{args.postgres}{'&' if '?' in args.postgres else '?'}schema={schema}"
            asyncio.run(build_postgres(purl, args.postgres, schema, chunks))
        # A million rows kept alive would make every GC pass crawl over them and
        # slow verify down by half: time it with the heap an auditor's CLI has.
        del chunks
        gc.collect()
        try:
            med, samples = median_of(args.rounds, lambda: asyncio.run(verify_seconds(url))[0])
            print(f"  sqlite    : {med:6.2f} s  ({n / med:,.0f} records/s)  {_r(samples)}")
            if purl:
                med, samples = median_of(args.rounds, lambda: asyncio.run(verify_seconds(purl))[0])
                print(f"  postgresql: {med:6.2f} s  ({n / med:,.0f} records/s)  {_r(samples)}")
        finally:
            if purl:
                drop_schema(args.postgres, schema)


def _r(samples: list[float]) -> list[float]:
    return [round(s, 2) for s in samples]


if __name__ == "__main__":
    main()
