"""A store that goes down raises LogUnavailable, and recovers on its own."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from consent.errors import LogUnavailable
from consent.log import LogStore, open_store

from ._helpers import TcpProxy, free_port, make_entry, with_params

pytestmark = pytest.mark.anyio


async def test_sqlite_locked_by_another_process_then_recovers(sqlite_url: str) -> None:
    async with open_store(with_params(sqlite_url, timeout="0.2")) as store:
        first = await store.append(make_entry(1))
        # Another writer holding the lock for longer than our timeout is the
        # SQLite form of "the database is down" (running as root, chmod would not do).
        blocker = sqlite3.connect(Path(sqlite_url.removeprefix("sqlite:///")), isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(LogUnavailable, match="locked"):
                await store.append(make_entry(2))
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        third = await store.append(make_entry(3))
        assert (third.seq, third.prev_hash) == (2, first.hash)
        assert [r.consent_id async for r in store.records()] == ["visitor-000001", "visitor-000003"]
        assert (await store.verify()).ok


async def test_sqlite_open_in_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(LogUnavailable, match="not found"):
        await open_store(f"sqlite:///{tmp_path}/nope/consent.db").open()


async def test_postgres_closed_port_raises_at_once() -> None:
    store = open_store(f"postgresql://postgres@127.0.0.1:{free_port()}/test?timeout=1")
    started = time.monotonic()
    with pytest.raises(LogUnavailable, match="refused"):
        await store.open()
    assert time.monotonic() - started < 5


async def _append_until_ok(store: LogStore, i: int, deadline: float) -> int:
    failures = 0
    while True:
        try:
            await store.append(make_entry(i))
        except LogUnavailable:
            failures += 1
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
        else:
            return failures


@pytest.mark.postgres
async def test_postgres_down_then_back(pg_url: str) -> None:
    parts = urlsplit(pg_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432)
    await proxy.start()
    via_proxy = pg_url.replace(parts.netloc, f"{parts.username}@127.0.0.1:{proxy.port}")
    store = open_store(with_params(via_proxy, timeout="1"))
    await store.open()
    try:
        await store.append(make_entry(1))
        await proxy.stop()
        with pytest.raises(LogUnavailable):
            await store.append(make_entry(2))
        await proxy.start()
        await _append_until_ok(store, 3, time.monotonic() + 20)
        ids = [r.consent_id async for r in store.records()]
        assert ids == ["visitor-000001", "visitor-000003"]
        assert (await store.verify()).ok
    finally:
        await store.close()
        await proxy.stop()
