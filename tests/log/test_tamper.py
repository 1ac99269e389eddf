"""Editing the database behind the store's back is caught by verify."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from consent.log import open_store

from ._helpers import make_entry

pytestmark = pytest.mark.anyio


async def _fill(url: str, n: int = 10) -> None:
    async with open_store(url) as store:
        for i in range(n):
            await store.append(make_entry(i))


def _sqlite(url: str) -> sqlite3.Connection:
    return sqlite3.connect(Path(url.removeprefix("sqlite:///")), isolation_level=None)


async def test_sqlite_one_edited_byte_is_named(sqlite_url: str) -> None:
    await _fill(sqlite_url)
    with _sqlite(sqlite_url) as conn:
        # The trigger stops accidents, not an attacker: drop it, then edit one byte.
        conn.execute("DROP TRIGGER consent_log_append_only")
        conn.execute("UPDATE consent_log SET locale = 'em' WHERE seq = 5")
    async with open_store(sqlite_url) as store:
        result = await store.verify()
    assert not result.ok
    assert result.broken is not None
    assert (result.broken.seq, result.broken.consent_id) == (5, "visitor-000004")
    assert "altered" in result.broken.reason
    assert result.records == 4


async def test_sqlite_deleted_record_is_named(sqlite_url: str) -> None:
    await _fill(sqlite_url)
    with _sqlite(sqlite_url) as conn:
        conn.execute("DELETE FROM consent_log WHERE seq = 7")
    async with open_store(sqlite_url) as store:
        result = await store.verify()
    assert result.broken is not None and result.broken.seq == 8
    assert "missing" in result.broken.reason


async def test_sqlite_refuses_update(sqlite_url: str) -> None:
    await _fill(sqlite_url, 1)
    with _sqlite(sqlite_url) as conn, pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE consent_log SET granted = '' WHERE seq = 1")


@pytest.mark.postgres
async def test_postgres_one_edited_byte_is_named(pg_url: str, pg_base_url: str) -> None:
    import psycopg

    await _fill(pg_url)
    schema = pg_url.rsplit("schema=", 1)[1]
    with psycopg.connect(pg_base_url, autocommit=True) as conn:
        conn.execute(f'ALTER TABLE "{schema}".consent_log DISABLE TRIGGER USER')
        conn.execute(f"UPDATE \"{schema}\".consent_log SET browser = 'firefoy' WHERE seq = 3")
    async with open_store(pg_url) as store:
        result = await store.verify()
    assert not result.ok
    assert result.broken is not None and result.broken.seq == 3
    assert "altered" in result.broken.reason


@pytest.mark.postgres
async def test_postgres_refuses_update(pg_url: str, pg_base_url: str) -> None:
    import psycopg

    await _fill(pg_url, 1)
    schema = pg_url.rsplit("schema=", 1)[1]
    with (
        psycopg.connect(pg_base_url, autocommit=True) as conn,
        pytest.raises(psycopg.Error, match="append-only"),
    ):
        conn.execute(f"UPDATE \"{schema}\".consent_log SET granted = '' WHERE seq = 1")
