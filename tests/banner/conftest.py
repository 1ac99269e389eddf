from __future__ import annotations

import sys
from pathlib import Path

import pytest

# tests/browser_support.py holds the browser helpers shared with later end-to-end tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from banner_helpers import make_config

from consent.banner import Banner


@pytest.fixture(scope="session")
def banner() -> Banner:
    return Banner(make_config())
