"""The PostgreSQL store: several machines writing one log.

psycopg 3 (async) with a psycopg_pool pool; both are the optional ``postgres``
extra and are imported only when a PostgreSQL log is opened.

One writer task per store batches every append queued while the previous
transaction was committing into one transaction (group commit). Inside it,
``pg_advisory_xact_lock`` serializes writers across processes and machines,
and the tail hash is read *after* the lock is held, under READ COMMITTED (each
statement sees what committed before it), so all writers extend one chain.
REPEATABLE READ would be wrong here: its snapshot is taken before the lock wait.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any

from ..errors import LogUnavailable
from ._base import (
    Checkpoint,
    LogURLError,
    PurgeResult,
    QueuedStore,
    default_writer,
    redact_url,
    url_secrets,
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

__all__ = ["PostgresStore", "import_psycopg"]

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_COLS = ", ".join(COLUMNS)
_MAX_BATCH = 2000
_FETCH = 10_000
_STOP = object()


def import_psycopg() -> tuple[Any, Any]:
    try:
        import psycopg
        import psycopg_pool
    except ImportError as exc:
        raise LogURLError(
            "a PostgreSQL consent log needs psycopg 3 and psycopg_pool: "
            "pip install 'asgi-consent[postgres]'"
        ) from exc
    return psycopg, psycopg_pool


def _ddl(s: str) -> str:
    return f"""
