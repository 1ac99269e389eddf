"""The log's guarantees, through the real endpoint and real server processes.

1,000 consents posted concurrently (JSON and forms) to two uvicorn processes
running the real :class:`ConsentMiddleware` on one log: every post is answered,
every consent id answered is in the log exactly once, and the chain written by
both processes verifies with ``consent audit verify``. Then one byte of one
stored record is edited in the database, and ``verify`` names that record.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx2 as httpx
import pytest

from consent.cli import main as consent_cli
from consent.core.response import CookiePolicy
from consent.log import open_store

from .endpoint_app import Server, consent_id_of, make_config, no_cookie_jar

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

N = 1_000
CONCURRENCY = 50
LOAD_DEADLINE = 45.0  # seconds for all N posts

# (content type, body, expected status): JSON answers 200, a form 303.
KINDS: list[tuple[str, Any, int]] = [
    ("json", {"action": "accept_all"}, 200),
    ("form", {"action": "reject_all"}, 303),
    ("json", {"action": "save", "categories": ["analytics"]}, 200),
    ("form", {"action": "save", "categories": ["analytics", "marketing"]}, 303),
    ("json", {"action": "withdraw"}, 200),
    ("form", {"action": "accept_all", "next": "/thanks"}, 303),
]


async def post_consents(bases: list[str], n: int, policy: CookiePolicy) -> list[str]:
    """Post ``n`` consents round-robin over ``bases``; the consent ids answered."""
    sem = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(
        cookies=no_cookie_jar(), limits=limits, timeout=30, follow_redirects=False
    ) as client:

        async def one(i: int) -> tuple[int, int, str]:
            kind, body, expected = KINDS[i % len(KINDS)]
            url = bases[i % len(bases)] + "/_consent"
            async with sem:
                if kind == "json":
                    r = await client.post(url, json=body)
                else:
                    r = await client.post(url, data=body)
            return r.status_code, expected, consent_id_of(r, policy) if r.status_code < 400 else ""

        results = await asyncio.wait_for(
            asyncio.gather(*(one(i) for i in range(n))), timeout=LOAD_DEADLINE
        )
    wrong = [(got, want) for got, want, _ in results if got != want]
    assert not wrong, f"{len(wrong)} posts not answered as expected, e.g. {wrong[:3]}"
    return [cid for _, _, cid in results]


async def read_log(url: str) -> list[tuple[Any, ...]]:
    async with open_store(url, create=False) as store:
        return [row async for row in store.rows()]


def audit_verify(url: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    code = consent_cli(["audit", "verify", "--log", url])
    return code, capsys.readouterr().out


def edit_one_byte(url: str, seq: int, pg_base_url: str | None) -> None:
    """Change the last character of record ``seq``'s ``browser`` behind the store's back."""
    if url.startswith("sqlite:"):
        with sqlite3.connect(Path(url.removeprefix("sqlite:///")), isolation_level=None) as conn:
            (old,) = conn.execute(
                "SELECT browser FROM consent_log WHERE seq = ?", (seq,)
            ).fetchone()
            new = old[:-1] + ("x" if old[-1] != "x" else "y")
            # The trigger stops accidents, not an attacker: drop it first.
            conn.execute("DROP TRIGGER consent_log_append_only")
            conn.execute("UPDATE consent_log SET browser = ? WHERE seq = ?", (new, seq))
        return
    import psycopg

    assert pg_base_url is not None
    schema = dict(parse_qsl(urlsplit(url).query))["schema"]
    table = f'"{schema}".consent_log'
    with psycopg.connect(pg_base_url, autocommit=True) as conn:
        row = conn.execute(f"SELECT browser FROM {table} WHERE seq = %s", (seq,)).fetchone()
        assert row is not None
        old = row[0]
        new = old[:-1] + ("x" if old[-1] != "x" else "y")
        conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        conn.execute(f"UPDATE {table} SET browser = %s WHERE seq = %s", (new, seq))
    assert len(new.encode()) == len(old.encode()) and new != old


def test_1000_concurrent_consents_through_two_servers_one_verified_chain(
    durable_url: str, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = CookiePolicy(make_config(durable_url))
    started = time.monotonic()
    with Server(durable_url) as a, Server(durable_url) as b:
        ids = asyncio.run(post_consents([a.base, b.base], N, policy))
    assert len(set(ids)) == N  # a new visitor per post

    rows = asyncio.run(read_log(durable_url))
    assert len(rows) == N
    assert {row[2] for row in rows} == set(ids)
    assert [row[0] for row in rows] == list(range(1, N + 1))
    assert len({row[12] for row in rows}) == 2  # both server processes wrote the chain
    code, out = audit_verify(durable_url, capsys)
    assert code == 0, out
    assert out.startswith(f"OK: {N} record(s) verified from the genesis"), out
    assert time.monotonic() - started < 60

    # One edited byte of one stored record: verify fails and names it.
    seq, consent_id = rows[N // 2][0], rows[N // 2][2]
    pg_base = request.getfixturevalue("pg_base_url") if "postgres" in durable_url else None
    edit_one_byte(durable_url, seq, pg_base)
    code, out = audit_verify(durable_url, capsys)
    assert code == 1
    assert out.startswith(f"FAILED: record seq {seq} (consent id {consent_id}): "), out
    assert "altered" in out
