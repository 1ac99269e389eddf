"""Blocking calls into async stores, for the WSGI middleware."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from ..errors import LogUnavailable
from ._base import LogStore
from ._model import ConsentRecord, LogEntry

__all__ = ["LoopThread", "SyncLogStore"]

T = TypeVar("T")


class LoopThread:
    """An event loop in a background thread that runs coroutines for blocking callers.

    WSGI worker threads call :meth:`run` concurrently; their coroutines meet on the
    one loop, so a store's group commit batches them as it does under ASGI.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop (started on first use) and wait for its result.

        Raises :class:`LogUnavailable` when it takes longer than ``timeout``.
        """
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="consent-log-loop", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            loop = self._loop
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(timeout)
        except TimeoutError as exc:
            future.cancel()
            raise LogUnavailable("the consent log did not answer in time") from exc

    def stop(self) -> None:
        """Stop the loop and its thread (a later :meth:`run` starts them again)."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()


class SyncLogStore:
    """Runs ``store`` on an event loop in a background thread (a :class:`LoopThread`)."""

    def __init__(self, store: LogStore) -> None:
        self.store = store
        self._loop: LoopThread | None = None

    def open(self) -> None:
        """Start the loop thread and open the store (raises what ``open`` raises)."""
        if self._loop is not None:
            return
        self._loop = LoopThread()
        try:
            self._loop.run(self.store.open())
        except BaseException:
            self._stop()
            raise

    def close(self) -> None:
        """Close the store and stop the loop thread."""
        if self._loop is None:
            return
        try:
            self._loop.run(self.store.close())
        finally:
            self._stop()

    def append_sync(self, entry: LogEntry, timeout: float | None = None) -> ConsentRecord:
        """Blocking :meth:`LogStore.append`."""
        return self._call(self.store.append(entry), timeout)

    def append_many_sync(
        self, entries: Sequence[LogEntry], timeout: float | None = None
    ) -> list[ConsentRecord]:
        """Blocking :meth:`LogStore.append_many`."""
        return self._call(self.store.append_many(entries), timeout)

    def put_texts_sync(
        self, texts_hash: str, texts_json: str, timeout: float | None = None
    ) -> None:
        """Blocking :meth:`LogStore.put_texts`."""
        self._call(self.store.put_texts(texts_hash, texts_json), timeout)

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        if self._loop is None:
            coro.close()
            raise LogUnavailable("the consent log is not open")
        return self._loop.run(coro, timeout)

    def _stop(self) -> None:
        loop, self._loop = self._loop, None
        if loop is not None:
            loop.stop()
