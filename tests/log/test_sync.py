"""SyncLogStore: blocking appends from many threads, as under WSGI."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from consent.errors import LogUnavailable
from consent.log import SyncLogStore, open_store

from ._helpers import TEXTS, make_entry


def test_threads_append_into_one_chain(sqlite_url: str) -> None:
    sync = SyncLogStore(open_store(sqlite_url))
    sync.open()
    try:
        sync.put_texts_sync(TEXTS, "{}")
        with ThreadPoolExecutor(8) as pool:
            records = list(pool.map(lambda i: sync.append_sync(make_entry(i)), range(400)))
    finally:
        sync.close()
    assert sorted(r.seq for r in records) == list(range(1, 401))

    async def check() -> tuple[bool, int]:
        async with open_store(sqlite_url) as store:
            result = await store.verify()
            return result.ok, result.records

    assert asyncio.run(check()) == (True, 400)


def test_append_before_open_raises() -> None:
    with pytest.raises(LogUnavailable):
        SyncLogStore(open_store("memory://")).append_sync(make_entry())


def test_open_failure_is_raised_and_leaves_no_thread(tmp_path: object) -> None:
    sync = SyncLogStore(open_store(f"sqlite:///{tmp_path}/missing/dir/log.db"))
    with pytest.raises(LogUnavailable):
        sync.open()
    with pytest.raises(LogUnavailable):
        sync.append_sync(make_entry())
