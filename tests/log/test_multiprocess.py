"""Two real processes writing one log still produce one chain that verifies."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from pathlib import Path

import pytest

from consent.log import open_store

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
N = 400


async def test_two_processes_one_chain(durable_url: str) -> None:
    # Create the schema first, as an app's startup would; the writers race on appends.
    async with open_store(durable_url):
        pass
    start_at = time.time() + 1.5
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.log._writer",
                durable_url,
                name,
                other,
                str(N),
                str(start_at),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, other in (("a", "b"), ("b", "a"))
    ]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert out.strip() == str(N)
    async with open_store(durable_url) as store:
        rows = [row async for row in store.rows()]
        result = await store.verify()
    assert result.ok, result.broken
    assert result.records == 2 * N
    assert {row[2] for row in rows} == {f"{w}-{i}" for w in "ab" for i in range(N)}
    writers = [row[12] for row in rows]
    assert len(set(writers)) == 2
    # Interleaved, not one process after the other (each waits, after its first
    # wave, for the other's first record; so at least two switches).
    switches = sum(1 for x, y in itertools.pairwise(writers) if x != y)
    assert switches > 1, switches
