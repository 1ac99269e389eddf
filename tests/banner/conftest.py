from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# tests/browser_support.py holds the browser helpers shared with later end-to-end tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from banner_helpers import make_config

from browser_support import chromium, serve
from consent.banner import Banner

if TYPE_CHECKING:
    from playwright.sync_api import Browser


@pytest.fixture(scope="session")
def banner() -> Banner:
    return Banner(make_config())


@pytest.fixture(scope="session")
def site() -> Iterator[str]:
    """Base URL of the browser test site (banner_browser_app) served by uvicorn."""
    with serve("banner_browser_app:app", app_dir=Path(__file__).parent) as url:
        yield url


# Module scope, not session: Playwright's sync API runs an asyncio loop in this
# thread while it is open, and async tests in later modules must not meet it.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as b:
        yield b
