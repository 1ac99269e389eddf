"""The store protocol and what the stores share."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

from ..errors import ConsentError
from ._model import ConsentRecord, LogEntry, Row, VerifyResult

__all__ = ["Checkpoint", "LogStore", "LogURLError", "PurgeResult", "StoreBase", "default_writer"]


class LogURLError(ConsentError, ValueError):
    """The consent log URL is invalid, or the backend it names is not installed."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Left behind by :meth:`LogStore.purge`: the last removed record's seq and hash.

    The first remaining record must carry ``seq + 1`` and ``prev_hash == hash``,
    so the shortened log still verifies.
    """

    seq: int
    hash: str
    purged_at: str
    before: str
    removed: int


@dataclass(frozen=True, slots=True)
class PurgeResult:
    """What :meth:`LogStore.purge` did; ``checkpoint`` is ``None`` if nothing was old enough."""

    removed: int
    checkpoint: Checkpoint | None


@runtime_checkable
class LogStore(Protocol):
    """An append-only, hash-chained consent log.

    Stores are asyncio-only. ``append`` and ``put_texts`` return once the data is
    committed durably; they raise :class:`~consent.errors.LogUnavailable` while
    the store is down and work again by themselves once it is back.
    There is deliberately no way to change or delete a single record:
    a withdrawal is a new record, and :meth:`purge` only cuts the oldest ones.
    """

    #: The store's URL with any password masked, for messages.
    url: str

    async def open(self) -> None: ...
    async def close(self) -> None: ...
    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def append(self, entry: LogEntry) -> ConsentRecord:
        """Record ``entry``; returns the committed record."""
        ...

    async def put_texts(self, texts_hash: str, texts_json: str) -> None:
        """Archive the texts bundle a visitor was shown (stored once per hash)."""
        ...

    async def get_texts(self, texts_hash: str) -> str | None:
        """The archived texts bundle for ``texts_hash``, or ``None``."""
        ...

    def rows(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> AsyncGenerator[Row, None]:
        """Stored rows in ``seq`` order, ``since <= time < until``; streamed."""
        ...

    def records(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> AsyncGenerator[ConsentRecord, None]:
        """Like :meth:`rows`, as :class:`ConsentRecord` objects."""
        ...

    async def history(self, consent_id: str) -> list[ConsentRecord]:
        """Every record of one visitor, oldest first."""
        ...

    async def checkpoint(self) -> Checkpoint | None:
        """The latest purge checkpoint, if the log was ever purged."""
        ...

    async def missing_texts(self) -> list[str]:
        """Texts hashes that records refer to but :meth:`put_texts` never stored."""
        ...

    async def verify(self) -> VerifyResult:
        """Recompute the whole chain, streaming, in constant memory."""
        ...

    async def purge(self, before: datetime) -> PurgeResult:
        """Remove the oldest records, all older than ``before``, leaving a checkpoint."""
        ...


class StoreBase:
    """Shared conveniences; each store implements the protocol's methods."""

    url: str

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def rows(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> AsyncGenerator[Row, None]:
        raise NotImplementedError

    async def records(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> AsyncGenerator[ConsentRecord, None]:
        async for row in self.rows(since, until):
            yield ConsentRecord.from_row(row)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


_PRINTABLE = re.compile(r"[^\x21-\x7e]")


def default_writer() -> str:
    """``host:pid``, taken when the store opens (so a forked worker gets its own)."""
    host = _PRINTABLE.sub("", socket.gethostname())[:100] or "host"
    return f"{host}:{os.getpid()}"


def check_texts(texts_hash: str, texts_json: str) -> None:
    if not re.fullmatch(r"[0-9a-f]{64}", texts_hash):
        raise ValueError("texts_hash must be a lowercase sha256 hex digest")
    if not isinstance(texts_json, str):
        raise ValueError("texts_json must be a str")
