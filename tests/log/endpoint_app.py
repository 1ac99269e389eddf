"""A small Starlette site behind the real :class:`ConsentMiddleware`, for log tests.

Run under uvicorn as a factory, the log URL in ``CONSENT_TEST_LOG``::

    CONSENT_TEST_LOG=sqlite:////tmp/consent.db \\
        uvicorn --factory tests.log.endpoint_app:create_app

Consents are posted to the real endpoint (``POST /_consent``), which writes each
decision to the log and answers only once the record is committed. ``GET /``
is an ordinary page (the banner is injected into it), used as a readiness probe.

Also here, for the tests and ``bench/bench_endpoint.py``: :class:`Server` runs
it in a subprocess, and :func:`consent_id_of` reads the consent id an answer set.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from http.cookiejar import CookieJar, DefaultCookiePolicy
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from consent import ConsentMiddleware
from consent.config import ConsentConfig
from consent.core.response import CookiePolicy

if TYPE_CHECKING:
    import httpx2 as httpx

ROOT = Path(__file__).resolve().parents[2]
LOG_ENV = "CONSENT_TEST_LOG"
SECRET = "endpoint-durability-secret-0123456789"


def make_config(log_url: str) -> ConsentConfig:
    return ConsentConfig.model_validate(
        {
            "secret_key": SECRET,
            "log": log_url,
            "categories": [
                {"key": "necessary", "required": True, "cookies": ["session"]},
                {"key": "preferences", "cookies": ["theme"]},
                {"key": "analytics", "cookies": ["_ga", "_ga_*"]},
                {"key": "marketing", "cookies": ["_fbp"]},
            ],
        }
    )


async def home(request: Request) -> HTMLResponse:
    return HTMLResponse("<!doctype html><html><head><title>t</title></head><body>hi</body></html>")


def create_app() -> ConsentMiddleware:
    """The site; the log URL comes from ``CONSENT_TEST_LOG`` (required)."""
    site = Starlette(routes=[Route("/", home)])
    return ConsentMiddleware(site, config=make_config(os.environ[LOG_ENV]))


def no_cookie_jar() -> CookieJar:
    """A jar that keeps nothing: each post is a new visitor with a new consent id."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def consent_id_of(response: httpx.Response, policy: CookiePolicy) -> str:
    """The consent id the server answered with, from its signed cookie (and JSON)."""
    cookies = [v for k, v in response.headers.multi_items() if k.lower() == "set-cookie"]
    assert len(cookies) == 1, cookies
    name, _, rest = cookies[0].partition("=")
    assert name == "consent"
    state = policy.codec.decode(rest.split(";", 1)[0])
    assert state is not None and state.consent_id is not None, cookies[0]
    if response.status_code == 200:
        assert response.json()["consent_id"] == state.consent_id
    return state.consent_id


class Server:
    """``uvicorn`` running :func:`create_app` in a subprocess (its own session).

    ``with Server(url, workers=2) as s:`` waits until ``GET /`` answers 200;
    leaving the block stops it gracefully (SIGTERM). :meth:`kill` sends SIGKILL to
    the whole process group, the supervisor and its workers at once.
    """

    def __init__(self, log_url: str, *, workers: int = 1, startup_timeout: float = 30.0) -> None:
        self.log_url = log_url
        self.workers = workers
        self.startup_timeout = startup_timeout
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        # The server's output, shown if it fails to start; closed by __exit__.
        self._output = tempfile.TemporaryFile()  # noqa: SIM115

    def __enter__(self) -> Server:
        cmd = [
            sys.executable, "-m", "uvicorn", "--factory", "tests.log.endpoint_app:create_app",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--workers", str(self.workers),
            "--log-level", "warning", "--no-access-log",
        ]  # fmt: skip
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env={**os.environ, LOG_ENV: self.log_url},
            stdout=self._output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {self.proc.returncode}:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.base + "/", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start:\n{self.output()}")
            time.sleep(0.05)

    def output(self) -> str:
        self._output.seek(0)
        return self._output.read().decode(errors="replace")

    def kill(self) -> None:
        """SIGKILL the server and all its workers; no shutdown runs."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def __exit__(self, *exc: object) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self._output.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
