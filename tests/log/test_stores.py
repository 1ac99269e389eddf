"""Every store behaviour, against memory, SQLite and a real PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

import pytest

from consent.errors import LogUnavailable
from consent.log import GENESIS, LogStore, canonical, open_store, truncate_ip

from ._helpers import BASE_TIME, TEXTS, make_entry

pytestmark = pytest.mark.anyio


async def test_first_record_is_chained_to_genesis(store: LogStore) -> None:
    entry = make_entry(ip="198.51.100.0")
    record = await store.append(entry)
    assert record.seq == 1
    assert record.prev_hash == GENESIS
    assert record.hash == hashlib.sha256(canonical(record.to_row())).hexdigest()
    assert (record.time, record.consent_id, record.granted, record.denied, record.ip) == (
        entry.time,
        entry.consent_id,
        entry.granted,
        entry.denied,
        entry.ip,
    )


async def test_each_record_is_chained_to_the_previous(store: LogStore) -> None:
    records = [await store.append(make_entry(i)) for i in range(3)]
    assert [r.seq for r in records] == [1, 2, 3]
    assert records[1].prev_hash == records[0].hash
    assert records[2].prev_hash == records[1].hash


async def test_stored_rows_equal_returned_records(store: LogStore) -> None:
    records = [await store.append(make_entry(i)) for i in range(5)]
    assert [r async for r in store.records()] == records


async def test_verify_empty_log(store: LogStore) -> None:
    result = await store.verify()
    assert result.ok and result.records == 0 and result.head_hash == GENESIS


async def test_verify_intact_log(store: LogStore) -> None:
    records = [await store.append(make_entry(i)) for i in range(20)]
    result = await store.verify()
    assert result.ok
    assert result.records == 20
    assert (result.head_seq, result.head_hash) == (20, records[-1].hash)


async def test_1000_concurrent_appends_make_one_chain(store: LogStore) -> None:
    records = await asyncio.gather(*(store.append(make_entry(i)) for i in range(1000)))
    assert sorted(r.seq for r in records) == list(range(1, 1001))
    stored = [row async for row in store.rows()]
    assert len(stored) == 1000
    assert {row[2] for row in stored} == {f"visitor-{i:06d}" for i in range(1000)}
    result = await store.verify()
    assert result.ok and result.records == 1000


async def test_rows_since_inclusive_until_exclusive(store: LogStore) -> None:
    for i in range(10):
        await store.append(make_entry(i))
    since, until = BASE_TIME + timedelta(minutes=3), BASE_TIME + timedelta(minutes=7)
    seqs = [row[0] async for row in store.rows(since, until)]
    assert seqs == [4, 5, 6, 7]


async def test_history_of_one_visitor_in_order(store: LogStore) -> None:
    await store.append(make_entry(1, consent_id="alice", action="accept_all"))
    await store.append(make_entry(2, consent_id="bob"))
    await store.append(
        make_entry(
            3,
            consent_id="alice",
            action="withdraw",
            granted=("necessary",),
            denied=("analytics", "marketing"),
            source="settings",
        )
    )
    history = await store.history("alice")
    assert [(r.seq, r.action) for r in history] == [(1, "accept_all"), (3, "withdraw")]
    assert await store.history("nobody") == []


async def test_withdrawal_appends_and_leaves_the_consent_intact(store: LogStore) -> None:
    first = await store.append(make_entry(1, consent_id="alice", action="accept_all"))
    await store.append(make_entry(2, consent_id="alice", action="withdraw", granted=()))
    history = await store.history("alice")
    assert history[0] == first
    assert len(history) == 2


async def test_put_texts_stores_each_version_once(store: LogStore) -> None:
    await store.put_texts(TEXTS, '{"title": "v1"}')
    await store.put_texts(TEXTS, '{"title": "changed"}')
    assert await store.get_texts(TEXTS) == '{"title": "v1"}'
    assert await store.get_texts("cd" * 32) is None


async def test_missing_texts_lists_unarchived_versions(store: LogStore) -> None:
    await store.put_texts(TEXTS, "{}")
    await store.append(make_entry(1))
    await store.append(make_entry(2, texts_hash="cd" * 32))
    assert await store.missing_texts() == ["cd" * 32]


async def test_purge_removes_old_prefix_and_rest_verifies(store: LogStore) -> None:
    records = [await store.append(make_entry(i * 60 * 24)) for i in range(5)]  # one a day
    result = await store.purge(BASE_TIME + timedelta(days=2))
    assert result.removed == 2
    assert result.checkpoint is not None
    assert (result.checkpoint.seq, result.checkpoint.hash) == (2, records[1].hash)
    assert [row[0] async for row in store.rows()] == [3, 4, 5]
    verified = await store.verify()
    assert verified.ok and verified.records == 3 and verified.start_seq == 2
    assert await store.checkpoint() == result.checkpoint


async def test_purge_only_cuts_a_prefix(store: LogStore) -> None:
    # Record 3 is old (a writer with a slow clock) but sits after a recent one.
    for minutes in (0, 3 * 24 * 60, 0, 4 * 24 * 60):
        await store.append(make_entry(minutes))
    result = await store.purge(BASE_TIME + timedelta(days=1))
    assert result.removed == 1
    assert [row[0] async for row in store.rows()] == [2, 3, 4]
    assert (await store.verify()).ok


async def test_purge_with_nothing_old_enough(store: LogStore) -> None:
    await store.append(make_entry(0))
    result = await store.purge(BASE_TIME)
    assert (result.removed, result.checkpoint) == (0, None)
    assert await store.checkpoint() is None


async def test_append_after_purging_everything_continues_the_chain(store: LogStore) -> None:
    records = [await store.append(make_entry(i)) for i in range(3)]
    await store.purge(BASE_TIME + timedelta(days=1))
    assert [row async for row in store.rows()] == []
    record = await store.append(make_entry(5))
    assert (record.seq, record.prev_hash) == (4, records[-1].hash)
    result = await store.verify()
    assert result.ok and result.records == 1 and result.start_seq == 3


async def test_ip_is_stored_truncated(store: LogStore) -> None:
    await store.append(make_entry(ip=truncate_ip("203.0.113.77")))
    (row,) = [row async for row in store.rows()]
    assert row[11] == "203.0.113.0"
    assert "203.0.113.77" not in repr(row)


async def test_writer_identifies_the_process(store: LogStore) -> None:
    import os

    record = await store.append(make_entry())
    assert record.writer.endswith(f":{os.getpid()}")


async def test_append_on_a_closed_store_raises(log_url: str) -> None:
    store = open_store(log_url)
    with pytest.raises(LogUnavailable):
        await store.append(make_entry())


async def test_records_survive_reopening(durable_url: str) -> None:
    async with open_store(durable_url) as store:
        first = await store.append(make_entry(1))
        await store.put_texts(TEXTS, "{}")
    async with open_store(durable_url) as store:
        assert await store.history(first.consent_id) == [first]
        second = await store.append(make_entry(2))
        assert (second.seq, second.prev_hash) == (2, first.hash)
        assert await store.get_texts(TEXTS) == "{}"


async def test_read_only_open_refuses_a_missing_log(durable_url: str) -> None:
    with pytest.raises(LogUnavailable):
        await open_store(durable_url, create=False).open()
