from __future__ import annotations

import importlib.util
import os
import sys

import pytest
from hypothesis import settings

# CONSENT_SPEEDUPS_PATH names a build of _speedups.c made elsewhere (``make sanitize``
# builds one with AddressSanitizer and UBSan into build/asan/): it is loaded here as
# ``consent.core._speedups``, before anything imports ``consent``, so that
# ``consent.core.kernels`` and the tests pick that build instead of the one in src/.
# tests/core/test_kernels.py checks that they did.
if os.environ.get("CONSENT_SPEEDUPS_PATH"):
    _path = os.path.abspath(os.environ["CONSENT_SPEEDUPS_PATH"])
    if not os.path.isfile(_path):
        raise RuntimeError(f"CONSENT_SPEEDUPS_PATH={_path}: no such file")
    if "consent" in sys.modules:  # too late: kernels.py may have picked another build
        raise RuntimeError("CONSENT_SPEEDUPS_PATH: consent was imported before tests/conftest.py")
    _spec = importlib.util.spec_from_file_location("consent.core._speedups", _path)
    assert _spec is not None and _spec.loader is not None, _path
    _module = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = _module
    _spec.loader.exec_module(_module)

from consent.config import Category, ConsentConfig

# The machines that run the suite are shared and their speed swings by a factor of
# two: a property test is judged on what it finds, never on how long an example took.
settings.register_profile("consent", deadline=None)
settings.load_profile("consent")

SECRET = "test-secret-key-0123456789abcdef"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_config(**overrides: object) -> ConsentConfig:
    """The configuration most tests use: necessary, preferences, analytics, marketing."""
    data: dict[str, object] = {
        "secret_key": SECRET,
        "log": "memory://",
        "categories": [
            Category(key="necessary", required=True, cookies=["session", "csrftoken"]),
            Category(key="preferences", cookies=["theme", "lang"]),
            Category(
                key="analytics",
                cookies=[{"name": "_ga", "domain": ".example.com"}, "_ga_*", "_gid"],
            ),
            Category(
                key="marketing", cookies=["_fbp", "IDE", {"name": "^ads_[0-9]+$", "match": "regex"}]
            ),
        ],
    }
    data.update(overrides)
    return ConsentConfig.model_validate(data)


@pytest.fixture
def config() -> ConsentConfig:
    return make_config()
