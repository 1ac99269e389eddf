"""Shared configuration and states for the banner tests."""

from __future__ import annotations

from typing import Any

from consent.config import Category, ConsentConfig, CookieRule
from consent.state import ConsentState

SECRET = "s" * 32


def make_config(**overrides: Any) -> ConsentConfig:
    data: dict[str, Any] = {
        "secret_key": SECRET,
        "controller": "Example Shop GmbH",
        "privacy_policy_url": "https://example.com/privacy",
        "categories": [
            Category(
                key="necessary",
                required=True,
                cookies=[
                    CookieRule(
                        name="session", provider="Example Shop", purpose="Keeps you signed in"
                    )
                ],
            ),
            Category(
                key="analytics",
                cookies=[
                    CookieRule(
                        name="_ga",
                        provider="Google",
                        purpose="Distinguishes visitors",
                        max_age=63_072_000,
                        third_party=True,
                    ),
                    CookieRule(
                        name="_ga_*",
                        provider="Google",
                        purpose="Keeps the session state",
                        max_age=63_072_000,
                        third_party=True,
                    ),
                ],
            ),
            Category(
                key="marketing",
                cookies=[
                    CookieRule(
                        name="_fbp",
                        provider="Meta",
                        purpose="Ad delivery",
                        max_age=7_776_000,
                        third_party=True,
                    )
                ],
            ),
            Category(
                key="preferences",
                cookies=[CookieRule(name="theme", max_age=31_536_000, storage="local_storage")],
            ),
        ],
    }
    data.update(overrides)
    return ConsentConfig(**data)


UNDECIDED = ConsentState(granted=frozenset({"necessary"}))
DECIDED = ConsentState(
    granted=frozenset({"necessary", "analytics"}),
    decided=True,
    consent_id="AAAAAAAAAAAAAAAAAAAAAA",
    revision=1,
    issued_at=1_700_000_000,
    source="banner",
)
