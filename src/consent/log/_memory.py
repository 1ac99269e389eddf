"""An in-process log for tests and demos: nothing survives the process."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from datetime import UTC, datetime

from ..errors import LogUnavailable
from ._base import (
    Checkpoint,
    PurgeResult,
    StoreBase,
    check_entries,
    check_texts,
    default_writer,
)
from ._model import (
    GENESIS,
    ChainVerifier,
    ConsentRecord,
    LogEntry,
    Row,
    VerifyResult,
    format_time,
    seal,
)

__all__ = ["MemoryStore"]


class MemoryStore(StoreBase):
    """Keeps the chain in a list. Appends are synchronous under the hood, so
    they are trivially serialized and "committed" when they return."""

    def __init__(self, *, writer: str | None = None) -> None:
        self.url = "memory://"
        self._writer = writer
        self._rows: list[Row] = []
        self._texts: dict[str, str] = {}
        self._checkpoints: list[Checkpoint] = []
        self._open = False

    async def open(self) -> None:
        if self._writer is None:
            self._writer = default_writer()
        self._open = True

    async def close(self) -> None:
        self._open = False

    def _check_open(self) -> str:
        if not self._open or self._writer is None:
            raise LogUnavailable(f"consent log {self.url} is not open")
        return self._writer

    def _tail(self) -> tuple[int, str]:
        if self._rows:
            return self._rows[-1][0], self._rows[-1][14]
        if self._checkpoints:
            return self._checkpoints[-1].seq, self._checkpoints[-1].hash
        return 0, GENESIS

    async def append(self, entry: LogEntry) -> ConsentRecord:
        writer = self._check_open()
        (row,) = seal([entry], *self._tail(), writer)
        self._rows.append(row)
        return ConsentRecord.from_row(row)

    async def append_many(self, entries: Sequence[LogEntry]) -> list[ConsentRecord]:
        writer = self._check_open()
        # Sealed in full before the list changes: a failure leaves none of them.
        rows = seal(check_entries(entries), *self._tail(), writer)
        self._rows.extend(rows)
        return [ConsentRecord.from_row(row) for row in rows]

    async def put_texts(self, texts_hash: str, texts_json: str) -> None:
        self._check_open()
        check_texts(texts_hash, texts_json)
        self._texts.setdefault(texts_hash, texts_json)

    async def get_texts(self, texts_hash: str) -> str | None:
        self._check_open()
        return self._texts.get(texts_hash)

    async def rows(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> AsyncGenerator[Row, None]:
        self._check_open()
        lo = format_time(since) if since else None
        hi = format_time(until) if until else None
        for row in list(self._rows):
            if (lo is None or row[1] >= lo) and (hi is None or row[1] < hi):
                yield row

    async def history(self, consent_id: str) -> list[ConsentRecord]:
        self._check_open()
        return [ConsentRecord.from_row(r) for r in self._rows if r[2] == consent_id]

    async def checkpoint(self) -> Checkpoint | None:
        self._check_open()
        return self._checkpoints[-1] if self._checkpoints else None

    async def missing_texts(self) -> list[str]:
        self._check_open()
        return sorted({r[8] for r in self._rows} - self._texts.keys())

    async def verify(self) -> VerifyResult:
        self._check_open()
        cp = self._checkpoints[-1] if self._checkpoints else None
        verifier = ChainVerifier(cp.seq, cp.hash) if cp else ChainVerifier()
        verifier.feed(self._rows)
        return verifier.result()

    async def purge(self, before: datetime) -> PurgeResult:
        self._check_open()
        limit = format_time(before)
        # Only a prefix can go, or the chain would have a hole: stop at the first
        # record that is not old enough, even if a later one (clock skew between
        # writers) is.
        n = 0
        while n < len(self._rows) and self._rows[n][1] < limit:
            n += 1
        if n == 0:
            return PurgeResult(0, None)
        last = self._rows[n - 1]
        cp = Checkpoint(last[0], last[14], format_time(datetime.now(UTC)), limit, n)
        del self._rows[:n]
        self._checkpoints.append(cp)
        return PurgeResult(n, cp)
