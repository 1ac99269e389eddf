"""``consent audit …``: exit codes and output, through consent.cli.main."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import os
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from consent.cli import main
from consent.log import open_store

from .log._helpers import (
    BASE_TIME,
    PG_ENV,
    TEXTS,
    drop_schema,
    free_port,
    make_entry,
    unique_schema,
    with_params,
)


def _build(url: str) -> None:
    """Six records over three days; visitor "alice" decides twice."""
    entries = [
        make_entry(
            0,
            consent_id="alice",
            action="accept_all",
            granted=("analytics", "marketing", "necessary"),
            denied=(),
        ),
        make_entry(
            10,
            consent_id="bob",
            action="reject_all",
            granted=("necessary",),
            denied=("analytics", "marketing"),
        ),
        make_entry(24 * 60, consent_id="carol"),
        make_entry(
            24 * 60 + 5,
            consent_id="alice",
            action="withdraw",
            source="settings",
            granted=("necessary",),
            denied=("analytics", "marketing"),
        ),
        make_entry(2 * 24 * 60, consent_id="dave", ip="203.0.113.0"),
        make_entry(2 * 24 * 60 + 1, consent_id="erin", browser="safari"),
    ]

    async def fill() -> None:
        async with open_store(url) as store:
            await store.put_texts(TEXTS, '{"title": "We use cookies"}')
            for e in entries:
                await store.append(e)

    asyncio.run(fill())


@pytest.fixture
def log(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'consent.db'}"
    _build(url)
    return url


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["audit", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(err: str) -> str:
    assert "Traceback" not in err
    assert err.count("\n") == 1, err
    return err


# --- verify -----------------------------------------------------------------------------


def test_verify_intact(log: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "verify", "--log", log)
    assert code == 0
    assert out.startswith("OK: 6 record(s) verified from the genesis")
    assert "head: seq 6 hash " in out
    assert err == ""


def test_verify_names_the_tampered_record(log: str, capsys: pytest.CaptureFixture[str]) -> None:
    with sqlite3.connect(log.removeprefix("sqlite:///")) as conn:
        conn.execute("DROP TRIGGER consent_log_append_only")
        conn.execute("UPDATE consent_log SET granted = 'analytics,necessary' WHERE seq = 2")
    code, out, _ = _run(capsys, "verify", "--log", log)
    assert code == 1
    assert out.startswith("FAILED: record seq 2 (consent id bob)")


def test_verify_warns_about_unarchived_texts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"

    async def fill() -> None:
        async with open_store(url) as store:
            await store.append(make_entry(texts_hash="cd" * 32))

    asyncio.run(fill())
    code, _, err = _run(capsys, "verify", "--log", url)
    assert code == 0
    assert "not archived: cdcdcdcdcdcd" in err


def test_log_defaults_from_environment(
    log: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSENT_LOG", log)
    code, out, _ = _run(capsys, "verify")
    assert code == 0 and out.startswith("OK: 6 record(s)")


# --- export -----------------------------------------------------------------------------


def test_export_jsonl_can_be_reverified(log: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "export", "--log", log)
    assert code == 0
    assert err == ""  # no progress: stderr is not a terminal
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["seq"] for r in records] == [1, 2, 3, 4, 5, 6]
    # The documented canonical form, rebuilt from the export alone, gives each hash.
    prev = "0" * 64
    for r in records:
        fields = [
            "consent-log/1",
            str(r["seq"]),
            r["time"],
            r["consent_id"],
            r["action"],
            r["source"],
            ",".join(r["granted"]),
            ",".join(r["denied"]),
            str(r["revision"]),
            r["texts_hash"],
            r["locale"],
            r["browser"],
            r["ip"] or "",
            r["writer"],
            prev,
        ]
        assert r["prev_hash"] == prev
        assert hashlib.sha256("\x1f".join(fields).encode()).hexdigest() == r["hash"]
        prev = r["hash"]


def test_export_progress_only_on_a_terminal(
    log: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, out, err = _run(capsys, "export", "--log", log)
    assert code == 0
    assert err.strip() == "exported 6 records"
    assert len(out.splitlines()) == 6  # stdout carries the data only


def test_export_csv_since_until(log: str, capsys: pytest.CaptureFixture[str]) -> None:
    since = (BASE_TIME + timedelta(days=1)).date().isoformat()
    until = (BASE_TIME + timedelta(days=2)).date().isoformat()
    code, out, _ = _run(
        capsys, "export", "--log", log, "--format", "csv", "--since", since, "--until", until
    )
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["seq"], r["consent_id"], r["action"]) for r in rows] == [
        ("3", "carol", "save"),
        ("4", "alice", "withdraw"),
    ]
    assert rows[0]["granted"] == "analytics,necessary"


def test_export_to_file(log: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out.jsonl"
    code, out, _ = _run(capsys, "export", "--log", log, "--output", str(target))
    assert code == 0 and out == ""
    assert len(target.read_text().splitlines()) == 6


def test_export_to_unwritable_path(
    log: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = _run(capsys, "export", "--log", log, "-o", str(tmp_path / "no" / "dir.jsonl"))
    assert code == 1
    assert "cannot write" in _one_line_error(err)


def test_export_bad_date(log: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "export", "--log", log, "--since", "last tuesday")
    assert code == 1
    assert "--since: invalid date" in _one_line_error(err)


# --- show -------------------------------------------------------------------------------


def test_show_history_of_one_visitor(log: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "show", "alice", "--log", log)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "consent id alice: 2 record(s)"
    assert lines[1].split()[:4] == ["seq", "time", "(UTC)", "action"]
    assert [line.split()[0] for line in lines[2:]] == ["1", "4"]
    assert "accept_all" in lines[2] and "withdraw" in lines[3]
    assert "bob" not in out


def test_show_json_includes_texts(log: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "show", "dave", "--log", log, "--format", "json")
    assert code == 0
    doc = json.loads(out)
    assert [r["seq"] for r in doc["records"]] == [5]
    assert doc["records"][0]["ip"] == "203.0.113.0"
    assert doc["texts"] == {TEXTS: {"title": "We use cookies"}}


def test_show_unknown_consent_id(log: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "show", "mallory", "--log", log)
    assert code == 1 and out == ""
    assert "no records for consent id 'mallory'" in _one_line_error(err)


# --- stats ------------------------------------------------------------------------------


def test_stats_rate_per_category_per_day(log: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "stats", "--log", log)
    assert code == 0
    table = [line.split() for line in out.splitlines()[1:]]
    assert table[0] == ["day", "decisions", "analytics", "marketing", "necessary"]
    assert table[1:] == [
        ["2024-05-01", "2", "50.0%", "50.0%", "100.0%"],
        ["2024-05-02", "2", "50.0%", "0.0%", "100.0%"],
        ["2024-05-03", "2", "100.0%", "0.0%", "100.0%"],
    ]


def test_stats_csv_with_since(log: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "stats", "--log", log, "--format", "csv", "--since", "2024-05-03")
    assert code == 0
    assert list(csv.reader(io.StringIO(out))) == [
        ["day", "decisions", "analytics", "marketing", "necessary"],
        ["2024-05-03", "2", "1.0000", "0.0000", "1.0000"],
    ]


# --- purge ------------------------------------------------------------------------------


def test_purge_then_verify(log: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "purge", "--before", "2024-05-02", "--log", log)
    assert code == 0
    assert out.startswith("purged 2 record(s) older than 2024-05-02 (up to seq 2)")
    code, out, _ = _run(capsys, "verify", "--log", log)
    assert code == 0
    assert out.startswith("OK: 4 record(s) verified from the purge checkpoint at seq 2")
    code, _, _ = _run(capsys, "show", "bob", "--log", log)
    assert code == 1  # bob's only record is gone


def test_purge_dry_run_deletes_nothing(log: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "purge", "--before", "2024-05-03", "--dry-run", "--log", log)
    assert code == 0
    assert out.strip() == "dry run: 4 record(s) older than 2024-05-03 would be purged"
    _, out, _ = _run(capsys, "verify", "--log", log)
    assert out.startswith("OK: 6 record(s)")


def test_purge_refuses_a_future_date(log: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "purge", "--before", "2999-01-01", "--log", log)
    assert code == 1
    assert "future" in _one_line_error(err)


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["verify", "--log", "consent.db"], "invalid consent log URL"),
        (["verify", "--log", "mysql://x/y"], "unsupported consent log URL"),
        (["export", "--log", "sqlite:////nonexistent/dir/consent.db"], "not found"),
        (["verify"], "pass --log URL or set CONSENT_LOG"),
        (["verify", "--log", "memory://"], "only inside the process"),
    ],
)
def test_errors_are_one_line(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CONSENT_LOG", raising=False)
    code, _, err = _run(capsys, *argv)
    assert code == 1
    assert message in _one_line_error(err)
    assert err.startswith("consent: error: ")


def test_file_that_is_not_a_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = tmp_path / "other.db"
    sqlite3.connect(other).close()
    code, _, err = _run(capsys, "verify", "--log", f"sqlite:///{other}")
    assert code == 1
    assert "not a consent log" in _one_line_error(err)
    assert other.stat().st_size == 0  # and nothing was created in it


def test_unreachable_postgres(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/test?timeout=1"
    code, _, err = _run(capsys, "verify", "--log", url)
    assert code == 1
    assert "unavailable" in _one_line_error(err)


@pytest.fixture
def pg_url() -> Iterator[str]:
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set; PostgreSQL tests need a real server")
    schema = unique_schema()
    yield with_params(base, schema=schema)
    drop_schema(base, schema)


@pytest.mark.postgres
def test_postgres_log(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    _build(pg_url)
    code, out, _ = _run(capsys, "verify", "--log", pg_url)
    assert code == 0 and out.startswith("OK: 6 record(s)")
    code, out, _ = _run(capsys, "show", "alice", "--log", pg_url)
    assert code == 0 and out.startswith("consent id alice: 2 record(s)")
    code, out, _ = _run(capsys, "export", "--log", pg_url, "--since", "2024-05-03")
    assert code == 0 and len(out.splitlines()) == 2
    code, out, _ = _run(capsys, "purge", "--before", "2024-05-02", "--log", pg_url)
    assert code == 0 and "purged 2 record(s)" in out
    code, out, _ = _run(capsys, "verify", "--log", pg_url)
    assert code == 0 and out.startswith("OK: 4 record(s) verified from the purge checkpoint")
