"""The consent log: append-only, hash-chained proof of every consent decision.

>>> store = open_store("sqlite:///consent.db")
>>> await store.open()
>>> record = await store.append(entry)   # returns once the record is committed
>>> records = await store.append_many([entry, other])   # one transaction: both or neither

Stores are asyncio-only (``SyncLogStore`` wraps one for WSGI). See
``docs/auditors.md`` for what is recorded, the canonical form that is hashed,
and how several processes or machines share one chain.
"""

from __future__ import annotations

import math
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from ._base import Checkpoint, LogStore, LogURLError, PurgeResult, redact_secrets, redact_url
from ._memory import MemoryStore
from ._model import (
    COLUMNS,
    GENESIS,
    Action,
    ChainBreak,
    ChainVerifier,
    ConsentRecord,
    LogEntry,
    Row,
    Source,
    VerifyResult,
    browser_family,
    canonical,
    format_time,
    seal,
    truncate_ip,
)
from ._postgres import PostgresStore, import_psycopg
from ._sqlite import SQLiteStore
from ._stats import DayStats, StatsCollector
from ._sync import LoopThread, SyncLogStore

__all__ = [
    "COLUMNS",
    "GENESIS",
    "Action",
    "ChainBreak",
    "ChainVerifier",
    "Checkpoint",
    "ConsentRecord",
    "DayStats",
    "LogEntry",
    "LogStore",
    "LogURLError",
    "LoopThread",
    "MemoryStore",
    "PostgresStore",
    "PurgeResult",
    "Row",
    "SQLiteStore",
    "Source",
    "StatsCollector",
    "SyncLogStore",
    "VerifyResult",
    "browser_family",
    "canonical",
    "format_time",
    "open_store",
    "redact_secrets",
    "redact_url",
    "seal",
    "truncate_ip",
]

_HINT = "use memory://, sqlite:///PATH (relative) or sqlite:////PATH (absolute), or postgresql://…"


def open_store(url: str, *, create: bool = True, writer: str | None = None) -> LogStore:
    """The store for ``url``, not yet opened (``await store.open()`` or ``async with``).

    ``memory://``; ``sqlite:///relative.db`` or ``sqlite:////abs/path.db``
    (parameter ``timeout``, seconds to wait for another writer's lock);
    ``postgresql://…`` or ``postgres://…`` (parameters ``schema`` and
    ``timeout``; the rest goes to libpq). ``create=False`` refuses to create a
    log that does not exist yet. ``writer`` names this process in the records
    (default ``host:pid``). Raises :class:`LogURLError` for a URL it cannot use.
    """
    if not isinstance(url, str) or "://" not in url:
        raise LogURLError(f"invalid consent log URL {redact_url(str(url))!r}: {_HINT}")
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise LogURLError(f"invalid consent log URL {shown!r}: {exc}") from exc
    scheme = parts.scheme.lower()
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    if scheme == "memory":
        if not create:
            # A new process (the audit CLI) would only ever see an empty log.
            raise LogURLError("a memory:// log lives only inside the process that writes it")
        return MemoryStore(writer=writer)
    if scheme == "sqlite":
        if parts.netloc:
            raise LogURLError(f"invalid SQLite URL {shown!r}: {_HINT}")
        path = unquote(parts.path[1:])  # "sqlite:///x.db" → "x.db", "sqlite:////x.db" → "/x.db"
        if not path or path == ":memory:" or path.endswith("/"):
            raise LogURLError(f"invalid SQLite URL {shown!r}: no file name; {_HINT}")
        unknown = set(params) - {"timeout"}
        if unknown:
            raise LogURLError(f"unknown parameter(s) {', '.join(sorted(unknown))} in {shown!r}")
        return SQLiteStore(path, create=create, timeout=_timeout(params, shown), writer=writer)
    if scheme in ("postgresql", "postgres"):
        import_psycopg()  # a clear error now rather than at open()
        schema = params.pop("schema", "public")
        timeout = _timeout(params, shown)
        params.pop("timeout", None)
        conninfo = urlunsplit(
            (parts.scheme, parts.netloc, parts.path, urlencode(params), parts.fragment)
        )
        return PostgresStore(
            conninfo, url=shown, schema=schema, create=create, timeout=timeout, writer=writer
        )
    raise LogURLError(f"unsupported consent log URL {shown!r}: {_HINT}")


def _timeout(params: dict[str, str], shown: str) -> float:
    raw = params.get("timeout", "5")
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (0 < value < 3600):
        raise LogURLError(f"invalid timeout {raw!r} in {shown!r} (seconds, > 0)")
    return value
