"""The store protocol and what the stores share."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import AsyncGenerator, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable
from urllib.parse import unquote, unquote_plus

from ..errors import ConsentError
from ._model import ConsentRecord, LogEntry, Row, VerifyResult

__all__ = [
    "Checkpoint",
    "LogStore",
    "LogURLError",
    "PurgeResult",
    "StoreBase",
    "check_entries",
    "default_writer",
    "redact_secrets",
    "redact_url",
    "url_secrets",
]


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

    Stores are asyncio-only. ``append``, ``append_many`` and ``put_texts`` return
    once the data is committed durably; they raise
    :class:`~consent.errors.LogUnavailable` while the store is down and work again
    by themselves once it is back.
    There is deliberately no way to change or delete a single record:
    a withdrawal is a new record, and :meth:`purge` only cuts the oldest ones.

    .. versionchanged:: 0.2
       ``append_many``: the records of one decision in one atomic write. The
       consent endpoint uses it when a store has it; a store without it gets its
       records one ``append`` at a time, which is not atomic.
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

    async def append_many(self, entries: Sequence[LogEntry]) -> list[ConsentRecord]:
        """Record ``entries`` in one transaction, all or none, chained one after the
        other in this order (consecutive ``seq``); returns the committed records."""
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


class QueuedStore(StoreBase):
    """A store whose writes go through one queue (``_submit``) to a writer that seals
    and commits them in batches (group commit): SQLite and PostgreSQL. A decision's
    entries are one item of that queue, so they commit together or not at all."""

    async def _submit(self, kind: str, args: Any) -> Any:
        raise NotImplementedError

    async def append(self, entry: LogEntry) -> ConsentRecord:
        if not isinstance(entry, LogEntry):
            raise TypeError("append() takes a LogEntry")
        records: list[ConsentRecord] = await self._submit("append", (entry,))
        return records[0]

    async def append_many(self, entries: Sequence[LogEntry]) -> list[ConsentRecord]:
        found = check_entries(entries)
        if not found:
            return []
        records: list[ConsentRecord] = await self._submit("append", found)
        return records

    async def put_texts(self, texts_hash: str, texts_json: str) -> None:
        check_texts(texts_hash, texts_json)
        await self._submit("texts", (texts_hash, texts_json))


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


def check_entries(entries: Iterable[LogEntry]) -> tuple[LogEntry, ...]:
    """``entries`` as a tuple, each checked to be a :class:`LogEntry`."""
    found = tuple(entries)
    if not all(isinstance(e, LogEntry) for e in found):
        raise TypeError("append_many() takes LogEntry objects")
    return found


# A query parameter that carries a secret: libpq's ``password`` and ``sslpassword``,
# and anything named like a password, secret or token.
_SECRET_PARAM = re.compile(r"(?i)([?&][^=&#]*(?:pass|secret|token)[^=&#]*=)([^&#]*)")


def _password_span(url: str) -> tuple[int, int] | None:
    """Where the password of ``url``'s user info is, if it has one.

    From the first ``:`` after ``scheme://`` to the *last* ``@``: a password
    written without percent-encoding may hold ``@``, ``/`` or ``?``. When the URL
    is ambiguous (an ``@`` in the query) this takes more than the password, never less.
    """
    start = url.find("://")
    if start < 0:
        return None
    start += 3
    at = url.rfind("@", start)
    if at < 0:
        return None
    colon = url.find(":", start, at)
    if colon < 0 or "/" in url[start:colon]:
        return None  # no password, or the "@" is in a path (a SQLite file name)
    return colon + 1, at


def redact_url(url: str) -> str:
    """``url`` with its password, if any, replaced by ``***`` (for messages).

    Masks the password of the user info (however it is written) and the value of
    any query parameter named like a password, secret or token (``?password=…``,
    ``sslpassword=…``).

    .. versionchanged:: 0.2
       Query parameters too, and passwords holding a raw ``@`` or ``/``.
    """
    span = _password_span(url)
    if span is not None:
        url = url[: span[0]] + "***" + url[span[1] :]
    return _SECRET_PARAM.sub(r"\1***", url)


def url_secrets(url: str) -> list[str]:
    """The secrets written in ``url``, raw and decoded, longest first."""
    found: list[str] = []
    span = _password_span(url)
    if span is not None:
        found.append(url[span[0] : span[1]])
    found.extend(m.group(2) for m in _SECRET_PARAM.finditer(url))
    forms = {f for raw in found if raw for f in (raw, unquote(raw), unquote_plus(raw)) if f}
    return sorted(forms - {"***"}, key=len, reverse=True)


def redact_secrets(text: str, url: str) -> str:
    """``text`` (an error message) with ``url`` shown as :func:`redact_url` shows it,
    and any secret of ``url`` that appears elsewhere in it (a driver quoting the
    password it could not parse) replaced by ``***``."""
    if url in text:
        text = text.replace(url, redact_url(url))
    for secret in url_secrets(url):
        text = text.replace(secret, "***")
    return text
