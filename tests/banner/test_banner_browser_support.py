"""The skip-or-fail rule of tests/browser_support.py (no browser needed)."""

from __future__ import annotations

import socket

import pytest

from browser_support import free_port, unavailable


def test_missing_tool_skips_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONSENT_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="CONSENT_REQUIRE_BROWSER=1"):
        unavailable("Chromium not found")


def test_missing_tool_fails_when_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSENT_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="Chromium not found"):
        unavailable("Chromium not found")


def test_free_port_is_bindable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", free_port()))
