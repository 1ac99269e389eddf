"""``consent demo``: the site in-process, the real command, and a walk in Chromium."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from starlette.testclient import TestClient

from consent.demo import ARTICLES, create_app, load_secret_key

from .browser_support import chromium, free_port, screenshot_dir

if TYPE_CHECKING:
    from playwright.sync_api import Page

KEY = "demo-test-secret-0123456789abcdef"
PAGES = ["/", "/video", "/login", "/privacy", *(f"/articles/{a.slug}" for a in ARTICLES)]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(tmp_path / "demo.db", secret_key=KEY)) as c:
        yield c


def set_cookie_names(response: object) -> list[str]:
    headers = response.headers.get_list("set-cookie")  # type: ignore[attr-defined]
    return [h.split("=", 1)[0] for h in headers if "Max-Age=0" not in h]


# -- in-process ----------------------------------------------------------------------


@pytest.mark.parametrize("path", PAGES)
def test_pages_answer_with_the_banner(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    assert "data-consent-banner" in r.text
    assert 'value="reject_all"' in r.text
    assert "data-consent-open" in r.text  # the footer's "Cookie settings"


def test_undecided_visitor_gets_no_marketing_cookie(client: TestClient) -> None:
    r = client.get("/")
    # The app sets _fbp on every page; the middleware dropped it.
    assert set_cookie_names(r) == []
    assert "_fbp" not in client.cookies


def test_accept_all_lets_the_marketing_cookie_through(client: TestClient) -> None:
    r = client.post("/_consent", data={"action": "accept_all", "next": "/video"})
    assert r.status_code == 200  # the 303 was followed to /video
    assert "consent" in client.cookies
    assert "_fbp" in client.cookies  # set by /video once marketing was granted
    assert client.get("/embed/player").status_code == 200
    assert "tube_visitor" in client.cookies


def test_reject_all_keeps_only_necessary_cookies(client: TestClient) -> None:
    client.post("/_consent", data={"action": "reject_all"})
    client.post("/text-size", data={"size": "large"})  # a preference: refused
    client.get("/embed/player")  # a marketing cookie: refused
    r = client.post("/login", data={"name": "ada"})  # necessary: always allowed
    assert r.status_code == 200
    assert "Hello, ada" in r.text
    assert sorted(client.cookies.keys()) == ["consent", "session"]
    # The choice is kept: no banner form on the next pages, only "Cookie settings".
    page = client.get("/articles/ferry-timetable").text
    assert "data-consent-banner" not in page and "<template" not in page
    assert 'class="cc-manage" href="/_consent/policy" data-consent-open>' in page


def test_gated_markup_and_local_embed(client: TestClient) -> None:
    html = client.get("/video").text
    assert '<iframe data-consent="marketing" data-src="/embed/player"' in html
    base = client.get("/").text
    assert '<script type="text/plain" data-consent="analytics">' in base
    assert "document.cookie" in base
    # The embedded player is a page of the demo itself, without a banner of its own.
    player = client.get("/embed/player")
    assert player.status_code == 200
    assert "data-consent-banner" not in player.text


def test_csp_nonce_reaches_the_banner_script(client: TestClient) -> None:
    r = client.get("/")
    nonce = re.search(r"'nonce-([^']+)'", r.headers["content-security-policy"])
    assert nonce is not None
    assert re.search(
        rf'<script src="/_consent/static/consent\.js[^"]*" defer nonce="{nonce[1]}"', r.text
    )


def test_unknown_page_is_404(client: TestClient) -> None:
    assert client.get("/articles/nope").status_code == 404
    assert client.get("/nowhere").status_code == 404


def test_secret_key_is_kept_next_to_the_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONSENT_SECRET_KEY", raising=False)
    db = tmp_path / "consent-demo.db"
    key, where = load_secret_key(db)
    assert (tmp_path / "consent-demo.key").read_text().strip() == key
    assert "new" in where
    again, where = load_secret_key(db)
    assert again == key
    assert "new" not in where
    assert (tmp_path / "consent-demo.key").stat().st_mode & 0o077 == 0
    monkeypatch.setenv("CONSENT_SECRET_KEY", "from-the-environment-0123456789")
    assert load_secret_key(db)[0] == "from-the-environment-0123456789"


# -- the real command ----------------------------------------------------------------


@dataclass
class Demo:
    url: str
    port: int
    db: Path
    proc: subprocess.Popen[str]


def start_demo(port: int, db: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "CONSENT_SECRET_KEY"}
    return subprocess.Popen(
        [sys.executable, "-m", "consent.cli", "demo", "--port", str(port), "--db", str(db)],
        cwd=db.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_until_up(proc: subprocess.Popen[str], port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            out = proc.stdout.read() if proc.stdout else ""
            raise AssertionError(f"consent demo exited with {proc.returncode}:\n{out}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise AssertionError("consent demo did not start in time") from None
            time.sleep(0.05)


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    """Ctrl-C, as a person at the terminal would."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:  # pragma: no cover - defensive
        proc.kill()
        out, _ = proc.communicate()
    return proc.returncode, out


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    db = tmp_path_factory.mktemp("demo") / "consent-demo.db"
    port = free_port()
    proc = start_demo(port, db)
    try:
        wait_until_up(proc, port)
        yield Demo(f"http://127.0.0.1:{port}", port, db, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def audit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consent.cli", "audit", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.slow
def test_demo_command_serves_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    db = tmp_path / "consent-demo.db"
    port = free_port()
    proc = start_demo(port, db)
    wait_until_up(proc, port)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as r:
        assert r.status == 200
        assert b"data-consent-banner" in r.read()
    # A second demo on the same port says so and exits 1.
    second = subprocess.run(
        [sys.executable, "-m", "consent.cli", "demo", "--port", str(port), "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert second.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in second.stderr
    assert f"--port {port + 1}" in second.stderr
    code, out = stop(proc)
    assert code == 0, out
    assert f"Open  http://127.0.0.1:{port}" in out
    assert f"consent audit verify --log sqlite:///{db}" in out
    assert "consent-demo.key (new;" in out
    assert "Demo stopped." in out
    assert (tmp_path / "consent-demo.key").exists()


def choose(page: Page, button: str) -> None:
    """Click a banner button and wait until the choice is stored in the browser."""
    page.get_by_role("button", name=button).click()
    deadline = time.monotonic() + 15
    while not any(c["name"] == "consent" for c in page.context.cookies()):
        assert time.monotonic() < deadline, f"no consent cookie after clicking {button!r}"
        page.wait_for_timeout(50)
    page.wait_for_load_state("networkidle")


@pytest.mark.slow
@pytest.mark.browser
def test_reject_then_accept_in_chromium_and_verify_the_log(demo: Demo) -> None:
    with chromium() as browser:
        # A visitor who rejects: only necessary cookies, the analytics script never runs.
        ctx = browser.new_context(viewport={"width": 1280, "height": 800}, reduced_motion="reduce")
        page = ctx.new_page()
        page.goto(demo.url + "/")
        # The screenshot in the README and the docs (docs/img/demo.png).
        page.wait_for_selector("[data-consent-banner] button[value=reject_all]")
        page.wait_for_load_state("networkidle")  # consent.js has run and moved focus
        page.locator("button[value=reject_all]").blur()
        page.screenshot(path=str(screenshot_dir() / "demo.png"))
        choose(page, "Reject all")
        page.goto(demo.url + "/articles/lifeboat-crew")
        page.goto(demo.url + "/video")
        page.wait_for_load_state("networkidle")
        assert page.locator("#analytics-status").get_attribute("data-state") == "off"
        assert page.locator("#analytics-status").inner_text() == "not run (no consent)"
        assert page.locator("iframe[data-consent]").get_attribute("data-src") == "/embed/player"
        assert not page.locator("[data-consent-banner]").is_visible()
        names = sorted(c["name"] for c in ctx.cookies())
        assert names == ["consent"], names
        ctx.close()

        # Another visitor accepts everything: the script runs and sets _ga, the video loads.
        ctx = browser.new_context()
        page = ctx.new_page()
        page.goto(demo.url + "/video")
        choose(page, "Accept all")
        page.wait_for_selector('#analytics-status[data-state="on"]')
        assert page.locator("#analytics-status").inner_text() == "analytics ran"
        page.wait_for_selector('iframe[src="/embed/player"]')
        page.reload()
        page.wait_for_selector('#analytics-status[data-state="on"]')
        seen = {c["name"] for c in ctx.cookies()}
        assert {"consent", "_ga", "_fbp", "tube_visitor"} <= seen, seen
        ctx.close()

    done = audit("verify", "--log", f"sqlite:///{demo.db}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK: 2 record(s) verified" in done.stdout
    export = audit("export", "--log", f"sqlite:///{demo.db}")
    assert export.returncode == 0, export.stderr
    actions = [json.loads(line)["action"] for line in export.stdout.splitlines()]
    assert actions == ["reject_all", "accept_all"]
