from __future__ import annotations

import pytest
from hypothesis import settings

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
