"""SIGKILL a real server mid-load: every acknowledged consent is in the log.

The server is uvicorn with two workers running the real :class:`ConsentMiddleware`
(``tests/log/endpoint_app.py``); consents are posted to its endpoint, as JSON
and as forms, by concurrent clients. Once enough have been acknowledged (200 or
303), the supervisor and both workers are killed at once with SIGKILL: no
shutdown, no flush. Every consent id the server answered with must then be in
the log, and the chain must verify.
"""

from __future__ import annotations

import asyncio
import signal
import time

import httpx2 as httpx
import pytest

from consent.cli import main as consent_cli
from consent.core.response import CookiePolicy
from consent.log import open_store

from .endpoint_app import Server, consent_id_of, make_config, no_cookie_jar

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

CLIENTS = 30
KILL_AFTER = 300  # acknowledged consents


class Load:
    def __init__(self, base: str, policy: CookiePolicy) -> None:
        self.base = base
        self.policy = policy
        self.acked: list[str] = []
        self.lost_in_flight = 0  # sent, then the connection died without an answer
        self.refused = 0  # the server was already gone when the client connected

    async def client(self, k: int) -> None:
        # One connection per client, so a kill finds requests in flight on each.
        async with httpx.AsyncClient(
            cookies=no_cookie_jar(), limits=httpx.Limits(max_connections=1), timeout=20
        ) as http:
            for j in range(1_000_000):
                try:
                    if (k + j) % 2:
                        r = await http.post(self.base + "/_consent", json={"action": "accept_all"})
                    else:
                        r = await http.post(self.base + "/_consent", data={"action": "reject_all"})
                except httpx.ConnectError:
                    self.refused += 1
                    return
                except httpx.TransportError:
                    self.lost_in_flight += 1
                    return
                assert r.status_code in (200, 303), (r.status_code, r.text)
                self.acked.append(consent_id_of(r, self.policy))


async def run_until_killed(server: Server, policy: CookiePolicy) -> Load:
    load = Load(server.base, policy)
    clients = [asyncio.create_task(load.client(k)) for k in range(CLIENTS)]
    deadline = time.monotonic() + 40
    while len(load.acked) < KILL_AFTER:
        assert time.monotonic() < deadline, f"only {len(load.acked)} acknowledged"
        assert not any(c.done() for c in clients), "a client stopped before the kill"
        await asyncio.sleep(0.005)
    server.kill()
    await asyncio.wait_for(asyncio.gather(*clients), timeout=30)
    return load


async def read_log(url: str) -> tuple[set[str], int]:
    async with open_store(url, create=False) as store:
        return {row[2] async for row in store.rows()}, (await store.verify()).records


def test_sigkill_loses_no_acknowledged_consent(
    durable_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = CookiePolicy(make_config(durable_url))
    with Server(durable_url, workers=2) as server:
        load = asyncio.run(run_until_killed(server, policy))
        assert server.proc is not None
        assert server.proc.returncode == -signal.SIGKILL
    # The kill really happened mid-load: posts were in flight and got no answer.
    assert load.lost_in_flight > 0
    assert len(load.acked) >= KILL_AFTER

    logged, verified = asyncio.run(read_log(durable_url))
    missing = set(load.acked) - logged
    assert not missing, f"{len(missing)} acknowledged consents are not in the log"
    # In flight at the kill: committed but unanswered, or neither; never answered and lost.
    assert verified == len(logged) >= len(load.acked)
    capsys.readouterr()
    assert consent_cli(["audit", "verify", "--log", durable_url]) == 0, capsys.readouterr().out
