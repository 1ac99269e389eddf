"""A decision's records are one write: all of them are in the log, or none.

With ``Sec-GPC: 1`` a decision is two records (the visitor's choice, then what GPC
applied). If the log fails between them the visitor is answered 503, "not
applied", so the first record must not stay behind either.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Sequence
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from consent import ConsentMiddleware
from consent.errors import LogUnavailable
from consent.log import GENESIS, LogEntry, LogStore, Row, SyncLogStore, open_store
from consent.log import _memory as memory_module

from ..conftest import make_config
from ..harness import call
from ..test_endpoint import page
from ._helpers import make_entry

pytestmark = pytest.mark.anyio

JSON = (b"content-type", b"application/json")
GPC = (b"sec-gpc", b"1")
INJECTED = "injected failure on the second record"


class Fault:
    """Makes the log fail on a ``gpc`` record, inside the transaction that writes it.

    SQLite and PostgreSQL: a trigger that aborts the INSERT of that row (the row
    before it is already inserted, in the same transaction). Memory: sealing it fails.
    """

    def __init__(self, url: str, monkeypatch: pytest.MonkeyPatch, pg_base_url: str | None):
        self.url = url
        self.monkeypatch = monkeypatch
        self.pg_base_url = pg_base_url

    def _sql(self, statements: Sequence[str]) -> None:
        if self.url.startswith("sqlite:"):
            path = Path(self.url.removeprefix("sqlite:///"))
            with closing(sqlite3.connect(path, isolation_level=None)) as conn:
                for statement in statements:
                    conn.execute(statement)
            return
        import psycopg

        assert self.pg_base_url is not None
        with psycopg.connect(self.pg_base_url, autocommit=True) as pg:
            for statement in statements:
                pg.execute(statement)

    @property
    def _schema(self) -> str:
        return dict(parse_qsl(urlsplit(self.url).query))["schema"]

    def install(self) -> None:
        if self.url == "memory://":
            real_seal = memory_module.seal

            def seal(entries: Any, *args: Any) -> list[Row]:
                entries = list(entries)
                if any(entry.action == "gpc" for entry in entries):
                    raise LogUnavailable(INJECTED)
                return real_seal(entries, *args)

            self.monkeypatch.setattr(memory_module, "seal", seal)
        elif self.url.startswith("sqlite:"):
            self._sql(
                [
                    "CREATE TRIGGER refuse_gpc BEFORE INSERT ON consent_log "
                    f"WHEN NEW.action = 'gpc' BEGIN SELECT RAISE(ABORT, '{INJECTED}'); END"
                ]
            )
        else:
            s = self._schema
            self._sql(
                [
                    f'CREATE FUNCTION "{s}".refuse_gpc() RETURNS trigger LANGUAGE plpgsql AS '
                    f"$$ BEGIN IF NEW.action = 'gpc' THEN RAISE EXCEPTION '{INJECTED}'; "
                    "END IF; RETURN NEW; END $$",
                    f'CREATE TRIGGER refuse_gpc BEFORE INSERT ON "{s}".consent_log '
                    f'FOR EACH ROW EXECUTE FUNCTION "{s}".refuse_gpc()',
                ]
            )

    def remove(self) -> None:
        if self.url == "memory://":
            self.monkeypatch.undo()
        elif self.url.startswith("sqlite:"):
            self._sql(["DROP TRIGGER refuse_gpc"])
        else:
            self._sql([f'DROP TRIGGER refuse_gpc ON "{self._schema}".consent_log'])


@pytest.fixture
def fault(log_url: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Fault:
    pg = request.getfixturevalue("pg_base_url") if log_url.startswith("postgres") else None
    return Fault(log_url, monkeypatch, pg)


async def create_log(url: str) -> None:
    """Create the log's tables now (the trigger needs them)."""
    if url != "memory://":
        async with open_store(url):
            pass


async def all_rows(store: LogStore) -> list[Row]:
    return [row async for row in store.rows()]


# -- through the endpoint ---------------------------------------------------------------


async def test_a_decision_answered_503_leaves_none_of_its_records(
    log_url: str, fault: Fault
) -> None:
    await create_log(log_url)
    app = ConsentMiddleware(page, config=make_config(log=log_url))
    try:
        fault.install()
        r = await call(app, "POST", "/_consent", [JSON, GPC], body=b'{"action":"accept_all"}')
        assert r.status == 503 and r.header_values("set-cookie") == []
        store = await app.log.store()
        assert await all_rows(store) == []  # not the accept_all record either
        verified = await store.verify()
        assert verified.ok and verified.records == 0

        fault.remove()
        r = await call(app, "POST", "/_consent", [JSON, GPC], body=b'{"action":"accept_all"}')
        assert r.status == 200 and "marketing" not in json.loads(r.body)["granted"]
        rows = await all_rows(store)
        assert [(row[0], row[3], row[4]) for row in rows] == [
            (1, "accept_all", "api"),
            (2, "gpc", "gpc"),
        ]
        assert rows[0][13] == GENESIS and rows[1][13] == rows[0][14]
        assert rows[0][2] == rows[1][2] == json.loads(r.body)["consent_id"]
        verified = await store.verify()
        assert verified.ok and verified.records == 2
    finally:
        await app.log.close()


