"""Shared helpers for tests that drive a real headless Chromium against a real server.

- :func:`serve` runs an ASGI app in a uvicorn subprocess on 127.0.0.1 and a free port;
- :func:`chromium` launches Debian's ``/usr/bin/chromium`` through Playwright
  (``playwright install`` is never needed);
- :func:`unavailable` skips a test whose tool is missing, or fails it when
  ``CONSENT_REQUIRE_BROWSER=1`` (CI sets it, so a missing browser cannot hide);
- :func:`run_axe` injects axe-core from ``node_modules`` (``npm install``) and
  returns its violations.

Import it from a test directory's conftest.py after putting ``tests/`` on ``sys.path``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CONSENT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"


def browser_required() -> bool:
    """``CONSENT_REQUIRE_BROWSER=1``: a missing browser tool fails instead of skipping."""
    return os.environ.get("CONSENT_REQUIRE_BROWSER") == "1"


def unavailable(reason: str) -> NoReturn:
    if browser_required():
        pytest.fail(f"{reason} (required because CONSENT_REQUIRE_BROWSER=1)", pytrace=False)
    pytest.skip(f"{reason}; set CONSENT_REQUIRE_BROWSER=1 to make this a failure")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serve(
    app: str,
    *,
    app_dir: str | Path,
    env: Mapping[str, str] | None = None,
    startup_timeout: float = 20.0,
) -> Iterator[str]:
    """Run ``uvicorn app`` (``"module:attribute"``) in a subprocess; yield its base URL.

    The server's output goes to a log file that is shown if it fails to start.
    """
    port = free_port()
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"uvicorn-{port}.log"
    cmd = [
        sys.executable, "-m", "uvicorn", app,
        "--app-dir", str(app_dir),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--log-level", "warning",
        "--no-access-log",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"uvicorn exited with {proc.returncode}:\n{log_path.read_text()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"uvicorn did not start:\n{log_path.read_text()}") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - defensive
            proc.kill()
            proc.wait()
        log_path.unlink(missing_ok=True)


@contextmanager
def chromium(**launch: Any) -> Iterator[Browser]:
    """A headless Chromium from the system, driven by Playwright; skips when unavailable."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright is not installed (pip install playwright)")
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        unavailable(
            f"Chromium not found at {CHROMIUM} (apt install chromium, or set CONSENT_CHROMIUM)"
        )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, **launch)
        try:
            yield browser
        finally:
            browser.close()


def run_axe(page: Page, selector: str | None = None) -> list[dict[str, Any]]:
    """axe-core's violations on ``page`` (or within ``selector``); skips without axe-core."""
    if not AXE.exists():
        unavailable(f"axe-core not found at {AXE}: run `npm install` in {ROOT}")
    page.add_script_tag(path=str(AXE))
    violations: list[dict[str, Any]] = page.evaluate(
        """async (sel) => {
            const r = await axe.run(sel ? document.querySelector(sel) : document,
                                    {resultTypes: ['violations']});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary)}));
        }""",
        selector,
    )
    return violations


def screenshot_dir() -> Path:
    """Where browser tests write their screenshots.

    ``build/screenshots`` by default, so a test run leaves the work tree clean;
    ``CONSENT_SCREENSHOTS=docs/img`` (``make screenshots``) refreshes the images
    the docs and README show.
    """
    root = Path(__file__).resolve().parents[1]
    target = root / os.environ.get("CONSENT_SCREENSHOTS", "build/screenshots")
    target.mkdir(parents=True, exist_ok=True)
    return target
