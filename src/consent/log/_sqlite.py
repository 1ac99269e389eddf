"""The SQLite store: the default, one machine, any number of processes.

One writer thread per store owns the writing connection, so the event loop
never waits on disk. It drains every request queued while the previous
transaction was committing into one ``BEGIN IMMEDIATE`` … ``COMMIT`` (group
commit): one fsync for the whole batch, and each caller is answered only after
that commit. ``BEGIN IMMEDIATE`` takes SQLite's single write lock, and the tail
hash is read inside that transaction, so several processes sharing the file
still extend one unbroken chain.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import LogUnavailable
from ._base import (
    Checkpoint,
    PurgeResult,
    QueuedStore,
    default_writer,
)
from ._model import (
    COLUMNS,
    GENESIS,
    ChainVerifier,
    ConsentRecord,
    Row,
    VerifyResult,
    format_time,
    seal,
)

__all__ = ["SQLiteStore"]

_COLS = ", ".join(COLUMNS)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS consent_log (
    seq INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    consent_id TEXT NOT NULL,
    action TEXT NOT NULL,
    source TEXT NOT NULL,
    granted TEXT NOT NULL,
    denied TEXT NOT NULL,
    revision INTEGER NOT NULL,
    texts_hash TEXT NOT NULL,
    locale TEXT NOT NULL,
    browser TEXT NOT NULL,
    ip TEXT,
    writer TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS consent_log_consent_id ON consent_log (consent_id);
CREATE INDEX IF NOT EXISTS consent_log_time ON consent_log (time);
CREATE TABLE IF NOT EXISTS consent_texts (
    texts_hash TEXT PRIMARY KEY,
    texts_json TEXT NOT NULL,
    stored_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS consent_checkpoints (
    seq INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    purged_at TEXT NOT NULL,
    before TEXT NOT NULL,
    removed INTEGER NOT NULL
);
-- Guards against accidents (an admin's UPDATE), not against an attacker with
-- write access to the file: that is what the hash chain is for.
CREATE TRIGGER IF NOT EXISTS consent_log_append_only BEFORE UPDATE ON consent_log
BEGIN SELECT RAISE(ABORT, 'the consent log is append-only'); END;
"""
_INSERT = f"INSERT INTO consent_log ({_COLS}) VALUES ({', '.join('?' * len(COLUMNS))})"
_TAIL = "SELECT seq, hash FROM consent_log ORDER BY seq DESC LIMIT 1"
_LAST_CHECKPOINT = (
    "SELECT seq, hash, purged_at, before, removed FROM consent_checkpoints "
    "ORDER BY seq DESC LIMIT 1"
)
_MAX_BATCH = 2000
_FETCH = 5000


@dataclass(slots=True)
class _Op:
    kind: str  # "append" (args: a tuple of LogEntry) | "texts" | "purge"
    args: Any
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any] = field(init=False)

    def __post_init__(self) -> None:
        self.future = self.loop.create_future()

    def settle(self, result: Any = None, error: BaseException | None = None) -> None:
        def _set() -> None:
            if self.future.done():  # the caller was cancelled; the record still counts
                return
            if error is not None:
                self.future.set_exception(error)
            else:
                self.future.set_result(result)

        # The loop may already be gone (the caller's process is shutting down).
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(_set)


_STOP = object()