async def test_a_store_without_append_many_still_records_one_at_a_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class OldStore:
        """A store written before append_many existed."""

        def __init__(self) -> None:
            self.entries: list[LogEntry] = []

        async def open(self) -> None:
            pass

        async def close(self) -> None:
            pass

        async def put_texts(self, texts_hash: str, texts_json: str) -> None:
            pass

        async def append(self, entry: LogEntry) -> LogEntry:
            self.entries.append(entry)
            return entry

    old = OldStore()
    app = ConsentMiddleware(page, config=make_config(), store=old)  # type: ignore[arg-type]
    for _ in range(2):
        r = await call(app, "POST", "/_consent", [JSON, GPC], body=b'{"action":"accept_all"}')
        assert r.status == 200
    assert [e.action for e in old.entries] == ["accept_all", "gpc", "accept_all", "gpc"]
    warnings = [rec for rec in caplog.records if "append_many" in rec.getMessage()]
    assert len(warnings) == 1 and warnings[0].name == "consent"


# -- the stores ----------------------------------------------------------------------------


async def test_append_many_chains_its_records_one_after_the_other(store: LogStore) -> None:
    first = await store.append(make_entry(0))
    records = await store.append_many([make_entry(1), make_entry(2, action="gpc", source="gpc")])
    assert [r.seq for r in records] == [2, 3]
    assert records[0].prev_hash == first.hash and records[1].prev_hash == records[0].hash
    assert [r async for r in store.records()] == [first, *records]
    last = await store.append(make_entry(3))
    assert (last.seq, last.prev_hash) == (4, records[1].hash)
    assert (await store.verify()).ok


async def test_append_many_of_nothing_writes_nothing(store: LogStore) -> None:
    assert await store.append_many([]) == []
    assert await all_rows(store) == []


async def test_append_many_takes_only_log_entries(store: LogStore) -> None:
    with pytest.raises(TypeError):
        await store.append_many([make_entry(1), "not an entry"])  # type: ignore[list-item]
    assert await all_rows(store) == []


async def test_append_many_that_fails_on_its_second_record_writes_none(
    log_url: str, fault: Fault
) -> None:
    await create_log(log_url)
    async with open_store(log_url) as store:
        await store.append(make_entry(0))
        fault.install()
        with pytest.raises(LogUnavailable):
            await store.append_many([make_entry(1), make_entry(2, action="gpc", source="gpc")])
        assert [row[0] for row in await all_rows(store)] == [1]
        fault.remove()
        record = await store.append(make_entry(3))
        assert record.seq == 2  # the chain goes on from the last committed record
        verified = await store.verify()
        assert verified.ok and verified.records == 2


async def test_concurrent_decisions_are_each_contiguous_in_one_chain(store: LogStore) -> None:
    async def decision(i: int) -> list[Any]:
        if i % 3 == 0:
            return [await store.append(make_entry(i))]
        pair = [make_entry(i), make_entry(i, action="gpc", source="gpc")]
        return await store.append_many(pair)

    results = await asyncio.gather(*(decision(i) for i in range(300)))
    for records in results:
        seqs = [r.seq for r in records]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        assert len({r.consent_id for r in records}) == 1
    rows = await all_rows(store)
    assert len(rows) == 100 + 2 * 200
    verified = await store.verify()
    assert verified.ok and verified.records == 500


async def test_decisions_queued_together_share_one_transaction(
    durable_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Group commit still batches: what queues up during a commit goes in the next one.
    async with open_store(durable_url) as store:
        sizes: list[int] = []
        real_commit = store._commit  # type: ignore[attr-defined]

        def counting(batch: list[Any], *args: Any) -> Any:
            sizes.append(len(batch))
            return real_commit(batch, *args)

        def counting_sqlite(conn: Any, batch: list[Any], writer: str) -> Any:
            sizes.append(len(batch))
            return real_commit(conn, batch, writer)

        sqlite = durable_url.startswith("sqlite:")
        monkeypatch.setattr(store, "_commit", counting_sqlite if sqlite else counting)
        pairs = [[make_entry(i), make_entry(i, action="gpc", source="gpc")] for i in range(200)]
        await asyncio.gather(*(store.append_many(pair) for pair in pairs))
        assert sum(sizes) == 200 and len(sizes) < 50, sizes
        assert (await store.verify()).records == 400


def test_append_many_sync() -> None:
    sync = SyncLogStore(open_store("memory://"))
    sync.open()
    try:
        records = sync.append_many_sync([make_entry(1), make_entry(2)], timeout=10)
        assert [r.seq for r in records] == [1, 2]
    finally:
        sync.close()
