"""Two processes opening a new SQLite log at the same moment both get it.

Seen as one 503 among 1,000 consents when two workers started together: switching a
new file to WAL reported "database is locked" at once, without waiting out the busy
timeout. Before the fix about 7 % of such opens failed, so 30 rounds (60 opens)
would pass by chance about once in a hundred runs.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from multiprocessing.synchronize import Barrier
from pathlib import Path

from consent.log import open_store


def _open_at_once(url: str, barrier: Barrier, results: multiprocessing.Queue[str]) -> None:
    async def go() -> str:
        store = open_store(url)
        barrier.wait()
        try:
            await store.open()
            await store.close()
        except Exception as exc:  # reported to the test
            return repr(exc)
        return "ok"

    results.put(asyncio.run(go()))


def test_two_processes_open_a_new_log_at_once(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    failures: list[str] = []
    for i in range(30):
        url = f"sqlite:///{tmp_path / f'log{i}.db'}"
        barrier = ctx.Barrier(2)
        results: multiprocessing.Queue[str] = ctx.Queue()
        procs = [ctx.Process(target=_open_at_once, args=(url, barrier, results)) for _ in range(2)]
        for p in procs:
            p.start()
        outcomes = [results.get(timeout=30) for _ in procs]
        for p in procs:
            p.join(timeout=30)
        failures += [o for o in outcomes if o != "ok"]
    assert failures == []