CREATE SCHEMA IF NOT EXISTS "{s}";
CREATE TABLE IF NOT EXISTS "{s}".consent_log (
    seq BIGINT PRIMARY KEY,
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
CREATE INDEX IF NOT EXISTS consent_log_consent_id ON "{s}".consent_log (consent_id);
CREATE INDEX IF NOT EXISTS consent_log_time ON "{s}".consent_log (time);
CREATE TABLE IF NOT EXISTS "{s}".consent_texts (
    texts_hash TEXT PRIMARY KEY,
    texts_json TEXT NOT NULL,
    stored_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS "{s}".consent_checkpoints (
    seq BIGINT PRIMARY KEY,
    hash TEXT NOT NULL,
    purged_at TEXT NOT NULL,
    before TEXT NOT NULL,
    removed BIGINT NOT NULL
);
CREATE OR REPLACE FUNCTION "{s}".consent_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'the consent log is append-only'; END $$;
CREATE OR REPLACE TRIGGER consent_log_append_only BEFORE UPDATE ON "{s}".consent_log
FOR EACH ROW EXECUTE FUNCTION "{s}".consent_log_append_only();
"""


class PostgresStore(QueuedStore):
    """``postgresql://user@host/db`` (or ``postgres://``), PostgreSQL ≥ 14.

    Extra URL parameters, removed before connecting: ``schema`` (default
    ``public``) and ``timeout`` (seconds to wait for a connection, default 5).
    """

    def __init__(
        self,
        conninfo: str,
        *,
        url: str,
        schema: str = "public",
        create: bool = True,
        timeout: float = 5.0,
        writer: str | None = None,
        pool_size: int = 4,
    ) -> None:
        if not _SCHEMA_NAME.match(schema):
            raise LogURLError(f"invalid schema name {schema!r} (lowercase letters, digits, _)")
        self.url = redact_url(url)
        self.schema = schema
        self._conninfo = conninfo
        # What must never be quoted in a message: libpq quotes a token it cannot parse.
        self._secrets = url_secrets(conninfo)
        self._create = create
        self._timeout = timeout
        self._writer = writer
        self._pool_size = pool_size
        self._pool: Any = None
        self._psycopg: Any = None
        self._queue: asyncio.Queue[tuple[str, Any, asyncio.Future[Any]] | object] | None = None
        self._task: asyncio.Task[None] | None = None
        t = f'"{schema}".'
        self._t_log = t + "consent_log"
        self._t_texts = t + "consent_texts"
        self._t_cp = t + "consent_checkpoints"
        self._lock_key = f"asgi-consent:{schema}.consent_log"

    def _unavailable(self, exc: BaseException) -> LogUnavailable:
        """``exc`` as :class:`LogUnavailable`, its message stripped of any secret.

        Raise it with a plain ``raise``: its cause is set here, and left out when the
        driver's own message quotes a secret (a traceback would print it).
        """
        text = str(exc).strip()
        clean = self._scrub(text)
        detail = clean.splitlines()[0] if clean else type(exc).__name__
        error = LogUnavailable(f"consent log {self.url} unavailable: {detail}")
        if clean == text:
            error.__cause__ = exc
        else:
            error.__suppress_context__ = True
        return error

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    # --- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        if self._task is not None:
            return
        psycopg, psycopg_pool = import_psycopg()
        self._psycopg = psycopg
        connect_timeout = max(1, round(self._timeout))
        try:
            # One direct connection first: a down or misconfigured server gives its
            # own error at once, instead of a pool timeout later.
            conn = await psycopg.AsyncConnection.connect(
                self._conninfo, connect_timeout=connect_timeout
            )
            async with conn, conn.transaction():
                # The lock makes two processes starting at once create the schema once.
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                    (self._lock_key + ":ddl",),
                )
                cur = await conn.execute("SELECT to_regclass(%s)", (self._t_log,))
                exists = (await cur.fetchone())[0] is not None
                if not exists and not self._create:
                    raise LogUnavailable(f"{self.url} holds no consent log ({self._t_log})")
                if not exists:
                    await conn.execute(_ddl(self.schema))
        except psycopg.Error as exc:
            raise self._unavailable(exc)  # noqa: B904 - its cause is set
        pool = psycopg_pool.AsyncConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=self._pool_size,
            timeout=self._timeout,
            open=False,
            # A connection that died while idle (server restart) is found here
            # rather than by failing somebody's append.
            check=psycopg_pool.AsyncConnectionPool.check_connection,
            kwargs={"connect_timeout": connect_timeout},
            name="asgi-consent",
        )
        await pool.open(wait=False)
        self._pool = pool
        if self._writer is None:
            self._writer = default_writer()
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(self._queue, self._writer))

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None and self._queue is not None:
            self._queue.put_nowait(_STOP)
            await task
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    # --- the writer task ----------------------------------------------------------------

    async def _run(self, q: asyncio.Queue[Any], writer: str) -> None:
        stop = False
        while not stop:
            first = await q.get()
            if first is _STOP:
                break
            batch = [first]
            while len(batch) < _MAX_BATCH and not q.empty():
                item = q.get_nowait()
                if item is _STOP:
                    stop = True
                    break
                batch.append(item)
            try:
                results = await self._commit(batch, writer)
            except Exception as exc:
                error = self._unavailable(exc)
                for _, _, fut in batch:
                    if not fut.done():
                        fut.set_exception(error)
            else:
                for (_, _, fut), result in zip(batch, results, strict=True):
                    if not fut.done():  # a cancelled caller; its record still counts
                        fut.set_result(result)
        # An append that raced with close() must not wait forever.
        closed = LogUnavailable(f"consent log {self.url} is closed")
        while not q.empty():
            item = q.get_nowait()
            if item is not _STOP and not item[2].done():
                item[2].set_exception(closed)

    async def _commit(self, batch: list[tuple[str, Any, Any]], writer: str) -> list[Any]:
        results: list[Any] = [None] * len(batch)
        async with self._pool.connection() as conn, conn.transaction():
            texts = [args for kind, args, _ in batch if kind == "texts"]
            if texts:
                now = format_time(datetime.now(UTC))
                async with conn.cursor() as cur:
                    await cur.executemany(
                        f"INSERT INTO {self._t_texts} VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                        [(h, j, now) for h, j in texts],
                    )
            await conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (self._lock_key,)
            )
            appends = [i for i, (kind, _, _) in enumerate(batch) if kind == "append"]
            if appends:
                # Every caller's entries, in order, in one chain: a caller's own
                # entries (one decision) get consecutive seqs.
                entries = [entry for i in appends for entry in batch[i][1]]
                rows = seal(entries, *await self._tail(conn), writer)
                async with conn.cursor() as cur:
                    await cur.executemany(
                        f"INSERT INTO {self._t_log} ({_COLS}) VALUES "
                        f"({', '.join(['%s'] * len(COLUMNS))})",
                        rows,
                    )
                at = 0
                for i in appends:
                    n = len(batch[i][1])
                    results[i] = [ConsentRecord.from_row(row) for row in rows[at : at + n]]
                    at += n
            for i, (kind, args, _) in enumerate(batch):
                if kind == "purge":
                    results[i] = await self._purge(conn, args)
        return results

    async def _tail(self, conn: Any) -> tuple[int, str]:
        cur = await conn.execute(f"SELECT seq, hash FROM {self._t_log} ORDER BY seq DESC LIMIT 1")
        tail = await cur.fetchone()
        if tail is None:
            cur = await conn.execute(
                f"SELECT seq, hash FROM {self._t_cp} ORDER BY seq DESC LIMIT 1"
            )
            tail = await cur.fetchone()
        return (int(tail[0]), str(tail[1])) if tail else (0, GENESIS)

    async def _purge(self, conn: Any, before: str) -> PurgeResult:
        # Only a prefix of the chain can go (see SQLiteStore._purge).
        cur = await conn.execute(f"SELECT min(seq) FROM {self._t_log} WHERE time >= %s", (before,))
        first_kept = (await cur.fetchone())[0]
        if first_kept is None:
            cur = await conn.execute(
                f"SELECT seq, hash FROM {self._t_log} ORDER BY seq DESC LIMIT 1"
            )
        else:
            cur = await conn.execute(
                f"SELECT seq, hash FROM {self._t_log} WHERE seq < %s ORDER BY seq DESC LIMIT 1",
                (first_kept,),
            )
        last = await cur.fetchone()
        if last is None:
            return PurgeResult(0, None)
        cur = await conn.execute(f"DELETE FROM {self._t_log} WHERE seq <= %s", (last[0],))
        cp = Checkpoint(
            int(last[0]), str(last[1]), format_time(datetime.now(UTC)), before, cur.rowcount
        )
        await conn.execute(
            f"INSERT INTO {self._t_cp} VALUES (%s, %s, %s, %s, %s)",
            (cp.seq, cp.hash, cp.purged_at, cp.before, cp.removed),
        )
        return PurgeResult(cp.removed, cp)

    async def _submit(self, kind: str, args: Any) -> Any:
        if self._task is None or self._queue is None or self._task.done():
            raise LogUnavailable(f"consent log {self.url} is not open")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((kind, args, fut))
        return await fut

    # --- writing ------------------------------------------------------------------------

    async def purge(self, before: datetime) -> PurgeResult:
        result: PurgeResult = await self._submit("purge", format_time(before))
        return result

    # --- reading ------------------------------------------------------------------------

    def _check_open(self) -> Any:
        if self._pool is None:
            raise LogUnavailable(f"consent log {self.url} is not open")
        return self._pool

    async def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        pool = self._check_open()
        try:
            async with pool.connection() as conn:
                cur = await conn.execute(sql, params)
                found: list[Any] = await cur.fetchall()
                return found
        except self._psycopg.Error as exc:
            raise self._unavailable(exc)  # noqa: B904 - its cause is set

    async def get_texts(self, texts_hash: str) -> str | None:
        found = await self._query(
            f"SELECT texts_json FROM {self._t_texts} WHERE texts_hash = %s", (texts_hash,)
        )
        return str(found[0][0]) if found else None

    async def history(self, consent_id: str) -> list[ConsentRecord]:
        found = await self._query(
            f"SELECT {_COLS} FROM {self._t_log} WHERE consent_id = %s ORDER BY seq", (consent_id,)
        )
        return [ConsentRecord.from_row(tuple(r)) for r in found]

    async def checkpoint(self) -> Checkpoint | None:
        found = await self._query(
            f"SELECT seq, hash, purged_at, before, removed FROM {self._t_cp} "
            "ORDER BY seq DESC LIMIT 1"
        )
        return Checkpoint(*found[0]) if found else None

    async def missing_texts(self) -> list[str]:
        found = await self._query(
            f"SELECT DISTINCT texts_hash FROM {self._t_log} WHERE texts_hash NOT IN "
            f"(SELECT texts_hash FROM {self._t_texts}) ORDER BY texts_hash"
        )
        return [str(r[0]) for r in found]

    async def rows(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> AsyncGenerator[Row, None]:
        pool = self._check_open()
        clauses, params = [], []
        if since is not None:
            clauses.append("time >= %s")
            params.append(format_time(since))
        if until is not None:
            clauses.append("time < %s")
            params.append(format_time(until))
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        try:
            # A server-side cursor streams: constant memory however long the log.
            async with (
                pool.connection() as conn,
                conn.transaction(),
                conn.cursor(name="consent_rows") as cur,
            ):
                await cur.execute(f"SELECT {_COLS} FROM {self._t_log}{where} ORDER BY seq", params)
                while chunk := await cur.fetchmany(_FETCH):
                    for row in chunk:
                        yield row
        except self._psycopg.Error as exc:
            raise self._unavailable(exc)  # noqa: B904 - its cause is set

    async def verify(self) -> VerifyResult:
        pool = self._check_open()
        try:
            async with pool.connection() as conn, conn.transaction():
                # One snapshot for the checkpoint and the rows, even if a purge
                # commits meanwhile.
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                cur = await conn.execute(
                    f"SELECT seq, hash FROM {self._t_cp} ORDER BY seq DESC LIMIT 1"
                )
                cp = await cur.fetchone()
                verifier = ChainVerifier(int(cp[0]), str(cp[1])) if cp else ChainVerifier()
                async with conn.cursor(name="consent_verify") as scur:
                    await scur.execute(f"SELECT {_COLS} FROM {self._t_log} ORDER BY seq")
                    while (chunk := await scur.fetchmany(_FETCH)) and verifier.feed(chunk):
                        pass
        except self._psycopg.Error as exc:
            raise self._unavailable(exc)  # noqa: B904 - its cause is set
        return verifier.result()
