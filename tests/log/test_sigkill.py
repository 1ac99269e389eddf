"""SIGKILL a real server mid-load: every acknowledged consent is in the log."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from consent.log import open_store

from ._helpers import free_port

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 30
KILL_AFTER = 300  # acknowledged records


class Load:
    def __init__(self, port: int) -> None:
        self.port = port
        self.acked: list[str] = []
        self.lost_in_flight = 0  # sent, then the connection died without an answer

    async def request(self, method: str, body: bytes = b"") -> int | None:
        """The status code, or ``None`` if the server died after the request was sent."""
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        try:
            writer.write(
                f"{method} /consent HTTP/1.1\r\nhost: test\r\ncontent-length: {len(body)}\r\n"
                "connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
            data = await reader.read()
        except OSError:
            return None
        finally:
            writer.close()
        return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else None

    async def worker(self, k: int) -> None:
        for j in range(1_000_000):
            consent_id = f"w{k}-{j}"
            try:
                status = await self.request("POST", consent_id.encode())
            except OSError:  # connection refused: the server is gone
                return
            if status == 200:
                self.acked.append(consent_id)
            elif status is None:
                self.lost_in_flight += 1
                return


async def _wait_ready(load: Load, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited before it was ready"
        try:
            if await load.request("GET") == 200:
                return
        except OSError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("the server did not start")


async def test_sigkill_loses_no_acknowledged_consent(durable_url: str) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "tests.log.sigkill_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--lifespan",
            "on",
        ],
        cwd=ROOT,
        env={**os.environ, "CONSENT_TEST_LOG": durable_url},
    )
    try:
        load = Load(port)
        await _wait_ready(load, proc)
        workers = [asyncio.create_task(load.worker(k)) for k in range(WORKERS)]
        deadline = time.monotonic() + 60
        while len(load.acked) < KILL_AFTER:
            assert time.monotonic() < deadline, f"only {len(load.acked)} acknowledged"
            await asyncio.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        await asyncio.wait_for(asyncio.gather(*workers), timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    # The kill really happened mid-load: requests were in flight and got no answer.
    assert load.lost_in_flight > 0
    async with open_store(durable_url) as store:
        logged = {row[2] async for row in store.rows()}
        result = await store.verify()
    missing = set(load.acked) - logged
    assert not missing, f"{len(missing)} acknowledged consents are not in the log"
    assert result.ok, result.broken
    assert result.records == len(logged) >= len(load.acked)
