"""Shared test helpers for the consent log tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

from consent.log import LogEntry

PG_ENV = "CONSENT_TEST_POSTGRES_URL"
BASE_TIME = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TEXTS = "ab" * 32


def make_entry(i: int = 0, **overrides: Any) -> LogEntry:
    """A valid entry; ``i`` varies the consent id and the time (one minute apart)."""
    fields: dict[str, Any] = {
        "time": BASE_TIME + timedelta(minutes=i),
        "consent_id": f"visitor-{i:06d}",
        "action": "save",
        "source": "banner",
        "granted": ("analytics", "necessary"),
        "denied": ("marketing",),
        "revision": 1,
        "texts_hash": TEXTS,
        "locale": "en",
        "browser": "firefox",
        "ip": None,
    }
    fields.update(overrides)
    return LogEntry(**fields)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique_schema() -> str:
    # Unique per test and per run, so parallel runs on one database never meet.
    return f"consent_test_{os.getpid()}_{secrets.token_hex(4)}"


def with_params(url: str, **params: str) -> str:
    sep = "&" if "?" in url else "?"
    return url + sep + "&".join(f"{k}={v}" for k, v in params.items())


def drop_schema(base_url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


class TcpProxy:
    """Forwards a local port to a real server; ``stop()`` makes the server "go down"."""

    def __init__(self, target_host: str, target_port: int, port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.port = port or free_port()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for w in list(self._writers):
            w.transport.abort()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        for src, dst in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            self._writers.discard(dst)
            with contextlib.suppress(Exception):
                dst.transport.abort()