class SQLiteStore(QueuedStore):
    """``sqlite:///relative.db`` or ``sqlite:////absolute/path.db``.

    ``timeout`` is how long a write waits for another process's lock before the
    append fails with :class:`~consent.errors.LogUnavailable`.
    ``create=False`` refuses to create a missing log (used by the audit CLI).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        create: bool = True,
        timeout: float = 5.0,
        writer: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.url = f"sqlite:///{path}"
        self._create = create
        self._timeout = timeout
        self._writer = writer
        self._queue: queue.SimpleQueue[_Op | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    # --- connections ------------------------------------------------------------------

    def _unavailable(self, exc: BaseException) -> LogUnavailable:
        return LogUnavailable(f"consent log {self.url} unavailable: {exc}")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        try:
            # WAL: readers (audits, exports) never block appends. FULL: a commit
            # is on disk when COMMIT returns, which is what "acknowledged" means.
            self._retry_locked(conn, "PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _retry_locked(self, conn: sqlite3.Connection, sql: str) -> None:
        """Run ``sql``, retrying while another process holds the lock it needs.

        Switching a new file to WAL takes an exclusive lock, and SQLite reports
        "database is locked" at once, without waiting out the busy timeout, when
        another process is switching or creating at the same moment (two workers
        starting together). Retried for up to the store's timeout.
        """
        deadline = time.monotonic() + self._timeout
        pause = 0.002
        while True:
            try:
                conn.execute(sql)
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _reader(self) -> sqlite3.Connection:
        if not self.path.exists():
            raise LogUnavailable(f"consent log {self.url} not found (no such file)")
        try:
            conn = sqlite3.connect(
                f"{self.path.resolve().as_uri()}?mode=ro",
                uri=True,
                timeout=self._timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc
        return conn

    def _init(self) -> None:
        if not self._create:
            conn = self._reader()
            try:
                found = conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type='table' AND name='consent_log'"
                ).fetchone()
            except sqlite3.Error as exc:
                raise LogUnavailable(f"{self.url} is not a consent log: {exc}") from exc
            finally:
                conn.close()
            if found is None:
                raise LogUnavailable(f"{self.url} is not a consent log (no consent_log table)")
            return
        if not self.path.parent.is_dir():
            raise LogUnavailable(f"consent log {self.url}: directory {self.path.parent} not found")
        try:
            conn = self._connect()
            try:
                # IMMEDIATE: two processes starting together create the schema once.
                conn.executescript(f"BEGIN IMMEDIATE;{_SCHEMA}COMMIT;")
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc

    async def open(self) -> None:
        if self._thread is not None:
            return
        await asyncio.to_thread(self._init)
        if self._writer is None:
            self._writer = default_writer()
        self._queue = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._run, args=(self._queue, self._writer), name="consent-log-sqlite"
        )
        # daemon: a process that exits without close() must not hang; nothing is
        # lost, as no caller was answered before its commit.
        self._thread.daemon = True
        self._thread.start()

    async def close(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            await asyncio.to_thread(thread.join)

    # --- the writer thread ------------------------------------------------------------

    def _run(self, q: queue.SimpleQueue[_Op | object], writer: str) -> None:
        conn: sqlite3.Connection | None = None
        stop = False
        while not stop:
            first = q.get()
            if first is _STOP:
                break
            assert isinstance(first, _Op)
            batch = [first]
            # Everything that queued up during the last commit goes in this one.
            while len(batch) < _MAX_BATCH:
                try:
                    item = q.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                    break
                assert isinstance(item, _Op)
                batch.append(item)
            try:
                if conn is None:
                    conn = self._connect()
                results = self._commit(conn, batch, writer)
            except Exception as exc:  # every failure becomes LogUnavailable for every caller
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
                # A fresh connection next time: this is how the store recovers.
                conn = None
                error = self._unavailable(exc)
                for op in batch:
                    op.settle(error=error)
            else:
                for op, result in zip(batch, results, strict=True):
                    op.settle(result)
        if conn is not None:
            conn.close()
        # An append that raced with close() must not wait forever.
        closed = LogUnavailable(f"consent log {self.url} is closed")
        while True:
            try:
                item = q.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, _Op):
                item.settle(error=closed)

    def _commit(self, conn: sqlite3.Connection, batch: list[_Op], writer: str) -> list[Any]:
        results: list[Any] = [None] * len(batch)
        conn.execute("BEGIN IMMEDIATE")
        try:
            texts = [op.args for op in batch if op.kind == "texts"]
            if texts:
                now = format_time(datetime.now(UTC))
                conn.executemany(
                    "INSERT OR IGNORE INTO consent_texts VALUES (?, ?, ?)",
                    [(h, j, now) for h, j in texts],
                )
            appends = [i for i, op in enumerate(batch) if op.kind == "append"]
            if appends:
                # Every caller's entries, in order, in one chain: a caller's own
                # entries (one decision) get consecutive seqs.
                entries = [entry for i in appends for entry in batch[i].args]
                rows = seal(entries, *self._tail(conn), writer)
                conn.executemany(_INSERT, rows)
                at = 0
                for i in appends:
                    n = len(batch[i].args)
                    results[i] = rows[at : at + n]
                    at += n
            for i, op in enumerate(batch):
                if op.kind == "purge":
                    results[i] = self._purge(conn, op.args)
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        # Records are built once the write lock is released.
        return [
            [ConsentRecord.from_row(r) for r in x] if isinstance(x, list) else x for x in results
        ]

    @staticmethod
    def _tail(conn: sqlite3.Connection) -> tuple[int, str]:
        tail = conn.execute(_TAIL).fetchone() or conn.execute(_LAST_CHECKPOINT).fetchone()
        return (int(tail[0]), str(tail[1])) if tail else (0, GENESIS)

    @staticmethod
    def _purge(conn: sqlite3.Connection, before: str) -> PurgeResult:
        # Only a prefix of the chain can go: cut before the first record that is
        # recent enough, even if a later one is older (clock skew between writers).
        keep = conn.execute("SELECT min(seq) FROM consent_log WHERE time >= ?", (before,))
        first_kept = keep.fetchone()[0]
        if first_kept is None:
            last = conn.execute(_TAIL).fetchone()
        else:
            last = conn.execute(
                "SELECT seq, hash FROM consent_log WHERE seq < ? ORDER BY seq DESC LIMIT 1",
                (first_kept,),
            ).fetchone()
        if last is None:
            return PurgeResult(0, None)
        removed = conn.execute("DELETE FROM consent_log WHERE seq <= ?", (last[0],)).rowcount
        cp = Checkpoint(last[0], last[1], format_time(datetime.now(UTC)), before, removed)
        conn.execute(
            "INSERT INTO consent_checkpoints VALUES (?, ?, ?, ?, ?)",
            (cp.seq, cp.hash, cp.purged_at, cp.before, cp.removed),
        )
        return PurgeResult(removed, cp)

    async def _submit(self, kind: str, args: Any) -> Any:
        if self._thread is None:
            raise LogUnavailable(f"consent log {self.url} is not open")
        op = _Op(kind, args, asyncio.get_running_loop())
        self._queue.put(op)
        return await op.future

    # --- writing ------------------------------------------------------------------------

    async def purge(self, before: datetime) -> PurgeResult:
        result: PurgeResult = await self._submit("purge", format_time(before))
        return result

    # --- reading (own read-only connections; WAL lets them run beside the writer) ------

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        conn = self._reader()
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc
        finally:
            conn.close()

    async def get_texts(self, texts_hash: str) -> str | None:
        found = await asyncio.to_thread(
            self._query, "SELECT texts_json FROM consent_texts WHERE texts_hash = ?", (texts_hash,)
        )
        return str(found[0][0]) if found else None

    async def history(self, consent_id: str) -> list[ConsentRecord]:
        found = await asyncio.to_thread(
            self._query,
            f"SELECT {_COLS} FROM consent_log WHERE consent_id = ? ORDER BY seq",
            (consent_id,),
        )
        return [ConsentRecord.from_row(tuple(r)) for r in found]

    async def checkpoint(self) -> Checkpoint | None:
        found = await asyncio.to_thread(self._query, _LAST_CHECKPOINT)
        return Checkpoint(*found[0]) if found else None

    async def missing_texts(self) -> list[str]:
        found = await asyncio.to_thread(
            self._query,
            "SELECT DISTINCT texts_hash FROM consent_log WHERE texts_hash NOT IN "
            "(SELECT texts_hash FROM consent_texts) ORDER BY texts_hash",
        )
        return [str(r[0]) for r in found]

    async def rows(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> AsyncGenerator[Row, None]:
        where, params = _range(since, until)
        conn = await asyncio.to_thread(self._reader)
        try:
            try:
                cur = await asyncio.to_thread(
                    conn.execute, f"SELECT {_COLS} FROM consent_log{where} ORDER BY seq", params
                )
                while chunk := await asyncio.to_thread(cur.fetchmany, _FETCH):
                    for row in chunk:
                        yield row
            except sqlite3.Error as exc:
                raise self._unavailable(exc) from exc
        finally:
            conn.close()

    async def verify(self) -> VerifyResult:
        return await asyncio.to_thread(self._verify)

    def _verify(self) -> VerifyResult:
        conn = self._reader()
        try:
            # One read transaction: the checkpoint and the rows come from the same
            # snapshot even if a purge commits meanwhile.
            conn.execute("BEGIN")
            cp = conn.execute(_LAST_CHECKPOINT).fetchone()
            verifier = ChainVerifier(cp[0], cp[1]) if cp else ChainVerifier()
            cur = conn.execute(f"SELECT {_COLS} FROM consent_log ORDER BY seq")
            while (chunk := cur.fetchmany(_FETCH)) and verifier.feed(chunk):
                pass
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._unavailable(exc) from exc
        finally:
            conn.close()
        return verifier.result()


def _range(since: datetime | None, until: datetime | None) -> tuple[str, tuple[str, ...]]:
    clauses, params = [], []
    if since is not None:
        clauses.append("time >= ?")
        params.append(format_time(since))
    if until is not None:
        clauses.append("time < ?")
        params.append(format_time(until))
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(params)
