"""A blocking facade over an async store, for the WSGI middleware."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from ..errors import LogUnavailable
from ._base import LogStore
from ._model import ConsentRecord, LogEntry

__all__ = ["SyncLogStore"]

T = TypeVar("T")


class SyncLogStore:
    """Runs ``store`` on an event loop in a background thread.

    WSGI worker threads call :meth:`append_sync` concurrently; the appends meet
    on the one loop, so the store's group commit batches them as it does under
    ASGI.
    """

    def __init__(self, store: LogStore) -> None:
        self.store = store
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def open(self) -> None:
        """Start the loop thread and open the store (raises what ``open`` raises)."""
        if self._thread is not None:
            return
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="consent-log-loop", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread
        try:
            self._call(self.store.open())
        except BaseException:
            self._stop()
            raise

    def close(self) -> None:
        """Close the store and stop the loop thread."""
        if self._thread is None:
            return
        try:
            self._call(self.store.close())
        finally:
            self._stop()

    def append_sync(self, entry: LogEntry, timeout: float | None = None) -> ConsentRecord:
        """Blocking :meth:`LogStore.append`."""
        return self._call(self.store.append(entry), timeout)

    def put_texts_sync(
        self, texts_hash: str, texts_json: str, timeout: float | None = None
    ) -> None:
        """Blocking :meth:`LogStore.put_texts`."""
        self._call(self.store.put_texts(texts_hash, texts_json), timeout)

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        if self._loop is None:
            coro.close()
            raise LogUnavailable("the consent log is not open")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError as exc:
            future.cancel()
            raise LogUnavailable("the consent log did not answer in time") from exc

    def _stop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()
